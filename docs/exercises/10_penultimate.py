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
# # 10. The penultimate-layer picture of Müller, Kornblith and Hinton
#
# The logit of class $k$ is $z_k = w_k^\top x + b_k$: a template $w_k$ against the penultimate activation
# $x$. Smoothing asks for the *same* finite gap to every wrong class (exercise 4), which is easiest when
# the activations of a class sit in a tight cluster at equal distance from the other classes' templates.
# Hard targets only ask for a large gap, and leave broad, elongated clouds. Tight clusters erase
# information about *which* wrong classes an example resembles — information a distillation student
# learns from — which is why smoothed teachers can make worse students (Müller et al. 2019).

# %%
import matplotlib.pyplot as plt
import torch

from labelsmooth import exercises, plots

# %% [markdown]
# ## 10.1 Measure cluster tightness
#
# Write `within_class_cosine(features, target)`: for each class, the mean cosine similarity between the
# features of two *different* samples of that class; then the mean over classes.

# %%
def within_class_cosine(features, target):
    ...  # your code: return a float


exercises.check("within_class_cosine", within_class_cosine)

# %% [markdown]
# ## 10.2 Hard targets against $\alpha = 0.3$
#
# Compute the tightness of the test activations for both models, and project three classes onto the
# plane of their templates.

# %%
data = exercises.digits(seed=4)
models = {a: exercises.train_mlp(data.X_train, data.y_train, label_smoothing=a, epochs=300) for a in (0.0, 0.3)}

# %% [markdown]
# ## Worked solution

# %%
tightness = exercises.EXERCISES["within_class_cosine"].solution()
exercises.check("within_class_cosine", tightness)

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (a, m) in zip(axes, models.items()):
    with torch.no_grad():
        feats = m.features(data.X_test)
    within = tightness(feats, data.y_test)
    unit = torch.nn.functional.normalize(feats.double(), dim=1)
    overall = float((unit @ unit.T).mean())
    r2 = 1 - (1 - within) / (1 - overall)  # class separation (Kornblith et al. 2021)
    print(f"a = {a}: within-class cosine {within:.3f}, overall {overall:.3f}, class separation R2 {r2:.3f}")
    proj = plots.penultimate_projection(feats, data.y_test, m.head.weight.detach(), classes=(0, 1, 2))
    plots.plot_penultimate_projection(proj, ax=ax)
    ax.set_title(f"a = {a}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Two numbers, because the first alone misleads. ReLU activations are non-negative, so *all* of them point
# into the same orthant and even different classes have a high cosine similarity: the raw within-class
# cosine is dominated by that shared direction, and here it is not higher with smoothing. Kornblith et al.
# (2021) normalise it by the overall similarity, $R^2 = 1 - (1 - \bar s_{\mathrm{within}}) /
# (1 - \bar s_{\mathrm{overall}})$, the fraction of the spread explained by the class; on this run it is
# slightly higher with smoothing, and the projection shows the tighter, more evenly spaced clusters of
# Müller et al. The effect on a network this small is modest; the study task `distill` measures it over
# seeds, and what it costs a student.
