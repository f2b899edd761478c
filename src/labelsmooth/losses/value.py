"""Value learning as classification: cross-entropy against a smoothed histogram of a scalar target.

Instead of regressing a scalar ``y`` with the squared error, predict logits ``z`` over ``B`` fixed bins
(a :class:`~labelsmooth.targets.Support`) and minimise the cross-entropy

.. math::

    \\ell(z, y) = -\\sum_{i=1}^{B} p_i(y) \\log \\operatorname{softmax}(z)_i ,

where ``p(y)`` is the HL-Gauss histogram (:func:`~labelsmooth.targets.hl_gauss_targets`, a Gaussian of
width ``sigma`` integrated over each bin) or the two-hot histogram
(:func:`~labelsmooth.targets.two_hot_targets`). The prediction is the histogram's mean,
:func:`~labelsmooth.targets.histogram_mean`. The gradient with respect to the logits is
``softmax(z) - p(y)``, bounded whatever the size of the error — the robustness to noisy, heavy-tailed
targets credited for the gains of Farebrother et al. 2024 (*Stop Regressing*, ICML).

Both losses build only the ``(N, B)`` target, never anything larger.
"""

from __future__ import annotations

import torch

from .._validation import Reduction, check_float_tensor, check_reduction, expected
from ..targets import SupportLike, as_support, check_sigma, hl_gauss_targets, two_hot_targets

__all__ = ["hl_gauss_loss", "two_hot_loss"]


def _check_value_args(input: torch.Tensor, target: torch.Tensor, bins: int, reduction: str) -> None:
    check_float_tensor("input", input)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    if not target.is_floating_point():
        what = "to be a floating-point tensor (cast integer values)"
        raise TypeError(expected("target", what, target.dtype))
    if target.numel() and not bool(torch.isfinite(target).all()):
        raise ValueError(expected("target", "to be finite", target))
    check_reduction(reduction)
    if input.dim() == 0 or input.shape[-1] != bins:
        raise ValueError(expected("input", f"with last dimension {bins} (the bins of the support)", input))
    if tuple(target.shape) != tuple(input.shape[:-1]):
        what = f"of shape {tuple(input.shape[:-1])} (input without the bins)"
        raise ValueError(expected("target", what, target))


def _histogram_cross_entropy(input: torch.Tensor, p: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    cdtype = p.dtype if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    logq = torch.log_softmax(input.to(cdtype), dim=-1)
    loss = -(p.to(cdtype).detach() * logq).sum(-1)
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    else:
        out = loss.mean()
    return out.to(input.dtype)


def hl_gauss_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    support: SupportLike,
    sigma: float,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Cross-entropy between the logits and the HL-Gauss histogram of a scalar target.

    .. math::

        \\ell_n = -\\sum_i p_i(y_n) \\log \\operatorname{softmax}(z_n)_i, \\qquad
        p_i(y) = \\frac{\\Phi(\\frac{e_{i+1} - y}{\\sigma}) - \\Phi(\\frac{e_i - y}{\\sigma})}
                      {\\Phi(\\frac{e_B - y}{\\sigma}) - \\Phi(\\frac{e_0 - y}{\\sigma})}

    with ``e_0 < ... < e_B`` the support's edges and ``Phi`` the standard normal CDF. Targets outside
    ``[e_0, e_B]`` are clipped to it. Recommended ``sigma = 0.75 * support.width`` (Farebrother et al.).
    Predict with ``histogram_mean(input, support, from_logits=True)``.

    Parameters
    ----------
    input : floating-point Tensor ``(*, B)``
        Logits over the ``B`` bins (``(N, B)`` for a batch). Half inputs are computed in float32 and the
        result is cast back.
    target : floating-point Tensor ``(*)``
        Scalar targets; no gradient flows into them.
    support : Support or edges ``(B + 1,)``
    sigma : float
        Width of the Gaussian in the units of ``target``, > 0.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns shape ``(*)``; the mean of an empty batch is NaN, as in PyTorch.

    Raises
    ------
    ValueError
        ``sigma <= 0``; ``input``'s last dimension not ``B``; ``target`` not of shape ``input.shape[:-1]``;
        a support that is not strictly increasing; unknown reduction; non-finite targets.
    TypeError
        Non-float ``input`` or ``target``.

    References
    ----------
    Farebrother et al., *Stop Regressing: Training Value Functions via Classification for Scalable Deep
    RL*, ICML 2024; Imani and White, ICML 2018.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import Support, hl_gauss_loss
    >>> s = Support.uniform(0.0, 4.0, bins=4)
    >>> round(hl_gauss_loss(torch.zeros(1, 4), torch.tensor([1.5]), s, sigma=0.75).item(), 4)
    1.3863
    >>> z = torch.tensor([[0.0, 3.0, 1.0, -2.0]])
    >>> round(hl_gauss_loss(z, torch.tensor([1.5]), s, sigma=0.75).item(), 4)
    1.4657
    """
    support = as_support(support)
    sigma = check_sigma(sigma)
    _check_value_args(input, target, support.bins, reduction)
    p = hl_gauss_targets(target.to(input.device), support, sigma)
    return _histogram_cross_entropy(input, p, reduction)


def two_hot_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    support: SupportLike,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Cross-entropy between the logits and the two-hot histogram of a scalar target.

    .. math::

        \\ell_n = -(1 - w_n) \\log \\operatorname{softmax}(z_n)_k
                 - w_n \\log \\operatorname{softmax}(z_n)_{k+1},
        \\qquad w_n = \\frac{y_n - c_k}{c_{k+1} - c_k},

    with ``c_k <= y_n <= c_{k+1}`` the two nearest bin centres (MuZero, DreamerV3). Targets outside
    ``[c_0, c_{B-1}]`` are clipped to it.

    Parameters
    ----------
    input : floating-point Tensor ``(*, B)``
        Logits over the ``B`` bins.
    target : floating-point Tensor ``(*)``
    support : Support or edges ``(B + 1,)``
    reduction : {"mean", "sum", "none"}

    Raises
    ------
    ValueError, TypeError
        As :func:`hl_gauss_loss`, for ``input``, ``target``, ``support`` and ``reduction`` (there is no
        ``sigma``).

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import Support, two_hot_loss
    >>> s = Support.uniform(0.0, 4.0, bins=4)
    >>> z = torch.tensor([[0.0, 3.0, 1.0, -2.0]])
    >>> round(two_hot_loss(z, torch.tensor([1.75]), s).item(), 4)
    0.6755
    """
    support = as_support(support)
    _check_value_args(input, target, support.bins, reduction)
    return _histogram_cross_entropy(input, two_hot_targets(target.to(input.device), support), reduction)
