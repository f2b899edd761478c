"""The report's figures, drawn from stored numbers only, returned as PNG bytes.

PNGs are written without a timestamp or software tag, so redrawing a report from the same database gives
byte-identical figures. matplotlib is imported here only (the ``study`` extra), with the Agg backend.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from labelsmooth.study.stats import estimate, group
from labelsmooth.study.verdict import noise_phrase


def panels(metrics) -> list[tuple[str, str, str | None]]:
    """(key, title, key of the dashed after-scaling curve or None) of the metrics with ``panel=True``."""
    return [(m.key, m.description or m.header, m.scaled_key if "panel" in m.scaled_in else None)
            for m in metrics if m.panel]  # fmt: skip


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


DPI = 90
"""The report's figures' resolution."""


def to_png(fig: Any) -> bytes:
    """Render and close a figure (also when rendering fails); deterministic bytes (no metadata).

    The figure functions lay their figures out with ``fig.tight_layout()``; the canvas is drawn once (Agg)
    and its pixels are the PNG. Only when something still reaches past the canvas (a title wider than its
    axes, say) is the figure saved with its tight box instead, which grows the canvas to hold it. Always
    saving with ``bbox_inches="tight"`` (matplotlib draws once to measure, once to save) cost about a
    quarter of a report's time for figures that fit anyway. Both paths use the figure's own face and edge
    colours, whatever the ``savefig.*`` rcParams say.
    """
    try:
        if not hasattr(fig.canvas, "buffer_rgba"):  # a Figure() without pyplot, or another backend's canvas
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            FigureCanvasAgg(fig)
        fig.set_dpi(DPI)
        fig.canvas.draw()
        tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
        box, canvas = tight.transformed(fig.dpi_scale_trans), fig.bbox  # both in pixels
        buf = io.BytesIO()
        if box.x0 >= canvas.x0 and box.y0 >= canvas.y0 and box.x1 <= canvas.x1 and box.y1 <= canvas.y1:
            from PIL import Image  # a dependency of matplotlib

            Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(buf, format="png")
        else:  # the box just measured, padded as bbox_inches="tight" pads it, without measuring again
            fig.savefig(
                buf, format="png", dpi=DPI, bbox_inches=tight.padded(0.1), metadata={"Software": None},
                facecolor=fig.get_facecolor(), edgecolor=fig.get_edgecolor(), transparent=False,
            )  # fmt: skip
    finally:
        _plt().close(fig)
    return buf.getvalue()


LOG_RATIO = 20.0
"""A panel whose positive values span more than this ratio is drawn on a log scale."""


def needs_log_scale(values: Any) -> bool:
    """Whether a panel's values (the means drawn) should be drawn on a log scale: all positive and
    spanning more than :data:`LOG_RATIO` (e.g. one diverged method at NLL 600 next to the others at 0.3,
    which on a linear axis flattens every other curve).

    >>> needs_log_scale([0.2, 0.3, 606.0]), needs_log_scale([0.2, 0.3, 0.5]), needs_log_scale([-0.1, 50.0])
    (True, False, False)
    """
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x)], dtype=float)
    return bool(v.size and (v > 0).all() and v.max() / v.min() > LOG_RATIO)


def metrics_vs_alpha(records: list[dict], dataset: str) -> bytes:
    """Accuracy, NLL, ECE and the signed gap against a (hard = 0, uniform and negative smoothing), one curve
    per noise level, with 95% t-intervals over seeds; dashed: after temperature scaling."""
    from labelsmooth.study.tasks.classification import METRICS

    plt = _plt()
    cols = panels(METRICS)
    fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3.6))
    recs = [r for r in records if r["dataset"] == dataset and r["alpha"] is not None]
    by_noise = group(recs, ("noise_kind", "noise_rate"))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn: dict[str, list[float]] = {key: [] for key, _, _ in cols}
    for ci, ((kind, rate), rs) in enumerate(sorted(by_noise.items(), key=lambda kv: kv[0][1])):
        by_alpha = group(sorted(rs, key=lambda r: r["alpha"]), ("alpha",))
        alphas = [a for (a,) in by_alpha]
        color = colors[ci % len(colors)]
        for ax, (key, title, ts_key) in zip(axes, cols):
            est = [estimate(r.get(key) for r in v) for v in by_alpha.values()]
            m = np.array([e.mean for e in est])
            h = np.nan_to_num(np.array([e.half for e in est]))
            ax.errorbar(alphas, m, yerr=h, marker="o", capsize=3, color=color, label=noise_phrase(kind, rate))
            drawn[key] += list(m)
            if ts_key is not None:
                ts = np.array([estimate(r.get(ts_key) for r in v).mean for v in by_alpha.values()])
                ax.plot(alphas, ts, ls="--", color=color, alpha=0.7)
            ax.set_title(title)
            ax.set_xlabel("smoothing a")
    for ax, (key, title, _) in zip(axes, cols):
        if needs_log_scale(drawn[key]):  # a diverged method would flatten every other curve
            ax.set_yscale("log")
            ax.set_title(f"{title} (log scale)")
    signed = axes[[k for k, _, _ in cols].index("calibration_gap")] if "calibration_gap" in dict(
        (k, t) for k, t, _ in cols) else axes[-1]  # fmt: skip
    signed.axhline(0.0, color="grey", lw=0.8)
    axes[0].legend(fontsize=8)
    signed.text(0.02, 0.02, "dashed: after temperature scaling", transform=signed.transAxes, fontsize=7)
    if any(r["alpha"] < 0 for r in recs):
        for ax in axes:
            ax.axvline(0.0, color="grey", lw=0.5, ls=":")
    fig.suptitle(f"{dataset}: metrics against a (mean and 95% t-interval over seeds)")
    fig.tight_layout()
    return to_png(fig)


def _pooled(bins: list[dict], label: str | None):
    """Reliability numbers pooled over seeds (same edges: sums of counts, confidences, correct); the ECE
    from the pooled sums by :func:`labelsmooth.metrics.binned.ce_from_bins`."""
    import torch

    from labelsmooth.metrics.binned import ce_from_bins
    from labelsmooth.plots import ReliabilityData

    counts = np.sum([b["counts"] for b in bins], axis=0)
    sc = np.sum([b["sum_confidence"] for b in bins], axis=0)
    sk = np.sum([b["sum_correct"] for b in bins], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(counts > 0, sc / counts, np.nan)
        acc = np.where(counts > 0, sk / counts, np.nan)
    ece = ce_from_bins(torch.as_tensor(counts), torch.as_tensor(sc), torch.as_tensor(sk), "l1")
    return ReliabilityData(np.asarray(bins[0]["edges"]), counts, acc, conf, ece, label)


def reliability_png(panels: list[tuple[str | None, list[dict]]], title: str) -> bytes:
    """Reliability diagrams overlaid (``labelsmooth.plots.plot_reliability``), bins pooled over seeds."""
    from labelsmooth.plots import plot_reliability

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_reliability([_pooled(bins, label) for label, bins in panels], ax=ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def logit_gaps_png(panels: list[tuple[str, dict, float | None, float | None, int]], title: str) -> bytes:
    """Training logit-gap histograms (``labelsmooth.plots.plot_logit_gap_histogram``) with the theoretical
    optimum log(1 + K(1 - a)/a); panels are (label, histogram, a, optimum, K)."""
    from labelsmooth.plots import LogitGapHistogramData, plot_logit_gap_histogram

    data = [
        LogitGapHistogramData(np.asarray(h["edges"]), np.asarray(h["counts"]), h["mean"], opt, a, k, label)
        for label, h, a, opt, k in panels
        if h.get("counts")
    ]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if data:
        plot_logit_gap_histogram(data, ax=ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def projection_png(panels: list[tuple[str, dict]], title: str) -> bytes:
    """Penultimate-layer projections side by side (``labelsmooth.plots.plot_penultimate_projection``)."""
    from labelsmooth.plots import ProjectionData, plot_penultimate_projection

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, (label, p) in zip(axes[0], panels):
        data = ProjectionData(
            np.asarray(p["points"]).reshape(-1, 2), np.asarray(p["labels"]), np.asarray(p["templates"]),
            tuple(p["classes"]),
        )  # fmt: skip
        plot_penultimate_projection(data, ax=ax)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def curves(panels: list[tuple[str, dict]], title: str) -> bytes:
    """Per-epoch validation NLL and accuracy for a few runs."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, (label, c) in enumerate(panels):
        if not c.get("epoch"):
            continue
        axes[0].plot(c["epoch"], c["val_nll"], color=f"C{i}", label=label)
        axes[1].plot(c["epoch"], c["val_accuracy"], color=f"C{i}", label=label)
    axes[0].set_title("validation NLL")
    axes[1].set_title("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)
