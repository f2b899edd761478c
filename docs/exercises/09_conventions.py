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
# # 9. The conventions trap: which "0.1"?
#
# Two conventions share the name *label smoothing*:
#
# - **uniform** (the chapter, PyTorch, timm, Keras, optax, labelsmooth): $p_y = 1 - \alpha + \alpha/K$ and
#   $p_k = \alpha/K$ for $k \ne y$;
# - **off-target** (Megatron-LM, NeMo, OpenNMT): $p_y = 1 - \alpha'$ and $p_k = \alpha'/(K - 1)$.
#
# The same number gives different targets. Find the $\alpha$ that reproduces Megatron's $\alpha' = 0.1$.

# %%
import torch

import labelsmooth as ls
from labelsmooth import exercises

# %% [markdown]
# ## 9.1 Binary classification, $K = 2$

# %%
answer = ...  # one number
exercises.check("convention_k2", answer)

# %% [markdown]
# ## 9.2 A language model, $K = 32000$

# %%
answer = ...  # one number
exercises.check("convention_k32000", answer)

# %% [markdown]
# ## Worked solution
#
# Equate the off-target mass: $\alpha/K = \alpha'/(K - 1)$, so $\alpha = \alpha' K/(K - 1)$; the true
# class then matches too, since both targets sum to 1. For $K = 2$ the two conventions differ by a factor
# of 2 (0.2 against 0.1): a binary model "smoothed with 0.1" is trained toward 0.95 in one and 0.9 in the
# other. For $K = 32000$ they agree to $3 \times 10^{-6}$ and the trap is harmless.

# %%
for k, name in ((2, "convention_k2"), (32000, "convention_k32000")):
    a = 0.1 * k / (k - 1)
    exercises.check(name, a)
    assert abs(a - ls.convert_smoothing(0.1, k, from_convention="off_target", to_convention="uniform")) < 1e-15
    p = ls.smooth_labels(torch.tensor([0]), k, a, dtype=torch.float64)[0]
    print(f"K = {k}: a = {a:.9g}, p_y = {p[0]:.6f} (1 - a' = 0.9), p_k = {p[1]:.3g} (a'/(K - 1) = {0.1 / (k - 1):.3g})")
