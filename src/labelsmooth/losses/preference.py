"""Preference optimisation with smoothed (noisy) preference labels: DPO, conservative DPO and robust DPO.

Direct Preference Optimisation (Rafailov et al. 2023) fits a policy ``pi`` to pairs (chosen ``y_w``,
rejected ``y_l``) through the log-ratio margin against a frozen reference ``pi_ref``:

.. math::

    h = \\bigl(\\log\\pi(y_w) - \\log\\pi_{ref}(y_w)\\bigr)
      - \\bigl(\\log\\pi(y_l) - \\log\\pi_{ref}(y_l)\\bigr),
    \\qquad \\ell_{DPO} = -\\log\\sigma(\\beta h),

whose infimum is at ``h = +inf``: DPO drives margins apart without bound, the preference-learning twin of
hard targets driving logits apart. Label smoothing of the preference label gives two corrections:

- **cDPO** (conservative DPO, Mitchell 2023): the label is 1 with probability ``1 - e`` and 0 with
  probability ``e``, so ``(1 - e)(-log sigma(beta h)) + e(-log sigma(-beta h))``, the binary cross-entropy
  with a smoothed label. Its optimum is finite: ``beta h* = log((1 - e)/e)``
  (:func:`labelsmooth.theory.cdpo_optimal_margin`). TRL: ``DPOConfig(label_smoothing=e)`` with the default
  ``loss_type="sigmoid"``; torchtune: ``DPOLoss(label_smoothing=e)``.
- **rDPO** (robust DPO, Chowdhury, Kini and Natarajan, ICML 2024):
  ``[(1 - e)(-log sigma(beta h)) - e(-log sigma(-beta h))] / (1 - 2e)``, an unbiased estimate of the clean
  DPO loss when each label was flipped independently with probability ``e``. TRL:
  ``DPOConfig(loss_type="robust", label_smoothing=e)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

from .._validation import (
    Reduction,
    check_bool,
    check_float_tensor,
    check_number,
    check_reduction,
    expected,
    is_number,
)

__all__ = ["PreferenceRewards", "check_preference_smoothing", "preference_loss", "preference_rewards"]

_NAMES = (
    "policy_chosen_logps",
    "policy_rejected_logps",
    "reference_chosen_logps",
    "reference_rejected_logps",
)


class PreferenceRewards(NamedTuple):
    """The implicit rewards of DPO, named as TRL logs them (``rewards/chosen``, ``rewards/rejected``,
    ``rewards/margins``, ``rewards/accuracies``)."""

    chosen: torch.Tensor
    """``beta * (log pi(y_w) - log pi_ref(y_w))``, shape ``(N,)``."""
    rejected: torch.Tensor
    """``beta * (log pi(y_l) - log pi_ref(y_l))``, shape ``(N,)``."""
    margins: torch.Tensor
    """``chosen - rejected = beta * h``, shape ``(N,)``."""
    accuracies: torch.Tensor
    """``chosen > rejected`` as floats (1.0 or 0.0), shape ``(N,)``."""


def check_preference_smoothing(label_smoothing: object, *, robust: bool) -> float:
    """The preference flip rate ``e`` of cDPO / rDPO: a float in ``[0, 0.5)``.

    At ``e = 0.5`` every pair's smoothed label is 1/2 and no preference is left to learn; rDPO
    would divide by ``1 - 2e = 0``. Both are rejected with a message that says so.
    """
    why = ""
    if is_number(label_smoothing) and label_smoothing == 0.5:
        why = (
            " (robust=True divides by 1 - 2e, which is zero at e = 0.5)"
            if robust
            else " (at e = 0.5 every smoothed label is 1/2: no preference is left to learn)"
        )
    return check_number(
        "label_smoothing", label_smoothing, lo=0, hi=0.5, hi_open=True, what="in [0, 0.5)" + why
    )


def _check_logps(tensors: tuple[torch.Tensor, ...]) -> None:
    for name, t in zip(_NAMES, tensors):
        check_float_tensor(name, t)
    shape = tuple(tensors[0].shape)
    for name, t in zip(_NAMES[1:], tensors[1:]):
        if tuple(t.shape) != shape:
            raise ValueError(expected(name, f"of shape {shape} like policy_chosen_logps", t))


def _check_beta(beta: object) -> float:
    return check_number("beta", beta, lo=0, lo_open=True, finite=True)


def preference_rewards(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
) -> PreferenceRewards:
    """The rewards DPO implies: ``beta`` times the policy-to-reference log-ratio of each response.

    .. math::

        r_w = \\beta(\\log\\pi(y_w) - \\log\\pi_{ref}(y_w)), \\quad
        r_l = \\beta(\\log\\pi(y_l) - \\log\\pi_{ref}(y_l)), \\quad
        \\text{margin} = r_w - r_l = \\beta h .

    These are TRL's ``chosen_rewards``, ``rejected_rewards`` and ``rewards/margins``; ``accuracies`` is
    ``rewards/accuracies`` (the fraction of pairs ranked the labelled way, before averaging). The
    tensors carry gradients; call ``.detach()`` for logging as TRL does.

    Parameters and errors as :func:`preference_loss`.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import preference_rewards
    >>> r = preference_rewards(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]),
    ...                        torch.tensor([-2.0]), beta=0.5)
    >>> r.chosen, r.rejected, r.margins, r.accuracies
    (tensor([0.5000]), tensor([-0.5000]), tensor([1.]), tensor([1.]))
    """
    tensors = (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    _check_logps(tensors)
    beta = _check_beta(beta)
    chosen = beta * (policy_chosen_logps - reference_chosen_logps)
    rejected = beta * (policy_rejected_logps - reference_rejected_logps)
    margins = chosen - rejected
    return PreferenceRewards(chosen, rejected, margins, (margins > 0).to(margins.dtype))


def preference_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    robust: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """DPO's loss with a smoothed preference label: plain DPO, cDPO, or rDPO (``robust=True``).

    With ``h`` the log-ratio margin (policy minus reference, chosen minus rejected) and ``e`` the
    label smoothing (the assumed preference flip rate):

    .. math::

        \\text{cDPO:}\\quad \\ell = (1 - e)\\,[-\\log\\sigma(\\beta h)] + e\\,[-\\log\\sigma(-\\beta h)]

        \\text{rDPO:}\\quad \\ell = \\frac{(1 - e)\\,[-\\log\\sigma(\\beta h)]
                                   - e\\,[-\\log\\sigma(-\\beta h)]}{1 - 2e}

    ``e = 0`` is plain DPO, ``-log sigma(beta h)``, in both. cDPO's loss is minimised at the finite margin
    ``beta h* = log((1 - e)/e)``; rDPO's is, in expectation over flips at rate ``e``, the clean DPO loss
    (it can be negative, and still drives ``h`` to infinity on a pair). Computed with
    :func:`torch.nn.functional.logsigmoid`, exact for any ``|beta h|`` (no overflow, no ``log(0)``).
    Formulas as in TRL's ``DPOTrainer`` (``label_smoothing``; ``loss_type="robust"``) and torchtune's
    ``DPOLoss``.

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : floating-point Tensor ``(N,)`` (any shape, all equal)
        Summed log-probabilities of the chosen / rejected responses under the policy being trained.
    reference_chosen_logps, reference_rejected_logps : floating-point Tensor, same shape
        The same under the frozen reference policy.
    beta : float
        Inverse temperature of the implicit reward, > 0 (TRL's default 0.1).
    label_smoothing : float
        ``e`` in ``[0, 0.5)``: the probability that a preference label is flipped.
    robust : bool
        rDPO instead of cDPO (for ``e > 0``).
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the per-pair loss, the shape of the inputs.

    Returns
    -------
    Tensor: a scalar, or the inputs' shape for ``reduction="none"``; half inputs are computed in float32
    and cast back.

    Raises
    ------
    ValueError
        ``label_smoothing`` outside ``[0, 0.5)`` (at 0.5 with ``robust=True``: division by zero);
        ``beta <= 0``; inputs of different shapes; unknown reduction.
    TypeError
        Non-float inputs, ``beta`` or ``label_smoothing`` not a number, ``robust`` not a bool.

    References
    ----------
    Rafailov et al., *Direct Preference Optimization*, NeurIPS 2023. Mitchell, *A note on DPO with noisy
    preferences & relationship to IPO*, 2023 (cDPO). Chowdhury, Kini and Natarajan, *Provably Robust DPO:
    Aligning Language Models with Noisy Feedback*, ICML 2024 (rDPO).

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import preference_loss
    >>> pc, pr = torch.tensor([-1.0]), torch.tensor([-3.0])        # policy log-probabilities
    >>> rc, rr = torch.tensor([-2.0]), torch.tensor([-2.0])        # reference log-probabilities
    >>> round(preference_loss(pc, pr, rc, rr, beta=0.5).item(), 4)                       # DPO, beta h = 1
    0.3133
    >>> round(preference_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1).item(), 4)  # cDPO
    0.4133
    >>> round(preference_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1, robust=True).item(), 4)
    0.1883
    """
    tensors = (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    _check_logps(tensors)
    beta = _check_beta(beta)
    check_bool("robust", robust)
    e = check_preference_smoothing(label_smoothing, robust=robust)
    check_reduction(reduction)
    dtype = policy_chosen_logps.dtype
    cdtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    pc, pr, rc, rr = (t.to(cdtype) for t in tensors)
    z = beta * ((pc - rc) - (pr - rr))
    loss = -F.logsigmoid(z)
    if e > 0:
        flipped = -F.logsigmoid(-z)
        loss = ((1 - e) * loss - e * flipped) / (1 - 2 * e) if robust else (1 - e) * loss + e * flipped
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(dtype)
