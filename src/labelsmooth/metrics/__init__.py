r"""Calibration and overconfidence metrics, streaming and bootstrapped.

Every function takes torch tensors or numpy arrays: ``input`` of shape ``(N, K)`` holding probabilities or,
with ``from_logits=True``, logits (the caller says which; the value range is never used to guess), and
``target`` of shape ``(N,)`` holding class indices. Scalar metrics return Python floats.

* Binned top-label calibration error: :func:`expected_calibration_error` (``norm`` ``"l1"`` ECE,
  ``"l2"`` RMS calibration error, ``"max"`` MCE; ``strategy`` uniform or quantile), per-bin numbers in
  :func:`calibration_bins`, :func:`classwise_calibration_error`. The binning is defined in
  :mod:`labelsmooth.metrics.binned`.
* Bin-free: :func:`smooth_calibration_error` (smECE, Błasiok and Nakkiran 2023).
* Scores: :func:`negative_log_likelihood`, :func:`brier_score`, :func:`accuracy`, :func:`mean_confidence`,
  :func:`calibration_gap` (signed: > 0 overconfident, < 0 underconfident), :func:`predictive_entropy`,
  and all of them at once in :func:`calibration_summary`.
* Logit geometry: :func:`logit_gap`, :func:`top2_gap`, :func:`logit_gap_summary`.
* :class:`CalibrationMeter` streams and merges; :func:`bootstrap` gives confidence intervals.
"""

from __future__ import annotations

from labelsmooth.metrics.binned import (
    CalibrationBins,
    calibration_bins,
    classwise_calibration_error,
    expected_calibration_error,
)
from labelsmooth.metrics.bootstrap import BootstrapResult, bootstrap
from labelsmooth.metrics.geometry import LogitGapSummary, logit_gap, logit_gap_summary, top2_gap
from labelsmooth.metrics.meter import METER_KEYS, CalibrationMeter
from labelsmooth.metrics.scores import (
    SUMMARY_KEYS,
    accuracy,
    brier_score,
    calibration_gap,
    calibration_summary,
    mean_confidence,
    negative_log_likelihood,
    predictive_entropy,
)
from labelsmooth.metrics.smooth import smooth_calibration_bandwidth, smooth_calibration_error

__all__ = [
    "METER_KEYS",
    "SUMMARY_KEYS",
    "BootstrapResult",
    "CalibrationBins",
    "CalibrationMeter",
    "LogitGapSummary",
    "accuracy",
    "bootstrap",
    "brier_score",
    "calibration_bins",
    "calibration_gap",
    "calibration_summary",
    "classwise_calibration_error",
    "expected_calibration_error",
    "logit_gap",
    "logit_gap_summary",
    "mean_confidence",
    "negative_log_likelihood",
    "predictive_entropy",
    "smooth_calibration_bandwidth",
    "smooth_calibration_error",
    "top2_gap",
]
