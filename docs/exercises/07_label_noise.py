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
# # 7. Robustness to label noise
#
# With 30 % of the training labels replaced by a random other class, a network trained long enough
# *memorises* the wrong labels: it predicts the noisy label on the corrupted training samples, and its test
# accuracy suffers. Smoothing bounds the logit gap it can reach (exercise 4), which slows memorisation.

# %%
import torch

from labelsmooth import exercises

# %% [markdown]
# ## 7.1 Measure memorisation
#
# Write `memorised(pred, noisy, clean)`: among training samples whose label was corrupted
# (`noisy != clean`), the fraction the model predicts as its noisy label.

# %%
def memorised(pred, noisy, clean):
    ...  # your code: return a float


exercises.check("memorised", memorised)

# %% [markdown]
# ## 7.2 Hard targets against $\alpha = 0.3$ on 30 % noise
#
# Train both (long enough to fit the training set), then compare memorisation and test accuracy.

# %%
data = exercises.digits(noise=0.3, seed=2)
models = {a: exercises.train_mlp(data.X_train, data.y_train, label_smoothing=a, epochs=400) for a in (0.0, 0.3)}

# %% [markdown]
# ## Worked solution

# %%
memo = exercises.EXERCISES["memorised"].solution()
exercises.check("memorised", memo)
with torch.no_grad():
    for a, m in models.items():
        train_pred = m(data.X_train).argmax(-1)
        test_acc = float((m(data.X_test).argmax(-1) == data.y_test).double().mean())
        print(f"a = {a}: memorised {memo(train_pred, data.y_train, data.y_train_clean):.2f} of the noisy labels, "
              f"test accuracy {test_acc:.3f}")

# %% [markdown]
# Read the two numbers together: the fraction of corrupted labels the network reproduces, and what that
# costs on clean test data. On this split smoothing memorises fewer of the wrong labels; how much that buys
# in test accuracy varies with the seed — `labelsmooth study` measures it over seeds, with intervals
# (its default grid includes 30 % symmetric noise).
