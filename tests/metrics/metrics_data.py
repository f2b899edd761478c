"""Data builders shared by test_metrics_binned.py and test_metrics_scores.py: logits with their float
softmax and uniform labels, and perfectly calibrated data. Importable from the test files of this folder
(pytest puts a test file's folder on sys.path)."""

from __future__ import annotations

import torch

from metrics_fixtures import calibrated_logits, random_logits


def _data(n=500, k=5, seed=0, scale=2.0, dtype=torch.float32):
    z, y = random_logits(n, k, seed, scale)
    return z.to(dtype), torch.softmax(z, 1).to(dtype), y


def _calibrated(n=20000, k=4, seed=0):
    """Labels drawn from the model's own softmax: perfectly calibrated in expectation."""
    z, y = calibrated_logits(n, k, seed)
    return z, torch.softmax(z, 1), y
