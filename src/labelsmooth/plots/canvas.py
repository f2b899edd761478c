"""What the figures of :mod:`labelsmooth.plots` share: matplotlib imported on demand, the Axes, the
argument check of the render functions, histogram bars and the markers of overlaid models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from labelsmooth._validation import expected

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
"""Markers of overlaid models, in order (with the colours ``C0``, ``C1``, ...)."""

INSTALL_HINT = "labelsmooth.plots needs matplotlib to draw: pip install labelsmooth[plots]"


def pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return plt


def axes_or_new(ax: Axes | None) -> Axes:
    plt = pyplot()  # also checks that matplotlib is there when an ax is passed
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.5))
    return ax


def as_list(data: Any, cls: type, name: str) -> list[Any]:
    items = [data] if isinstance(data, cls) else list(data) if isinstance(data, Sequence) else [data]
    if not items or not all(isinstance(d, cls) for d in items):
        raise TypeError(
            expected(name, f"to be a {cls.__name__} or a non-empty list of them", type(data).__name__)
        )
    return items


def histogram_bars(
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
