# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Overconfidence, measured
#
# A model is *calibrated* when, among the predictions it makes with confidence $c$, a fraction $c$ is right.
# The expected calibration error bins the top-label confidences $\hat c_i = \max_k q_{ik}$ into $B$
# equal-width bins and compares, per bin, the mean confidence with the accuracy:
#
# $$\mathrm{ECE} = \sum_{b=1}^{B} \frac{n_b}{N}\,\big|\mathrm{conf}_b - \mathrm{acc}_b\big| .$$
#
# The *signed* gap, mean confidence minus accuracy, tells over- from under-confidence. You will implement
# both, then train the same network on digits with hard targets and with $\alpha = 0.1$ and compare.

# %%
import matplotlib.pyplot as plt
import torch

from labelsmooth import exercises, metrics, plots

# %% [markdown]
# ## 5.1 Implement the ECE
#
# Write `ece(probs, target, n_bins=15)` for probabilities `probs` of shape $(N, K)$ and labels `target`
# of shape $(N,)$. Bins are $[0, 1/B), [1/B, 2/B), \dots$ and a confidence of exactly 1 goes in the last.

# %%
def ece(probs, target, n_bins=15):
    ...  # your code: return a float


exercises.check("ece", ece)

# %% [markdown]
# ## 5.2 Implement the signed gap

# %%
def signed_gap(probs, target):
    ...  # your code: return a float


exercises.check("signed_gap", signed_gap)

# %% [markdown]
# ## 5.3 Hard targets against smoothing
#
# Train both models (about a second each) and compute, on the test split, the accuracy, your ECE and the
# signed gap. Which model is overconfident? Does smoothing remove the gap, or overshoot?

# %%
data = exercises.digits(seed=0)
models = {a: exercises.train_mlp(data.X_train, data.y_train, label_smoothing=a) for a in (0.0, 0.1)}
with torch.no_grad():
    test_probs = {a: torch.softmax(m(data.X_test), -1) for a, m in models.items()}

# %% [markdown]
# ## Worked solution

# %%
solution_ece = exercises.EXERCISES["ece"].solution()
solution_gap = exercises.EXERCISES["signed_gap"].solution()
exercises.check("ece", solution_ece)
exercises.check("signed_gap", solution_gap)

for a, p in test_probs.items():
    acc = float((p.argmax(-1) == data.y_test).double().mean())
    print(f"a = {a}: accuracy {acc:.3f}, ECE {solution_ece(p, data.y_test):.3f}, "
          f"signed gap {solution_gap(p, data.y_test):+.3f}")
    assert abs(solution_ece(p, data.y_test) - metrics.expected_calibration_error(
        p, data.y_test, from_logits=False)) < 1e-6

# %%
gap = {a: solution_gap(p, data.y_test) for a, p in test_probs.items()}
assert gap[0.1] < 0 and gap[0.1] < gap[0.0]  # what the next paragraph says, checked on this run

# %% [markdown]
# The smoothed network is *underconfident* (negative gap) and further below its accuracy than the
# hard-target one is above or below it: on easy, clean data, smoothing's cap on confidence
# ($1 - \alpha + \alpha/K = 0.91$ for $\alpha = 0.1$) sits below the accuracy the model reaches. Hard
# targets push confidence toward 1; how far above the accuracy it ends depends on how long the network
# trains (exercise 4: the gap grows like $\log t$). The reliability diagrams show where the mass sits:

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (a, p) in zip(axes, test_probs.items()):
    plots.plot_reliability(plots.reliability_data(p, data.y_test, from_logits=False, label=f"a = {a}"), ax=ax)
plt.tight_layout()
plt.show()
