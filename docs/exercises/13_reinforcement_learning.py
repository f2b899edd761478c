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
# # 13. Smoothed targets in reinforcement learning: HL-Gauss values and conservative DPO
#
# Two uses of smoothing outside classification:
#
# - **Value learning as classification** (Imani and White 2018; Farebrother et al. 2024, *Stop
#   Regressing*). Instead of regressing a scalar return $y$ with MSE, predict a histogram over fixed bins
#   with edges $e_0 < \dots < e_B$ and train it with cross-entropy against a *smoothed* target: HL-Gauss puts
#   $p_i \propto \Phi\big((e_{i+1} - y)/\sigma\big) - \Phi\big((e_i - y)/\sigma\big)$ on bin $i$.
# - **Preferences with noisy labels** (conservative DPO, Mitchell 2023). DPO's loss
#   $-\log\sigma(\beta h)$ on the margin $h$ has its optimum at $h = \infty$, like hard targets' logit gap.
#   Smoothing the preference label with rate $e$ gives
#   $(1 - e)(-\log\sigma(\beta h)) + e(-\log\sigma(-\beta h))$.
#
# `labelsmooth study --task value` and `--task preference` measure both over seeds.

# %%
import math

import torch

import labelsmooth as ls
from labelsmooth import exercises, theory

# %% [markdown]
# ## 13.1 An HL-Gauss target
#
# $y = 0.3$, 8 equal bins on $[-1, 1]$, $\sigma = 0.75 \times$ the bin width (the paper's recommendation).
# Write the target over the 8 bins.

# %%
answer = ...  # eight numbers
exercises.check("hl_gauss_target", answer)

# %% [markdown]
# ## 13.2 The cDPO optimum
#
# $e = 0.1$, $\beta = 0.1$: which margin $h$ minimises the cDPO loss of one pair?

# %%
answer = ...  # one number
exercises.check("cdpo_margin", answer)

# %% [markdown]
# ## Worked solution
#
# **13.1.** With $\Phi(x) = \tfrac12\big(1 + \mathrm{erf}(x/\sqrt2)\big)$, integrate the Gaussian over each
# bin and renormalise over the support. Its mean is close to $y$ (exactly $y$ only as $\sigma \to 0$ at a
# bin centre; two-hot targets match the mean exactly).

# %%
support = ls.Support.uniform(-1.0, 1.0, 8)
sigma = 0.75 * support.width
edges = support.edges.tolist()


def phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


mass = [phi((edges[i + 1] - 0.3) / sigma) - phi((edges[i] - 0.3) / sigma) for i in range(8)]
target = [m / sum(mass) for m in mass]
exercises.check("hl_gauss_target", target)
p = ls.hl_gauss_targets(torch.tensor([0.3], dtype=torch.float64), support, sigma)
print("mean of the histogram:", float(ls.histogram_mean(p, support, from_logits=False)))

# %% [markdown]
# **13.2.** Setting the derivative to zero gives $\sigma(\beta h) = 1 - e$, so $h^* = \log\frac{1 - e}{e}/\beta$
# $= \log 9 / 0.1 \approx 21.97$; gradient descent on one pair gets there, while plain DPO's margin keeps
# growing.

# %%
h_star = math.log((1 - 0.1) / 0.1) / 0.1
exercises.check("cdpo_margin", h_star)
margins = theory.descend_preference_margin(0.1, 0.1, steps=5000)
print(f"h* = {h_star:.4f}; gradient descent reaches {float(margins[-1]):.4f}")
