"""Data builders shared by the metrics, calibration and plots tests (seeded, float64)."""

from __future__ import annotations

import torch


def random_logits(n: int, k: int, seed: int = 0, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``z ~ N(0, scale^2)`` of shape (n, k) and labels drawn uniformly, independent of ``z``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    return z, torch.randint(0, k, (n,), generator=g)


def calibrated_logits(n: int, k: int, seed: int = 0, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``z ~ N(0, scale^2)`` of shape (n, k) and labels drawn from ``softmax(z)``: a model calibrated
    in expectation."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    return z, torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
