"""A method of the grid turned into a training loss, through :mod:`labelsmooth.losses` (one home per idea)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from labelsmooth import losses
from labelsmooth.study.grid import Method
from labelsmooth.targets import class_prior

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(method: Method, train_target: torch.Tensor, num_classes: int) -> LossFn:
    """The loss ``(logits, target) -> scalar`` of a method.

    ``ls-prior`` smooths toward the class frequencies of the (possibly noisy) training labels, the only
    labels a practitioner has; ``negative`` passes ``allow_negative=True``.
    """
    name, p = method.name, method.param
    if name == "hard":
        return lambda z, y: losses.cross_entropy(z, y)
    if name == "ls":
        return lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p))  # type: ignore[arg-type]
    if name == "ls-prior":
        prior = class_prior(train_target, num_classes, eps=1.0)
        return lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p), prior=prior)  # type: ignore[arg-type]
    if name == "negative":
        return lambda z, y: losses.cross_entropy(z, y, label_smoothing=float(p), allow_negative=True)  # type: ignore[arg-type]
    if name == "confidence-penalty":
        return lambda z, y: losses.confidence_penalty(z, y, beta=float(p))  # type: ignore[arg-type]
    if name == "focal":
        gamma = p if isinstance(p, str) else float(p)  # type: ignore[arg-type]
        return lambda z, y: losses.focal_loss(z, y, gamma=gamma)
    raise ValueError(f"Expected `method` to be a known method, got {name!r}.")  # pragma: no cover
