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
# # 3. The optimum: $q^* = p$, the minimal loss $H(p)$, the KL decomposition
#
# For any target distribution $p$ and prediction $q$,
#
# $$H(p, q) = -\sum_k p_k \log q_k = \underbrace{-\sum_k p_k \log p_k}_{H(p)} + \underbrace{\sum_k p_k \log \frac{p_k}{q_k}}_{\mathrm{KL}(p\,\|\,q)} .$$
#
# $H(p)$ does not depend on the model; only the KL can be reduced, and it is zero only at $q = p$.

# %%
import math

import torch

from labelsmooth import exercises, theory

# %% [markdown]
# ## 3.1 The minimiser
#
# $p = (0.7, 0.2, 0.1)$. Minimise $H(p, q)$ over distributions $q$ — by the decomposition, or numerically
# (optimise logits $z$ with $q = \mathrm{softmax}(z)$). What is $q^*$?

# %%
answer = ...  # three numbers
exercises.check("optimum", answer)

# %% [markdown]
# ## 3.2 The minimal smoothed loss
#
# $K = 5$, $\alpha = 0.1$: the smallest value the smoothed cross-entropy can take, in nats. Why is it not 0?

# %%
answer = ...  # one number
exercises.check("minimal_loss", answer)

# %% [markdown]
# ## 3.3 The decomposition, numerically
#
# $p = (0.9, 0.1)$ and logits $z = (2, 0)$: compute $\mathrm{KL}(p \,\|\, \mathrm{softmax}(z))$ and check
# that $H(p, q) = H(p) + \mathrm{KL}(p\,\|\,q)$.

# %%
answer = ...  # one number
exercises.check("kl_decomposition", answer)

# %% [markdown]
# ## Worked solution
#
# **3.1.** Numerically: gradient descent on the logits converges to $q = p$ (the decomposition says why).

# %%
p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
opt = torch.optim.SGD([z], lr=1.0)
for _ in range(2000):
    opt.zero_grad()
    loss = -(p * torch.log_softmax(z, -1)).sum()
    loss.backward()
    opt.step()
q_star = torch.softmax(z, -1).detach()
exercises.check("optimum", q_star.tolist())
q_star

# %% [markdown]
# **3.2.** At the optimum $q = p$, so the loss is $H(p) = -(0.92 \log 0.92 + 4 \times 0.02 \log 0.02)$. It is
# positive because a soft target cannot be matched at zero cost: the model pays the target's own entropy.

# %%
h = -(0.92 * math.log(0.92) + 4 * 0.02 * math.log(0.02))
exercises.check("minimal_loss", h)
h, theory.minimal_loss(0.1, 5)

# %% [markdown]
# **3.3.**

# %%
p = torch.tensor([0.9, 0.1], dtype=torch.float64)
q = torch.softmax(torch.tensor([2.0, 0.0], dtype=torch.float64), -1)
kl = float((p * (p / q).log()).sum())
cross = float(-(p * q.log()).sum())
assert abs(cross - (theory.entropy(p).item() + kl)) < 1e-12
exercises.check("kl_decomposition", kl)
kl, cross
