"""The study's methods, one registry entry each (:mod:`labelsmooth.study.methods`), and the loss each
trains with, through :mod:`labelsmooth.losses` (one home per idea).

Besides the uniform, prior, negative, confidence-penalty and focal entries, two methods of issue 13 live here:

* ``classwise`` (``methods.classwise = [[low, high], ...]``): label-aware smoothing (Zhong et al., CVPR
  2021, MiSLAS), the factor of a sample that of its class, growing with the class's training count from
  ``low`` on the smallest class to ``high`` on the largest, linear in log N_y (:func:`classwise_loss`).
* ``negative-schedule`` (``methods.negative_schedule = [{final = -0.1, warmup_epochs = 100, ramp_epochs =
  50}, ...]``): hard targets for a warm-up, then a linear ramp to ``final`` (Struppek, Hintersdorf and
  Kersting, ICLR 2024; Wei et al. 2022 warm up with cross-entropy too). The schedule is the run's
  parameter, stored with it and part of its hash; its loss (:class:`ScheduledSmoothingLoss`) has a
  ``set_epoch(epoch)`` method that every training loop of the study calls at the start of each epoch.

Adding a classification method is one :func:`~labelsmooth.study.methods.register_method` call here: its
config key in ``[methods]``, its defaults, its parameter check, its label and its objective. The order of
registration is the order of the grid and the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from labelsmooth import losses
from labelsmooth._validation import check_number, check_scalar_range, check_smoothing, expected, is_number
from labelsmooth.losses import cross_entropy
from labelsmooth.study.methods import METHODS, FrozenParam, Method, freeze_param, register_method
from labelsmooth.targets import class_prior, classwise_smoothing

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FOCAL_SCHEDULES = ("flsd-53",)


def _interval(lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> Callable[[str, Any], None]:
    def check(dotted: str, v: Any) -> None:
        check_scalar_range(dotted, v, lo, hi, lo_open=lo_open, hi_open=hi_open)

    return check


def _check_focal(dotted: str, g: Any) -> None:
    if isinstance(g, str):
        if g not in FOCAL_SCHEDULES:
            raise ValueError(expected(dotted, "to hold gammas >= 0 or 'flsd-53'", g))
    else:
        _interval(0, 20, lo_open=False, hi_open=False)(dotted, g)


def _prior_loss(p: float, train_target: torch.Tensor, num_classes: int, **_: Any) -> LossFn:
    # ls-prior smooths toward the class frequencies of the (possibly noisy) training labels, the only
    # labels a practitioner has
    prior = class_prior(train_target, num_classes, eps=1.0)
    return lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p), prior=prior)


def _focal_loss(p: float | str, **_: Any) -> LossFn:
    gamma = p if isinstance(p, str) else float(p)
    return lambda z, y: losses.focal_loss(z, y, gamma=gamma)


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
    return check_number(name, value, lo=0, integer=True)


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
        self.epoch = check_number(
            "epoch", epoch, lo=1, integer=True, what=">= 1 (epochs are numbered from 1)"
        )

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


def _coerce_classwise(dotted: str, value: Any) -> tuple[float, float]:
    """``[low, high]`` with 0 <= low, high < 1 -> ``(low, high)``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(is_number(v) for v in value):
        raise TypeError(expected(dotted, "to hold [low, high] pairs of numbers", value))
    low, high = (float(v) for v in value)
    for v in (low, high):
        _interval(0, 1, lo_open=False, hi_open=True)(dotted, v)
    return (low, high)


def _classwise_objective(p: Any, train_target: torch.Tensor, num_classes: int, **_: Any) -> LossFn:
    low, high = (float(v) for v in p)
    return classwise_loss(train_target, num_classes, low, high)


def _classwise_label(p: Any) -> str:
    low, high = p
    return f"classwise a={low:g}..{high:g}"


