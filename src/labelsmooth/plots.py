r"""Figures of calibration and of the representation: compute, then render.

Every figure has two halves (DESIGN.md, convention 6):

* a **compute** function that takes tensors or arrays and returns a small frozen dataclass of numbers
  (``reliability_data``, ``confidence_histogram_data``, ``logit_gap_histogram_data``,
  ``penultimate_projection``) -- cheap to store, test and redraw;
* a **render** function that takes that dataclass (or a list of them, to overlay models), an optional
  matplotlib ``ax``, draws, and returns the Axes. It never calls ``plt.show()``.

matplotlib is an optional extra (``pip install labelsmooth[plots]``) and is imported only inside the render
functions, so ``import labelsmooth.plots`` and every compute function work without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labelsmooth._validation import as_tensor, check_int, check_n_bins, expected
from labelsmooth.metrics import (
    CalibrationBins,
    accuracy,
    calibration_bins,
    logit_gap,
    logit_gap_summary,
    mean_confidence,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "ConfidenceHistogramData",
    "LogitGapHistogramData",
    "ProjectionData",
    "ReliabilityData",
    "confidence_histogram_data",
    "logit_gap_histogram_data",
    "penultimate_projection",
    "plot_confidence_histogram",
    "plot_logit_gap_histogram",
    "plot_penultimate_projection",
    "plot_reliability",
    "reliability_data",
]

INSTALL_HINT = "labelsmooth.plots needs matplotlib to draw: pip install labelsmooth[plots]"


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return plt


def _axes(ax: Axes | None) -> Axes:
    plt = _pyplot()  # also checks that matplotlib is there when an ax is passed
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.5))
    return ax


def _as_list(data: Any, cls: type, name: str) -> list[Any]:
    items = [data] if isinstance(data, cls) else list(data) if isinstance(data, Sequence) else [data]
    if not items or not all(isinstance(d, cls) for d in items):
        raise TypeError(
            expected(name, f"to be a {cls.__name__} or a non-empty list of them", type(data).__name__)
        )
    return items


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
    strategy: str = "uniform",
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
    items = _as_list(data, ReliabilityData, "data")
    ax = _axes(ax)
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
                marker=_MARKERS[i % len(_MARKERS)],
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


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


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


def _histogram_bars(
    ax: Axes, d: Any, heights: np.ndarray, color: str, n_models: int, linewidth: float
) -> None:
    """One model's histogram: a bar per bin of ``d.edges``, translucent when several models overlap."""
    ax.bar(
        d.edges[:-1],
        heights,
        np.diff(d.edges),
        align="edge",
        color=color,
        alpha=0.5 if n_models > 1 else 0.8,
        edgecolor="black",
        linewidth=linewidth,
        label=d.label if d.label is not None else "_nolegend_",
    )


def plot_confidence_histogram(
    data: ConfidenceHistogramData | Sequence[ConfidenceHistogramData], ax: Axes | None = None
) -> Axes:
    """Fraction of samples per confidence bin, with vertical lines at the accuracy and the mean confidence."""
    items = _as_list(data, ConfidenceHistogramData, "data")
    ax = _axes(ax)
    for i, d in enumerate(items):
        color = f"C{i}"
        prefix = f"{d.label}: " if d.label is not None else ""
        _histogram_bars(ax, d, d.counts / max(int(d.counts.sum()), 1), color, len(items), linewidth=0.5)
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
    items = _as_list(data, LogitGapHistogramData, "data")
    ax = _axes(ax)
    several = len(items) > 1
    for i, d in enumerate(items):
        color = f"C{i}"
        finite = d.optimal_gap is not None and np.isfinite(d.optimal_gap)
        if several:
            # One legend entry per model, with its numbers; the line styles are explained once below.
            optimum = f", optimum {d.optimal_gap:.2f}" if finite else ", no finite optimum"
            name = d.label if d.label is not None else f"model {i}"
            d = replace(d, label=f"{name}: mean {d.mean:.2f}{optimum}")
        _histogram_bars(ax, d, d.counts, color, len(items), linewidth=0.3)
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


# --------------------------------------------------------------------------- penultimate projection
@dataclass(frozen=True)
class ProjectionData:
    """Penultimate-layer activations of three classes projected on the plane of their templates.

    ``points`` (M, 2) and ``labels`` (M,) are the projected examples and their classes; ``templates``
    (3, 2) are the projected last-layer weight vectors (the first at the origin); ``classes`` the three
    class indices.
    """

    points: np.ndarray
    labels: np.ndarray
    templates: np.ndarray
    classes: tuple[int, int, int]


