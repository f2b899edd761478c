"""Binary and multi-label cross-entropy with smoothed targets (the chapter's formula with K = 2)."""

from __future__ import annotations

import torch
from torch import nn

from .._numerics import compute_dtype
from .._validation import Reduction, check_float_tensor, check_reduction, check_scalar_range, expected
from ._module import FunctionalLoss

__all__ = ["BCEWithLogitsLoss", "binary_cross_entropy_with_logits"]


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    pos_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    *,
    one_sided: bool = False,
) -> torch.Tensor:
    """Binary / multi-label cross-entropy with smoothed targets.

    Each target ``t`` in [0, 1] is smoothed toward 1/2 (the chapter's formula with K = 2, the same as
    Keras), or only on the positive side:

    .. math::

        t' = (1 - a)\\,t + a/2 \\quad\\text{(two-sided)}, \\qquad
        t' = (1 - a)\\,t \\quad\\text{(one\\_sided=True: 1 \\to 1 - a, 0 stays 0)}

    and the loss is :func:`torch.nn.functional.binary_cross_entropy_with_logits` against ``t'``. One-sided
    smoothing is how GAN discriminators use it (Salimans et al. 2016).

    Parameters
    ----------
    input : Tensor of any shape
        Logits. Half inputs are computed in float32 and cast back.
    target : Tensor of the same shape
        Targets in [0, 1].
    weight, reduction, pos_weight
        As in PyTorch.
    label_smoothing : float
        ``a`` in [0, 1].
    one_sided : bool
        Smooth only the positives.

    Raises
    ------
    ValueError
        Shape mismatch, smoothing outside [0, 1], unknown reduction.
    TypeError
        Integer logits or targets.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import binary_cross_entropy_with_logits as bce
    >>> x, t = torch.tensor([3.0, -2.0]), torch.tensor([1.0, 0.0])
    >>> round(bce(x, t, label_smoothing=0.2).item(), 4)
    0.3378
    >>> round(bce(x, t, label_smoothing=0.2, one_sided=True).item(), 4)
    0.3878
    """
    check_float_tensor("input", input)
    check_float_tensor("target", target)
    check_reduction(reduction)
    a = check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(expected("target", f"of shape {tuple(input.shape)}", target))
    cdtype = compute_dtype(input.dtype)
    t = target.to(cdtype)
    if a:
        t = (1 - a) * t if one_sided else (1 - a) * t + a / 2
    out = nn.functional.binary_cross_entropy_with_logits(
        input.to(cdtype),
        t,
        weight=weight.to(cdtype) if weight is not None else None,
        reduction=reduction,
        pos_weight=pos_weight.to(cdtype) if pos_weight is not None else None,
    )
    return out.to(input.dtype)


class BCEWithLogitsLoss(FunctionalLoss):
    """Module form of :func:`binary_cross_entropy_with_logits`."""

    weight: torch.Tensor | None
    pos_weight: torch.Tensor | None
    function = staticmethod(binary_cross_entropy_with_logits)

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        reduction: Reduction = "mean",
        pos_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        *,
        one_sided: bool = False,
    ) -> None:
        super().__init__()
        check_reduction(reduction)
        check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self._keep(locals(), buffers=("weight", "pos_weight"))
