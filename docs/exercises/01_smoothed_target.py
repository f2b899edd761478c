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
# # 1. The smoothed target by hand
#
# Label smoothing replaces the one-hot target of class $y$ by a mixture with a prior $u$:
#
# $$p_k = (1 - \alpha)\,[k = y] + \alpha\,u_k ,$$
#
# with $u$ uniform ($u_k = 1/K$) unless a prior is given. Every class receives $\alpha u_k$ — the true class
# too — and the true class keeps $1 - \alpha$ on top.
#
# Each question leaves a cell with `answer = ...`: replace the dots with your answer and run the cell.
# `exercises.check` tells you whether it is right and, if not, what is off; `exercises.hint(name, level)`
# gives hints one at a time. The worked solution is at the bottom.

# %%
import torch

import labelsmooth as ls
from labelsmooth import exercises

# %% [markdown]
# ## 1.1 Uniform smoothing
#
# $K = 5$ classes, the true class is class 3 (index 2, counting from 0 as PyTorch does), $\alpha = 0.1$.
# Write the smoothed target $p$ as five numbers, by hand.

# %%
answer = ...  # five numbers, e.g. [0.1, 0.2, ...]
exercises.check("smoothed_target", answer)

# %% [markdown]
# ## 1.2 Smoothing toward a class prior
#
# Smoothing toward the class frequencies instead of the uniform distribution keeps the prior of an
# imbalanced data set. Same sample, $\alpha = 0.1$, prior $u = (0.4, 0.3, 0.1, 0.1, 0.1)$.

# %%
answer = ...  # five numbers
exercises.check("smoothed_target_prior", answer)

# %%
print(exercises.hint("smoothed_target_prior", 0))  # a hint, if you want one

# %% [markdown]
# ## Worked solution
#
# **1.1.** $\alpha/K = 0.02$ goes to every class; the true class also keeps $1 - \alpha = 0.9$:
# $p = (0.02, 0.02, 0.92, 0.02, 0.02)$. `ls.smooth_labels` builds the same tensor:

# %%
solution = [0.02, 0.02, 0.9 + 0.02, 0.02, 0.02]
exercises.check("smoothed_target", solution)
ls.smooth_labels(torch.tensor([2]), num_classes=5, label_smoothing=0.1)

# %% [markdown]
# **1.2.** Replace $1/K$ by $u_k$: $p = 0.9\,[k = 2] + 0.1\,u = (0.04, 0.03, 0.91, 0.01, 0.01)$.

# %%
prior = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.1])
solution = (0.9 * torch.nn.functional.one_hot(torch.tensor(2), 5) + 0.1 * prior).tolist()
exercises.check("smoothed_target_prior", solution)
ls.smooth_labels(torch.tensor([2]), num_classes=5, label_smoothing=0.1, prior=prior)

# %% [markdown]
# Note what smoothing toward a prior does to a rare class: its off-target mass $\alpha u_k$ is small, so
# the target stays sharper against rare classes than uniform smoothing would make it.
# `ls.class_prior(y, K)` estimates $u$ from the training labels.
