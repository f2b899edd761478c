"""Scores (NLL, Brier, entropy, accuracy, confidence), calibration_summary and logit geometry: golden values
and references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from metrics_data import _data

from labelsmooth import metrics as M
from reference import logit_gap_loop, nll_brier_entropy_loop


# --------------------------------------------------------------------------- scores
def test_scores_equal_loops_and_logits_agree_with_probabilities():
    z, _, y = _data(n=200, k=4, seed=9, dtype=torch.float64)
    p = torch.softmax(z, 1)
    nll, brier, ent = nll_brier_entropy_loop(p, y)
    for x, fl in ((p, False), (z, True)):
        assert M.negative_log_likelihood(x, y, from_logits=fl) == pytest.approx(nll, rel=1e-12)
        assert M.brier_score(x, y, from_logits=fl) == pytest.approx(brier, rel=1e-12)
        assert M.predictive_entropy(x, y, from_logits=fl) == pytest.approx(ent, rel=1e-12)
        assert M.accuracy(x, y, from_logits=fl) == pytest.approx(float((p.argmax(1) == y).double().mean()))
        conf = float(p.max(1).values.mean())
        assert M.mean_confidence(x, y, from_logits=fl) == pytest.approx(conf, rel=1e-12)
        assert M.calibration_gap(x, y, from_logits=fl) == pytest.approx(conf - M.accuracy(p, y, from_logits=False), rel=1e-12)


def test_scores_golden_values():
    p = torch.tensor([[0.5, 0.5], [0.8, 0.2]])
    y = torch.tensor([0, 0])
    assert M.negative_log_likelihood(p, y, from_logits=False) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)
    assert M.brier_score(p, y, from_logits=False) == pytest.approx((0.25 + 0.25 + 0.04 + 0.04) / 2, abs=1e-7)
    assert M.predictive_entropy(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), from_logits=False) == 0.0
    assert M.negative_log_likelihood(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), from_logits=False) == math.inf
    # logits never saturate: finite NLL where float32 probabilities would give inf
    assert math.isfinite(
        M.negative_log_likelihood(torch.tensor([[200.0, 0.0]]), torch.tensor([1]), from_logits=True)
    )


def test_calibration_summary_keys_and_values():
    z, _, y = _data(n=300, k=5, seed=12)
    s = M.calibration_summary(z, y, from_logits=True, n_bins=10)
    assert tuple(s) == M.SUMMARY_KEYS
    assert set(s) == {
        "accuracy", "nll", "brier", "ece", "rms_ce", "mce", "smece",
        "classwise_ece", "mean_confidence", "calibration_gap", "entropy",
    }  # fmt: skip
    kw = {"from_logits": True}
    assert s["accuracy"] == M.accuracy(z, y, **kw)
    assert s["nll"] == pytest.approx(M.negative_log_likelihood(z, y, **kw), rel=1e-14)
    assert s["brier"] == pytest.approx(M.brier_score(z, y, **kw), rel=1e-14)
    assert s["ece"] == pytest.approx(M.expected_calibration_error(z, y, n_bins=10, **kw), rel=1e-12)
    assert s["rms_ce"] == pytest.approx(
        M.expected_calibration_error(z, y, n_bins=10, norm="l2", **kw), rel=1e-12
    )
    assert s["mce"] == pytest.approx(
        M.expected_calibration_error(z, y, n_bins=10, norm="max", **kw), rel=1e-12
    )
    assert s["smece"] == pytest.approx(M.smooth_calibration_error(z, y, **kw), rel=1e-12)
    assert s["classwise_ece"] == pytest.approx(
        M.classwise_calibration_error(z, y, n_bins=10, **kw), rel=1e-12
    )
    assert s["mean_confidence"] == pytest.approx(M.mean_confidence(z, y, **kw), rel=1e-14)
    assert s["calibration_gap"] == pytest.approx(M.calibration_gap(z, y, **kw), rel=1e-12)
    assert s["entropy"] == pytest.approx(M.predictive_entropy(z, y, **kw), rel=1e-14)
    assert all(isinstance(v, float) for v in s.values())


# --------------------------------------------------------------------------- logit geometry
def test_logit_gap_and_top2_gap():
    z, _, y = _data(n=100, k=5, seed=13, dtype=torch.float64)
    np.testing.assert_allclose(M.logit_gap(z, y).numpy(), logit_gap_loop(z, y), rtol=0, atol=1e-12)
    top = torch.sort(z, 1, descending=True).values
    torch.testing.assert_close(M.top2_gap(z), top[:, 0] - top[:, 1])
    assert M.logit_gap(z, y).dtype == torch.float64
    correct = z.argmax(1) == y
    assert bool((M.logit_gap(z, y)[correct] > 0).all())
    assert bool((M.logit_gap(z, y)[~correct] <= 0).all())


def test_logit_gap_summary_against_theory():
    from labelsmooth.theory import optimal_logit_gap

    k, a = 10, 0.1
    gap = optimal_logit_gap(a, k)
    z = torch.zeros(8, k, dtype=torch.float64)
    y = torch.arange(8)
    z[torch.arange(8), y] = gap  # exactly at the smoothed optimum
    s = M.logit_gap_summary(z, y, label_smoothing=a)
    assert s.optimal_gap == pytest.approx(math.log(1 + k * (1 - a) / a))
    assert s.relative_deviation == pytest.approx(0.0, abs=1e-12)
    assert (
        s.mean == pytest.approx(gap)
        and s.median == pytest.approx(gap)
        and s.std == pytest.approx(0, abs=1e-12)
    )
    assert set(s.quantiles) == {0.05, 0.25, 0.5, 0.75, 0.95}
    s0 = M.logit_gap_summary(z, y, label_smoothing=0.0)
    assert s0.optimal_gap == math.inf and math.isnan(s0.relative_deviation)
    plain = M.logit_gap_summary(z, y)
    assert plain.optimal_gap is None and plain.relative_deviation is None and plain.n == 8