def penultimate_projection(
    features: Any,
    target: Any,
    last_layer_weight: Any,
    classes: Sequence[int] = (0, 1, 2),
    *,
    max_points: int = 1500,
    seed: int = 0,
) -> ProjectionData:
    r"""Project penultimate activations onto the plane through three classes' templates (Müller et al. 2019).

    With templates :math:`w_a, w_b, w_c` (rows of the last layer's weight, the logit being
    :math:`z_k = w_k^\top x + b_k`), take an orthonormal basis :math:`Q \in \mathbb{R}^{D \times 2}` of the
    plane through them -- the reduced QR factorisation of :math:`[w_b - w_a,\; w_c - w_a]` -- and map each
    activation :math:`x` of an example of class :math:`a`, :math:`b` or :math:`c` to
    :math:`Q^\top (x - w_a)`. Label smoothing pulls each class into a tight cluster, equidistant from the
    others' templates; hard targets leave broad, elongated clouds.

    Parameters
    ----------
    features : Tensor or ndarray, shape (N, D), floating point
        Penultimate-layer activations.
    target : Tensor or ndarray, shape (N,), integer
    last_layer_weight : Tensor or ndarray, shape (K, D), floating point
        E.g. ``model.fc.weight`` of an ``nn.Linear(D, K)``.
    classes : three distinct ints in ``[0, K)``, default (0, 1, 2)
    max_points : int, default 1500
        At most this many examples, drawn at random (seeded) when there are more.
    seed : int, default 0

    Returns
    -------
    ProjectionData

    Raises
    ------
    ValueError
        Mismatched shapes, ``classes`` not three distinct valid indices, templates on a line, no examples
        of the chosen classes, ``max_points < 1``.
    TypeError
        Non-float features or weight, non-integer target.

    References
    ----------
    Müller, Kornblith and Hinton (2019), *When Does Label Smoothing Help?*, NeurIPS, Figure 1.

    Examples
    --------
    >>> import torch
    >>> w = torch.eye(3, 4)                       # K = 3 templates in D = 4
    >>> x = torch.eye(3, 4).repeat(2, 1) * 2      # activations along the templates
    >>> d = penultimate_projection(x, torch.tensor([0, 1, 2] * 2), w)
    >>> d.points.shape, d.templates.round(3).tolist()[0]
    ((6, 2), [0.0, 0.0])
    """
    x = as_tensor("features", features)
    w = as_tensor("last_layer_weight", last_layer_weight)
    t = as_tensor("target", target)
    for name, arr in (("features", x), ("last_layer_weight", w)):
        if not arr.is_floating_point():
            raise TypeError(expected(name, "to be a floating-point tensor or array", arr.dtype))
        if arr.dim() != 2:
            raise ValueError(expected(name, "to have 2 dimensions", arr))
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(expected("target", "to hold integer class indices", t.dtype))
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(expected("target", f"to have shape ({x.shape[0]},)", t))
    if w.shape[1] != x.shape[1]:
        raise ValueError(expected("last_layer_weight", f"to have shape (K, {x.shape[1]})", w))
    cls = tuple(int(c) for c in classes) if isinstance(classes, Sequence) else ()
    if len(cls) != 3 or len(set(cls)) != 3 or not all(0 <= c < w.shape[0] for c in cls):
        raise ValueError(
            expected("classes", f"to be three distinct class indices in [0, {w.shape[0]})", classes)
        )
    max_points = check_int("max_points", max_points, lo=1, what="to be an int >= 1")
    w64 = w.double()
    origin = w64[cls[0]]
    basis = torch.stack([w64[cls[1]] - origin, w64[cls[2]] - origin], dim=1)
    q, r = torch.linalg.qr(basis)
    if abs(float(r[1, 1])) <= 1e-10 * max(abs(float(r[0, 0])), 1e-300):
        raise ValueError(
            expected("last_layer_weight", f"templates of classes {cls} to span a plane (not a line)", w)
        )
    keep = (t[:, None] == torch.tensor(cls)[None, :]).any(1).nonzero().squeeze(1)
    if keep.numel() == 0:
        raise ValueError(expected("target", f"to contain examples of classes {cls}", t))
    if keep.numel() > max_points:
        g = torch.Generator().manual_seed(int(seed))
        keep = keep[torch.randperm(keep.numel(), generator=g)[:max_points]].sort().values
    points = (x[keep].double() - origin) @ q
    templates = (w64[list(cls)] - origin) @ q
    return ProjectionData(
        points=points.numpy(), labels=t[keep].numpy(), templates=templates.numpy(), classes=cls
    )


def plot_penultimate_projection(data: ProjectionData, ax: Axes | None = None) -> Axes:
    """Scatter of the projected activations coloured by class, templates as black stars."""
    if not isinstance(data, ProjectionData):
        raise TypeError(expected("data", "to be a ProjectionData", type(data).__name__))
    ax = _axes(ax)
    for i, c in enumerate(data.classes):
        pts = data.points[data.labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.6, color=f"C{i}", label=f"class {c}")
    ax.plot(data.templates[:, 0], data.templates[:, 1], "k*", markersize=12, label="templates")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Penultimate layer, plane of three templates")
    ax.legend(loc="best", fontsize="small")
    return ax
