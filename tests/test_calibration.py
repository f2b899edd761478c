"""Temperature scaling: recovery of a known temperature, optimality, robustness, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from labelsmooth import metrics as M
from labelsmooth.calibration import CalibrationWarning, NotFittedError, TemperatureScaler
from metrics_fixtures import calibrated_logits


def _calibrated(n=20000, k=10, seed=0, scale=2.0):
    """Logits of a calibrated model: labels are drawn from softmax(z)."""
    return calibrated_logits(n, k, seed, scale)


def _nll(z, y, temperature):
    return M.negative_log_likelihood(z / temperature, y, from_logits=True)


@pytest.mark.parametrize("true_t", [0.25, 0.5, 2.0, 4.0])
def test_recovers_known_temperature(true_t):
    z, y = _calibrated(seed=int(true_t * 4))
    scaler = TemperatureScaler().fit(z * true_t, y)  # logits of a model miscalibrated by exactly true_t
    assert scaler.temperature_ == pytest.approx(true_t, rel=0.03)
    assert scaler.at_bound_ is None and scaler.n_iter_ < 30
    assert scaler.nll_after_ <= scaler.nll_before_
    # calibrated logits are (close to) the original ones
    assert M.expected_calibration_error(scaler.transform(z * true_t), y, from_logits=True) < 0.02


def test_fitted_temperature_is_the_nll_minimum():
    z, y = _calibrated(n=3000, k=5, seed=3)
    z = z * 1.7
    scaler = TemperatureScaler().fit(z, y)
    best = scaler.temperature_
    grid = np.exp(np.linspace(math.log(best) - 0.2, math.log(best) + 0.2, 41))
    values = [_nll(z, y, float(t)) for t in grid]
    assert min(values) >= scaler.nll_after_ - 1e-12
    assert _nll(z, y, best) == pytest.approx(scaler.nll_after_, rel=1e-12)
    # first-order condition in beta = 1/T: mean E_q[z] - z_y = 0
    q = torch.softmax(z / best, 1)
    grad = float(((q * z).sum(1) - z.gather(1, y[:, None]).squeeze(1)).mean())
    assert abs(grad) < 1e-8


def test_accuracy_unchanged_and_outputs_match_input_kind():
    z, y = _calibrated(n=500, k=4, seed=5)
    z32 = (z * 2).float()
    scaler = TemperatureScaler()
    out = scaler.fit_transform(z32, y)
    assert out.dtype == torch.float32 and torch.equal(out.argmax(1), z32.argmax(1))
    torch.testing.assert_close(out, z32 / scaler.temperature_)
    p = scaler.predict_proba(z32)
    assert p.dtype == torch.float32
    torch.testing.assert_close(p.sum(1), torch.ones(500))
    arr = scaler.transform(z32.numpy())
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert isinstance(scaler.predict_proba(z32.numpy()), np.ndarray)
    assert "temperature_=" in repr(scaler)


def test_smoothing_underconfidence_gives_temperature_below_one():
    # Logit gaps capped at the label-smoothing optimum log(1 + K(1-a)/a) while 95% of predictions are right:
    # confidence ~0.73 against accuracy 0.95 -> underconfident -> T < 1.
    from labelsmooth.theory import optimal_logit_gap

    k, a, n = 10, 0.3, 4000
    g = torch.Generator().manual_seed(7)
    pred = torch.randint(0, k, (n,), generator=g)
    z = torch.zeros(n, k, dtype=torch.float64)
    z[torch.arange(n), pred] = optimal_logit_gap(a, k)
    wrong = torch.rand(n, generator=g) < 0.05
    y = torch.where(wrong, (pred + 1) % k, pred)
    assert M.calibration_gap(z, y, from_logits=True) < -0.15
    scaler = TemperatureScaler().fit(z, y)
    assert scaler.temperature_ < 1.0
    assert abs(M.calibration_gap(scaler.transform(z), y, from_logits=True)) < 0.01


def test_separable_data_clamps_to_lower_bound_with_warning():
    z, _ = _calibrated(n=200, k=3, seed=8)
    y = z.argmax(1)  # every prediction right: NLL falls forever as T -> 0
    with pytest.warns(CalibrationWarning, match="lower bound T = 0.01"):
        scaler = TemperatureScaler(bounds=(0.01, 100.0)).fit(z, y)
    assert scaler.temperature_ == pytest.approx(0.01) and scaler.at_bound_ == "lower"
    # a single class, all predicted right: the same
    with pytest.warns(CalibrationWarning):
        single = TemperatureScaler().fit(torch.tensor([[3.0, 0.0], [2.0, 1.0]]), torch.tensor([0, 0]))
    assert single.at_bound_ == "lower" and single.temperature_ == pytest.approx(1e-3)


def test_all_wrong_clamps_to_upper_bound_and_constant_logits_keep_one():
    pred = torch.arange(200) % 3
    z = 5.0 * torch.eye(3, dtype=torch.float64)[pred]
    y = (pred + 1) % 3  # every prediction wrong: NLL falls as T -> infinity
    with pytest.warns(CalibrationWarning, match="upper bound"):
        scaler = TemperatureScaler().fit(z, y)
    assert scaler.at_bound_ == "upper" and scaler.temperature_ == pytest.approx(1e3)
    with pytest.warns(CalibrationWarning, match="does not depend on the temperature"):
        flat = TemperatureScaler().fit(torch.ones(10, 4), torch.arange(10) % 4)
    assert flat.temperature_ == 1.0 and flat.at_bound_ is None


def test_single_class_target_without_separation_is_fine():
    z, _ = _calibrated(n=1000, k=3, seed=10)
    y = torch.zeros(1000, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = TemperatureScaler().fit(z, y)
    assert 1e-3 < scaler.temperature_ < 1e3 and scaler.at_bound_ is None


def test_errors():
    z, y = _calibrated(n=50, k=3, seed=11)
    scaler = TemperatureScaler()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        scaler.transform(z)
    with pytest.raises(AttributeError):  # NotFittedError is also an AttributeError, like scikit-learn's
        scaler.predict_proba(z)
    assert not hasattr(scaler, "temperature_")
    with pytest.raises(ValueError, match=r"Expected `bounds` to satisfy 0 < T_min < T_max < inf"):
        TemperatureScaler(bounds=(0.0, 10.0))
    with pytest.raises(ValueError, match="Expected `bounds`"):
        TemperatureScaler(bounds=(5.0, 1.0))
    with pytest.raises(TypeError, match="Expected `bounds` to be a pair of floats"):
        TemperatureScaler(bounds=("a", "b"))
    with pytest.raises(ValueError, match=r"Expected `max_iter` >= 1, got 0\."):
        TemperatureScaler(max_iter=0)
    with pytest.raises(TypeError, match="Expected `max_iter` to be an int"):
        TemperatureScaler(max_iter=2.5)
    with pytest.raises(ValueError, match="Expected `logits` to be finite"):
        scaler.fit(torch.full((2, 3), float("nan")), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"Expected `target` to hold class indices in \[0, 3\)"):
        scaler.fit(z, torch.full((50,), 3))
    scaler.fit(z, y)
    with pytest.raises(ValueError, match="Expected `logits` to have 3 classes, as in fit"):
        scaler.transform(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="Expected `logits` to be a floating-point"):
        scaler.transform(torch.zeros(2, 3, dtype=torch.long))
