"""Label-smoothed losses: the reference semantics every fast path in :mod:`labelsmooth.kernels` reproduces.

- :mod:`.cross_entropy` — :func:`cross_entropy` and :class:`CrossEntropyLoss`, the drop-in for PyTorch's.
- :mod:`.binary` — binary / multi-label cross-entropy with two- or one-sided smoothing.
- :mod:`.gan` — the GAN discriminator loss with one- or two-sided smoothed targets, the generator loss.
- :mod:`.alternatives` — the confidence penalty and the focal loss (FLSD-53).
"""

from .alternatives import ConfidencePenaltyLoss, FocalLoss, confidence_penalty, flsd53_gamma, focal_loss
from .binary import BCEWithLogitsLoss, binary_cross_entropy_with_logits
from .cross_entropy import CEArgs, CrossEntropyLoss, cross_entropy, prepare_cross_entropy_args
from .gan import discriminator_loss, generator_loss

__all__ = [
    "BCEWithLogitsLoss",
    "CEArgs",
    "ConfidencePenaltyLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "binary_cross_entropy_with_logits",
    "confidence_penalty",
    "cross_entropy",
    "discriminator_loss",
    "flsd53_gamma",
    "focal_loss",
    "generator_loss",
    "prepare_cross_entropy_args",
]
