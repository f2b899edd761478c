"""Label noise for the training split: symmetric, pair-flip, or a user-given transition matrix.

Each kind is a K x K row-stochastic transition matrix T with T[i, j] = P(noisy = j | clean = i); a noisy
label is drawn from row ``T[y]``. The clean labels are kept by the caller, so a study can count how many
noisy labels a model memorised. The test split is never corrupted.
"""

from __future__ import annotations

import numpy as np

from labelsmooth._validation import expected


def transition_matrix(kind: str, rate: float, num_classes: int, matrix: object = None) -> np.ndarray:
    """The K x K transition matrix of a noise setting.

    symmetric: ``(1 - r) I + r / (K - 1) (11^T - I)`` (a flipped label is any *other* class, so r is the
    expected fraction of wrong labels); pairflip: ``(1 - r) I + r P`` with P the cyclic shift y -> y + 1;
    matrix: ``(1 - r) I + r M`` with the user's M (r = 1 gives M itself).

    >>> transition_matrix("pairflip", 0.25, 3)
    array([[0.75, 0.25, 0.  ],
           [0.  , 0.75, 0.25],
           [0.25, 0.  , 0.75]])
    """
    k = num_classes
    if not 0.0 <= rate <= 1.0:
        raise ValueError(expected("noise rate", "in [0, 1]", rate))
    eye = np.eye(k)
    if kind == "symmetric":
        other = (np.ones((k, k)) - eye) / (k - 1)
        return (1 - rate) * eye + rate * other
    if kind == "pairflip":
        return (1 - rate) * eye + rate * np.roll(eye, 1, axis=1)
    if kind == "matrix":
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (k, k):
            raise ValueError(expected("noise.matrix", f"to be {k} x {k} for a {k}-class dataset", m))
        return (1 - rate) * eye + rate * m
    raise ValueError(expected("noise.kind", "to be one of 'symmetric', 'pairflip', 'matrix'", kind))


def corrupt(y: np.ndarray, transition: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a noisy label for each clean label ``y`` (int array) from the rows of ``transition``.

    >>> y = np.zeros(10000, dtype=np.int64)
    >>> noisy = corrupt(y, transition_matrix("symmetric", 0.3, 10), np.random.default_rng(0))
    >>> round(float((noisy != y).mean()), 2)
    0.3
    """
    cdf = np.cumsum(transition[y], axis=1)
    cdf[:, -1] = 1.0
    u = rng.random(len(y))[:, None]
    return (u > cdf).sum(axis=1).astype(np.int64)


def apply_noise(
    y: np.ndarray, kind: str, rate: float, num_classes: int, seed: int, matrix: object = None
) -> np.ndarray:
    """Noisy copy of the training labels ``y`` for one noise setting, seeded (same seed, same noise)."""
    if rate == 0.0:
        return y.copy()
    rng = np.random.default_rng([seed, 11, round(rate * 1e6)])
    return corrupt(y, transition_matrix(kind, rate, num_classes, matrix), rng)


def memorised_fraction(pred: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> float | None:
    """Fraction of the noisy training examples (noisy label != clean label) whose prediction equals the
    noisy label: how much of the noise the model memorised. None when there is no noise."""
    mask = noisy != clean
    if not mask.any():
        return None
    return float((pred[mask] == noisy[mask]).mean())
