"""labelsmooth: label smoothing for PyTorch, exact and fast, with honest measurements.

The public names are listed here once. Submodules hold the rest: :mod:`labelsmooth.theory` (the chapter's
closed forms), :mod:`labelsmooth.metrics` (every calibration metric), :mod:`labelsmooth.calibration`
(temperature scaling), :mod:`labelsmooth.kernels` (fast paths), :mod:`labelsmooth.plots` (needs the
``plots`` extra) and :mod:`labelsmooth.study` (needs the ``study`` extra).
"""

from . import calibration, kernels, metrics, theory
from .calibration import TemperatureScaler
from .kernels import fused_cross_entropy, linear_cross_entropy
from .losses import (
    BCEWithLogitsLoss,
    ConfidencePenaltyLoss,
    CrossEntropyLoss,
    FocalLoss,
    binary_cross_entropy_with_logits,
    confidence_penalty,
    cross_entropy,
    discriminator_loss,
    focal_loss,
    generator_loss,
)
from .metrics import (
    CalibrationMeter,
    bootstrap,
    calibration_summary,
    classwise_calibration_error,
    expected_calibration_error,
    logit_gap,
    smooth_calibration_error,
)
from .targets import class_prior, convert_smoothing, smooth_labels

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogitsLoss",
    "CalibrationMeter",
    "ConfidencePenaltyLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "TemperatureScaler",
    "__version__",
    "binary_cross_entropy_with_logits",
    "bootstrap",
    "calibration",
    "calibration_summary",
    "class_prior",
    "classwise_calibration_error",
    "confidence_penalty",
    "convert_smoothing",
    "cross_entropy",
    "discriminator_loss",
    "expected_calibration_error",
    "focal_loss",
    "fused_cross_entropy",
    "generator_loss",
    "kernels",
    "linear_cross_entropy",
    "logit_gap",
    "metrics",
    "smooth_calibration_error",
    "smooth_labels",
    "theory",
]
