"""Bar charts of per-method means with 95% t-intervals over seeds, for the fairness and privacy reports."""

from __future__ import annotations

from collections.abc import Sequence

from labelsmooth.study.figures import _plt, to_png
from labelsmooth.study.stats import Estimate


def bars(
    panels: Sequence[tuple[str, Sequence[tuple[str, Estimate, Estimate | None]], tuple[str, str] | None]],
    ylabel: str,
) -> bytes:
    """One panel per ``(title, rows, legend)``; a row is ``(label, estimate, second estimate or None)``
    (two bars side by side when a second is given, named by the panel's ``legend``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, rows, legend) in zip(axes[0], panels):
        xs = range(len(rows))
        two = any(r[2] is not None for r in rows)
        w = 0.38 if two else 0.7
        for j, (off, pick) in enumerate(((-w / 2 if two else 0.0, 1), (w / 2, 2))):
            if j == 1 and not two:
                break
            ests: list[Estimate | None] = [r[1] if pick == 1 else r[2] for r in rows]
            means = [e.mean if e is not None else float("nan") for e in ests]
            errs = [e.half if e is not None and e.n > 1 else 0.0 for e in ests]
            ax.bar([x + off for x in xs], means, w, yerr=errs, capsize=3,
                   label=legend[j] if legend else None)  # fmt: skip
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r[0] for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        if legend and two:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)
