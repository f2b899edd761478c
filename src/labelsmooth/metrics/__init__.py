r"""Calibration and overconfidence metrics, streaming and bootstrapped.

Every function takes torch tensors or numpy arrays: ``input`` of shape ``(N, K)`` holding probabilities or,
with ``from_logits=True``, logits, and ``target`` of shape ``(N,)`` holding class indices. ``from_logits`` is
keyword-only and required everywhere (the caller says which; the value range is never used to guess, and a
default would silently compute a wrong number); functions that take only logits (:func:`logit_gap`,
:func:`top2_gap`, :func:`logit_gap_summary`) name their argument ``logits`` instead. Mode arguments
(``strategy``, ``norm``, ``score``) are typed ``Literal[...]``.

Return types: a **scalar metric returns a Python float**; a per-sample quantity (:func:`logit_gap`,
:func:`top2_gap`, :func:`selective_score`) a float64 tensor of shape ``(N,)``; per-bin, per-group and curve
results a frozen dataclass (:class:`CalibrationBins`, :class:`GroupMetrics`, :class:`RiskCoverageCurve`,
...) of numpy arrays, tuples and floats.

* Binned top-label calibration error: :func:`expected_calibration_error` (``norm`` ``"l1"`` ECE,
  ``"l2"`` RMS calibration error, ``"max"`` MCE; ``strategy`` uniform or quantile), per-bin numbers in
  :func:`calibration_bins`, :func:`classwise_calibration_error`. The binning is defined in
  :mod:`labelsmooth.metrics.binned`.
* Bin-free: :func:`smooth_calibration_error` (smECE, Błasiok and Nakkiran 2023).
* Scores: :func:`negative_log_likelihood`, :func:`brier_score`, :func:`accuracy`, :func:`mean_confidence`,
  :func:`calibration_gap` (signed: > 0 overconfident, < 0 underconfident), :func:`predictive_entropy`,
  and all of them at once in :func:`calibration_summary`.
* Logit geometry: :func:`logit_gap`, :func:`top2_gap`, :func:`logit_gap_summary`; the penultimate layer
  on the plane of three class templates, :func:`penultimate_projection` (drawn by :mod:`labelsmooth.plots`).
* By group (:mod:`labelsmooth.metrics.groups`): :func:`group_metrics` (per-group accuracy, ECE, Brier,
  NLL, signed gap), :func:`worst_group_accuracy`, :func:`group_ece_difference`,
  :func:`demographic_parity_difference`, :func:`equalized_odds_difference`, intervals by
  :func:`group_bootstrap`.
* Selective prediction (:mod:`labelsmooth.metrics.selective`): :func:`risk_coverage_curve`, :func:`aurc`,
  :func:`selective_score` (max probability, or that of L2-normalised logits).
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
from labelsmooth.metrics.geometry import (
    LogitGapSummary,
    ProjectionData,
    logit_gap,
    logit_gap_summary,
    penultimate_projection,
    top2_gap,
)
from labelsmooth.metrics.groups import (
    GroupMetrics,
    demographic_parity_difference,
    equalized_odds_difference,
    group_bootstrap,
    group_ece_difference,
    group_metrics,
    worst_group_accuracy,
)
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
from labelsmooth.metrics.selective import (
    SELECTIVE_SCORES,
    RiskCoverageCurve,
    aurc,
    risk_coverage_curve,
    selective_score,
)
from labelsmooth.metrics.smooth import smooth_calibration_bandwidth, smooth_calibration_error

__all__ = [
    "METER_KEYS",
    "SELECTIVE_SCORES",
    "SUMMARY_KEYS",
    "BootstrapResult",
    "CalibrationBins",
    "CalibrationMeter",
    "GroupMetrics",
    "LogitGapSummary",
    "ProjectionData",
    "RiskCoverageCurve",
    "accuracy",
    "aurc",
    "bootstrap",
    "brier_score",
    "calibration_bins",
    "calibration_gap",
    "calibration_summary",
    "classwise_calibration_error",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "expected_calibration_error",
    "group_bootstrap",
    "group_ece_difference",
    "group_metrics",
    "logit_gap",
    "logit_gap_summary",
    "mean_confidence",
    "negative_log_likelihood",
    "penultimate_projection",
    "predictive_entropy",
    "risk_coverage_curve",
    "selective_score",
    "smooth_calibration_bandwidth",
    "smooth_calibration_error",
    "top2_gap",
    "worst_group_accuracy",
]
