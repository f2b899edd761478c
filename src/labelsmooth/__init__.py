"""labelsmooth: label smoothing for PyTorch, exact and fast, with honest measurements.

The public names are listed here once; everything else is reached through its module
(``labelsmooth.theory``, ``labelsmooth.metrics``, ``labelsmooth.calibration``, ``labelsmooth.plots``,
``labelsmooth.study``).
"""

from . import theory
from .losses import (
    BCEWithLogitsLoss,
    ConfidencePenaltyLoss,
    CrossEntropyLoss,
    FocalLoss,
    binary_cross_entropy_with_logits,
    confidence_penalty,
    cross_entropy,
    focal_loss,
)
from .targets import class_prior, convert_smoothing, smooth_labels

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogitsLoss",
    "ConfidencePenaltyLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "__version__",
    "binary_cross_entropy_with_logits",
    "class_prior",
    "confidence_penalty",
    "convert_smoothing",
    "cross_entropy",
    "focal_loss",
    "smooth_labels",
    "theory",
]
