"""Binned calibration errors: golden values, the naive loop, torchmetrics and scikit-learn, quantile bins,
properties and the classwise error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from metrics_data import _calibrated, _data

from labelsmooth import metrics as M
from reference import bin_counts_loop, classwise_ece_loop, ece_loop, seeded_property


# --------------------------------------------------------------------------- golden values
def test_golden_three_bins():
    # torchmetrics' documented example; by hand: bins (1/3, 2/3]: conf 0.55, 0.55, 0.60 (1 of 3 right),
    # [2/3, 1]: conf 0.90 (right). ECE = (|1 - 1.70| + |1 - 0.90|) / 4 = 0.2.
    p = torch.tensor([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    y = torch.tensor([0, 1, 2, 0])
    assert M.expected_calibration_error(p, y, n_bins=3, from_logits=False) == pytest.approx(0.2, abs=1e-7)
    rms = math.sqrt(3 / 4 * (1 / 3 - 1.7 / 3) ** 2 + 1 / 4 * 0.1**2)
    assert M.expected_calibration_error(p, y, n_bins=3, norm="l2", from_logits=False) == pytest.approx(rms, abs=1e-7)
    assert M.expected_calibration_error(p, y, n_bins=3, norm="max", from_logits=False) == pytest.approx(0.7 / 3, abs=1e-7)


def test_golden_one_hot_predictions_land_in_last_bin():
    # Confidence exactly 1.0: half right, half wrong -> ECE = |0.5 - 1| = 0.5 in the last bin.
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    assert M.expected_calibration_error(p, y, n_bins=10, from_logits=False) == 0.5
    bins = M.calibration_bins(p, y, n_bins=10, from_logits=False)
    assert bins.counts.tolist() == [0] * 9 + [4]
    assert bins.counts.sum() == 4


def test_confidence_one_differs_from_torchmetrics_hidden_bin():
    torchmetrics = pytest.importorskip("torchmetrics.functional.classification")
    # Two samples at conf 1.0 (one right) and two at 0.95 (both right), all in the last of 10 bins.
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.95, 0.05], [0.95, 0.05]])
    y = torch.tensor([0, 1, 0, 0])
    ours = M.expected_calibration_error(p, y, n_bins=10, from_logits=False)
    assert ours == pytest.approx(abs(3 - 3.9) / 4)  # one bin: |sum correct - sum conf| / N
    theirs = float(torchmetrics.multiclass_calibration_error(p, y, num_classes=2, n_bins=10))
    assert theirs == pytest.approx((1.0 + 0.1) / 4)  # 1.0 sits alone in their hidden 11th bin
    assert ours != pytest.approx(theirs)


def test_agrees_with_torchmetrics_without_confidence_one():
    torchmetrics = pytest.importorskip("torchmetrics.functional.classification")
    _, p, y = _data(n=3000, k=6, seed=3, dtype=torch.float64)
    for norm in ("l1", "l2", "max"):
        theirs = float(torchmetrics.multiclass_calibration_error(p, y, num_classes=6, n_bins=15, norm=norm))
        assert M.expected_calibration_error(p, y, norm=norm, from_logits=False) == pytest.approx(theirs, abs=1e-6)


# --------------------------------------------------------------------------- against the naive loop
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("right_closed", [False, True])
@pytest.mark.parametrize(
    "k,n_bins,dtype", [(2, 10, torch.float32), (5, 15, torch.float64), (10, 7, torch.float32)]
)
def test_ece_equals_loop_on_random_probabilities(norm, right_closed, k, n_bins, dtype):
    _, p, y = _data(n=400, k=k, seed=k + n_bins, dtype=dtype)
    got = M.expected_calibration_error(p, y, n_bins=n_bins, norm=norm, right_closed=right_closed, from_logits=False)
    assert got == pytest.approx(ece_loop(p, y, n_bins, norm, right_closed), abs=1e-12)


def test_ece_from_logits_equals_loop_on_float64_softmax():
    z, _, y = _data(n=300, k=4, seed=7)
    p64 = torch.softmax(z.double(), 1)
    assert M.expected_calibration_error(z, y, from_logits=True) == pytest.approx(ece_loop(p64, y), abs=1e-12)


def test_ece_edge_values_on_bin_edges_and_saturation():
    # Confidences exactly on edges j/10 (and 1.0), float32 saturated softmax, K = 2 ties at 0.5.
    rows = [[0.5, 0.5], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.1, 0.9], [1.0, 0.0], [0.0, 1.0], [0.25, 0.75]]
    sat = torch.softmax(torch.tensor([[200.0, 0.0], [0.0, 120.0], [-50.0, 60.0]]), 1)  # float32: exactly 1/0
    assert sat.max().item() == 1.0
    for dtype in (torch.float32, torch.float64):
        p = torch.cat([torch.tensor(rows, dtype=dtype), sat.to(dtype)])
        y = torch.tensor([1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0])
        for rc in (False, True):
            for nb in (1, 2, 4, 5, 10):
                got = M.expected_calibration_error(p, y, n_bins=nb, right_closed=rc, from_logits=False)
                assert got == pytest.approx(ece_loop(p, y, nb, "l1", rc), abs=1e-12), (dtype, rc, nb)
                assert M.calibration_bins(
                    p, y, n_bins=nb, right_closed=rc, from_logits=False
                ).counts.tolist() == bin_counts_loop(p, y, nb, rc)


def test_tie_at_maximum_takes_first_index():
    # [0.5, 0.5] predicts class 0 (first maximal index), like torch.argmax.
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    assert M.accuracy(p, torch.tensor([0, 1]), from_logits=False) == 0.5
    p3 = torch.tensor([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4]])
    assert M.accuracy(p3, torch.tensor([1, 1]), from_logits=False) == 0.5
    assert M.accuracy(p3, torch.tensor([0, 2]), from_logits=False) == 0.5


def test_empty_bins_single_sample_and_one_bin():
    p = torch.tensor([[0.7, 0.2, 0.1]])
    assert M.expected_calibration_error(p, torch.tensor([0]), n_bins=100, from_logits=False) == pytest.approx(0.3)
    assert M.expected_calibration_error(p, torch.tensor([1]), n_bins=100, from_logits=False) == pytest.approx(0.7)
    assert M.expected_calibration_error(p, torch.tensor([1]), n_bins=100, norm="max", from_logits=False) == pytest.approx(0.7)
    _, p, y = _data(n=50, k=3, seed=1)
    # One bin: ECE is |accuracy - mean confidence|.
    one = M.expected_calibration_error(p, y, n_bins=1, from_logits=False)
    assert one == pytest.approx(abs(M.calibration_gap(p, y, from_logits=False)), abs=1e-12)
    bins = M.calibration_bins(p, y, n_bins=100, from_logits=False)
    assert np.isnan(bins.accuracy[bins.counts == 0]).all()
    assert bins.calibration_error("l1") == pytest.approx(M.expected_calibration_error(p, y, n_bins=100, from_logits=False))


def test_ce_from_bin_rows_is_ce_from_bins_row_by_row():
    from labelsmooth.metrics.binned import ce_from_bin_rows, ce_from_bins

    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 4, (6, 5), generator=g)
    counts[2] = 0  # every bin empty: NaN
    sc = counts * torch.rand(6, 5, generator=g, dtype=torch.float64)
    sk = torch.minimum(counts.double(), torch.randint(0, 4, (6, 5), generator=g).double())
    for norm in ("l1", "l2", "max"):
        rows = ce_from_bin_rows(counts, sc, sk, norm)
        assert rows.shape == (6,) and math.isnan(rows[2])
        for i in (0, 1, 3, 4, 5):
            assert float(rows[i]) == pytest.approx(ce_from_bins(counts[i], sc[i], sk[i], norm), rel=1e-15)
        assert torch.equal(ce_from_bin_rows(counts.numpy(), sc.numpy(), sk.numpy(), norm).isnan(), rows.isnan())
    assert math.isnan(ce_from_bins(counts[2], sc[2], sk[2], "l1"))


def test_numpy_and_torch_inputs_agree():
    z, p, y = _data(n=200, k=3, seed=2)
    assert M.expected_calibration_error(p.numpy(), y.numpy(), from_logits=False) == M.expected_calibration_error(p, y, from_logits=False)
    assert M.calibration_summary(
        z.numpy(), y.numpy().astype(np.int32), from_logits=True
    ) == M.calibration_summary(z, y, from_logits=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_chunked_path_equals_whole_array(monkeypatch, threads):
    from labelsmooth.metrics import _inputs

    _, p, y = _data(n=1000, k=4, seed=5)
    whole = M.expected_calibration_error(p, y, norm="l2", from_logits=False)
    quantile = M.expected_calibration_error(p, y, strategy="quantile", from_logits=False)
    monkeypatch.setattr(_inputs, "CHUNK_ROWS", 7)  # 143 chunks, shared by a thread pool when threads > 1
    torch.set_num_threads(threads)
    assert M.expected_calibration_error(p, y, norm="l2", from_logits=False) == pytest.approx(whole, abs=1e-14)
    assert M.expected_calibration_error(p, y, strategy="quantile", from_logits=False) == pytest.approx(quantile, abs=1e-14)
    assert torch.get_num_threads() == threads  # the pool's single-threaded section is undone
    bad = p.clone()
    bad[500, 1] = float("nan")  # an error in a chunk run by a worker reaches the caller
    with pytest.raises(ValueError, match="Expected `input` to be finite"):
        M.expected_calibration_error(bad, y, from_logits=False)
    assert torch.get_num_threads() == threads


def test_concurrent_callers_restore_the_thread_count(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from labelsmooth.metrics import _inputs

    _, p, y = _data(n=400, k=3, seed=6)
    want = M.expected_calibration_error(p, y, from_logits=False)
    monkeypatch.setattr(_inputs, "CHUNK_ROWS", 5)
    torch.set_num_threads(2)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: M.expected_calibration_error(p, y, from_logits=False), range(8)))
    assert got == pytest.approx([want] * 8, abs=1e-14)
    assert torch.get_num_threads() == 2


# --------------------------------------------------------------------------- scikit-learn, quantile bins
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_right_closed_bins_match_sklearn_calibration_curve(strategy):
    from sklearn.calibration import calibration_curve

    _, p, y = _data(n=2000, k=3, seed=11, dtype=torch.float64)
    conf = p.max(1).values.numpy()
    correct = (p.argmax(1) == y).numpy().astype(int)
    n_bins = 10
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=n_bins, strategy=strategy, pos_label=1)
    # scikit-learn's own bin assignment, to weight its per-bin numbers
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.percentile(conf, np.linspace(0, 100, n_bins + 1))
    ids = np.searchsorted(edges[1:-1], conf)
    counts = np.bincount(ids, minlength=n_bins)
    sk_ece = float(np.sum(counts[counts > 0] / len(conf) * np.abs(prob_true - prob_pred)))

    bins = M.calibration_bins(p, y, n_bins=n_bins, strategy=strategy, right_closed=True, from_logits=False)
    nz = bins.counts > 0
    np.testing.assert_allclose(bins.accuracy[nz], prob_true, atol=1e-12)
    np.testing.assert_allclose(bins.confidence[nz], prob_pred, atol=1e-12)
    assert bins.counts.tolist() == counts.tolist()
    ours = M.expected_calibration_error(p, y, n_bins=n_bins, strategy=strategy, right_closed=True, from_logits=False)
    assert ours == pytest.approx(sk_ece, abs=1e-12)


def test_quantile_bins_have_equal_mass_and_keep_ties_together():
    _, p, y = _data(n=1000, k=4, seed=4, dtype=torch.float64)
    bins = M.calibration_bins(p, y, n_bins=10, strategy="quantile", from_logits=False)
    assert bins.counts.tolist() == [100] * 10
    assert bins.edges[0] == pytest.approx(p.max(1).values.min().item())
    # all-equal confidences: one bin holds everything, others are empty
    q = torch.tensor([[0.8, 0.2]] * 10)
    yq = torch.tensor([0] * 8 + [1] * 2)
    b = M.calibration_bins(q, yq, n_bins=4, strategy="quantile", from_logits=False)
    assert sorted(b.counts.tolist()) == [0, 0, 0, 10]
    assert M.expected_calibration_error(q, yq, n_bins=4, strategy="quantile", from_logits=False) == pytest.approx(0.0, abs=1e-7)


# --------------------------------------------------------------------------- properties
@seeded_property(
    40, n=st.integers(1, 40), k=st.integers(2, 5), n_bins=st.integers(1, 20),
    scale=st.sampled_from([0.1, 1.0, 5.0, 50.0]), rc=st.booleans(),
)  # fmt: skip
def test_property_ece_matches_loop_and_norm_order(n, k, n_bins, seed, scale, rc):
    _, p, y = _data(n=n, k=k, seed=seed, scale=scale)
    ece = M.expected_calibration_error(p, y, n_bins=n_bins, right_closed=rc, from_logits=False)
    rms = M.expected_calibration_error(p, y, n_bins=n_bins, norm="l2", right_closed=rc, from_logits=False)
    mce = M.expected_calibration_error(p, y, n_bins=n_bins, norm="max", right_closed=rc, from_logits=False)
    assert ece == pytest.approx(ece_loop(p, y, n_bins, "l1", rc), abs=1e-12)
    assert 0.0 <= ece <= rms + 1e-12 <= mce + 2e-12 <= 1.0 + 2e-12  # power-mean inequality
    assert 0.0 <= M.classwise_calibration_error(p, y, n_bins=n_bins, from_logits=False) <= 1.0


def test_calibrated_data_has_small_ece_and_overconfident_data_large():
    z, p, y = _calibrated()
    assert M.expected_calibration_error(p, y, n_bins=10, from_logits=False) < 0.02
    assert M.classwise_calibration_error(p, y, n_bins=10, from_logits=False) < 0.01
    assert abs(M.calibration_gap(p, y, from_logits=False)) < 0.01
    # sharpen the logits: overconfident, positive gap; flatten: underconfident, negative gap
    assert M.calibration_gap(z * 3, y, from_logits=True) > 0.05
    assert M.calibration_gap(z / 3, y, from_logits=True) < -0.05
    assert M.expected_calibration_error(z * 3, y, from_logits=True) > 0.05


# --------------------------------------------------------------------------- classwise
@pytest.mark.parametrize("k", [2, 3, 6])
def test_classwise_equals_loop(k):
    _, p, y = _data(n=300, k=k, seed=k, dtype=torch.float64)
    assert M.classwise_calibration_error(p, y, n_bins=8, from_logits=False) == pytest.approx(
        classwise_ece_loop(p, y, 8), abs=1e-12
    )


def test_classwise_golden_with_zero_probabilities():
    # class 0: p = 1.0 (bin 1, y=1), 0.0 (bin 0, y=0): perfect; class 1 mirrors it: cw-ECE = 0.
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert M.classwise_calibration_error(p, torch.tensor([0, 1]), n_bins=2, from_logits=False) == 0.0
    # swap the labels: every bin off by 1 -> (1 + 1 + 1 + 1) / (N K) = 1
    assert M.classwise_calibration_error(p, torch.tensor([1, 0]), n_bins=2, from_logits=False) == 1.0
