"""Group metrics: per-group numbers equal the library's metrics on each group; fairness gaps against a naive
loop (and fairlearn when installed); bootstrap intervals; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelsmooth import metrics as M
from metrics_fixtures import random_logits
from reference import group_rates_loop


def _binary(n=600, seed=0):
    z, y = random_logits(n, 2, seed, 2.0)
    g = torch.Generator().manual_seed(seed + 1)
    groups = torch.randint(0, 3, (n,), generator=g)
    return z, y, groups


@pytest.mark.parametrize("from_logits", [True, False])
def test_per_group_metrics_equal_the_metrics_on_each_group(from_logits):
    z, y = random_logits(500, 4, 3, 2.0)
    x = z if from_logits else torch.softmax(z, 1)
    groups = torch.arange(500) % 3
    m = M.group_metrics(x, y, groups, from_logits=from_logits, n_bins=10)
    for g in range(3):
        s = groups == g
        assert m.counts[g] == int(s.sum())
        assert m.accuracy[g] == pytest.approx(M.accuracy(x[s], y[s], from_logits=from_logits))
        ece = M.expected_calibration_error(x[s], y[s], from_logits=from_logits, n_bins=10)
        assert m.ece[g] == pytest.approx(ece, abs=1e-12)
        assert m.brier[g] == pytest.approx(M.brier_score(x[s], y[s], from_logits=from_logits))
        assert m.nll[g] == pytest.approx(M.negative_log_likelihood(x[s], y[s], from_logits=from_logits))
        gap = M.calibration_gap(x[s], y[s], from_logits=from_logits)
        assert m.calibration_gap[g] == pytest.approx(gap, abs=1e-12)
    assert m.worst_group_accuracy == min(m.accuracy)
    assert m.ece_difference == pytest.approx(max(m.ece) - min(m.ece))
    assert M.worst_group_accuracy(x, y, groups, from_logits=from_logits) == m.worst_group_accuracy
    d = m.to_dict()
    assert d["accuracy"] == list(m.accuracy) and d["accuracy_difference"] == m.accuracy_difference


def test_per_class_numbers_with_groups_equal_target():
    z, y = random_logits(300, 3, 5, 3.0)
    m = M.group_metrics(z, y, y, from_logits=True)
    for c in range(3):
        s = y == c
        # restricted to class c, accuracy is the recall of class c
        assert m.accuracy[c] == pytest.approx(float((z[s].argmax(1) == c).double().mean()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demographic_parity_and_equalized_odds_match_a_naive_loop(seed):
    z, y, groups = _binary(seed=seed)
    pred = z.argmax(1).tolist()
    rates = group_rates_loop(pred, y.tolist(), groups.tolist())
    sr, tpr, fpr = (np.array([rates[g][i] for g in sorted(rates)]) for i in range(3))
    assert M.demographic_parity_difference(z, y, groups, from_logits=True) == pytest.approx(np.ptp(sr))
    eo = max(np.ptp(tpr), np.ptp(fpr))
    assert M.equalized_odds_difference(z, y, groups, from_logits=True) == pytest.approx(eo)
    p = torch.softmax(z, 1)
    assert M.equalized_odds_difference(p, y, groups, from_logits=False) == pytest.approx(eo)


def test_binary_tie_goes_to_class_zero():
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.2, 0.8]])
    y, g = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 0, 1, 1])
    assert M.demographic_parity_difference(p, y, g, from_logits=False) == 1.0


def test_parity_with_fairlearn():
    fm = pytest.importorskip("fairlearn.metrics")
    z, y, groups = _binary(seed=7)
    pred = z.argmax(1).numpy()
    dp = fm.demographic_parity_difference(y.numpy(), pred, sensitive_features=groups.numpy())
    eo = fm.equalized_odds_difference(y.numpy(), pred, sensitive_features=groups.numpy())
    assert M.demographic_parity_difference(z, y, groups, from_logits=True) == pytest.approx(dp)
    assert M.equalized_odds_difference(z, y, groups, from_logits=True) == pytest.approx(eo)


def test_group_bootstrap_interval_and_estimate():
    z, y, groups = _binary(n=400, seed=3)
    r = M.group_bootstrap(
        M.equalized_odds_difference, z, y, groups, from_logits=True, n_resamples=100, seed=1
    )
    assert r.estimate == M.equalized_odds_difference(z, y, groups, from_logits=True)
    assert r.low <= r.estimate <= r.high and r.n_resamples == 100
    again = M.group_bootstrap(
        M.equalized_odds_difference, z, y, groups, from_logits=True, n_resamples=100, seed=1
    )
    assert again == r
    w = M.group_bootstrap(M.group_ece_difference, z, y, groups, from_logits=True, n_bins=5, n_resamples=50)
    assert w.low <= w.high


def test_group_bootstrap_errors():
    z, y, groups = _binary(n=200, seed=4)
    groups = torch.zeros(200, dtype=torch.long)
    groups[0] = 1  # a group of one member: some resample leaves it empty
    with pytest.raises(ValueError, match="bootstrap resample"):
        M.group_bootstrap(M.worst_group_accuracy, z, y, groups, from_logits=True, n_resamples=200)
    with pytest.raises(TypeError, match="callable"):
        M.group_bootstrap("worst", z, y, groups, from_logits=True)
    with pytest.raises(ValueError, match="shape"):
        M.group_bootstrap(M.worst_group_accuracy, z, y[:, None], groups, from_logits=True)


def test_bad_groups():
    z, y = random_logits(10, 2, 0, 1.0)
    ok = torch.tensor([0, 1] * 5)
    with pytest.raises(ValueError, match=r"group 1` to have at least one member"):
        M.group_metrics(z, y, torch.tensor([0, 2] * 5), from_logits=True)
    with pytest.raises(ValueError, match=r"group 2` to have at least one member"):
        M.group_metrics(z, y, ok, from_logits=True, num_groups=3)
    with pytest.raises(ValueError, match="to have length 10"):
        M.group_metrics(z, y, ok[:9], from_logits=True)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        M.group_metrics(z, y, ok[:, None], from_logits=True)
    with pytest.raises(TypeError, match="integer group indices"):
        M.group_metrics(z, y, ok.float(), from_logits=True)
    with pytest.raises(ValueError, match=">= 0"):
        M.group_metrics(z, y, ok - 1, from_logits=True)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        M.group_metrics(z, y, ok, from_logits=True, num_groups=1)
    with pytest.raises(ValueError, match="at least 2 groups"):
        M.group_metrics(z, y, torch.zeros(10, dtype=torch.long), from_logits=True)
    with pytest.raises(TypeError, match="`num_groups` to be an int"):
        M.group_metrics(z, y, ok, from_logits=True, num_groups=2.0)
    with pytest.raises(TypeError, match="from_logits"):
        M.group_metrics(z, y, ok, from_logits=None)


def test_binary_metrics_bad_input():
    z, y = random_logits(12, 3, 0, 1.0)
    g = torch.tensor([0, 1] * 6)
    with pytest.raises(ValueError, match="binary task"):
        M.demographic_parity_difference(z, y, g, from_logits=True)
    with pytest.raises(ValueError, match="binary task"):
        M.equalized_odds_difference(z, y, g, from_logits=True)
    z2 = torch.randn(4, 2)
    with pytest.raises(ValueError, match="group 1` to have at least one sample with label 1"):
        M.equalized_odds_difference(
            z2, torch.tensor([1, 0, 0, 0]), torch.tensor([0, 0, 1, 1]), from_logits=True
        )
    with pytest.raises(ValueError, match="label 0"):
        M.equalized_odds_difference(
            z2, torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), from_logits=True
        )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    z, y = random_logits(300, 3, 9, 2.0)
    groups = torch.arange(300) % 2
    got = M.group_metrics(z.to(dtype), y, groups, from_logits=True)
    want = M.group_metrics(z.to(dtype).double(), y, groups, from_logits=True)
    assert got.accuracy == want.accuracy
    assert got.nll == pytest.approx(want.nll) and got.ece == pytest.approx(want.ece)
