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
# # 11. Distillation: temperature, the $T^2$ factor, and the teacher-free teacher
#
# Hinton et al.'s distillation trains a student on the teacher's tempered distribution,
#
# $$\mathcal{L}_{\mathrm{KD}} = T^2\,\mathrm{KL}\big(\mathrm{softmax}(t/T)\,\big\|\,\mathrm{softmax}(s/T)\big),$$
#
# with $t$ and $s$ the teacher's and the student's logits. Label smoothing interacts with it twice: a
# smoothed *teacher* erases the information its wrong-class probabilities carry (Müller et al. 2019), and a
# *virtual* teacher that is just a smoothed target (teacher-free distillation, Yuan et al. 2020) is label
# smoothing under another name. Both are measured by `labelsmooth study --task distill`.

# %%
import torch

import labelsmooth as ls
from labelsmooth import exercises

# %% [markdown]
# ## 11.1 Why $T^2$?
#
# Student logits $s = (1, 0.5, -0.5, 0)$, teacher logits $t = (3, 1, -1, 0)$. *Without* the $T^2$ factor,
# by what factor does the norm of the gradient with respect to $s$ shrink from $T = 4$ to $T = 8$?

# %%
answer = ...  # one number
exercises.check("kd_temperature", answer)

# %% [markdown]
# ## 11.2 The teacher-free teacher is a smoothed target
#
# Tf-KD's virtual teacher puts $a = 0.9$ on the label and $(1 - a)/(K - 1)$ on every other class, $K = 10$.
# Which `label_smoothing` of `ls.cross_entropy` (the uniform convention) gives the same target?

# %%
answer = ...  # one number
exercises.check("teacher_free", answer)

# %% [markdown]
# ## Worked solution
#
# **11.1.** Each logit is divided by $T$ (one factor $1/T$ by the chain rule), and at high $T$ the
# difference of two softmaxes is about $(t - s)/(KT)$ (another $1/T$): the gradient shrinks like $1/T^2$,
# and the $T^2$ factor keeps the soft-target term on the same scale as a hard-label term when $T$ changes.

# %%
s = torch.tensor([[1.0, 0.5, -0.5, 0.0]], dtype=torch.float64)
t = torch.tensor([[3.0, 1.0, -1.0, 0.0]], dtype=torch.float64)


def grad_norm(T):
    s_ = s.clone().requires_grad_(True)
    (ls.distillation_loss(s_, t, temperature=T) / T**2).backward()
    return float(s_.grad.norm())


ratio = grad_norm(8.0) / grad_norm(4.0)
exercises.check("kd_temperature", ratio)
print(f"ratio {ratio:.4f}; (4/8)^2 = 0.25")

# %% [markdown]
# **11.2.** $1 - a = 0.1$ spread over the $K - 1$ other classes is the off-target convention (exercise 9):
# `label_smoothing` $= 0.1 \cdot K/(K - 1) = 0.1111$. With that value the smoothed cross-entropy and the
# teacher-free loss at $T = 1$ have the same gradient:

# %%
a_uniform = ls.convert_smoothing(0.1, 10, from_convention="off_target", to_convention="uniform")
exercises.check("teacher_free", a_uniform)
target_tf = ls.teacher_free_target(torch.tensor([3]), 10, correct_prob=0.9)
target_ls = ls.smooth_labels(torch.tensor([3]), 10, a_uniform)
assert torch.allclose(target_tf, target_ls.to(target_tf.dtype))
target_tf
