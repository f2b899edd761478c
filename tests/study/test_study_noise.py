"""Label noise: transition matrices, seeded corruption, memorisation counts."""

from __future__ import annotations

import numpy as np
import pytest

from labelsmooth.study.noise import apply_noise, corrupt, memorised_fraction, transition_matrix


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_rows_are_distributions_with_the_right_diagonal(kind, rate):
    t = transition_matrix(kind, rate, 5)
    np.testing.assert_allclose(t.sum(1), 1.0)
    np.testing.assert_allclose(np.diag(t), 1 - rate)
    assert (t >= 0).all()


def test_symmetric_spreads_evenly_over_the_other_classes():
    t = transition_matrix("symmetric", 0.4, 5)
    off = t[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off, 0.1)


def test_pairflip_moves_to_the_next_class():
    t = transition_matrix("pairflip", 0.3, 4)
    assert t[3, 0] == pytest.approx(0.3)
    assert t[0, 1] == pytest.approx(0.3)
    assert t[0, 2] == 0.0


def test_matrix_kind_interpolates_toward_the_given_matrix():
    m = np.array([[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(transition_matrix("matrix", 1.0, 2, m), m)
    np.testing.assert_allclose(transition_matrix("matrix", 0.5, 2, m), [[0.5, 0.5], [0.25, 0.75]])
    with pytest.raises(ValueError, match=r"noise.matrix"):
        transition_matrix("matrix", 1.0, 3, m)


def test_bad_kind_and_rate():
    with pytest.raises(ValueError, match=r"noise.kind"):
        transition_matrix("gaussian", 0.1, 3)
    with pytest.raises(ValueError, match="noise rate"):
        transition_matrix("symmetric", 1.5, 3)


@pytest.mark.parametrize(("kind", "rate"), [("symmetric", 0.3), ("pairflip", 0.4)])
def test_empirical_rate_and_targets(kind, rate):
    y = np.repeat(np.arange(10), 2000)
    noisy = corrupt(y, transition_matrix(kind, rate, 10), np.random.default_rng(1))
    assert abs((noisy != y).mean() - rate) < 0.02
    if kind == "pairflip":
        flipped = noisy != y
        assert (noisy[flipped] == (y[flipped] + 1) % 10).all()
    assert noisy.min() >= 0 and noisy.max() < 10


def test_apply_noise_is_seeded_and_clean_at_rate_zero():
    y = np.arange(100) % 10
    a = apply_noise(y, "symmetric", 0.3, 10, seed=3)
    b = apply_noise(y, "symmetric", 0.3, 10, seed=3)
    c = apply_noise(y, "symmetric", 0.3, 10, seed=4)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    clean = apply_noise(y, "symmetric", 0.0, 10, seed=3)
    np.testing.assert_array_equal(clean, y)
    assert clean is not y


def test_memorised_fraction():
    clean = np.array([0, 1, 2, 3])
    noisy = np.array([0, 2, 0, 3])  # examples 1 and 2 are noisy
    assert memorised_fraction(np.array([0, 2, 2, 3]), noisy, clean) == 0.5
    assert memorised_fraction(np.array([0, 2, 0, 0]), noisy, clean) == 1.0
    assert memorised_fraction(clean, clean, clean) is None
