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
# # 6. Underconfidence on clean data, and what temperature scaling does to it
#
# On clean, separable data a well-trained network is right almost always, but smoothing caps its
# confidence at $1 - \alpha + \alpha/K$: the model becomes *underconfident*. Temperature scaling rescales
# the logits, $q = \mathrm{softmax}(z / T)$, with one scalar $T > 0$ fitted on a validation split by
# minimising the negative log-likelihood. It never changes the arg-max, so accuracy is untouched.

# %%
import torch

from labelsmooth import exercises, metrics
from labelsmooth.calibration import TemperatureScaler

# %% [markdown]
# ## 6.1 Fit a temperature
#
# Write `fit_temperature(logits, target)` returning the $T$ that minimises the NLL of
# $\mathrm{softmax}(\text{logits} / T)$.

# %%
def fit_temperature(logits, target):
    ...  # your code: return a float T > 0


exercises.check("fit_temperature", fit_temperature)

# %% [markdown]
# ## 6.2 Smoothing on clean digits
#
# Train with $\alpha = 0.2$, fit $T$ on the validation split, and compare the test signed gap before and
# after scaling. Is $T$ above or below 1, and why?

# %%
data = exercises.digits(seed=1)
model = exercises.train_mlp(data.X_train, data.y_train, label_smoothing=0.2)
with torch.no_grad():
    val_logits, test_logits = model(data.X_val), model(data.X_test)

# %% [markdown]
# ## Worked solution

# %%
fit = exercises.EXERCISES["fit_temperature"].solution()
exercises.check("fit_temperature", fit)

T = fit(val_logits, data.y_val)
before = metrics.calibration_gap(test_logits, data.y_test, from_logits=True)
after = metrics.calibration_gap(test_logits / T, data.y_test, from_logits=True)
acc = metrics.accuracy(test_logits, data.y_test, from_logits=True)
print(f"T = {T:.3f}; test accuracy {acc:.3f}; signed gap {before:+.3f} before, {after:+.3f} after scaling")
assert abs(T - float(TemperatureScaler().fit(val_logits, data.y_val).temperature_)) < 0.02 * T

# %% [markdown]
# $T < 1$: the fitted temperature *sharpens* the smoothed model's predictions, undoing most of the
# underconfidence that the smoothing cap caused, at no cost in accuracy (the arg-max is unchanged). This is
# why Müller et al. (2019) recommend judging smoothing's accuracy gains and its calibration separately: the
# calibration effect can be dialled back post hoc, the accuracy effect cannot be obtained that way.
