"""labelsmooth: label smoothing for PyTorch, exact and fast, with honest measurements.

The public names are listed here once. Submodules hold the rest: :mod:`labelsmooth.theory` (the chapter's
closed forms), :mod:`labelsmooth.metrics` (every calibration metric), :mod:`labelsmooth.calibration`
(temperature scaling), :mod:`labelsmooth.kernels` (fast paths), :mod:`labelsmooth.plots` (needs the
``plots`` extra) and :mod:`labelsmooth.study` (needs the ``study`` extra); :mod:`labelsmooth.privacy`
(membership-inference scores and their evaluation).
"""

from . import calibration, kernels, metrics, privacy, theory
from .calibration import TemperatureScaler
from .kernels import fused_cross_entropy, linear_cross_entropy
from .losses import (
    BCEWithLogitsLoss,
    ConfidencePenaltyLoss,
    CrossEntropyLoss,
    FocalLoss,
    OnlineLabelSmoothing,
    PreferenceRewards,
    binary_cross_entropy_with_logits,
    confidence_penalty,
    cross_entropy,
    discriminator_loss,
    distillation_loss,
    focal_loss,
    forward_corrected_loss,
    generator_loss,
    hl_gauss_loss,
    label_relaxation_loss,
    preference_loss,
    preference_rewards,
    symmetric_transition,
    teacher_free_loss,
    teacher_free_target,
    two_hot_loss,
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
from .targets import (
    Support,
    class_prior,
    classwise_smoothing,
    convert_smoothing,
    histogram_mean,
    hl_gauss_targets,
    smooth_labels,
    two_hot_targets,
)

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogitsLoss",
    "CalibrationMeter",
    "ConfidencePenaltyLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "OnlineLabelSmoothing",
    "PreferenceRewards",
    "Support",
    "TemperatureScaler",
    "__version__",
    "binary_cross_entropy_with_logits",
    "bootstrap",
    "calibration",
    "calibration_summary",
    "class_prior",
    "classwise_calibration_error",
    "classwise_smoothing",
    "confidence_penalty",
    "convert_smoothing",
    "cross_entropy",
    "discriminator_loss",
    "distillation_loss",
    "expected_calibration_error",
    "focal_loss",
    "forward_corrected_loss",
    "fused_cross_entropy",
    "generator_loss",
    "histogram_mean",
    "hl_gauss_loss",
    "hl_gauss_targets",
    "kernels",
    "label_relaxation_loss",
    "linear_cross_entropy",
    "logit_gap",
    "metrics",
    "preference_loss",
    "preference_rewards",
    "privacy",
    "smooth_calibration_error",
    "smooth_labels",
    "symmetric_transition",
    "teacher_free_loss",
    "teacher_free_target",
    "theory",
    "two_hot_loss",
    "two_hot_targets",
]
