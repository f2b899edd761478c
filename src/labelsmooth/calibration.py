r"""Post-hoc calibration: temperature scaling (Guo, Pleiss, Sun and Weinberger 2017).

A single scalar :math:`T > 0` divides every logit, :math:`q = \mathrm{softmax}(z / T)`, chosen to minimise
the negative log-likelihood on held-out data. It changes confidences, never the predicted class, so
accuracy is untouched.

The fitted temperature is itself a diagnostic of what training did to the model's confidence:

* :math:`T > 1`: the logits were too large -- the model was **overconfident** (typical of hard one-hot
  targets).
* :math:`T < 1`: the logits were too small -- the model was **underconfident**, which is what too much
  label smoothing does on a clean, separable problem (its logit gaps are capped at
  :math:`\log(1 + K(1-\alpha)/\alpha)`).
* :math:`T \approx 1`: already calibrated in the NLL sense.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from labelsmooth._validation import (
    as_tensor,
    check_positive_int,
    check_scores,
    expected,
    prepare_scores_and_target,
)

__all__ = ["CalibrationWarning", "NotFittedError", "TemperatureScaler"]


class NotFittedError(ValueError, AttributeError):
    """A transform was asked of an estimator that has not been fitted (as scikit-learn's)."""


class CalibrationWarning(UserWarning):
    """The fitted temperature hit a bound, or the data cannot determine it."""


def _nll_and_derivatives(z: torch.Tensor, zy: torch.Tensor, beta: float) -> tuple[float, float, float]:
    r"""Mean NLL at inverse temperature :math:`\beta` and its first two derivatives in :math:`\beta`.

    :math:`f(\beta) = \frac1N\sum_i [\mathrm{lse}(\beta z_i) - \beta z_{iy_i}]`,
    :math:`f'(\beta) = \frac1N\sum_i [E_{q_i}(z_i) - z_{iy_i}]`,
    :math:`f''(\beta) = \frac1N\sum_i \mathrm{Var}_{q_i}(z_i) \ge 0`,
    with :math:`q_i = \mathrm{softmax}(\beta z_i)`.
    """
    logq = torch.log_softmax(beta * z, dim=1)
    q = logq.exp()
    mean_z = (q * z).sum(1)
    var_z = (q * (z - mean_z[:, None]) ** 2).sum(1)
    f = float((-(logq.gather(1, zy[:, None]).squeeze(1))).mean())
    return f, float((mean_z - z.gather(1, zy[:, None]).squeeze(1)).mean()), float(var_z.mean())


class TemperatureScaler:
    r"""Fit one temperature :math:`T` on validation logits by minimising the NLL; rescale logits by it.

    .. math::
        T^* = \arg\min_{T \in [T_{\min}, T_{\max}]} \; \frac1N \sum_{i=1}^N
        \Big[\log \sum_k e^{z_{ik}/T} - z_{iy_i}/T\Big]

    The objective is convex in the inverse temperature :math:`\beta = 1/T` (a log-sum-exp of a linear
    function minus a linear term; its second derivative is the mean variance of the logits under the
    scaled softmax), hence unimodal in :math:`\log T`. ``fit`` solves :math:`f'(\beta) = 0` by Newton's
    method safeguarded with bisection inside the bracket :math:`[1/T_{\max}, 1/T_{\min}]`, which converges
    quadratically and cannot leave the bracket.

    When the optimum lies outside the bracket -- on separable validation data (every prediction right)
    the NLL keeps falling as :math:`T \to 0`; if every prediction is wrong it falls as
    :math:`T \to \infty` -- the temperature is clamped to the bound, ``at_bound_`` records which one, and a
    :class:`CalibrationWarning` is issued. If the NLL does not depend on :math:`T` at all (every row's
    logits are equal), :math:`T = 1` is kept with a warning. A single class in ``target`` is fine.

    Reading the result: :math:`T > 1` means the model was overconfident, :math:`T < 1` underconfident (the
    signature of too much label smoothing); see :mod:`labelsmooth.calibration`.

    Parameters
    ----------
    bounds : tuple of float, default (1e-3, 1e3)
        :math:`(T_{\min}, T_{\max})`, with :math:`0 < T_{\min} < T_{\max} < \infty`.
    max_iter : int, default 100
        Newton/bisection steps; 30 are rarely exceeded.

    Attributes
    ----------
    temperature_ : float
        The fitted :math:`T`.
    nll_before_, nll_after_ : float
        Validation NLL at :math:`T = 1` and at :math:`T^*`.
    at_bound_ : {None, "lower", "upper"}
        Which bound clamped the optimum, if any.
    n_iter_ : int
        Steps taken.
    num_classes_ : int

    Raises
    ------
    NotFittedError
        ``transform`` / ``predict_proba`` before ``fit``.
    ValueError, TypeError
        Bad bounds; bad logits or targets (as :func:`labelsmooth.metrics.expected_calibration_error` with
        ``from_logits=True``, argument name ``logits``); logits with a different number of classes than
        seen in ``fit``.

    References
    ----------
    Guo, Pleiss, Sun and Weinberger (2017), *On Calibration of Modern Neural Networks*, ICML.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> z = torch.randn(5000, 10, generator=g, dtype=torch.float64) * 2      # a calibrated model's logits
    >>> y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    >>> scaler = TemperatureScaler().fit(3 * z, y)                          # an overconfident model
    >>> round(scaler.temperature_, 1)
    3.0
    >>> round(TemperatureScaler().fit(z / 2, y).temperature_, 1)             # an underconfident one
    0.5
    >>> scaler.transform(3 * z).shape
    torch.Size([5000, 10])
    """

    def __init__(self, *, bounds: tuple[float, float] = (1e-3, 1e3), max_iter: int = 100) -> None:
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError) as exc:
            raise TypeError(expected("bounds", "to be a pair of floats (T_min, T_max)", bounds)) from exc
        if not (0.0 < lo < hi < math.inf):
            raise ValueError(expected("bounds", "to satisfy 0 < T_min < T_max < inf", bounds))
        self.bounds = (lo, hi)
        self.max_iter = check_positive_int("max_iter", max_iter)

    # ------------------------------------------------------------------ fitting
    def fit(self, logits: Any, target: Any) -> TemperatureScaler:
        """Fit :math:`T` on validation ``logits`` ``(N, K)`` and ``target`` ``(N,)``; return ``self``."""
        x, t = prepare_scores_and_target(logits, target, from_logits=True, input_name="logits")
        z = x.double()
        t_lo, t_hi = self.bounds
        b_lo, b_hi = 1.0 / t_hi, 1.0 / t_lo  # bracket on beta = 1 / T
        g_lo = _nll_and_derivatives(z, t, b_lo)[1]
        g_hi = _nll_and_derivatives(z, t, b_hi)[1]
        self.at_bound_: str | None = None
        self.n_iter_ = 0
        if g_lo == 0.0 and g_hi == 0.0:
            warnings.warn(
                "the NLL does not depend on the temperature (every row's logits are equal); keeping T = 1",
                CalibrationWarning,
                stacklevel=2,
            )
            beta = 1.0
        elif g_hi <= 0.0:  # still decreasing at T_min: the optimum is at T -> 0 (separable data)
            beta, self.at_bound_ = b_hi, "lower"
        elif g_lo >= 0.0:  # already increasing at T_max: the optimum is at T -> infinity
            beta, self.at_bound_ = b_lo, "upper"
        else:
            beta = self._newton(z, t, b_lo, b_hi)
        if self.at_bound_ is not None:
            bound = t_lo if self.at_bound_ == "lower" else t_hi
            why = "separable" if self.at_bound_ == "lower" else "every prediction wrong"
            warnings.warn(
                f"the NLL-optimal temperature lies beyond the {self.at_bound_} bound T = {bound:g} "
                f"(validation data look {why}); clamped to it, see `at_bound_`",
                CalibrationWarning,
                stacklevel=2,
            )
        self.temperature_ = 1.0 / beta
        self.num_classes_ = int(z.shape[1])
        self.nll_before_ = _nll_and_derivatives(z, t, 1.0)[0]
        self.nll_after_ = _nll_and_derivatives(z, t, beta)[0]
        return self

    def _newton(self, z: torch.Tensor, t: torch.Tensor, lo: float, hi: float) -> float:
        """Root of the increasing f'(beta) in (lo, hi), where f'(lo) < 0 < f'(hi)."""
        beta = min(max(1.0, lo), hi)
        for i in range(self.max_iter):
            self.n_iter_ = i + 1
            _, g, h = _nll_and_derivatives(z, t, beta)
            if g == 0.0:
                return beta
            if g < 0.0:
                lo = beta
            else:
                hi = beta
            step = g / h if h > 0.0 else math.inf
            if abs(step) <= 1e-12 * beta:  # Newton has converged (to rounding)
                return min(max(beta - step, lo), hi)
            if hi - lo <= 1e-13 * hi:
                return 0.5 * (lo + hi)
            candidate = beta - step
            beta = candidate if lo < candidate < hi else 0.5 * (lo + hi)
        return beta

    # ------------------------------------------------------------------ applying
    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise NotFittedError(
                "This TemperatureScaler is not fitted yet; call fit(logits, target) on validation data first."
            )

    def _rescaled(self, logits: Any) -> tuple[torch.Tensor, bool]:
        self._check_fitted()
        is_numpy = isinstance(logits, np.ndarray)
        z = check_scores("logits", as_tensor("logits", logits), from_logits=True)
        if z.shape[1] != self.num_classes_:
            raise ValueError(expected("logits", f"to have {self.num_classes_} classes, as in fit", z))
        return z / self.temperature_, is_numpy

    def transform(self, logits: Any) -> Any:
        """Calibrated logits :math:`z / T`, same shape, dtype and kind (tensor or array) as ``logits``."""
        out, is_numpy = self._rescaled(logits)
        return out.numpy() if is_numpy else out

    def predict_proba(self, logits: Any) -> Any:
        """Calibrated probabilities softmax(z / T), computed in float64, returned in the input dtype."""
        out, is_numpy = self._rescaled(logits)
        p = torch.softmax(out.double(), dim=1).to(out.dtype)
        return p.numpy() if is_numpy else p

    def fit_transform(self, logits: Any, target: Any) -> Any:
        """``fit(logits, target)`` then ``transform(logits)``."""
        return self.fit(logits, target).transform(logits)

    def __repr__(self) -> str:
        fitted = f", temperature_={self.temperature_:.4g}" if hasattr(self, "temperature_") else ""
        return f"TemperatureScaler(bounds={self.bounds}{fitted})"
