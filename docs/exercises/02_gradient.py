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
# # 2. The gradient $q - p$
#
# With $q = \mathrm{softmax}(z)$, the smoothed cross-entropy of one sample is
#
# $$L(z) = -\sum_k p_k \log q_k = \mathrm{lse}(z) - \sum_k p_k z_k ,\qquad \mathrm{lse}(z) = \log \sum_j e^{z_j}.$$
#
# **Derive** $\partial L / \partial z_k$ on paper first (the derivative of $\mathrm{lse}(z)$ with respect to
# $z_k$ is $q_k$), then answer the two questions and verify your derivation with autograd.

# %%
import torch

import labelsmooth as ls
from labelsmooth import exercises, theory

# %% [markdown]
# ## 2.1 The gradient at a point
#
# $z = (2.0, 1.0, 0.1, -1.0)$, true class index 0, $\alpha = 0.2$, $K = 4$. Compute $\partial L/\partial z$
# (four numbers) from your formula — not with autograd; autograd is for checking.

# %%
answer = ...  # four numbers
exercises.check("gradient", answer)

# %% [markdown]
# ## 2.2 Where the gradient vanishes
#
# Gradient descent stops where the gradient is zero. With $\alpha = 0.2$ and $K = 4$, at which confidence
# $q_y$ in the true class does that happen? And with hard targets ($\alpha = 0$)?

# %%
answer = ...  # one number
exercises.check("vanishing_confidence", answer)

# %% [markdown]
# ## Worked solution
#
# **2.1.** $\partial L/\partial z_k = q_k - p_k$: prediction minus target. Here $p = (0.85, 0.05, 0.05, 0.05)$.

# %%
z = torch.tensor([[2.0, 1.0, 0.1, -1.0]], dtype=torch.float64, requires_grad=True)
y = torch.tensor([0])
p = ls.smooth_labels(y, 4, 0.2, dtype=torch.float64)
by_hand = (torch.softmax(z, -1) - p).detach()[0]

ls.cross_entropy(z, y, label_smoothing=0.2).backward()  # autograd agrees with the formula
assert torch.allclose(z.grad[0], by_hand)
exercises.check("gradient", by_hand.tolist())
by_hand

# %% [markdown]
# **2.2.** The gradient vanishes where $q = p$, i.e. $q_y = 1 - \alpha + \alpha/K = 0.85$: a finite point,
# reached with a finite logit gap. With hard targets $p$ is one-hot: $q_y - 1 < 0$ for every finite $z$,
# so the gradient never vanishes and the true logit is pushed up for ever — the root of overconfidence.

# %%
exercises.check("vanishing_confidence", 1 - 0.2 + 0.2 / 4)
zero_logits = torch.zeros(1, 4)
print("hard targets:", theory.gradient(zero_logits, y, 0.0))
print("a = 0.2:     ", theory.gradient(zero_logits, y, 0.2))
