"""The report's figures, drawn from stored numbers only, returned as PNG bytes.

PNGs are written without a timestamp or software tag, so redrawing a report from the same database gives
byte-identical figures. matplotlib is imported here only (the ``study`` extra), with the Agg backend.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from labelsmooth.study.stats import estimate, group
from labelsmooth.study.verdict import noise_phrase

PANELS = (
    ("accuracy", "test accuracy", "ts_accuracy"),
    ("nll", "test NLL", "ts_nll"),
    ("ece", "test ECE", "ts_ece"),
    ("calibration_gap", "signed gap (confidence - accuracy)", "ts_calibration_gap"),
)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def to_png(fig: Any) -> bytes:
    """Render and close a figure; deterministic bytes (no metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def metrics_vs_alpha(records: list[dict], dataset: str) -> bytes:
    """Accuracy, NLL, ECE and the signed gap against a (hard = 0, uniform and negative smoothing), one curve
    per noise level, with 95% t-intervals over seeds; dashed: after temperature scaling."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    recs = [r for r in records if r["dataset"] == dataset and r["alpha"] is not None]
    by_noise = group(recs, ("noise_kind", "noise_rate"))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ci, ((kind, rate), rs) in enumerate(sorted(by_noise.items(), key=lambda kv: kv[0][1])):
        by_alpha = group(sorted(rs, key=lambda r: r["alpha"]), ("alpha",))
        alphas = [a for (a,) in by_alpha]
        color = colors[ci % len(colors)]
        for ax, (key, title, ts_key) in zip(axes, PANELS):
            est = [estimate(r.get(key) for r in v) for v in by_alpha.values()]
            m = np.array([e.mean for e in est])
            h = np.nan_to_num(np.array([e.half for e in est]))
            ax.errorbar(alphas, m, yerr=h, marker="o", capsize=3, color=color, label=noise_phrase(kind, rate))
            if ts_key in ("ts_ece", "ts_calibration_gap"):
                ts = np.array([estimate(r.get(ts_key) for r in v).mean for v in by_alpha.values()])
                ax.plot(alphas, ts, ls="--", color=color, alpha=0.7)
            ax.set_title(title)
            ax.set_xlabel("smoothing a")
    axes[3].axhline(0.0, color="grey", lw=0.8)
    axes[0].legend(fontsize=8)
    axes[3].text(0.02, 0.02, "dashed: after temperature scaling", transform=axes[3].transAxes, fontsize=7)
    if any(r["alpha"] < 0 for r in recs):
        for ax in axes:
            ax.axvline(0.0, color="grey", lw=0.5, ls=":")
    fig.suptitle(f"{dataset}: metrics against a (mean and 95% t-interval over seeds)")
    fig.tight_layout()
    return to_png(fig)


def _merge_bins(bins: list[dict]) -> dict[str, np.ndarray]:
    """Pool reliability bins over seeds (same edges): sums of counts, confidences and correct predictions."""
    counts = np.sum([b["counts"] for b in bins], axis=0)
    sc = np.sum([b["sum_confidence"] for b in bins], axis=0)
    sk = np.sum([b["sum_correct"] for b in bins], axis=0)
    return {"edges": np.asarray(bins[0]["edges"]), "counts": counts, "sum_confidence": sc, "sum_correct": sk}


def reliability(panels: list[tuple[str, list[dict]]], title: str) -> bytes:
    """Reliability diagrams, one panel per (label, per-seed bins); bins pooled over seeds."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (label, bins) in zip(axes[0], panels):
        b = _merge_bins(bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = b["sum_confidence"] / b["counts"]
            acc = b["sum_correct"] / b["counts"]
        edges = b["edges"]
        centers = (edges[:-1] + edges[1:]) / 2
        width = np.diff(edges)
        ok = b["counts"] > 0
        ax.bar(centers[ok], acc[ok], width=width[ok], edgecolor="k", alpha=0.7, label="accuracy")
        ax.plot(conf[ok], acc[ok], "o", color="C3", ms=3, label="(confidence, accuracy)")
        ax.plot([0, 1], [0, 1], ls="--", color="grey")
        n = b["counts"].sum()
        ece = float(np.abs(b["sum_correct"] - b["sum_confidence"]).sum() / n) if n else math.nan
        ax.set_title(f"{label}\npooled ECE {ece:.3f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def logit_gaps(panels: list[tuple[str, dict, float | None]], title: str) -> bytes:
    """Histograms of the training logit gap (target logit - largest other), one per method, with the
    theoretical optimum log(1 + K(1 - a)/a) as a vertical line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, hist, optimum) in enumerate(panels):
        if not hist.get("counts"):
            continue
        color = colors[i % len(colors)]
        edges = np.asarray(hist["edges"])
        ax.stairs(np.asarray(hist["counts"]), edges, color=color, label=label)
        if optimum is not None:
            ax.axvline(optimum, color=color, ls="--", lw=1)
    ax.set_xlabel("training logit gap  z_y - max_{k != y} z_k   (dashed: theoretical optimum)")
    ax.set_ylabel("training examples")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def projection(panels: list[tuple[str, dict]], title: str) -> bytes:
    """Penultimate-layer activations of three classes projected on the plane of their templates."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (label, p) in zip(axes[0], panels):
        lab = np.asarray(p["label"])
        for j, c in enumerate(p["classes"]):
            m = lab == c
            ax.scatter(
                np.asarray(p["x"])[m],
                np.asarray(p["y"])[m],
                s=6,
                alpha=0.6,
                label=f"class {c}",
                color=f"C{j}",
            )
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=7, markerscale=2)
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
