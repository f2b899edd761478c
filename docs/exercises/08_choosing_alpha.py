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
# # 8. Choosing $\alpha$: by validation NLL or by validation accuracy?
#
# $\alpha$ is a hyper-parameter: choose it on a validation split, never on the test split. Two natural
# rules disagree more often than one expects. Validation accuracy moves in steps of $1/N_{\mathrm{val}}$
# and ties; validation NLL is a *proper scoring rule* (minimised in expectation by the true conditional
# probabilities) and moves smoothly — but it also rewards calibration, which smoothing changes.

# %%
import torch

from labelsmooth import exercises

# %% [markdown]
# ## 8.1 The selection rule
#
# Write `select(alphas, val_logits, val_target, by)` returning the $\alpha$ whose validation logits score
# best — lowest NLL for `by="nll"`, highest accuracy for `by="accuracy"` — with ties broken toward the
# smallest $\alpha$.

# %%
def select(alphas, val_logits, val_target, by):
    ...  # your code: return one of alphas


exercises.check("select_alpha", select)

# %% [markdown]
# ## 8.2 A small grid on digits
#
# Train one model per $\alpha$ on a small training set (so that the validation split is small too) and
# apply both rules. How many validation samples separate the accuracy winners?

# %%
alphas = [0.0, 0.05, 0.1, 0.2, 0.3]
data = exercises.digits(seed=3)
n = 300  # a small training set: the regime where the choice is hardest
val_logits = []
for a in alphas:
    m = exercises.train_mlp(data.X_train[:n], data.y_train[:n], label_smoothing=a, epochs=150)
    with torch.no_grad():
        val_logits.append(m(data.X_val))

# %% [markdown]
# ## Worked solution

# %%
rule = exercises.EXERCISES["select_alpha"].solution()
exercises.check("select_alpha", rule)
for a, z in zip(alphas, val_logits):
    nll = float(torch.nn.functional.cross_entropy(z, data.y_val))
    correct = int((z.argmax(-1) == data.y_val).sum())
    print(f"a = {a:<4}: validation NLL {nll:.4f}, {correct} of {len(data.y_val)} right")
print("by NLL:", rule(alphas, val_logits, data.y_val, "nll"), " by accuracy:", rule(alphas, val_logits, data.y_val, "accuracy"))

# %% [markdown]
# The accuracy winners are separated by a handful of validation samples — one sample is
# $1/N_{\mathrm{val}} \approx 0.3$ points here — so the accuracy rule's choice is close to noise, while NLL
# ranks every candidate on a continuous scale. NLL is not neutral either: it also rewards calibration,
# which smoothing changes (exercise 6), so it can prefer a different $\alpha$ than the one that classifies
# best. Say which rule you used; `labelsmooth study` reports how stable its choice is across seeds.
