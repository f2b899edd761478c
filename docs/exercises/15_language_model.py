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
# # 15. Label smoothing in language models: why perplexity goes up
#
# Vaswani et al. (2017) trained the Transformer with smoothing 0.1 and reported that it "hurts perplexity,
# as the model learns to be more unsure, but improves accuracy and BLEU". Part of the reason is a floor:
# the smoothed loss is minimised by $q = p$, which never puts probability 1 on the next token.
# `labelsmooth study --task sequence` trains small causal Transformers with the fused linear loss and
# measures perplexity, accuracy and calibration with intervals over seeds.

# %%
import math

import torch

import labelsmooth as ls
from labelsmooth import exercises

# %% [markdown]
# ## 15.1 The perplexity floor
#
# A next token that is fully predictable, a vocabulary of $V = 100$, smoothing $\alpha = 0.1$: what is the
# perplexity of the model that minimises the smoothed loss exactly?

# %%
answer = ...  # one number
exercises.check("lm_perplexity_floor", answer)

# %% [markdown]
# ## Worked solution
#
# At the optimum the true token gets $q = 1 - \alpha + \alpha/V = 0.901$, so the NLL is $-\log 0.901$ and
# the perplexity $1/0.901 \approx 1.11$ — whatever the model's capacity. Hard targets can approach 1.

# %%
floor = 1 / (1 - 0.1 + 0.1 / 100)
exercises.check("lm_perplexity_floor", floor)

# The same with the fused linear loss that the sequence task trains with: hidden states h, an output
# projection W, and logits that never exist in memory. Drive one position's hidden state to the optimum.
torch.manual_seed(0)
W = torch.randn(100, 16, dtype=torch.float64)
h = torch.zeros(1, 16, dtype=torch.float64, requires_grad=True)
target = torch.tensor([7])
opt = torch.optim.Adam([h], lr=0.1)
for _ in range(3000):
    opt.zero_grad()
    ls.linear_cross_entropy(h, W, target, label_smoothing=0.1).backward()
    opt.step()
q = torch.softmax(h.detach() @ W.T, -1)[0, 7].item()
print(f"q(true token) = {q:.4f} (optimum 0.901 if reachable with this W), perplexity {1 / q:.4f} >= {floor:.4f}")
print(f"log-perplexity floor: {-math.log(1 - 0.1 + 0.1 / 100):.4f} nats")
