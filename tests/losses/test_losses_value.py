"""Value learning as classification: Support, HL-Gauss and two-hot targets, histogram_mean, the losses."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import labelsmooth as ls
from labelsmooth import (
    Support,
    histogram_mean,
    hl_gauss_loss,
    hl_gauss_targets,
    two_hot_loss,
    two_hot_targets,
)
from reference import histogram_ce_loop, hl_gauss_loop, two_hot_loop

S = Support.uniform(-2.0, 3.0, bins=10)
UNEVEN = Support([-1.0, -0.5, 0.0, 1.0, 3.0, 3.5])


# --- Support ---


def test_support_uniform_and_plain_edges():
    assert S.bins == 10 and S.width == pytest.approx(0.5) and (S.lo, S.hi) == (-2.0, 3.0)
    assert torch.allclose(S.centres, torch.arange(10, dtype=torch.float64) * 0.5 - 1.75)
    assert Support(S.edges) == S and Support(S.edges.tolist()) == S and hash(Support(S)) == hash(S)
    assert torch.equal(UNEVEN.widths, torch.tensor([0.5, 0.5, 1.0, 2.0, 0.5], dtype=torch.float64))
    assert "bins=10" in repr(S)
    with pytest.raises(ValueError, match="to have equal bins for `width`"):
        _ = UNEVEN.width


@pytest.mark.parametrize(
    ("edges", "exc", "match"),
    [
        ([0.0, 1.0, 1.0, 2.0], ValueError, r"strictly increasing \(edge 2 <= edge 1\)"),
        ([0.0, 2.0, 1.0], ValueError, "strictly increasing"),
        ([0.0, 1.0], ValueError, "at least 3 edges"),
        (torch.zeros(2, 3), ValueError, "1-D"),
        ([0.0, math.inf, 5.0], ValueError, "finite"),
        (["a", "b", "c"], TypeError, "sequence of floats"),
        (torch.tensor([True, False, True]), TypeError, "real numbers"),
    ],
)
def test_support_rejects_bad_edges(edges, exc, match):
    with pytest.raises(exc, match=match):
        Support(edges)


def test_support_uniform_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`hi` > lo"):
        Support.uniform(1.0, 1.0, 4)
    with pytest.raises(ValueError, match="`bins` >= 2"):
        Support.uniform(0.0, 1.0, 1)
    with pytest.raises(TypeError, match="`bins` to be an int"):
        Support.uniform(0.0, 1.0, 4.0)
    with pytest.raises(TypeError, match="`lo` to be a float"):
        Support.uniform("0", 1.0, 4)
    with pytest.raises(ValueError, match="`hi` to be finite"):
        Support.uniform(0.0, math.inf, 4)


# --- HL-Gauss targets ---


@pytest.mark.parametrize("support", [S, UNEVEN], ids=["uniform", "uneven"])
@pytest.mark.parametrize("sigma", [0.05, 0.375, 1.0, 5.0])
def test_hl_gauss_matches_erf_reference(support, sigma):
    y = torch.tensor([-9.0, -2.0, -1.3, 0.0, 0.26, 1.75, 2.999, 3.0, 7.0], dtype=torch.float64)
    got = hl_gauss_targets(y, support, sigma)
    want = torch.tensor(hl_gauss_loop(y.tolist(), support.edges.tolist(), sigma), dtype=torch.float64)
    assert got.shape == (9, support.bins) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    y=st.floats(-50, 50, allow_nan=False),
    sigma=st.floats(1e-3, 20.0),
)
def test_hl_gauss_mass_sums_to_one(y, sigma):
    p = hl_gauss_targets(torch.tensor([y], dtype=torch.float64), S, sigma)
    assert bool((p >= 0).all())
    assert p.sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("i", [0, 3, 9])
def test_hl_gauss_mean_tends_to_y_at_centres_as_sigma_shrinks(i):
    y = S.centres[i : i + 1]
    errs = [
        abs(histogram_mean(hl_gauss_targets(y, S, s), S, from_logits=False).item() - y.item())
        for s in (1.0, 0.3, 0.1, 0.01)
    ]
    assert errs[-1] < 1e-12
    assert all(a >= b for a, b in itertools.pairwise(errs))


def test_hl_gauss_clips_outside_the_support_and_keeps_shape():
    y = torch.tensor([[-100.0, 100.0], [-2.0, 3.0]])
    p = hl_gauss_targets(y, S, 0.375)
    assert p.shape == (2, 2, 10) and p.dtype == torch.float32
    torch.testing.assert_close(p[0], p[1])
    assert p[0, 0].argmax().item() == 0 and p[0, 1].argmax().item() == 9


def test_hl_gauss_half_is_computed_in_float32():
    y = torch.tensor([0.3, 1.1], dtype=torch.bfloat16)
    p = hl_gauss_targets(y, S, 0.375)
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, hl_gauss_targets(y.float(), S, 0.375))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"sigma": 0.0}, ValueError, r"`sigma` > 0 and finite, got 0.0"),
        ({"sigma": -1.0}, ValueError, "`sigma` > 0"),
        ({"sigma": math.nan}, ValueError, "`sigma` > 0"),
        ({"sigma": True}, TypeError, "`sigma` to be a float"),
        (
            {"y": torch.tensor([1, 2])},
            TypeError,
            r"`y` to be a floating-point tensor \(cast integer values\)",
        ),
        ({"y": [1.0]}, TypeError, "`y` to be a torch.Tensor"),
        ({"y": torch.tensor([math.nan])}, ValueError, "`y` to be finite"),
        ({"support": [0.0, 0.0, 1.0]}, ValueError, "strictly increasing"),
    ],
)
def test_hl_gauss_rejects_bad_input(kwargs, exc, match):
    args = {"y": torch.tensor([0.5]), "support": S, "sigma": 0.375} | kwargs
    with pytest.raises(exc, match=match):
        hl_gauss_targets(**args)


# --- two-hot targets and the mean ---


@settings(max_examples=80, deadline=None)
@given(y=st.floats(-1.75, 2.75, allow_nan=False))
def test_two_hot_mean_is_y_inside_the_support(y):
    for support in (S, UNEVEN):
        lo, hi = support.centres[0].item(), support.centres[-1].item()
        v = min(max(y, lo), hi)
        p = two_hot_targets(torch.tensor([v], dtype=torch.float64), support)
        assert (p > 0).sum().item() <= 2 and p.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert histogram_mean(p, support, from_logits=False).item() == pytest.approx(v, abs=1e-12)


def test_two_hot_matches_loop_and_clips():
    y = torch.tensor([-5.0, -1.75, -1.0, 0.0, 0.6, 2.75, 9.0], dtype=torch.float64)
    for support in (S, UNEVEN):
        want = torch.tensor(two_hot_loop(y.tolist(), support.edges.tolist()), dtype=torch.float64)
        torch.testing.assert_close(two_hot_targets(y, support), want)
    assert two_hot_targets(torch.zeros(0), S).shape == (0, 10)


def test_two_hot_rejects_integer_targets():
    with pytest.raises(TypeError, match="`y` to be a floating-point tensor"):
        two_hot_targets(torch.tensor([1]), S)


def test_histogram_mean_checks():
    assert histogram_mean(torch.zeros(3, 10), S, from_logits=True).tolist() == pytest.approx([0.5] * 3)
    with pytest.raises(ValueError, match="last dimension 10"):
        histogram_mean(torch.zeros(3, 9), S, from_logits=True)
    with pytest.raises(ValueError, match="`input` to sum to 1"):
        histogram_mean(torch.full((10,), 0.5), S, from_logits=False)
    with pytest.raises(TypeError, match="`from_logits` to be a bool"):
        histogram_mean(torch.zeros(10), S, from_logits=1)
    with pytest.raises(TypeError, match="from_logits"):
        histogram_mean(torch.zeros(10), S)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="floating-point"):
        histogram_mean(torch.zeros(10, dtype=torch.long), S, from_logits=True)


# --- the losses ---


def _targets(kind, y, support):
    if kind == "hl_gauss":
        return hl_gauss_loop(y.tolist(), support.edges.tolist(), 0.6)
    return two_hot_loop(y.tolist(), support.edges.tolist())


def _loss(kind, z, y, support, **kw):
    return (
        hl_gauss_loss(z, y, support, 0.6, **kw) if kind == "hl_gauss" else two_hot_loss(z, y, support, **kw)
    )


@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot"])
@pytest.mark.parametrize("support", [S, UNEVEN], ids=["uniform", "uneven"])
def test_loss_value_and_gradient_match_float64_reference(kind, support):
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(7, support.bins, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    y = torch.randn(7, generator=g, dtype=torch.float64) * 3
    p = torch.tensor(_targets(kind, y, support), dtype=torch.float64)
    loss = _loss(kind, z, y, support)
    assert loss.item() == pytest.approx(histogram_ce_loop(z.tolist(), p.tolist()), rel=1e-12)
    (grad,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(grad, (torch.softmax(z, -1) - p).detach() / 7)
    assert torch.autograd.gradcheck(lambda t: _loss(kind, t, y, support), (z,))
    per_row = _loss(kind, z, y, support, reduction="none")
    assert per_row.shape == (7,)
    torch.testing.assert_close(_loss(kind, z, y, support, reduction="sum"), per_row.sum())


@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot"])
def test_loss_extreme_half_and_empty(kind):
    z = torch.tensor([[1e4, -1e4] + [0.0] * 8, [-1e4] * 10])
    y = torch.tensor([-1.75, 2.0])
    loss = _loss(kind, z, y, S, reduction="none")
    assert bool(torch.isfinite(loss).all())
    want = histogram_ce_loop(z.double().tolist(), _targets(kind, y.double(), S)) * 2
    assert loss.sum().item() == pytest.approx(want, rel=1e-5)
    zh = torch.randn(4, 10).to(torch.bfloat16)
    yh = torch.randn(4).to(torch.bfloat16)
    out = _loss(kind, zh, yh, S)
    assert out.dtype == torch.bfloat16
    assert out.float().item() == pytest.approx(_loss(kind, zh.float(), yh.float(), S).item(), rel=1e-2)
    assert math.isnan(_loss(kind, torch.zeros(0, 10), torch.zeros(0), S).item())
    assert _loss(kind, torch.zeros(0, 10), torch.zeros(0), S, reduction="sum").item() == 0.0


@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot"])
@pytest.mark.parametrize(
    ("z", "y", "exc", "match"),
    [
        (torch.zeros(3, 9), torch.zeros(3), ValueError, "`input` with last dimension 10"),
        (torch.zeros(3, 10), torch.zeros(4), ValueError, r"`target` of shape \(3,\)"),
        (torch.zeros(3, 10), torch.zeros(3, 1), ValueError, r"`target` of shape \(3,\)"),
        (torch.zeros(3, 10), torch.zeros(3, dtype=torch.long), TypeError, "`target` to be a floating-point"),
        (torch.zeros(3, 10, dtype=torch.long), torch.zeros(3), TypeError, "`input` to be a floating-point"),
    ],
)
def test_loss_rejects_bad_input(kind, z, y, exc, match):
    with pytest.raises(exc, match=match):
        _loss(kind, z, y, S)


def test_loss_rejects_bad_sigma_and_reduction():
    with pytest.raises(ValueError, match="`sigma` > 0"):
        hl_gauss_loss(torch.zeros(2, 10), torch.zeros(2), S, 0.0)
    with pytest.raises(ValueError, match="`reduction` to be one of"):
        two_hot_loss(torch.zeros(2, 10), torch.zeros(2), S, reduction="avg")


def test_hl_gauss_loss_accepts_plain_edges_and_is_exported():
    z, y = torch.randn(5, 10), torch.randn(5)
    torch.testing.assert_close(hl_gauss_loss(z, y, S.edges.tolist(), 0.4), hl_gauss_loss(z, y, S, 0.4))
    assert ls.losses.hl_gauss_loss is hl_gauss_loss


@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot"])
def test_loss_names_target_for_non_finite_values(kind):
    # the loss's argument is `target`; the message used to name the helper's `y`
    with pytest.raises(ValueError, match="`target` to be finite"):
        _loss(kind, torch.zeros(2, 10), torch.tensor([0.5, math.nan]), S)
