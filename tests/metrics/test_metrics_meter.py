"""CalibrationMeter (streaming, mergeable) and bootstrap confidence intervals."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labelsmooth import metrics as M
from metrics_fixtures import random_logits


def _data(n=300, k=4, seed=0, scale=2.0):
    return random_logits(n, k, seed, scale)


def _expected(x, y, from_logits, n_bins, right_closed=False):
    s = M.calibration_summary(x, y, from_logits=from_logits, n_bins=n_bins)
    s.pop("smece")
    if right_closed:
        kw = {"n_bins": n_bins, "from_logits": from_logits, "right_closed": True}
        s["ece"] = M.expected_calibration_error(x, y, **kw)
        s["rms_ce"] = M.expected_calibration_error(x, y, norm="l2", **kw)
        s["mce"] = M.expected_calibration_error(x, y, norm="max", **kw)
        s["classwise_ece"] = M.classwise_calibration_error(x, y, **kw)
    return s


def _assert_close(got, want):
    assert set(got) == set(want) == set(M.METER_KEYS)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-14), key


# --------------------------------------------------------------------------- streaming = functional
@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 120),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    from_logits=st.booleans(),
    right_closed=st.booleans(),
    n_bins=st.integers(1, 20),
    seed=st.integers(0, 1000),
)
def test_property_meter_equals_functional_for_any_batching(n, cuts, from_logits, right_closed, n_bins, seed):
    z, y = _data(n=n, k=3, seed=seed)
    x = z if from_logits else torch.softmax(z, 1).float()
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    meter = M.CalibrationMeter(n_bins=n_bins, from_logits=from_logits, right_closed=right_closed)
    for a, b in itertools.pairwise(bounds):
        if b > a:
            meter.update(x[a:b], y[a:b])
    _assert_close(meter.compute(), _expected(x, y, from_logits, n_bins, right_closed))
    assert meter.n == n


@settings(max_examples=20, deadline=None)
@given(n1=st.integers(1, 80), n2=st.integers(1, 80), seed=st.integers(0, 1000))
def test_property_merge_equals_union(n1, n2, seed):
    z, y = _data(n=n1 + n2, k=5, seed=seed)
    a = M.CalibrationMeter(n_bins=10, from_logits=True)
    b = M.CalibrationMeter(n_bins=10, from_logits=True)
    a.update(z[:n1], y[:n1])
    b.update(z[n1:], y[n1:])
    union = a + b
    _assert_close(union.compute(), _expected(z, y, True, 10))
    assert a.n == n1 and b.n == n2  # `+` leaves its operands alone
    a.merge(b)  # in place
    _assert_close(a.compute(), union.compute())


def test_meter_bins_reset_and_empty_merges():
    z, y = _data(n=200, k=3, seed=1)
    meter = M.CalibrationMeter(n_bins=7, num_classes=3, from_logits=True)
    meter.update(z.numpy(), y.numpy())
    bins, ref = meter.bins(), M.calibration_bins(z, y, n_bins=7, from_logits=True)
    assert bins.counts.tolist() == ref.counts.tolist()
    assert bins.sum_confidence == pytest.approx(ref.sum_confidence, rel=1e-12)
    assert bins.calibration_error() == pytest.approx(meter.compute()["ece"])
    before = meter.compute()
    meter.merge(M.CalibrationMeter(n_bins=7, from_logits=True))  # empty: no-op
    assert meter.compute() == before
    fresh = M.CalibrationMeter(n_bins=7, from_logits=True)
    fresh.merge(meter)  # empty meter without K adopts the other's
    assert fresh.num_classes == 3 and fresh.compute() == before
    meter.reset()
    assert meter.n == 0 and meter.num_classes == 3 and int(meter.counts.sum()) == 0
    assert "n=0" in repr(meter)


def test_meter_errors():
    z, y = _data(n=10, k=3)
    with pytest.raises(ValueError, match=r"Expected `n_bins` >= 1, got 0."):
        M.CalibrationMeter(n_bins=0, from_logits=False)
    with pytest.raises(ValueError, match=r"Expected `num_classes` >= 2, got 1."):
        M.CalibrationMeter(num_classes=1, from_logits=False)
    with pytest.raises(TypeError, match="Expected `num_classes` to be an int or None"):
        M.CalibrationMeter(num_classes=3.0, from_logits=False)
    with pytest.raises(ValueError, match="Expected `strategy` to be 'uniform' for a streaming"):
        M.CalibrationMeter(strategy="quantile", from_logits=False)
    with pytest.raises(ValueError, match="Expected `strategy` to be one of"):
        M.CalibrationMeter(strategy="bogus", from_logits=False)
    with pytest.raises(TypeError, match="Expected `from_logits` to be a bool"):
        M.CalibrationMeter(from_logits=None)
    meter = M.CalibrationMeter(from_logits=True)
    with pytest.raises(ValueError, match="Expected `CalibrationMeter` to have seen at least one sample"):
        meter.compute()
    meter.update(z, y)
    with pytest.raises(ValueError, match="Expected `input` to have 3 classes"):
        meter.update(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="Expected `input` to be finite"):
        meter.update(torch.full((2, 3), float("nan")), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="Expected `other` to be a CalibrationMeter"):
        meter.merge("meter")
    with pytest.raises(TypeError):
        meter + 1
    with pytest.raises(ValueError, match=r"Expected `other.n_bins` to equal 15, got 10."):
        meter.merge(M.CalibrationMeter(n_bins=10, from_logits=True))
    with pytest.raises(ValueError, match=r"Expected `other.from_logits` to equal True"):
        meter.merge(M.CalibrationMeter(from_logits=False))
    other = M.CalibrationMeter(from_logits=True)
    other.update(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"Expected `other.num_classes` to equal 3, got 5."):
        meter.merge(other)


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_vectorised_equals_loop_with_same_resamples():
    z, y = _data(n=150, k=3, seed=2)
    for fn, kw in (
        (M.expected_calibration_error, {"n_bins": 8}),
        (M.expected_calibration_error, {"n_bins": 8, "norm": "l2"}),
        (M.expected_calibration_error, {"n_bins": 8, "norm": "max", "right_closed": True}),
        (M.accuracy, {}),
        (M.negative_log_likelihood, {}),
        (M.brier_score, {}),
        (M.mean_confidence, {}),
        (M.calibration_gap, {}),
        (M.predictive_entropy, {}),
    ):
        fast = M.bootstrap(fn, z, y, n_resamples=60, from_logits=True, seed=3, **kw)
        slow = M.bootstrap(
            lambda x, t, f=fn, **k: f(x, t, **k), z, y, n_resamples=60, from_logits=True, seed=3, **kw
        )
        assert fast.estimate == slow.estimate
        assert fast.low == pytest.approx(slow.low, abs=1e-12), fn.__name__
        assert fast.high == pytest.approx(slow.high, abs=1e-12), fn.__name__


def test_bootstrap_interval_behaviour():
    z, y = _data(n=2000, k=3, seed=4)
    r = M.bootstrap("ece", z, y, from_logits=True, n_resamples=300)
    assert r.estimate == M.expected_calibration_error(z, y, from_logits=True)
    assert r.low < r.estimate < r.high and r.confidence == 0.95 and r.n_resamples == 300
    assert M.bootstrap("ece", z, y, from_logits=True, n_resamples=300) == r  # seeded
    assert M.bootstrap("ece", z, y, from_logits=True, n_resamples=300, seed=1) != r
    narrow = M.bootstrap("ece", z, y, from_logits=True, n_resamples=300, confidence=0.5)
    assert r.low <= narrow.low <= narrow.high <= r.high
    small = M.bootstrap("ece", z[:200], y[:200], from_logits=True, n_resamples=300)
    assert small.high - small.low > r.high - r.low  # fewer samples, wider interval
    # names route to the loop path too (smECE, quantile bins)
    s = M.bootstrap("smece", z[:100], y[:100], from_logits=True, n_resamples=20)
    assert s.low <= s.high
    q = M.bootstrap(M.expected_calibration_error, z, y, from_logits=True, strategy="quantile", n_resamples=20)
    assert q.low <= q.high


def test_bootstrap_errors():
    z, y = _data(n=20, k=3)
    with pytest.raises(ValueError, match="Expected `metric` to be a callable or one of"):
        M.bootstrap("f1", z, y)
    with pytest.raises(TypeError, match="Expected `metric` to be a callable or a metric name"):
        M.bootstrap(3, z, y)
    with pytest.raises(ValueError, match=r"Expected `n_resamples` >= 1, got 0."):
        M.bootstrap("ece", z, y, n_resamples=0, from_logits=True)
    with pytest.raises(TypeError, match="Expected `n_resamples` to be an int"):
        M.bootstrap("ece", z, y, n_resamples=10.0, from_logits=True)
    with pytest.raises(ValueError, match=r"Expected `confidence` in \(0, 1\), got 1.0."):
        M.bootstrap("ece", z, y, confidence=1.0, from_logits=True)
    with pytest.raises(TypeError, match="Expected `seed` to be an int"):
        M.bootstrap("ece", z, y, seed="0", from_logits=True)
    with pytest.raises(ValueError, match="Expected `input` to hold probabilities"):
        M.bootstrap("ece", z, y, from_logits=False)  # logits without from_logits=True
    with pytest.raises(TypeError, match="from_logits"):
        M.bootstrap("ece", z, y)  # every metric of the library requires it
    with pytest.raises(TypeError, match="from_logits"):
        M.CalibrationMeter(n_bins=10)


def test_bootstrap_metric_names_are_the_summary_keys():
    import typing

    from labelsmooth.metrics.bootstrap import _BY_NAME, MetricName

    assert typing.get_args(MetricName) == M.SUMMARY_KEYS == tuple(_BY_NAME)
