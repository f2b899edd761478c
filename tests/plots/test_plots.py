"""Figures: the compute halves return the right numbers, the render halves draw what they claim."""

from __future__ import annotations

import io
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.patches import StepPatch

from labelsmooth import metrics as M
from labelsmooth import plots as P
from metrics_fixtures import calibrated_logits
from study_fixtures import run_python


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(n=600, k=4, seed=0, scale=2.0):
    return calibrated_logits(n, k, seed, scale)


def _bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------- reliability
def test_reliability_data_matches_metrics():
    z, y = _data()
    d = P.reliability_data(z, y, n_bins=10, from_logits=True, label="a = 0")
    bins = M.calibration_bins(z, y, n_bins=10, from_logits=True)
    assert d.counts.tolist() == bins.counts.tolist() and d.n == 600
    np.testing.assert_allclose(d.accuracy, bins.accuracy, equal_nan=True)
    assert d.ece == pytest.approx(M.expected_calibration_error(z, y, n_bins=10, from_logits=True))
    meter = M.CalibrationMeter(n_bins=10, from_logits=True)
    meter.update(z, y)
    assert P.ReliabilityData.from_bins(meter.bins()).ece == pytest.approx(d.ece)


def _counts_axes(ax):
    counts_ax = ax.figure.axes[-1]
    assert counts_ax is not ax and counts_ax.get_ylabel() == "samples per bin"
    # beneath the main axes, sharing its x axis, carrying the x label
    assert counts_ax.get_position().y1 <= ax.get_position().y0 + 1e-9
    assert counts_ax.get_shared_x_axes().joined(ax, counts_ax)
    assert counts_ax.get_xlabel() == "confidence" and ax.get_ylabel() == "accuracy"
    return counts_ax


def _steps(counts_ax):
    return [p for p in counts_ax.patches if isinstance(p, StepPatch)]


def test_plot_reliability_single_model():
    z, y = _data()
    d = P.reliability_data(z * 3, y, n_bins=10, from_logits=True)
    ax = P.plot_reliability(d)
    ax.figure.canvas.draw()  # positions of the divider's axes are set at draw time
    nonempty = int((d.counts > 0).sum())
    acc_bars, gap_bars = _bars(ax)
    assert len(acc_bars.patches) == len(gap_bars.patches) == nonempty
    heights = [p.get_height() for p in acc_bars.patches]
    np.testing.assert_allclose(heights, d.accuracy[d.counts > 0])
    tops = [p.get_y() + p.get_height() for p in gap_bars.patches]  # each gap bar ends at the confidence
    np.testing.assert_allclose(tops, d.confidence[d.counts > 0])
    texts = _legend_texts(ax)
    assert any(f"ECE = {d.ece:.4f}" in t for t in texts)
    assert "perfect calibration" in texts and "gap to confidence" in texts
    diagonal = [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]]
    assert len(diagonal) == 1 and len(ax.get_lines()) == 1
    (steps,) = _steps(_counts_axes(ax))
    np.testing.assert_array_equal(steps.get_data().values, d.counts)
    np.testing.assert_allclose(steps.get_data().edges, d.edges)


def test_plot_reliability_overlays_models_as_lines_on_given_axes():
    z, y = _data()
    hard = P.reliability_data(z * 3, y, n_bins=8, from_logits=True, label="α = 0")
    smooth = P.reliability_data(z, y, n_bins=8, from_logits=True, label="α = 0.1")
    scaled = P.reliability_data(z * 1.1, y, n_bins=8, from_logits=True, label="α = 0.1, scaled")
    fig, ax = plt.subplots()
    out = P.plot_reliability([hard, smooth, scaled], ax=ax)
    fig.canvas.draw()
    assert out is ax
    assert _bars(ax) == []  # no bars when overlaying
    *curves, diagonal = ax.get_lines()
    assert list(diagonal.get_xdata()) == [0, 1] and list(diagonal.get_ydata()) == [0, 1]
    assert len(curves) == 3
    for line, d in zip(curves, (hard, smooth, scaled)):
        nz = d.counts > 0
        np.testing.assert_allclose(line.get_xdata(), d.confidence[nz])
        np.testing.assert_allclose(line.get_ydata(), d.accuracy[nz])
    assert len({line.get_color() for line in curves}) == 3
    assert len({line.get_marker() for line in curves}) == 3
    texts = _legend_texts(ax)
    for d in (hard, smooth, scaled):
        assert f"{d.label} (ECE = {d.ece:.4f})" in texts
    assert "perfect calibration" in texts and not any("gap" in t for t in texts)
    steps = _steps(_counts_axes(ax))
    assert len(steps) == 3
    for step, d, line in zip(steps, (hard, smooth, scaled), curves):
        np.testing.assert_array_equal(step.get_data().values, d.counts)
        assert step.get_edgecolor() == matplotlib.colors.to_rgba(line.get_color())


