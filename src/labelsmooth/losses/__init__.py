"""Label-smoothed losses: the reference semantics every fast path in :mod:`labelsmooth.kernels` reproduces.

- :mod:`.cross_entropy` — :func:`cross_entropy` and :class:`CrossEntropyLoss`, the drop-in for PyTorch's.
- :mod:`.binary` — binary / multi-label cross-entropy with two- or one-sided smoothing.
- :mod:`.gan` — the GAN discriminator loss with one- or two-sided smoothed targets, the generator loss.
- :mod:`.alternatives` — the confidence penalty and the focal loss (FLSD-53).
- :mod:`.distillation` — knowledge distillation (Hinton et al.) and teacher-free distillation (Tf-KD_reg).
- :mod:`.noisy` — online label smoothing, label relaxation, forward loss correction (noisy labels).

- :mod:`.value` — value learning as classification: HL-Gauss and two-hot cross-entropy.
- :mod:`.preference` — DPO with smoothed preferences: cDPO and rDPO.
"""

import warnings

from .alternatives import ConfidencePenaltyLoss, FocalLoss, confidence_penalty, flsd53_gamma, focal_loss
from .binary import BCEWithLogitsLoss, binary_cross_entropy_with_logits
from .cross_entropy import CrossEntropyAux, CrossEntropyLoss, cross_entropy
from .distillation import distillation_loss, teacher_free_loss, teacher_free_target
from .gan import discriminator_loss, generator_loss
from .noisy import OnlineLabelSmoothing, forward_corrected_loss, label_relaxation_loss, symmetric_transition
from .preference import PreferenceRewards, preference_loss, preference_rewards
from .value import hl_gauss_loss, two_hot_loss

__all__ = [
    "BCEWithLogitsLoss",
    "ConfidencePenaltyLoss",
    "CrossEntropyAux",
    "CrossEntropyLoss",
    "FocalLoss",
    "OnlineLabelSmoothing",
    "PreferenceRewards",
    "binary_cross_entropy_with_logits",
    "confidence_penalty",
    "cross_entropy",
    "discriminator_loss",
    "distillation_loss",
    "flsd53_gamma",
    "focal_loss",
    "forward_corrected_loss",
    "generator_loss",
    "hl_gauss_loss",
    "label_relaxation_loss",
    "preference_loss",
    "preference_rewards",
    "symmetric_transition",
    "teacher_free_loss",
    "teacher_free_target",
    "two_hot_loss",
]

# Internal plumbing that used to be exported; it lives in .cross_entropy (kept importable from here for one
# release, with a DeprecationWarning).
_MOVED = {"CEArgs", "prepare_cross_entropy_args"}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(
            f"labelsmooth.losses.{name} is internal and leaves labelsmooth.losses in the next release; "
            f"import it from labelsmooth.losses.cross_entropy",
            DeprecationWarning,
            stacklevel=2,
        )
        import importlib

        return getattr(importlib.import_module(".cross_entropy", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
