"""Training helpers shared by the fairness and privacy task cores: seeded full-batch Adam and the losses of
their method grids (the losses come from the method registry, :func:`~labelsmooth.study.objectives.loss_of`).
Deterministic: one thread, seeds derived from the run's seed only."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labelsmooth._validation import is_number
from labelsmooth.study.objectives import loss_of
from labelsmooth.study.train import derive_seed

__all__ = ["fit", "logits", "loss_of", "seed_tuple", "seeded"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
) -> dict[str, list[float]]:
    """Full-batch Adam for ``epochs`` epochs; a scheduled loss (one with ``set_epoch``) is told each epoch.

    Returns the curves ``{"epoch", "train_loss", "label_smoothing"}`` (every epoch); stops early, with the
    last loss non-finite, if training diverges.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    curves: dict[str, list[float]] = {"epoch": [], "train_loss": [], "label_smoothing": []}
    model.train()
    for epoch in range(1, epochs + 1):
        a = 0.0
        set_epoch = getattr(loss_fn, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
            a = float(loss_fn.label_smoothing)  # type: ignore[attr-defined]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), y)
        value = float(loss.detach())
        curves["epoch"].append(epoch)
        curves["train_loss"].append(value)
        curves["label_smoothing"].append(a)
        if not math.isfinite(value):
            break
        loss.backward()
        opt.step()
    model.eval()
    return curves


def logits(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(X).float()


def seeded(seed: int, *parts: object) -> int:
    """Seed ``torch`` for one step of a run and return the derived seed (for numpy generators)."""
    s = derive_seed(seed, *parts)
    torch.manual_seed(s)
    return s


def seed_tuple(seeds: Any) -> Any:
    """A section's ``seeds`` as ints: a count ``n >= 1`` becomes ``(0, ..., n - 1)``, integral floats
    (the config layer reads number lists as floats) become ints; anything else is left for ``validate``."""
    if is_number(seeds, integer=True) and seeds >= 1:
        return tuple(range(seeds))
    if isinstance(seeds, (list, tuple)):
        return tuple(int(s) if isinstance(s, float) and s.is_integer() and s >= 0 else s for s in seeds)
    return seeds
