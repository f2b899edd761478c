"""The reliability diagram (Guo et al. 2017): per-bin accuracy against confidence, one or several models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labelsmooth.metrics import CalibrationBins, calibration_bins
from labelsmooth.metrics.binned import Strategy
from labelsmooth.plots.canvas import MARKERS, as_list, axes_or_new

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["ReliabilityData", "plot_reliability", "reliability_data"]


# --------------------------------------------------------------------------- reliability diagram
@dataclass(frozen=True)
class ReliabilityData:
    """Per-bin numbers of a reliability diagram (numpy arrays; NaN accuracy/confidence in empty bins)."""

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    ece: float
    label: str | None = None

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_bins(cls, bins: CalibrationBins, label: str | None = None) -> ReliabilityData:
        """From :class:`~labelsmooth.metrics.CalibrationBins`, e.g. ``CalibrationMeter.bins()``."""
        return cls(
            edges=bins.edges,
            counts=bins.counts,
            accuracy=bins.accuracy,
            confidence=bins.confidence,
            ece=bins.calibration_error("l1"),
            label=label,
        )


def reliability_data(
    input: Any,
    target: Any,
    *,
    n_bins: int = 15,
    from_logits: bool,
    label: str | None = None,
    strategy: Strategy = "uniform",
    right_closed: bool = False,
) -> ReliabilityData:
    """Per-bin accuracy, confidence and count of the top label, for a reliability diagram.

    The bins are those of :func:`~labelsmooth.metrics.calibration_bins`.

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K)
        Probabilities, or logits with ``from_logits=True``.
    target : Tensor or ndarray, shape (N,), integer
    n_bins : int, default 15
    from_logits : bool
        Required, keyword-only: whether ``input`` holds logits.
    label : str, optional
        Legend name, e.g. ``"alpha = 0.1"``.
    strategy, right_closed
        As in :func:`~labelsmooth.metrics.expected_calibration_error`.

    Returns
    -------
    ReliabilityData
        ``edges`` (n_bins + 1,), ``counts``, ``accuracy``, ``confidence`` (n_bins,), ``ece``, ``label``.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    >>> d = reliability_data(p, torch.tensor([0, 1, 0, 0]), n_bins=2, from_logits=False)
    >>> d.counts.tolist(), round(d.ece, 4)
    ([0, 4], 0.0375)
    """
    bins = calibration_bins(
        input, target, n_bins=n_bins, strategy=strategy, from_logits=from_logits, right_closed=right_closed
    )
    return ReliabilityData.from_bins(bins, label)


def plot_reliability(data: ReliabilityData | Sequence[ReliabilityData], ax: Axes | None = None) -> Axes:
    """Reliability diagram: per-bin accuracy against confidence, one or several models overlaid.

    * **One model** (Guo et al. 2017, Figure 1): a bar per non-empty bin at the bin's accuracy, the gap to
      the bin's mean confidence shaded and hatched on top of it (above the bar: overconfident; below:
      underconfident).
    * **Several models**: no bars; one line per model through the points (mean confidence, accuracy) of
      its non-empty bins, each model with its own colour and marker.

    The dashed diagonal is perfect calibration and the legend gives each model's ECE. The number of samples
    per bin is drawn beneath, on a small axes of its own sharing the x axis (one step histogram per model,
    log scale when the counts span more than two orders of magnitude); it carries the x label and ticks.

    Parameters
    ----------
    data : ReliabilityData or list of ReliabilityData
    ax : matplotlib Axes, optional
        Drawn into; a new figure when omitted. Room for the counts is taken from the bottom of ``ax``
        (``mpl_toolkits.axes_grid1``), so neighbouring subplots are not overlapped.

    Returns
    -------
    matplotlib.axes.Axes
        The main axes; the counts' axes beneath it is ``ax.figure.axes[-1]`` right after the call.
    """
    items = as_list(data, ReliabilityData, "data")
    ax = axes_or_new(ax)
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    counts_ax = make_axes_locatable(ax).append_axes("bottom", size="28%", pad=0.08, sharex=ax)
    names = [d.label if d.label is not None else f"model {i}" for i, d in enumerate(items)]
    if len(items) == 1:
        names = [items[0].label if items[0].label is not None else "model"]
        _reliability_bars(ax, items[0], names[0])
    else:
        for i, (d, name) in enumerate(zip(items, names)):
            nz = d.counts > 0
            ax.plot(
                d.confidence[nz],
                d.accuracy[nz],
                color=f"C{i}",
                marker=MARKERS[i % len(MARKERS)],
                markersize=5,
                linewidth=1.5,
                label=f"{name} (ECE = {d.ece:.4f})",
            )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration", zorder=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.tick_params(labelbottom=False)
    ax.grid(True, linewidth=0.4, alpha=0.4)
    ax.legend(loc="upper left", fontsize="small")

    positive = np.concatenate([d.counts[d.counts > 0] for d in items] or [np.zeros(0)])
    for i, d in enumerate(items):
        counts_ax.stairs(d.counts, d.edges, color=f"C{i}", linewidth=1.2, baseline=None)
    if positive.size and positive.max() > 100 * positive.min():
        counts_ax.set_yscale("log")
    else:
        counts_ax.set_ylim(bottom=0)
    counts_ax.set_xlim(0, 1)
    counts_ax.set_xlabel("confidence")
    counts_ax.set_ylabel("samples per bin", fontsize="small")
    counts_ax.tick_params(axis="y", labelsize="small")
    counts_ax.grid(True, axis="x", linewidth=0.4, alpha=0.4)
    return ax


def _reliability_bars(ax: Axes, d: ReliabilityData, name: str) -> None:
    """The single-model diagram: accuracy bars and the gap to confidence on top of them."""
    width = np.diff(d.edges)
    nz = d.counts > 0
    ax.bar(
        d.edges[:-1][nz],
        d.accuracy[nz],
        width[nz],
        align="edge",
        color="C0",
        alpha=0.8,
        edgecolor="black",
        linewidth=0.5,
        label=f"{name} (ECE = {d.ece:.4f})",
    )
    ax.bar(
        d.edges[:-1][nz],
        (d.confidence - d.accuracy)[nz],
        width[nz],
        bottom=d.accuracy[nz],
        align="edge",
        color="red",
        alpha=0.25,
        hatch="//",
        edgecolor="red",
        linewidth=0.5,
        label="gap to confidence",
    )