def _coerce_schedule(dotted: str, value: Any) -> FrozenParam:
    """A table ``{final, warmup_epochs, ramp_epochs}`` -> the canonical :class:`SmoothingSchedule` dict."""
    if not isinstance(value, Mapping):
        raise TypeError(expected(dotted, "to hold tables {final, warmup_epochs, ramp_epochs}", value))
    unknown = sorted(set(value) - {"final", "warmup_epochs", "ramp_epochs"})
    if unknown or "final" not in value:
        raise ValueError(
            expected(dotted, "to hold tables with keys final, warmup_epochs, ramp_epochs (final required)",
                     sorted(value))
        )  # fmt: skip
    final = value["final"]
    check_number(f"{dotted}.final", final, lo=-1, hi=1, hi_open=True, type_what="to be a number")
    try:
        sched = SmoothingSchedule(float(final), value.get("warmup_epochs", 0), value.get("ramp_epochs", 0))
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("`warmup_epochs`", f"`{dotted}.warmup_epochs`")
                        .replace("`ramp_epochs`", f"`{dotted}.ramp_epochs`")) from None  # fmt: skip
    return freeze_param(sched.to_dict())


def _schedule_objective(p: Any, **_: Any) -> ScheduledSmoothingLoss:
    return scheduled_loss(dict(p))


def _schedule_label(p: Any) -> str:
    d = dict(p)
    return f"neg-sched a={d['final']:g} (hard {d['warmup_epochs']}, ramp {d['ramp_epochs']})"


CLASSIFICATION_METHODS: tuple[Method, ...] = (
    Method("hard", None, lambda p, **_: (lambda z, y: losses.cross_entropy(z, y)),
           label=lambda p: "hard (a=0)", label_smoothing=lambda p: 0.0,
           description="one-hot targets (a = 0), the baseline every verdict compares against"),
    Method("ls", "a", lambda p, **_: (lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p))),
           label=lambda p: f"ls a={p:g}", label_smoothing=float, config_key="label_smoothing",
           default=(0.05, 0.1, 0.2, 0.3), check=_interval(0, 1, lo_open=True, hi_open=True),
           description="uniform smoothing, a in (0, 1)"),
    Method("ls-prior", "a", _prior_loss, label=lambda p: f"ls-prior a={p:g}", config_key="prior",
           default=(0.1,), check=_interval(0, 1, lo_open=True, hi_open=True),
           description="smoothing toward the training class frequencies"),
    Method("negative", "a",
           lambda p, **_: (lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p),
                                                             allow_negative=True)),
           label=lambda p: f"neg-ls a={p:g}", label_smoothing=float, config_key="negative", default=(-0.1,),
           check=_interval(-1, 0, lo_open=False, hi_open=True), description="negative smoothing, a < 0"),
    Method("confidence-penalty", "beta",
           lambda p, **_: (lambda z, y: losses.confidence_penalty(z, y, beta=float(p))),
           label=lambda p: f"conf-penalty b={p:g}", config_key="confidence_penalty", default=(0.1,),
           check=_interval(0, 10, lo_open=True, hi_open=False), description="beta in CE - beta * H(q)"),
    Method("focal", "gamma", _focal_loss,
           label=lambda p: f"focal {p}" if isinstance(p, str) else f"focal g={p:g}", config_key="focal",
           default=("flsd-53",), check=_check_focal, description='gamma >= 0, or the "flsd-53" schedule'),
    Method("classwise", "a", _classwise_objective, label=_classwise_label, config_key="classwise",
           coerce=_coerce_classwise,
           description="class-wise smoothing from class counts (MiSLAS): [low, high], a_y linear in log N_y"),
    Method("negative-schedule", "schedule", _schedule_objective, label=_schedule_label,
           config_key="negative_schedule", coerce=_coerce_schedule,
           description="{final, warmup_epochs, ramp_epochs}: hard targets, then a ramp to final (< 0)"),
)  # fmt: skip
"""The classification methods, in grid order (``hard`` is the ``methods.hard`` switch; each other one is
a ``methods.<config_key>`` list of parameters)."""

for _m in CLASSIFICATION_METHODS:
    register_method(_m)


def make_loss(method: Any, train_target: torch.Tensor, num_classes: int) -> LossFn:
    """The loss ``(logits, target) -> scalar`` of a grid method (anything with ``.name`` and ``.param``),
    from its registry entry's objective factory."""
    return loss_of(method.name, method.param, train_target, num_classes)


def loss_of(name: str, param: Any, train_target: torch.Tensor, num_classes: int) -> LossFn:
    """The loss of the registered method ``name`` with ``param``, for training labels ``train_target``
    (any task's training loop: call the result's ``set_epoch(epoch)`` when it has one)."""
    entry = METHODS.get(name)
    if entry is None:
        raise ValueError(expected("method", "to be a registered method", name))
    return entry.objective(param, train_target=train_target, num_classes=num_classes)