def test_plot_reliability_counts_axes_scale():
    z, y = _data()
    spread = P.reliability_data(z * 3, y, n_bins=10, from_logits=True)  # counts span orders of magnitude
    assert spread.counts.max() > 100 * spread.counts[spread.counts > 0].min()
    assert P.plot_reliability(spread).figure.axes[-1].get_yscale() == "log"
    flat = P.ReliabilityData(
        np.array([0.0, 0.5, 1.0]), np.array([10, 20]), np.array([0.3, 0.8]), np.array([0.3, 0.7]), 0.05
    )
    ax = P.plot_reliability([flat, flat])
    assert ax.figure.axes[-1].get_yscale() == "linear" and ax.figure.axes[-1].get_ylim()[0] == 0
    assert _legend_texts(ax)[:2] == ["model 0 (ECE = 0.0500)", "model 1 (ECE = 0.0500)"]


# --------------------------------------------------------------------------- confidence histogram
def test_confidence_histogram():
    z, y = _data()
    d = P.confidence_histogram_data(z, y, n_bins=20, from_logits=True, label="model")
    assert d.counts.sum() == 600 and len(d.edges) == 21
    assert d.accuracy == M.accuracy(z, y, from_logits=True)
    ax = P.plot_confidence_histogram(d)
    (bars,) = _bars(ax)
    assert len(bars.patches) == 20
    assert sum(p.get_height() for p in bars.patches) == pytest.approx(1.0)
    vlines = {round(line.get_xdata()[0], 6) for line in ax.get_lines()}
    assert round(d.accuracy, 6) in vlines and round(d.mean_confidence, 6) in vlines
    texts = _legend_texts(ax)
    assert any("accuracy = " in t for t in texts) and any("mean confidence = " in t for t in texts)
    two = P.plot_confidence_histogram([d, P.confidence_histogram_data(z * 3, y, from_logits=True)])
    assert len(_bars(two)) == 2 and len(two.get_lines()) == 4


# --------------------------------------------------------------------------- logit gaps
def test_logit_gap_histogram_with_theory_line():
    from labelsmooth.theory import optimal_logit_gap

    z, y = _data(k=10)
    d = P.logit_gap_histogram_data(z, y, label_smoothing=0.1, n_bins=30, label="α = 0.1")
    assert d.counts.sum() == 600 and d.num_classes == 10
    assert d.optimal_gap == pytest.approx(optimal_logit_gap(0.1, 10))
    ax = P.plot_logit_gap_histogram(d)
    (bars,) = _bars(ax)
    assert len(bars.patches) == 30
    xs = [line.get_xdata()[0] for line in ax.get_lines()]
    assert any(x == pytest.approx(d.optimal_gap) for x in xs)
    assert any(x == pytest.approx(d.mean) for x in xs)
    assert any("theory: log(1 + K(1-α)/α) = 4.51" in t for t in _legend_texts(ax))
    # hard targets: infinite optimum, no theory line
    hard = P.logit_gap_histogram_data(z, y, label_smoothing=0.0)
    ax2 = P.plot_logit_gap_histogram(hard)
    assert len(ax2.get_lines()) == 1 and not any("theory" in t for t in _legend_texts(ax2))
    assert P.logit_gap_histogram_data(z, y).optimal_gap is None


