"""smECE: the definition (explicit reflected kernel), the fixed-point bandwidth, properties, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labelsmooth import metrics as M
from labelsmooth.metrics.smooth import smece_from_top_label
from metrics_fixtures import random_logits
from reference import smece_sigma_direct


def _binary(conf, correct):
    """(N, 2) probabilities whose top label is class 0 with confidence ``conf``; target 0 iff correct."""
    conf = torch.as_tensor(conf, dtype=torch.float64)
    p = torch.stack([conf, 1 - conf], 1)
    y = (~torch.as_tensor(correct, dtype=torch.bool)).long()
    return p, y


@pytest.mark.parametrize("sigma", [0.03, 0.1, 0.3, 1.0])
def test_fixed_sigma_equals_direct_definition(sigma):
    g = torch.Generator().manual_seed(1)
    conf = 0.5 + 0.5 * torch.rand(60, generator=g, dtype=torch.float64)
    conf[:3] = torch.tensor([0.5, 1.0, 0.999])  # the reflection at the ends matters here
    correct = torch.rand(60, generator=g, dtype=torch.float64) < conf - 0.1
    p, y = _binary(conf, correct)
    got = M.smooth_calibration_error(p, y, sigma=sigma, from_logits=False)
    assert got == pytest.approx(smece_sigma_direct(conf, correct, sigma), abs=2e-4)


def test_fixed_point_bandwidth():
    g = torch.Generator().manual_seed(2)
    conf = 0.5 + 0.5 * torch.rand(3000, generator=g, dtype=torch.float64)
    correct = torch.rand(3000, generator=g, dtype=torch.float64) < conf**2
    p, y = _binary(conf, correct)
    value = M.smooth_calibration_error(p, y, from_logits=False)
    sigma = M.smooth_calibration_bandwidth(p, y, from_logits=False)
    assert value == pytest.approx(sigma, rel=1e-6)  # sigma* = smECE_sigma*
    assert M.smooth_calibration_error(p, y, sigma=sigma, from_logits=False) == pytest.approx(value, rel=1e-9)
    assert smece_from_top_label(conf, correct) == (value, sigma)


def test_one_signed_residuals_give_the_mean_residual_at_every_bandwidth():
    # The reflected kernel is a Markov kernel: it preserves the mass of a one-signed measure.
    g = torch.Generator().manual_seed(3)
    conf = 0.6 + 0.4 * torch.rand(500, generator=g, dtype=torch.float64)
    correct = torch.zeros(500, dtype=torch.bool)  # every residual is -conf
    p, y = _binary(conf, correct)
    for sigma in (1e-3, 0.01, 0.1, 1.0):
        assert M.smooth_calibration_error(p, y, sigma=sigma, from_logits=False) == pytest.approx(float(conf.mean()), rel=1e-9)
    # golden: 50 predictions at 0.9, half right -> mean residual 0.4 = sigma* = smECE
    p, y = _binary([0.9] * 50, [True] * 25 + [False] * 25)
    assert M.smooth_calibration_error(p, y, from_logits=False) == pytest.approx(0.4, rel=1e-6)
    assert M.smooth_calibration_bandwidth(p, y, from_logits=False) == pytest.approx(0.4, rel=1e-6)


def test_monotone_in_sigma_and_bounded_by_mean_absolute_residual():
    g = torch.Generator().manual_seed(4)
    conf = 0.5 + 0.5 * torch.rand(400, generator=g, dtype=torch.float64)
    correct = torch.rand(400, generator=g, dtype=torch.float64) < 1.2 - conf  # bends both ways
    p, y = _binary(conf, correct)
    values = [M.smooth_calibration_error(p, y, sigma=s, from_logits=False) for s in (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 1.0)]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(values))
    assert values[0] <= float((correct.double() - conf).abs().mean()) + 1e-9


def test_calibrated_small_miscalibrated_large():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    assert M.smooth_calibration_error(z, y, from_logits=True) < 0.02
    assert M.smooth_calibration_error(3 * z, y, from_logits=True) > 0.1
    # a 0.2 shift in accuracy is measured as about 0.2
    conf = 0.7 + 0.3 * torch.rand(20000, generator=g, dtype=torch.float64)
    p, yy = _binary(conf, torch.rand(20000, generator=g, dtype=torch.float64) < conf - 0.2)
    assert M.smooth_calibration_error(p, yy, from_logits=False) == pytest.approx(0.2, abs=0.02)


def test_tiny_and_perfect_inputs():
    p, y = _binary([0.8], [True])
    assert M.smooth_calibration_error(p, y, from_logits=False) == pytest.approx(0.2, rel=1e-6)
    # residuals that cancel exactly at the same confidence: smECE at the floor bandwidth
    p, y = _binary([0.5, 0.5], [True, False])
    assert M.smooth_calibration_error(p, y, from_logits=False) == pytest.approx(0.0, abs=1e-4)
    assert M.smooth_calibration_bandwidth(p, y, from_logits=False) == pytest.approx(1e-4)


def _fixed_point_testing_sigma_min_first(conf, correct):
    """The bandwidth search as defined: is smECE at SIGMA_MIN already below it? else bisect on log sigma."""
    from labelsmooth.metrics import smooth as S

    est = S._SmoothECE(conf, correct.double() - conf)
    v_lo = est(S.SIGMA_MIN)
    if v_lo <= S.SIGMA_MIN:
        return v_lo, S.SIGMA_MIN
    lo, hi = math.log(S.SIGMA_MIN), math.log(S.SIGMA_MAX)
    for _ in range(S._BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if est(math.exp(mid)) > math.exp(mid) else (lo, mid)
    return est(math.exp(hi)), math.exp(hi)


@pytest.mark.parametrize("case", ["calibrated", "overconfident", "cancelling", "perfect", "near the floor"])
def test_the_search_that_tests_sigma_min_last_returns_the_same_numbers(case):
    """The search evaluates SIGMA_MIN (its largest grid) only once the bisection gets close to it: the same
    (smECE, sigma) to the bit as testing it first, whether sigma* lies above it, near it or below it."""
    g = torch.Generator().manual_seed(len(case))
    for n in (1, 7, 360, 4000):
        f = torch.rand(n, generator=g, dtype=torch.float64)
        u = torch.rand(n, generator=g, dtype=torch.float64)
        f, correct = {
            "calibrated": (f, u < f),
            "overconfident": (f, u < f - 0.2),
            "cancelling": (torch.full((n,), 0.7, dtype=torch.float64), torch.arange(n) % 10 < 7),
            "perfect": (torch.ones(n, dtype=torch.float64), torch.ones(n, dtype=torch.bool)),
            "near the floor": (torch.full((n,), 0.7, dtype=torch.float64), torch.arange(n) <= round(0.7 * n)),
        }[case]
        assert smece_from_top_label(f, correct) == _fixed_point_testing_sigma_min_first(f, correct), n


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), k=st.integers(2, 4))
def test_property_range_and_not_above_binned_limit(n, seed, k):
    z, y = random_logits(n, k, seed, scale=3.0)
    value = M.smooth_calibration_error(z, y, from_logits=True)
    assert 0.0 <= value <= 1.0
    p = torch.softmax(z, 1)
    mean_abs = float(((p.argmax(1) == y).double() - p.max(1).values).abs().mean())
    assert value <= mean_abs + 1e-9


def test_bad_sigma():
    p, y = _binary([0.8, 0.6], [True, False])
    with pytest.raises(ValueError, match=r"Expected `sigma` in \[0.0001, 1\], got 2.0."):
        M.smooth_calibration_error(p, y, sigma=2.0, from_logits=False)
    with pytest.raises(ValueError, match="Expected `sigma`"):
        M.smooth_calibration_error(p, y, sigma=0.0, from_logits=False)
    with pytest.raises(TypeError, match="Expected `sigma` to be a float or None"):
        M.smooth_calibration_error(p, y, sigma="auto", from_logits=False)
    with pytest.raises(ValueError, match="Expected `input`"):
        M.smooth_calibration_bandwidth(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), from_logits=False)
    assert math.isfinite(M.smooth_calibration_error(p, y, sigma=1, from_logits=False))
