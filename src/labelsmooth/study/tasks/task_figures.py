"""Figures of the ``sequence`` and ``gan`` tasks, drawn from the arrays and metrics ``run_one`` returns.

Compute-free renderers: each takes stored numbers and returns PNG bytes (deterministic, no metadata), as
:mod:`labelsmooth.study.figures` does; matplotlib is imported lazily there (the ``study`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from labelsmooth.study.stats import estimate


def gan_samples(panels: Sequence[tuple[str, dict]], title: str) -> bytes:
    """One scatter per method: generated samples (``arrays["samples"]``) over real ones and the centres.

    ``panels``: ``(label, arrays)`` pairs, ``arrays`` as returned by :func:`gan.run_one` (one seed each).
    """
    from labelsmooth.study.figures import _plt, to_png

    plt = _plt()
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, (label, arrays) in zip(axes[0], panels):
        real = arrays.get("real", [])
        if real:
            ax.scatter(*zip(*real), s=3, c="0.75", label="real")
        fake = arrays.get("samples", [])
        if fake:
            ax.scatter(*zip(*fake), s=3, c="tab:blue", alpha=0.6, label="generated")
        centres = arrays.get("centers", [])
        if centres:
            ax.scatter(*zip(*centres), s=25, marker="x", c="k", linewidths=1)
        ax.set_title(label, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=7, loc="lower left", markerscale=3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def metric_by_method(
    groups: Sequence[tuple[str, Sequence[dict]]], keys: Sequence[tuple[str, str]], title: str
) -> bytes:
    """Mean and 95% t-interval over seeds of each metric, one panel per ``(key, axis label)``, one point per
    method. ``groups``: ``(label, flat records of that method)`` pairs -- e.g. perplexity, accuracy and
    ECE before / after temperature scaling for the ``sequence`` task."""
    from labelsmooth.study.figures import _plt, to_png

    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.4), squeeze=False)
    for ax, (key, axis_label) in zip(axes[0], keys):
        for i, (_, rs) in enumerate(groups):
            e = estimate(r.get(key) for r in rs)
            if math.isnan(e.mean):
                continue
            ax.errorbar([i], [e.mean], yerr=None if math.isnan(e.half) else [e.half], fmt="o", capsize=3)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(axis_label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)
