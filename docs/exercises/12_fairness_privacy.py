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
# # 12. Selective prediction and membership inference: two places where smoothing can hurt
#
# The chapter says smoothing "even addresses fairness and privacy concerns". The measurements are mixed.
# Two of the tools used to check such claims:
#
# - **Selective prediction.** A model may abstain on its least confident inputs. The risk–coverage curve
#   gives the error rate among the $k$ most confident predictions for every $k$; its area (AURC, lower is
#   better) summarises how well confidence *ranks* errors. Xia et al. (ICLR 2025) found smoothing degrades it
#   under max-probability scoring.
# - **Membership inference.** An attacker scores each example (e.g. by the model's confidence on its label)
#   and guesses "member of the training set" above a threshold. The best advantage
#   $\max_t \mathrm{TPR}(t) - \mathrm{FPR}(t)$ and the TPR at a low FPR measure what the model leaks.
#
# `labelsmooth study --task fairness` and `--task privacy` measure both on data sets with intervals over seeds.

# %%
import numpy as np
import torch

from labelsmooth import exercises, metrics, privacy

# %% [markdown]
# ## 12.1 AURC
#
# Write `aurc(probs, target)`: sort by decreasing max-probability; for each $k$ the error rate among the
# $k$ most confident; return the mean of the $N$ risks.

# %%
def aurc(probs, target):
    ...  # your code: return a float


exercises.check("aurc", aurc)

# %% [markdown]
# ## 12.2 Membership advantage
#
# Write `advantage(member_scores, nonmember_scores)`: over every threshold $t$, TPR $= P(\text{member} \ge t)$
# and FPR $= P(\text{non-member} \ge t)$; return the largest TPR $-$ FPR.

# %%
def advantage(member_scores, nonmember_scores):
    ...  # your code: return a float


exercises.check("membership_advantage", advantage)

# %% [markdown]
# ## Worked solution

# %%
aurc_solution = exercises.EXERCISES["aurc"].solution()
advantage_solution = exercises.EXERCISES["membership_advantage"].solution()
exercises.check("aurc", aurc_solution)
exercises.check("membership_advantage", advantage_solution)

# %% [markdown]
# Now on real models: train with hard targets and with $\alpha = 0.2$ on a small training set (members),
# keep the rest of the training split as non-members, and compare AURC on the test split and the loss
# attack's advantage.

# %%
data = exercises.digits(seed=5)
members, nonmembers = slice(0, 300), slice(300, 600)
for a in (0.0, 0.2):
    model = exercises.train_mlp(data.X_train[members], data.y_train[members], label_smoothing=a, epochs=300)
    with torch.no_grad():
        test_p = torch.softmax(model(data.X_test), -1)
        z_in, z_out = model(data.X_train[members]), model(data.X_train[nonmembers])
    s_in = privacy.membership_scores(z_in, data.y_train[members], from_logits=True, kind="loss")
    s_out = privacy.membership_scores(z_out, data.y_train[nonmembers], from_logits=True, kind="loss")
    adv = advantage_solution(np.asarray(s_in), np.asarray(s_out))
    assert abs(adv - privacy.membership_attack(s_in, s_out).advantage) < 1e-9
    print(f"a = {a}: test AURC {aurc_solution(test_p, data.y_test):.4f} "
          f"(library: {metrics.aurc(test_p, data.y_test, from_logits=False):.4f}), loss-attack advantage {adv:.3f}")

# %% [markdown]
# One split and one seed show the mechanics, not the effect: the differences here are of the size that
# changes from seed to seed. The study tasks repeat this over seeds with paired intervals — and report,
# where they find it, that smoothing did *not* help (on their default data membership AUC rose with
# positive smoothing, and the normalised-logit score did not close the AURC gap).
