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
# # 14. One-sided label smoothing for GAN discriminators
#
# Salimans et al. (2016) smooth the discriminator's *real* targets to $a = 0.9$ and keep the fake targets
# at $b = 0$. Trained to optimality with targets $(a, b)$, the discriminator becomes
#
# $$D^*(x) = \frac{a\,p_{\mathrm{data}}(x) + b\,p_{\mathrm{model}}(x)}{p_{\mathrm{data}}(x) + p_{\mathrm{model}}(x)} .$$
#
# Derive it (minimise the expected binary cross-entropy pointwise), then see why $b > 0$ is harmful.
# `labelsmooth study --task gan` trains GANs on 2-D mixtures with each choice and reports what it measured.

# %%
import torch

import labelsmooth as ls
from labelsmooth import exercises, theory

# %% [markdown]
# ## 14.1 One-sided smoothing
#
# $a = 0.9$, $b = 0$, at a point where $p_{\mathrm{data}}(x) = 2\,p_{\mathrm{model}}(x)$: what is $D^*(x)$?

# %%
answer = ...  # one number
exercises.check("gan_dstar_one_sided", answer)

# %% [markdown]
# ## 14.2 Two-sided smoothing
#
# $a = 0.9$, $b = 0.1$, at a point where $p_{\mathrm{data}}(x) = 0$ but $p_{\mathrm{model}}(x) > 0$ (the
# generator puts samples where there is no data): what is $D^*(x)$?

# %%
answer = ...  # one number
exercises.check("gan_dstar_two_sided", answer)

# %% [markdown]
# ## Worked solution
#
# Pointwise, $D$ minimises $-p_d[a \log D + (1 - a)\log(1 - D)] - p_g[b \log D + (1 - b)\log(1 - D)]$; setting
# the derivative to zero gives the formula above. **14.1:** $0.9 \cdot 2/3 = 0.6$. **14.2:** $b = 0.1$.

# %%
pd = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
pg = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
print("one-sided (0.9, 0):  ", theory.optimal_discriminator(pd, pg, 0.9, 0.0))
print("two-sided (0.9, 0.1):", theory.optimal_discriminator(pd, pg, 0.9, 0.1))
exercises.check("gan_dstar_one_sided", float(theory.optimal_discriminator(pd, pg, 0.9, 0.0)[0]))
exercises.check("gan_dstar_two_sided", float(theory.optimal_discriminator(pd, pg, 0.9, 0.1)[1]))

# %% [markdown]
# Where only the generator has mass, one-sided smoothing still gives $D^* = 0$ ("fake"), while two-sided
# smoothing gives $D^* = b$: the verdict no longer falls to 0 there, which weakens the push moving those
# samples toward the data. The discriminator's loss with either choice is `ls.discriminator_loss`:

# %%
real_logits, fake_logits = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
one_sided = ls.discriminator_loss(real_logits, fake_logits, real_target=0.9)
two_sided = ls.discriminator_loss(real_logits, fake_logits, real_target=0.9, fake_target=0.1)
print(f"one-sided {one_sided:.4f}, two-sided {two_sided:.4f}")
