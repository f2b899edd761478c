"""The classification methods, one registry entry each (:mod:`labelsmooth.study.methods`), and the loss each
trains with, through :mod:`labelsmooth.losses` (one home per idea).

Adding a classification method is one :func:`~labelsmooth.study.methods.register_method` call here: its
config key in ``[methods]``, its defaults, its parameter check, its label and its objective. The order of
registration is the order of the grid and the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from labelsmooth import losses
from labelsmooth._validation import expected
from labelsmooth.study.methods import METHODS, Method, register_method
from labelsmooth.targets import class_prior

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FOCAL_SCHEDULES = ("flsd-53",)


def _interval(lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> Callable[[str, Any], None]:
    def check(dotted: str, v: Any) -> None:
        bad = math.isnan(v) or (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi)
        if bad:
            interval = ("(" if lo_open else "[") + f"{lo:g}, {hi:g}" + (")" if hi_open else "]")
            raise ValueError(expected(dotted, f"in {interval}", v))

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


CLASSIFICATION_METHODS: tuple[Method, ...] = (
    Method("hard", None, lambda p, **_: (lambda z, y: losses.cross_entropy(z, y)),
           label=lambda p: "hard (a=0)", alpha=lambda p: 0.0,
           description="one-hot targets (a = 0), the baseline every verdict compares against"),
    Method("ls", "a", lambda p, **_: (lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p))),
           label=lambda p: f"ls a={p:g}", alpha=float, config_key="label_smoothing",
           default=(0.05, 0.1, 0.2, 0.3), check=_interval(0, 1, lo_open=True, hi_open=True),
           description="uniform smoothing, a in (0, 1)"),
    Method("ls-prior", "a", _prior_loss, label=lambda p: f"ls-prior a={p:g}", config_key="prior",
           default=(0.1,), check=_interval(0, 1, lo_open=True, hi_open=True),
           description="smoothing toward the training class frequencies"),
    Method("negative", "a",
           lambda p, **_: (lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p),
                                                             allow_negative=True)),
           label=lambda p: f"neg-ls a={p:g}", alpha=float, config_key="negative", default=(-0.1,),
           check=_interval(-1, 0, lo_open=False, hi_open=True), description="negative smoothing, a < 0"),
    Method("confidence-penalty", "beta",
           lambda p, **_: (lambda z, y: losses.confidence_penalty(z, y, beta=float(p))),
           label=lambda p: f"conf-penalty b={p:g}", config_key="confidence_penalty", default=(0.1,),
           check=_interval(0, 10, lo_open=True, hi_open=False), description="beta in CE - beta * H(q)"),
    Method("focal", "gamma", _focal_loss,
           label=lambda p: f"focal {p}" if isinstance(p, str) else f"focal g={p:g}", config_key="focal",
           default=("flsd-53",), check=_check_focal, description='gamma >= 0, or the "flsd-53" schedule'),
)  # fmt: skip
"""The classification methods, in grid order (``hard`` is the ``methods.hard`` switch; each other one is
a ``methods.<config_key>`` list of parameters)."""

for _m in CLASSIFICATION_METHODS:
    register_method(_m)


def make_loss(method: Any, train_target: torch.Tensor, num_classes: int) -> LossFn:
    """The loss ``(logits, target) -> scalar`` of a grid method (anything with ``.name`` and ``.param``),
    from its registry entry's objective factory."""
    entry = METHODS.get(method.name)
    if entry is None:
        raise ValueError(expected("method", "to be a registered method", method.name))
    return entry.objective(method.param, train_target=train_target, num_classes=num_classes)
