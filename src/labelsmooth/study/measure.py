"""The study's measurements, each one a call into :mod:`labelsmooth.metrics` / :mod:`labelsmooth.calibration`.

This module only adapts the library's numbers to what a run stores: plain floats and small JSON-ready
dicts (per-bin reliability numbers, logit-gap histograms, a subsample of projected penultimate features).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from labelsmooth.calibration import CalibrationWarning, TemperatureScaler
from labelsmooth.metrics import (
    accuracy,
    calibration_bins,
    calibration_summary,
    expected_calibration_error,
    logit_gap,
    negative_log_likelihood,
)

RUN_SUMMARY_KEYS = (
    "accuracy", "nll", "brier", "ece", "smece", "calibration_gap", "mean_confidence", "entropy",
)  # fmt: skip
"""The keys of :func:`labelsmooth.metrics.calibration_summary` a study run stores (a subset of
``labelsmooth.metrics.SUMMARY_KEYS``: a run leaves out ``rms_ce``, ``mce`` and ``classwise_ece``)."""
GAP_BINS = 40


def _f(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def quick(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> tuple[float, float, float]:
    """Validation NLL, accuracy and ECE for the per-epoch curves (cheap: no smooth ECE), defined as in
    :func:`summary`."""
    return (
        negative_log_likelihood(logits, target, from_logits=True),
        accuracy(logits, target, from_logits=True),
        expected_calibration_error(logits, target, n_bins=n_bins, from_logits=True),
    )


def summary(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> dict[str, float | None]:
    """Accuracy, NLL, Brier, binned and smooth ECE, signed gap (confidence - accuracy), mean confidence,
    entropy, through ``labelsmooth.metrics.calibration_summary``."""
    s = calibration_summary(logits, target, from_logits=True, n_bins=n_bins)
    return {key: _f(s[key]) for key in RUN_SUMMARY_KEYS}


def temperature_scale(
    val_logits: torch.Tensor, val_target: torch.Tensor, test_logits: torch.Tensor
) -> tuple[float, str | None, torch.Tensor]:
    """Fit a temperature on the validation split; return it, the bound it was clamped to (or None; the
    library's CalibrationWarning is recorded this way instead of printed), and the rescaled test logits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        scaler = TemperatureScaler().fit(val_logits, val_target)
    return float(scaler.temperature_), scaler.at_bound_, scaler.transform(test_logits).float()


def logit_gap_values(logits: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Per sample: the target's logit minus the largest other logit (``labelsmooth.metrics.logit_gap``)."""
    return torch.as_tensor(logit_gap(logits, target)).double().numpy()


def reliability_bins(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> dict[str, list]:
    """Per-bin counts, mean confidence and accuracy (the numbers of a reliability diagram)."""
    b = calibration_bins(logits, target, n_bins=n_bins, from_logits=True)
    return {
        "edges": [float(e) for e in b.edges],
        "counts": [int(c) for c in b.counts],
        "sum_confidence": [float(v) for v in b.sum_confidence],
        "sum_correct": [float(v) for v in b.sum_correct],
    }


def histogram(values: np.ndarray, bins: int = GAP_BINS) -> dict[str, Any]:
    """A histogram of per-sample values (edges, counts, mean)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": [], "mean": None}
    counts, edges = np.histogram(v, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "mean": float(v.mean())}


def projected_features(
    features: torch.Tensor,
    target: torch.Tensor,
    head_weight: torch.Tensor,
    max_points: int,
    classes=(0, 1, 2),
) -> dict[str, Any] | None:
    """Penultimate features of three classes projected on the plane of their last-layer templates
    (``labelsmooth.plots.penultimate_projection``, Müller et al. 2019), a seeded subsample of at most
    ``max_points``. None when the projection is undefined (e.g. templates on a line)."""
    from labelsmooth.metrics import penultimate_projection

    try:
        d = penultimate_projection(features, target, head_weight, classes, max_points=max_points, seed=0)
    except ValueError:
        return None
    return {
        "points": d.points.round(5).tolist(),
        "labels": d.labels.tolist(),
        "templates": d.templates.round(5).tolist(),
        "classes": list(d.classes),
    }
