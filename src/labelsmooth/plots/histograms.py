"""Histograms: the top-label confidences (with accuracy and mean confidence) and the logit gaps (with the
optimum :math:`\\Delta^*(\alpha, K)` of the smoothed target)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from labelsmooth._validation import as_tensor, check_n_bins
from labelsmooth.metrics import accuracy, calibration_bins, logit_gap, logit_gap_summary, mean_confidence
from labelsmooth.plots.canvas import as_list, axes_or_new, histogram_bars

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "ConfidenceHistogramData",
    "LogitGapHistogramData",
    "confidence_histogram_data",
    "logit_gap_histogram_data",
    "plot_confidence_histogram",
    "plot_logit_gap_histogram",
]


# --------------------------------------------------------------------------- confidence histogram
@dataclass(frozen=True)
class ConfidenceHistogramData:
    """Histogram of top-label confidences with the overall accuracy and mean confidence."""

    edges: np.ndarray
    counts: np.ndarray
    accuracy: float
    mean_confidence: float
    label: str | None = None


def confidence_histogram_data(
    input: Any, target: Any, *, n_bins: int = 20, from_logits: bool, label: str | None = None
) -> ConfidenceHistogramData:
    """Counts of top-label confidences in ``n_bins`` uniform bins (the binning of the ECE), accuracy, mean.

    A mean confidence to the right of the accuracy is overconfidence (Guo et al. 2017, Figure 1).

    Examples
    --------
    >>> import torch
    >>> d = confidence_histogram_data(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]),
    ...                               n_bins=5, from_logits=False)
    >>> d.counts.tolist(), d.accuracy, round(d.mean_confidence, 2)
    ([0, 0, 0, 1, 1], 0.5, 0.8)
    """
    bins = calibration_bins(input, target, n_bins=n_bins, from_logits=from_logits)
    return ConfidenceHistogramData(
        edges=bins.edges,
        counts=bins.counts,
        accuracy=accuracy(input, target, from_logits=from_logits),
        mean_confidence=mean_confidence(input, target, from_logits=from_logits),
        label=label,
    )


def plot_confidence_histogram(
    data: ConfidenceHistogramData | Sequence[ConfidenceHistogramData], ax: Axes | None = None
) -> Axes:
    """Fraction of samples per confidence bin, with vertical lines at the accuracy and the mean confidence."""
    items = as_list(data, ConfidenceHistogramData, "data")
    ax = axes_or_new(ax)
    for i, d in enumerate(items):
        color = f"C{i}"
        prefix = f"{d.label}: " if d.label is not None else ""
        histogram_bars(ax, d, d.counts / max(int(d.counts.sum()), 1), color, len(items), linewidth=0.5)
        ax.axvline(d.accuracy, color=color, linestyle="--", label=f"{prefix}accuracy = {d.accuracy:.3f}")
        ax.axvline(
            d.mean_confidence,
            color=color,
            linestyle="-",
            label=f"{prefix}mean confidence = {d.mean_confidence:.3f}",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("fraction of samples")
    ax.set_title("Confidence histogram")
    ax.legend(loc="upper left", fontsize="small")
    return ax


# --------------------------------------------------------------------------- logit-gap histogram
@dataclass(frozen=True)
class LogitGapHistogramData:
    r"""Histogram of :math:`\Delta_i = z_{iy_i} - \max_{k\ne y_i} z_{ik}` with the theoretical optimum."""

    edges: np.ndarray
    counts: np.ndarray
    mean: float
    optimal_gap: float | None
    label_smoothing: float | None
    num_classes: int
    label: str | None = None


def logit_gap_histogram_data(
    logits: Any,
    target: Any,
    label_smoothing: float | None = None,
    *,
    n_bins: int = 50,
    label: str | None = None,
) -> LogitGapHistogramData:
    r"""Histogram of the per-sample logit gaps and, given ``label_smoothing``, the optimum
    :math:`\Delta^* = \log(1 + K(1 - \alpha)/\alpha)` (``inf`` for :math:`\alpha = 0`).

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> d = logit_gap_histogram_data(z, torch.tensor([0, 1]), label_smoothing=0.1, n_bins=2)
    >>> d.counts.tolist(), d.mean, round(d.optimal_gap, 3)
    ([1, 1], 2.5, 3.332)
    """
    n_bins = check_n_bins(n_bins)
    gaps = logit_gap(logits, target).cpu().numpy()
    summary = logit_gap_summary(logits, target, label_smoothing)
    counts, edges = np.histogram(gaps, bins=n_bins)
    return LogitGapHistogramData(
        edges=edges,
        counts=counts,
        mean=summary.mean,
        optimal_gap=summary.optimal_gap,
        label_smoothing=summary.label_smoothing,
        num_classes=int(as_tensor("logits", logits).shape[1]),
        label=label,
    )


def plot_logit_gap_histogram(
    data: LogitGapHistogramData | Sequence[LogitGapHistogramData], ax: Axes | None = None
) -> Axes:
    r"""Histogram of logit gaps; the mean as a dashed line, the theoretical :math:`\Delta^*` as a solid one.

    With hard targets (:math:`\alpha = 0`) there is no finite optimum and no theory line is drawn; the
    gaps of a model trained with smoothing :math:`\alpha` concentrate near :math:`\Delta^*(\alpha, K)`.
    """
    items = as_list(data, LogitGapHistogramData, "data")
    ax = axes_or_new(ax)
    several = len(items) > 1
    for i, d in enumerate(items):
        color = f"C{i}"
        finite = d.optimal_gap is not None and np.isfinite(d.optimal_gap)
        if several:
            # One legend entry per model, with its numbers; the line styles are explained once below.
            optimum = f", optimum {d.optimal_gap:.2f}" if finite else ", no finite optimum"
            name = d.label if d.label is not None else f"model {i}"
            d = replace(d, label=f"{name}: mean {d.mean:.2f}{optimum}")
        histogram_bars(ax, d, d.counts, color, len(items), linewidth=0.3)
        ax.axvline(
            d.mean, color=color, linestyle="--", label="_nolegend_" if several else f"mean gap = {d.mean:.2f}"
        )
        if finite:
            ax.axvline(
                d.optimal_gap,
                color=color,
                linestyle="-",
                linewidth=2,
                label="_nolegend_"
                if several
                else (
                    f"theory: log(1 + K(1-α)/α) = {d.optimal_gap:.2f} "
                    f"(α = {d.label_smoothing:g}, K = {d.num_classes})"
                ),
            )
    ax.set_xlabel("logit gap: z of the label − the largest other z")
    ax.set_ylabel("samples")
    ax.set_title("Logit gaps")
    if several:
        ax.plot([], [], color="0.3", linestyle="--", label="dashed: mean gap")
        ax.plot([], [], color="0.3", linestyle="-", linewidth=2, label="solid: optimum log(1 + K(1-α)/α)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)
    else:
        ax.legend(loc="upper left", fontsize="small")
    return ax