def test_logit_gap_histogram_several_models_one_legend_entry_each():
    z, y = _data(k=10)
    hard = P.logit_gap_histogram_data(z * 3, y, label_smoothing=0.0, label="hard")
    smooth = P.logit_gap_histogram_data(z, y, label_smoothing=0.1, label="ls a=0.1")
    ax = P.plot_logit_gap_histogram([hard, smooth])
    assert len(_bars(ax)) == 2
    texts = _legend_texts(ax)
    assert sorted(texts) == sorted(
        [
            f"hard: mean {hard.mean:.2f}, no finite optimum",
            f"ls a=0.1: mean {smooth.mean:.2f}, optimum {smooth.optimal_gap:.2f}",
            "dashed: mean gap",
            "solid: optimum log(1 + K(1-α)/α)",
        ]
    )
    # two mean lines and one optimum line (hard targets have none), plus the two empty legend proxies
    drawn = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert sorted(round(line.get_xdata()[0], 6) for line in drawn) == sorted(
        round(x, 6) for x in (hard.mean, smooth.mean, smooth.optimal_gap)
    )
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside, to the right


# --------------------------------------------------------------------------- penultimate projection
def test_penultimate_projection_geometry():
    g = torch.Generator().manual_seed(0)
    d_feat, k = 16, 5
    w = torch.randn(k, d_feat, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (900,), generator=g)
    x = w[y] + 0.05 * torch.randn(900, d_feat, generator=g, dtype=torch.float64)  # clusters at templates
    data = P.penultimate_projection(x, y, w, classes=(1, 3, 4), max_points=200)
    assert data.points.shape == (200, 2) and set(data.labels.tolist()) <= {1, 3, 4}
    assert data.classes == (1, 3, 4)
    np.testing.assert_allclose(data.templates[0], [0.0, 0.0], atol=1e-12)
    # distances between projected templates are the true distances (the plane contains them)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        true = float((w[(1, 3, 4)[i]] - w[(1, 3, 4)[j]]).norm())
        assert np.linalg.norm(data.templates[i] - data.templates[j]) == pytest.approx(true)
    # each projected cluster sits on its template
    for i, c in enumerate(data.classes):
        centre = data.points[data.labels == c].mean(0)
        assert np.linalg.norm(centre - data.templates[i]) < 0.05
    every = P.penultimate_projection(x.numpy(), y.numpy(), w.numpy(), classes=(1, 3, 4), max_points=10_000)
    assert every.points.shape[0] == int(((y == 1) | (y == 3) | (y == 4)).sum())
    again = P.penultimate_projection(x, y, w, classes=(1, 3, 4), max_points=200)
    np.testing.assert_array_equal(again.points, data.points)  # seeded

    ax = P.plot_penultimate_projection(data)
    assert len(ax.collections) == 3
    assert [c.get_label() for c in ax.collections] == ["class 1", "class 3", "class 4"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 200
    assert "templates" in _legend_texts(ax)


def test_penultimate_projection_errors():
    w = torch.eye(3, 4)
    x = torch.ones(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(
        ValueError, match=r"Expected `classes` to be three distinct class indices in \[0, 3\)"
    ):
        P.penultimate_projection(x, y, w, classes=(0, 0, 1))
    with pytest.raises(ValueError, match="Expected `classes`"):
        P.penultimate_projection(x, y, w, classes=(0, 1, 3))
    with pytest.raises(ValueError, match=r"Expected `last_layer_weight` to have shape \(K, 4\)"):
        P.penultimate_projection(x, y, torch.eye(3, 5))
    with pytest.raises(ValueError, match="to span a plane"):
        P.penultimate_projection(x, y, torch.tensor([[0.0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0]]))
    with pytest.raises(ValueError, match="Expected `target` to contain examples of classes"):
        P.penultimate_projection(x, torch.full((6,), 2), torch.eye(4), classes=(0, 1, 3))
    with pytest.raises(ValueError, match=r"Expected `target` to have shape \(6,\)"):
        P.penultimate_projection(x, y[:5], w)
    with pytest.raises(TypeError, match="Expected `target` to hold integer class indices"):
        P.penultimate_projection(x, y.float(), w)
    with pytest.raises(TypeError, match="Expected `features` to be a floating-point"):
        P.penultimate_projection(x.long(), y, w)
    with pytest.raises(ValueError, match="Expected `features` to have 2 dimensions"):
        P.penultimate_projection(torch.ones(6), y, w)
    with pytest.raises(ValueError, match="Expected `max_points` to be an int >= 1"):
        P.penultimate_projection(x, y, w, max_points=0)
    with pytest.raises(TypeError, match=r"Expected `max_points` to be an int, got 2\.5\."):
        P.penultimate_projection(x, y, w, max_points=2.5)


# --------------------------------------------------------------------------- render-side errors, optional dep
def test_render_functions_reject_wrong_data():
    with pytest.raises(TypeError, match="Expected `data` to be a ReliabilityData or a non-empty list"):
        P.plot_reliability([])
    with pytest.raises(TypeError, match="Expected `data` to be a ReliabilityData"):
        P.plot_reliability("diagram")
    with pytest.raises(TypeError, match="Expected `data` to be a ConfidenceHistogramData"):
        P.plot_confidence_histogram([1, 2])
    with pytest.raises(TypeError, match="Expected `data` to be a LogitGapHistogramData"):
        P.plot_logit_gap_histogram(None)
    with pytest.raises(TypeError, match="Expected `data` to be a ProjectionData"):
        P.plot_penultimate_projection([])
    with pytest.raises(ValueError, match="Expected `n_bins` >= 1"):
        P.logit_gap_histogram_data(torch.zeros(2, 3), torch.tensor([0, 1]), n_bins=0)


def test_missing_matplotlib_raises_with_install_hint(monkeypatch):
    z, y = _data(n=20)
    d = P.reliability_data(z, y, from_logits=True)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install labelsmooth\[plots\]"):
        P.plot_reliability(d)


def test_module_imports_and_computes_without_matplotlib(tmp_path):
    code = (
        "import sys; assert not any(m.split('.')[0] in ('matplotlib', 'labelsmooth') for m in sys.modules)\n"
        "sys.modules['matplotlib'] = None\n"
        "import torch, labelsmooth.plots as P\n"
        "d = P.reliability_data(torch.tensor([[0.8, 0.2]]), torch.tensor([0]), from_logits=False)\n"
        "try:\n    P.plot_reliability(d)\nexcept ImportError as e:\n    print('hint:', e)\n"
    )
    exitcode, stdout, stderr = run_python(code, tmp_path)  # a new process: nothing of labelsmooth imported
    assert exitcode == 0, stderr
    assert "hint: labelsmooth.plots needs matplotlib to draw: pip install labelsmooth[plots]" in stdout


def test_study_figure_closed_when_saving_fails(monkeypatch):
    """labelsmooth.study.figures.to_png closes its figure even when rendering raises (no leaked figures)."""
    from labelsmooth.study import figures

    fig = plt.figure()
    number = fig.number

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig.canvas, "draw", broken)
    with pytest.raises(OSError, match="disk full"):
        figures.to_png(fig)
    assert number not in plt.get_fignums()


def test_study_figure_that_fits_keeps_its_canvas_and_one_that_does_not_grows_it():
    """to_png keeps the figure's canvas (4 x 2 inches at 90 dpi) when its artists fit, and saves with the
    tight box, wider than the canvas, when a title reaches past it."""
    from PIL import Image

    from labelsmooth.study import figures

    def png_size(title):
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.plot([0, 1], [0, 1])
        ax.set_title(title)
        fig.tight_layout()
        return Image.open(io.BytesIO(figures.to_png(fig))).size

    assert png_size("short") == (4 * figures.DPI, 2 * figures.DPI)
    width, _ = png_size("a title far wider than the four inches of this figure's canvas " * 2)
    assert width > 4 * figures.DPI


def test_package_exports_and_compute_lives_in_metrics():
    """labelsmooth.plots keeps every public name; the projection's numbers come from labelsmooth.metrics."""
    assert P.__all__ == sorted(P.__all__) and all(hasattr(P, name) for name in P.__all__)
    assert P.penultimate_projection is M.penultimate_projection
    assert P.ProjectionData is M.ProjectionData
    assert M.penultimate_projection.__module__ == "labelsmooth.metrics.geometry"
    for name in P.__all__:
        if name.startswith("plot_"):
            assert getattr(P, name).__module__.startswith("labelsmooth.plots."), name
