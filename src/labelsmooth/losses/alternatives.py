"""The alternatives a study compares label smoothing against: the confidence penalty and the focal loss."""

from __future__ import annotations

import torch

from .._numerics import apply_reduction, compute_dtype
from .._validation import Reduction, check_number, check_reduction, expected
from ._module import FunctionalLoss
from .cross_entropy import prepare_cross_entropy_args

__all__ = ["ConfidencePenaltyLoss", "FocalLoss", "confidence_penalty", "flsd53_gamma", "focal_loss"]


def _index_rows(input, target, weight, ignore_index, reduction):
    """Validated rows for the index-target alternatives (confidence penalty, focal)."""
    args = prepare_cross_entropy_args(
        input, target, weight, ignore_index, reduction, 0.0, None, "torch", False
    )
    if not args.index_target:
        raise TypeError(expected("target", "to hold integer class indices", target.dtype))
    z = args.logits.to(compute_dtype(input.dtype))
    valid = args.target != ignore_index
    safe = torch.where(valid, args.target, torch.zeros_like(args.target)).long()
    logq = torch.log_softmax(z, dim=-1)
    logq_y = logq.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    wy = weight.to(z)[safe] if weight is not None else torch.ones_like(logq_y)
    wy = wy.masked_fill(~valid, 0)
    return args, logq, logq_y, wy


def _check_beta(beta: float) -> None:
    check_number("beta", beta, lo=0)


def confidence_penalty(
    input: torch.Tensor,
    target: torch.Tensor,
    beta: float = 0.1,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Cross-entropy minus a bonus for predictive entropy (Pereyra et al. 2017).

    .. math::

        \\ell = w_y\\,[-\\log q_y - \\beta\\,H(q)], \\qquad H(q) = -\\sum_k q_k \\log q_k

    Where label smoothing pulls the prediction toward a fixed target, the confidence penalty rewards
    spread-out predictions directly (it is label smoothing with the KL's arguments swapped, up to a
    constant). Rows with ``ignore_index`` are dropped; ``"mean"`` divides by ``sum w_y``.

    Parameters
    ----------
    input : Tensor ``(N, C)`` or ``(N, C, d1, ...)`` or ``(C,)``
        Logits.
    target : LongTensor
        Class indices, shaped as for :func:`cross_entropy`.
    beta : float
        Strength, >= 0.
    weight, ignore_index, reduction
        As in :func:`cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import confidence_penalty
    >>> round(confidence_penalty(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0]), beta=0.1).item(), 4)
    0.1792
    """
    _check_beta(beta)
    args, logq, logq_y, wy = _index_rows(input, target, weight, ignore_index, reduction)
    entropy = -(logq.exp() * logq).sum(-1)
    loss = wy * (-logq_y - beta * entropy)
    return apply_reduction(loss, wy.sum(), reduction, args.out_shape).to(input.dtype)


FLSD53 = ("flsd-53", "flsd53")


def _check_gamma(gamma: object) -> float:
    """A scalar focal gamma: a float >= 0 (strings and tensors are handled by the caller)."""
    if isinstance(gamma, str):
        if gamma.lower() not in FLSD53:
            raise ValueError(expected("gamma", 'to be a float >= 0, a tensor, or "flsd-53"', gamma))
        return 0.0
    what = 'to be a float >= 0, a tensor, or "flsd-53"'
    return check_number("gamma", gamma, lo=0, what=what, type_what=what)


def flsd53_gamma(prob_true: torch.Tensor) -> torch.Tensor:
    """The sample-dependent focal gamma FLSD-53 (Mukhoti et al. 2020): 5 if q_y < 0.2, else 3.

    >>> import torch
    >>> from labelsmooth.losses import flsd53_gamma
    >>> flsd53_gamma(torch.tensor([0.1, 0.2, 0.9]))
    tensor([5., 3., 3.])
    """
    return torch.where(prob_true < 0.2, 5.0, 3.0).to(prob_true.dtype)


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    gamma: float | str | torch.Tensor = 2.0,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017), with the FLSD-53 schedule of Mukhoti et al. 2020.

    .. math::

        \\ell = -w_y\\,(1 - q_y)^{\\gamma}\\,\\log q_y

    ``gamma = 0`` is cross-entropy. ``gamma="flsd-53"`` picks gamma per sample from the (detached)
    predicted probability of the true class: 5 where ``q_y < 0.2``, 3 otherwise, which Mukhoti et al.
    found to calibrate well. Computed in log space; half inputs in float32.

    Parameters
    ----------
    input, target, weight, ignore_index, reduction
        As in :func:`cross_entropy` (index targets only).
    gamma : float >= 0, Tensor of per-row gammas, or ``"flsd-53"``

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import focal_loss
    >>> z, y = torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])
    >>> round(focal_loss(z, y, gamma=2.0).item(), 5)
    0.01109
    >>> round(focal_loss(z, y, gamma=0.0).item(), 4)  # cross-entropy
    0.2413
    """
    args, _, logq_y, wy = _index_rows(input, target, weight, ignore_index, reduction)
    q_y = logq_y.exp()
    g: float | torch.Tensor
    if isinstance(gamma, str):
        _check_gamma(gamma)
        g = flsd53_gamma(q_y.detach())
    elif isinstance(gamma, torch.Tensor):
        g = gamma.to(q_y).reshape(-1) if gamma.dim() else gamma.to(q_y)
        if g.dim() and g.shape[0] != q_y.shape[0]:
            raise ValueError(expected("gamma", f"to be a scalar or of shape ({q_y.shape[0]},)", gamma))
        if bool((g < 0).any()):
            raise ValueError(expected("gamma", ">= 0", gamma))
    else:
        g = _check_gamma(gamma)
    # (1 - q_y)^gamma, kept away from 0 so that gamma < 1 has a finite gradient at q_y = 1.
    one_minus = (-torch.expm1(logq_y)).clamp_min(torch.finfo(q_y.dtype).tiny)
    loss = -wy * one_minus.pow(g) * logq_y
    return apply_reduction(loss, wy.sum(), reduction, args.out_shape).to(input.dtype)


class ConfidencePenaltyLoss(FunctionalLoss):
    """Module form of :func:`confidence_penalty`."""

    weight: torch.Tensor | None
    function = staticmethod(confidence_penalty)

    def __init__(
        self,
        beta: float = 0.1,
        *,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        _check_beta(beta)
        check_reduction(reduction)
        self._keep(locals(), buffers=("weight",))


class FocalLoss(FunctionalLoss):
    """Module form of :func:`focal_loss`."""

    weight: torch.Tensor | None
    function = staticmethod(focal_loss)

    def __init__(
        self,
        gamma: float | str | torch.Tensor = 2.0,
        *,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        if not isinstance(gamma, torch.Tensor):
            _check_gamma(gamma)
        check_reduction(reduction)
        self._keep(locals(), buffers=("weight",))
