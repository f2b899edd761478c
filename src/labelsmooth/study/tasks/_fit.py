"""Training helpers shared by the fairness and privacy task cores: seeded full-batch Adam and the losses of
their method grids. Deterministic: one thread, seeds derived from the run's seed only."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labelsmooth import losses
from labelsmooth._validation import expected
from labelsmooth.study.methods_extra import ScheduledSmoothingLoss, classwise_loss, scheduled_loss
from labelsmooth.study.train import derive_seed

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(method: str, param: Any, train_target: torch.Tensor, num_classes: int) -> LossFn:
    """The loss of a grid method: ``hard``, ``ls`` (param a), ``classwise`` (param ``[low, high]``),
    ``negative-schedule`` (param a :class:`~labelsmooth.study.methods_extra.SmoothingSchedule` dict)."""
    if method == "hard":
        return lambda z, y: losses.cross_entropy(z, y)
    if method == "ls":
        a = float(param)
        return lambda z, y: losses.cross_entropy(z, y, label_smoothing=a)
    if method == "classwise":
        low, high = (float(v) for v in param)
        return classwise_loss(train_target, num_classes, low, high)
    if method == "negative-schedule":
        return scheduled_loss(dict(param))
    raise ValueError(
        expected("method", "to be one of 'hard', 'ls', 'classwise', 'negative-schedule'", method)
    )


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
    """Full-batch Adam for ``epochs`` epochs; a :class:`ScheduledSmoothingLoss` is told each epoch.

    Returns the curves ``{"epoch", "train_loss", "label_smoothing"}`` (every epoch); stops early, with the
    last loss non-finite, if training diverges.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    curves: dict[str, list[float]] = {"epoch": [], "train_loss": [], "label_smoothing": []}
    model.train()
    for epoch in range(1, epochs + 1):
        a = 0.0
        if isinstance(loss_fn, ScheduledSmoothingLoss):
            loss_fn.set_epoch(epoch)
            a = loss_fn.label_smoothing
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
