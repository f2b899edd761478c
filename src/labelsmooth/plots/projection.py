"""The penultimate-layer projection (Müller, Kornblith and Hinton 2019, Figure 1).

The activations of three classes on the plane of their templates; the numbers are
:func:`labelsmooth.metrics.penultimate_projection`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelsmooth._validation import expected
from labelsmooth.metrics.geometry import ProjectionData, penultimate_projection
from labelsmooth.plots.canvas import axes_or_new

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["ProjectionData", "penultimate_projection", "plot_penultimate_projection"]


def plot_penultimate_projection(data: ProjectionData, ax: Axes | None = None) -> Axes:
    """Scatter of the projected activations coloured by class, templates as black stars."""
    if not isinstance(data, ProjectionData):
        raise TypeError(expected("data", "to be a ProjectionData", type(data).__name__))
    ax = axes_or_new(ax)
    for i, c in enumerate(data.classes):
        pts = data.points[data.labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.6, color=f"C{i}", label=f"class {c}")
    ax.plot(data.templates[:, 0], data.templates[:, 1], "k*", markersize=12, label="templates")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Penultimate layer, plane of three templates")
    ax.legend(loc="best", fontsize="small")
    return ax
