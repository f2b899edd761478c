r"""Figures of calibration and of the representation: compute, then render.

Every figure has two halves (DESIGN.md, convention 6):

* a **data** function that takes tensors or arrays and returns a small frozen dataclass of numbers
  (``reliability_data``, ``confidence_histogram_data``, ``logit_gap_histogram_data``,
  ``penultimate_projection``) -- cheap to store, test and redraw. The numbers come from
  :mod:`labelsmooth.metrics` (the binning of :func:`~labelsmooth.metrics.calibration_bins`, the logit gaps,
  :func:`~labelsmooth.metrics.penultimate_projection`); these functions only gather them for a figure.
* a **render** function that takes that dataclass (or a list of them, to overlay models), an optional
  matplotlib ``ax``, draws, and returns the Axes. It never calls ``plt.show()``.

One module per figure family: :mod:`~labelsmooth.plots.reliability` (reliability diagram),
:mod:`~labelsmooth.plots.histograms` (confidence and logit-gap histograms),
:mod:`~labelsmooth.plots.projection` (penultimate-layer projection); :mod:`~labelsmooth.plots.canvas` holds
what they share. matplotlib is an optional extra (``pip install labelsmooth[plots]``) and is imported only
inside the render functions, so ``import labelsmooth.plots`` and every data function work without it.
"""

from __future__ import annotations

from labelsmooth.plots.histograms import (
    ConfidenceHistogramData,
    LogitGapHistogramData,
    confidence_histogram_data,
    logit_gap_histogram_data,
    plot_confidence_histogram,
    plot_logit_gap_histogram,
)
from labelsmooth.plots.projection import ProjectionData, penultimate_projection, plot_penultimate_projection
from labelsmooth.plots.reliability import ReliabilityData, plot_reliability, reliability_data

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
