"""Two training objectives for the study's methods registry: class-wise smoothing and scheduled smoothing.

Plain loss factories, ``(logits, target) -> scalar``, built on :func:`labelsmooth.cross_entropy` (one home
per idea); the engine's registry wraps them.

* :func:`classwise_loss` -- label-aware smoothing (Zhong et al., CVPR 2021, MiSLAS): the factor of a
  sample is that of its class, growing with the class's training count
  (:func:`labelsmooth.classwise_smoothing`), applied as per-sample ``label_smoothing``.
* :class:`SmoothingSchedule` and :class:`ScheduledSmoothingLoss` -- hard targets for a warm-up, then a
  linear ramp to a final factor, typically negative (Struppek, Hintersdorf and Kersting, ICLR 2024, train
  negative smoothing this way; Wei et al. 2022 warm up with plain cross-entropy too). The schedule is a
  small frozen dataclass whose :meth:`~SmoothingSchedule.to_dict` is stored with the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from labelsmooth._validation import check_smoothing, expected
from labelsmooth.losses import cross_entropy
from labelsmooth.targets import classwise_smoothing

__all__ = ["ScheduledSmoothingLoss", "SmoothingSchedule", "classwise_loss", "scheduled_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classwise_loss(
    train_target: torch.Tensor,
    num_classes: int,
    low: float,
    high: float,
    *,
    scale: Literal["log", "linear"] = "log",
) -> LossFn:
    """Cross-entropy with the per-class factor :math:`a_y` of label-aware smoothing, from the training counts.

    The counts are those of ``train_target`` (the labels the model is trained on, noisy or not), each
    raised to at least 1 so that a class absent from training does not break the log scale.

    >>> import torch
    >>> y = torch.tensor([0] * 8 + [1] * 2 + [2])
    >>> loss = classwise_loss(y, 3, low=0.0, high=0.2)
    >>> z = torch.zeros(2, 3)
    >>> round(float(loss(z, torch.tensor([0, 2]))), 4)  # any target on uniform logits: log 3
    1.0986
    """
    counts = torch.bincount(train_target.reshape(-1).long(), minlength=num_classes).clamp(min=1)
    a = classwise_smoothing(counts, low, high, scale=scale)

    def loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(z, y, label_smoothing=a.to(device=z.device, dtype=z.dtype)[y])

    return loss


def _check_epochs(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(expected(name, "to be an int", value))
    if value < 0:
        raise ValueError(expected(name, ">= 0", value))
    return value


@dataclass(frozen=True)
class SmoothingSchedule:
    r"""Smoothing factor as a function of the epoch: 0 for a warm-up, then a linear ramp to ``final``.

    With epochs numbered from 1, :math:`W` = ``warmup_epochs``, :math:`R` = ``ramp_epochs``:

    .. math::
        a(e) = \begin{cases} 0 & e \le W \\ a_{\mathrm{final}} \min\big(1, (e - W) / R\big) & e > W
        \end{cases}

    (:math:`R = 0` jumps to ``final`` after the warm-up). ``final`` may be negative (negative smoothing)
    or positive, at most 1. JSON-ready through :meth:`to_dict` / :meth:`from_dict`.

    >>> s = SmoothingSchedule(final=-0.1, warmup_epochs=2, ramp_epochs=4)
    >>> [round(s.value(e), 3) for e in range(1, 9)]
    [0.0, 0.0, -0.025, -0.05, -0.075, -0.1, -0.1, -0.1]
    >>> SmoothingSchedule.from_dict(s.to_dict()) == s
    True
    """

    final: float
    warmup_epochs: int = 0
    ramp_epochs: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_smoothing(self.final, allow_negative=True, name="final")
        if not math.isfinite(float(self.final)):
            raise ValueError(expected("final", "to be finite", self.final))
        _check_epochs("warmup_epochs", self.warmup_epochs)
        _check_epochs("ramp_epochs", self.ramp_epochs)

    def value(self, epoch: int) -> float:
        """The factor at ``epoch`` (1-based)."""
        if epoch <= self.warmup_epochs:
            return 0.0
        if self.ramp_epochs == 0:
            return float(self.final)
        return float(self.final) * min(1.0, (epoch - self.warmup_epochs) / self.ramp_epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmoothingSchedule:
        unknown = set(d) - {"final", "warmup_epochs", "ramp_epochs"}
        if unknown:
            raise ValueError(
                expected("schedule", "to have keys final, warmup_epochs, ramp_epochs", sorted(d))
            )
        return cls(**d)


class ScheduledSmoothingLoss:
    """Cross-entropy whose smoothing follows a :class:`SmoothingSchedule`; call :meth:`set_epoch` each epoch.

    Starts at epoch 1. Negative factors pass ``allow_negative=True`` to :func:`labelsmooth.cross_entropy`.

    >>> import torch
    >>> loss = ScheduledSmoothingLoss(SmoothingSchedule(final=-0.05, warmup_epochs=1))
    >>> z, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(loss(z, y)), 4), loss.label_smoothing
    (0.1269, 0.0)
    >>> loss.set_epoch(2)
    >>> round(float(loss(z, y)), 4), loss.label_smoothing
    (0.0769, -0.05)
    """

    def __init__(self, schedule: SmoothingSchedule) -> None:
        if not isinstance(schedule, SmoothingSchedule):
            raise TypeError(expected("schedule", "to be a SmoothingSchedule", type(schedule).__name__))
        self.schedule = schedule
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(expected("epoch", "to be an int", epoch))
        if epoch < 1:
            raise ValueError(expected("epoch", ">= 1 (epochs are numbered from 1)", epoch))
        self.epoch = epoch

    @property
    def label_smoothing(self) -> float:
        return self.schedule.value(self.epoch)

    def __call__(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(z, y, label_smoothing=self.label_smoothing, allow_negative=True)


def scheduled_loss(schedule: SmoothingSchedule | dict[str, Any]) -> ScheduledSmoothingLoss:
    """A :class:`ScheduledSmoothingLoss` from a schedule or its stored dict."""
    if isinstance(schedule, dict):
        schedule = SmoothingSchedule.from_dict(schedule)
    return ScheduledSmoothingLoss(schedule)
