"""Label-smoothed losses: the reference semantics every fast path in :mod:`labelsmooth.kernels` reproduces.

- :mod:`.cross_entropy` — :func:`cross_entropy` and :class:`CrossEntropyLoss`, the drop-in for PyTorch's.
- :mod:`.binary` — binary / multi-label cross-entropy with two- or one-sided smoothing.
- :mod:`.alternatives` — the confidence penalty and the focal loss (FLSD-53).
- :mod:`.value` — value learning as classification: HL-Gauss and two-hot cross-entropy.
- :mod:`.preference` — DPO with smoothed preferences: cDPO and rDPO.
"""

from .alternatives import ConfidencePenaltyLoss, FocalLoss, confidence_penalty, flsd53_gamma, focal_loss
from .binary import BCEWithLogitsLoss, binary_cross_entropy_with_logits
from .cross_entropy import CEArgs, CrossEntropyLoss, cross_entropy, prepare_cross_entropy_args
from .preference import PreferenceRewards, preference_loss, preference_rewards
from .value import hl_gauss_loss, two_hot_loss

__all__ = [
    "BCEWithLogitsLoss",
    "CEArgs",
    "ConfidencePenaltyLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "PreferenceRewards",
    "binary_cross_entropy_with_logits",
    "confidence_penalty",
    "cross_entropy",
    "flsd53_gamma",
    "focal_loss",
    "hl_gauss_loss",
    "preference_loss",
    "preference_rewards",
    "prepare_cross_entropy_args",
    "two_hot_loss",
]
