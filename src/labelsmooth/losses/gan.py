r"""GAN losses with smoothed discriminator targets: one-sided (Salimans et al. 2016) or two-sided.

The discriminator ``D(x) = sigmoid(logit(x))`` is trained toward target ``a`` on real samples and ``b`` on
generated ones. Hard targets are ``(a, b) = (1, 0)``; one-sided smoothing lowers only ``a`` (0.9 is the
usual choice); two-sided smoothing also raises ``b``. With targets ``(a, b)`` the optimal discriminator is
``D*(x) = (a p_data + b p_model) / (p_data + p_model)`` (:func:`labelsmooth.theory.optimal_discriminator`):
a fake target ``b > 0`` leaves ``D* = b`` wherever only the generator puts mass, so the generator is no
longer pushed away from regions without data. That is why only the real side is smoothed.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from .._numerics import compute_dtype
from .._validation import check_choice, check_float_tensor, check_scalar_range, expected

__all__ = ["discriminator_loss", "generator_loss"]

GanReduction = Literal["mean", "sum"]
GAN_REDUCTIONS: tuple[GanReduction, ...] = get_args(GanReduction)


def _bce_to(logits: torch.Tensor, target: float, reduction: GanReduction) -> torch.Tensor:
    """``-[t log sigmoid(z) + (1 - t) log sigmoid(-z)]`` reduced, in log space."""
    z = logits.to(compute_dtype(logits.dtype))
    loss = -(target * nn.functional.logsigmoid(z) + (1.0 - target) * nn.functional.logsigmoid(-z))
    return loss.mean() if reduction == "mean" else loss.sum()


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    real_target: float = 1.0,
    fake_target: float = 0.0,
    reduction: GanReduction = "mean",
) -> torch.Tensor:
    r"""The discriminator's binary cross-entropy with real targets ``a`` and fake targets ``b``.

    .. math::

        \ell = \frac{1}{N_r}\sum_{i=1}^{N_r} -\bigl[a \log\sigma(r_i) + (1-a)\log\sigma(-r_i)\bigr]
             + \frac{1}{N_f}\sum_{j=1}^{N_f} -\bigl[b \log\sigma(f_j) + (1-b)\log\sigma(-f_j)\bigr]

    with :math:`r_i` the logits on real samples, :math:`f_j` those on generated samples, :math:`\sigma` the
    logistic function, ``a = real_target`` and ``b = fake_target``. ``reduction="sum"`` replaces both
    means by sums. Hard targets ``(1, 0)`` give the loss of Goodfellow et al. (2014); ``(0.9, 0)`` is
    one-sided label smoothing (Salimans et al. 2016); ``(0.9, 0.1)`` two-sided smoothing, which the same
    paper advises against (see :func:`labelsmooth.theory.optimal_discriminator`). Per batch the loss is
    minimised at ``sigmoid(logit) = a`` on data-only regions and ``b`` on generator-only regions.

    In :func:`labelsmooth.binary_cross_entropy_with_logits` terms, ``real_target = 1 - a_s`` and
    ``fake_target = 0`` is ``label_smoothing=a_s, one_sided=True``; ``(1 - a_s/2, a_s/2)`` is two-sided
    ``label_smoothing=a_s``.

    Parameters
    ----------
    real_logits : Tensor of any shape
        ``D``'s logits on real samples (float; half inputs are computed in float32 and cast back).
    fake_logits : Tensor of any shape
        ``D``'s logits on generated samples, same dtype.
    real_target, fake_target : float in [0, 1]
        ``a`` and ``b``; defaults 1 and 0 (hard targets).
    reduction : {"mean", "sum"}
        Mean over each side then summed (default), or a plain sum of every term.

    Returns
    -------
    Tensor
        A scalar in the logits' dtype.

    Raises
    ------
    TypeError
        Non-tensor or non-float logits, non-number targets.
    ValueError
        Targets outside [0, 1], a reduction other than "mean" / "sum", mismatched dtypes.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import discriminator_loss
    >>> real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
    >>> round(discriminator_loss(real, fake).item(), 4)
    0.7314
    >>> round(discriminator_loss(real, fake, real_target=0.9).item(), 4)         # one-sided
    0.9814
    >>> round(discriminator_loss(real, fake, real_target=0.9, fake_target=0.1).item(), 4)
    1.0064
    """
    check_float_tensor("real_logits", real_logits)
    check_float_tensor("fake_logits", fake_logits)
    if fake_logits.dtype != real_logits.dtype:
        raise ValueError(
            expected("fake_logits", f"of dtype {real_logits.dtype} like `real_logits`", fake_logits.dtype)
        )
    a = check_scalar_range("real_target", real_target, 0.0, 1.0)
    b = check_scalar_range("fake_target", fake_target, 0.0, 1.0)
    check_choice("reduction", reduction, GAN_REDUCTIONS)
    out = _bce_to(real_logits, a, reduction) + _bce_to(fake_logits, b, reduction)
    return out.to(real_logits.dtype)


def generator_loss(fake_logits: torch.Tensor, *, reduction: GanReduction = "mean") -> torch.Tensor:
    r"""The non-saturating generator loss, ``-log D(G(z))`` (Goodfellow et al. 2014).

    .. math::

        \ell = \frac{1}{N_f}\sum_{j=1}^{N_f} -\log\sigma(f_j)
             = \frac{1}{N_f}\sum_j \operatorname{softplus}(-f_j)

    with :math:`f_j` the discriminator's logits on generated samples. The generator's target stays 1 under
    any discriminator smoothing (Salimans et al. 2016 smooth only the discriminator). Its gradient
    :math:`-\sigma(-f_j)` stays large where the discriminator rejects the samples, unlike the saturating
    :math:`\log(1 - \sigma(f_j))`.

    Parameters
    ----------
    fake_logits : Tensor of any shape
        Float logits (half inputs computed in float32 and cast back).
    reduction : {"mean", "sum"}

    Returns
    -------
    Tensor
        A scalar in the logits' dtype: the mean of the terms over the samples, or their sum.

    Raises
    ------
    TypeError
        Non-tensor or non-float logits.
    ValueError
        A reduction other than "mean" / "sum".

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import generator_loss
    >>> round(generator_loss(torch.tensor([-1.0, 0.5])).item(), 4)
    0.8937
    """
    check_float_tensor("fake_logits", fake_logits)
    check_choice("reduction", reduction, GAN_REDUCTIONS)
    return _bce_to(fake_logits, 1.0, reduction).to(fake_logits.dtype)
