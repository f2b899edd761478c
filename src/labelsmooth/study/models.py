"""Models a study trains: logistic regression, an MLP, a small CNN; and the protocol for the user's own.

The protocol (checked by :func:`supports_projection`): ``model(x)`` returns logits (N, K); optionally
``model.features(x)`` returns the penultimate activations (N, D) and ``model.head`` is the last
``nn.Linear(D, K)``, so that ``model(x) == model.head(model.features(x))``. With both, the report draws the
penultimate-layer projection (Müller et al., 2019); without them, that figure is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from labelsmooth._validation import expected
from labelsmooth.study.config import ModelConfig

ModelFn = Callable[[tuple[int, ...], int], nn.Module]
"""``model_fn(input_shape, num_classes) -> nn.Module``; input_shape is (D,) or (C, H, W)."""


def supports_projection(model: nn.Module) -> bool:
    """True when the model follows the features/head protocol."""
    return callable(getattr(model, "features", None)) and isinstance(getattr(model, "head", None), nn.Linear)


class LogisticRegression(nn.Module):
    """Multinomial logistic regression; its "penultimate features" are the (flattened) inputs."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(math.prod(input_shape), num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """``depth`` hidden ReLU layers of ``width`` units, then a linear head. No dropout, no batch norm:
    nothing but the training target regularises it."""

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, width: int = 128, depth: int = 2
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d_in = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.ReLU()]
            d_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks (``channels``, 2 x ``channels``), a pool to 2 x 2, a ReLU layer of ``width``,
    a linear head. Sized for 8x8 digits up to 32x32 CIFAR-10."""

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, channels: int = 16, width: int = 128
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(expected("model.kind", "'cnn' only for image data (N, C, H, W)", "cnn"))
        c = input_shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * channels, width),
            nn.ReLU(),
        )
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model a config names, for inputs of ``input_shape`` (without the batch dimension)."""
    if cfg.kind == "logreg":
        return LogisticRegression(input_shape, num_classes)
    if cfg.kind == "mlp":
        return MLP(input_shape, num_classes, cfg.width, cfg.depth)
    if cfg.kind == "cnn":
        return SmallCNN(input_shape, num_classes, cfg.channels, cfg.width)
    raise ValueError(expected("model.kind", "to be one of 'logreg', 'mlp', 'cnn'", cfg.kind))


def model_name(model_fn: ModelFn | None) -> str | None:
    """A stable name for a user's model_fn (part of the run hash: rename it to force re-runs)."""
    if model_fn is None:
        return None
    return f"{getattr(model_fn, '__module__', '?')}.{getattr(model_fn, '__qualname__', repr(model_fn))}"
