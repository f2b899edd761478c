"""The study's measurements, each one a call into :mod:`labelsmooth.metrics` / :mod:`labelsmooth.calibration`.

This module only adapts the library's numbers to what a run stores: plain floats and small JSON-ready
dicts (per-bin reliability numbers, logit-gap histograms, a subsample of projected penultimate features).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from labelsmooth.metrics.binned import calibration_bins, expected_calibration_error

SUMMARY_KEYS = ("accuracy", "nll", "brier", "ece", "smece", "calibration_gap", "mean_confidence", "entropy")
GAP_BINS = 40


def _f(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def quick(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> tuple[float, float, float]:
    """Validation NLL, accuracy and ECE for the per-epoch curves (cheap: no smooth ECE)."""
    nll = float(torch.nn.functional.cross_entropy(logits, target))
    acc = float((logits.argmax(1) == target).float().mean())
    ece = expected_calibration_error(logits, target, n_bins=n_bins, from_logits=True)
    return nll, acc, float(ece)


def summary(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> dict[str, float | None]:
    """Accuracy, NLL, Brier, binned and smooth ECE, signed gap (confidence - accuracy), mean confidence,
    entropy, through ``labelsmooth.metrics.calibration_summary``."""
    from labelsmooth.metrics.scores import calibration_summary

    s = calibration_summary(logits, target, from_logits=True, n_bins=n_bins)
    return {key: _f(s[key]) for key in SUMMARY_KEYS}


def temperature_scale(
    val_logits: torch.Tensor, val_target: torch.Tensor, test_logits: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """Fit a temperature on the validation split, return it and the rescaled test logits."""
    try:
        from labelsmooth.calibration import TemperatureScaler
    except ImportError:  # TEMPORARY until labelsmooth.calibration lands
        t = _fit_temperature(val_logits, val_target)
        return t, test_logits / t
    scaler = TemperatureScaler().fit(val_logits, val_target)
    return float(scaler.temperature_), torch.as_tensor(scaler.transform(test_logits)).float()


def _fit_temperature(z: torch.Tensor, y: torch.Tensor) -> float:  # TEMPORARY
    def nll(logt: float) -> float:
        return float(torch.nn.functional.cross_entropy(z.double() / math.exp(logt), y))

    lo, hi = -4.0, 4.0
    g = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def logit_gaps(logits: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Per sample: the target's logit minus the largest other logit (``labelsmooth.metrics.logit_gap``)."""
    from labelsmooth.metrics.geometry import logit_gap

    return torch.as_tensor(logit_gap(logits, target)).double().numpy()


def reliability(logits: torch.Tensor, target: torch.Tensor, n_bins: int) -> dict[str, list]:
    """Per-bin counts, mean confidence and accuracy (the numbers of a reliability diagram)."""
    b = calibration_bins(logits, target, n_bins=n_bins, from_logits=True)
    return {
        "edges": [float(e) for e in b.edges],
        "counts": [int(c) for c in b.counts],
        "sum_confidence": [float(v) for v in b.sum_confidence],
        "sum_correct": [float(v) for v in b.sum_correct],
    }


def histogram(values: np.ndarray, bins: int = GAP_BINS) -> dict[str, list]:
    """A histogram of per-sample values (edges and counts)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def projection(
    features: torch.Tensor,
    target: torch.Tensor,
    head_weight: torch.Tensor,
    max_points: int,
    classes=(0, 1, 2),
) -> dict[str, Any]:
    """Project penultimate features of the examples of three classes onto the plane through those classes'
    templates (rows of the last layer's weight), as in Müller, Kornblith and Hinton (2019); keep a
    deterministic subsample of at most ``max_points`` points."""
    x, y, lab = _project(features, target, head_weight, classes)
    if len(lab) > max_points:
        keep = np.linspace(0, len(lab) - 1, max_points).round().astype(int)
        x, y, lab = x[keep], y[keep], lab[keep]
    return {
        "x": [float(v) for v in x],
        "y": [float(v) for v in y],
        "label": [int(v) for v in lab],
        "classes": [int(c) for c in classes],
    }


def _project(features, target, w, classes):  # TEMPORARY until labelsmooth.plots lands
    w = w.double()[list(classes)]
    u1 = w[1] - w[0]
    u2 = w[2] - w[0]
    e1 = u1 / u1.norm()
    u2 = u2 - (u2 @ e1) * e1
    e2 = u2 / u2.norm()
    mask = torch.isin(target, torch.tensor(classes))
    f = features.double()[mask]
    return (f @ e1).numpy(), (f @ e2).numpy(), target[mask].numpy()
