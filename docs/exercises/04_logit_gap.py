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
# # 4. The logit gap
#
# At the optimum $\mathrm{softmax}(z) = p$, so for every $k \neq y$
#
# $$e^{z_y - z_k} = \frac{q_y}{q_k} = \frac{p_y}{p_k} .$$
#
# **Derive** the gap $z_y - z_k$ at the optimum for uniform smoothing on paper, then answer; then watch
# gradient descent reach it — and watch the hard-target gap grow without bound.

# %%
import math

import matplotlib.pyplot as plt

from labelsmooth import exercises, theory

# %% [markdown]
# ## 4.1 The gap at the optimum
#
# $K = 10$, $\alpha = 0.1$: the gap $z_y - z_k$ at the optimum (a number).

# %%
answer = ...  # one number
exercises.check("logit_gap", answer)

# %% [markdown]
# ## 4.2 How fast does the hard-target gap grow?
#
# With $\alpha = 0$ the gap has no finite optimum. Run plain gradient descent on one sample's logits
# (`theory.descend_logit_gap(0.0, 10, steps=20000)`) and fit $\mathrm{gap}(t) \approx s \log t + c$.
# What is $s$?

# %%
answer = ...  # one number
exercises.check("hard_gap_rate", answer)

# %% [markdown]
# ## Worked solution
#
# **4.1.** $p_y = 1 - \alpha + \alpha/K$ and $p_k = \alpha/K$, so the gap is
# $\log\big(1 + K(1 - \alpha)/\alpha\big) = \log 91 \approx 4.511$.

# %%
gap = math.log(1 + 10 * (1 - 0.1) / 0.1)
exercises.check("logit_gap", gap)
gap, theory.optimal_logit_gap(0.1, 10)

# %% [markdown]
# **4.2.** Late in training the hard-target gradient on the gap is about $K e^{-\mathrm{gap}}$ per step, so
# $e^{\mathrm{gap}}$ grows linearly in $t$: $\mathrm{gap}(t) \approx \log t + c$, a slope of 1 against
# $\log t$. Unbounded, but only logarithmically — which is why overconfidence creeps in over long training
# rather than all at once.

# %%
hard = theory.descend_logit_gap(0.0, 10, steps=20000)
smooth = theory.descend_logit_gap(0.1, 10, steps=20000)
s = float((hard[20000] - hard[2000]) / math.log(10))
exercises.check("hard_gap_rate", s)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogx(range(1, 20002), hard.numpy(), label="hard targets (a = 0)")
ax.semilogx(range(1, 20002), smooth.numpy(), label="a = 0.1")
ax.axhline(theory.optimal_logit_gap(0.1, 10), ls="--", c="gray", label="log(1 + K(1 - a)/a)")
ax.set_xlabel("gradient step t (log scale)")
ax.set_ylabel("logit gap")
ax.legend()
plt.show()
