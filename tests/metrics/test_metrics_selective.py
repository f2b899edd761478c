"""Risk-coverage curve and AURC: against an O(N^2) reference and a brute force over tie orders; the
normalised-logit score; bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labelsmooth import metrics as M
from metrics_fixtures import random_logits
from reference import aurc_loop


def _plain_aurc(scores_in_order, errors_in_order):
    n = len(errors_in_order)
    return sum(sum(errors_in_order[:k]) / k for k in range(1, n + 1)) / n


@pytest.mark.parametrize("seed", [0, 1])
def test_aurc_matches_quadratic_reference_with_ties(seed):
    z, y = random_logits(120, 3, seed, 2.0)
    p = torch.softmax(z, 1)
    score = (p.amax(1) * 8).floor() / 8  # coarse: many ties
    errors = (p.argmax(1) != y).double().tolist()
    got = M.aurc(p, y, from_logits=False, score=score)
    assert got == pytest.approx(aurc_loop(score.tolist(), errors), abs=1e-12)


def test_aurc_averages_over_every_order_of_ties():
    scores = [0.9, 0.7, 0.7, 0.7, 0.2, 0.2]
    errors = [0, 1, 0, 1, 0, 1]
    vals = []
    for perm_a in itertools.permutations([1, 2, 3]):
        for perm_b in itertools.permutations([4, 5]):
            order = [0, *perm_a, *perm_b]
            vals.append(_plain_aurc(None, [errors[i] for i in order]))
    p = torch.tensor([[0.6, 0.4]] * 6)
    y = torch.tensor([1 if e else 0 for e in errors])
    got = M.aurc(p, y, from_logits=False, score=torch.tensor(scores))
    assert got == pytest.approx(np.mean(vals), abs=1e-12)


def test_curve_points_and_msp_default():
    z, y = random_logits(200, 4, 2, 2.0)
    c = M.risk_coverage_curve(z, y, from_logits=True)
    err = float((z.argmax(1) != y).double().mean())
    assert c.coverage[-1] == 1.0 and c.risk[-1] == pytest.approx(err)
    assert np.all(np.diff(c.coverage) > 0) and np.all(np.diff(c.thresholds) < 0)
    msp = torch.softmax(z.double(), 1).amax(1)
    assert c.aurc == pytest.approx(M.aurc(z, y, from_logits=True, score=msp))
    assert c.aurc == pytest.approx(M.aurc(torch.softmax(z, 1), y, from_logits=False), abs=1e-6)


def test_perfect_and_worst_rankings():
    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    good = M.aurc(p, torch.tensor([0, 0, 1, 1]), from_logits=False)  # errors ranked last
    bad = M.aurc(p, torch.tensor([1, 1, 0, 0]), from_logits=False)  # errors ranked first
    assert good == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)
    assert bad == pytest.approx((1 + 1 + 2 / 3 + 1 / 2) / 4)


def test_normalized_logits_score():
    z, y = random_logits(50, 5, 4, 3.0)
    s = M.selective_score(z, from_logits=True, score="normalized_logits")
    zn = z.double() / z.double().norm(dim=1, keepdim=True)
    assert torch.allclose(s, torch.softmax(zn, 1).amax(1))
    # invariant to a positive rescaling of the logits (a temperature), unlike the MSP ranking's values
    assert torch.allclose(M.selective_score(7.0 * z, from_logits=True, score="normalized_logits"), s)
    assert M.aurc(z, y, from_logits=True, score="normalized_logits") == pytest.approx(
        M.aurc(z, y, from_logits=True, score=s)
    )
    zero = M.selective_score(torch.zeros(2, 4), from_logits=True, score="normalized_logits")
    assert torch.allclose(zero, torch.full((2,), 0.25, dtype=torch.float64))
    half = M.selective_score(z.half(), from_logits=True)
    assert torch.allclose(half, torch.softmax(z.half().double(), 1).amax(1))


def test_bad_input():
    z, y = random_logits(10, 3, 0, 1.0)
    p = torch.softmax(z, 1)
    with pytest.raises(ValueError, match="needs logits"):
        M.aurc(p, y, from_logits=False, score="normalized_logits")
    with pytest.raises(ValueError, match="one of 'max_prob', 'normalized_logits'"):
        M.aurc(z, y, from_logits=True, score="entropy")
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        M.aurc(z, y, from_logits=True, score=torch.ones(9))
    with pytest.raises(ValueError, match="finite"):
        M.aurc(z, y, from_logits=True, score=torch.full((10,), float("nan")))
    with pytest.raises(ValueError, match="length 10"):
        M.risk_coverage_curve(z, y[:9], from_logits=True)
    with pytest.raises(TypeError, match="from_logits"):
        M.selective_score(z, from_logits="yes")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=25))
def test_aurc_property_against_reference(rows):
    scores = [float(s) for s, _ in rows]
    errors = [1.0 if e else 0.0 for _, e in rows]
    y = torch.tensor([1 if e else 0 for e in errors])
    p = torch.tensor([[0.7, 0.3]] * len(rows))
    got = M.aurc(p, y, from_logits=False, score=torch.tensor(scores))
    assert got == pytest.approx(aurc_loop(scores, errors), abs=1e-12)
    assert min(errors) - 1e-12 <= got <= 1.0
