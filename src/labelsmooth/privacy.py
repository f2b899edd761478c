r"""Membership inference: attack scores from a model's outputs, and the evaluation of the attack.

Threat model
------------
A trained classifier and two sets of labelled examples: *members* (in its training set) and
*non-members* (drawn from the same distribution, not trained on). The attacker sees the model's output on
an example -- its logits or probabilities, black-box, one query, no shadow models -- and, for some scores,
the example's label. It guesses "member" when a score exceeds a threshold. Overfitting makes members look
more confidently and more correctly classified than non-members; the scores measure how much.

Scores
------
Each score is oriented so that **larger means "more likely a member"**. With :math:`p` the predicted
distribution, :math:`y` the label, :math:`z` the logits:

======================  ===============================================================  ==========
``kind``                 score                                                            needs ``y``
======================  ===============================================================  ==========
``"loss"``               :math:`-\ell = \log p_y` (Yeom et al. 2018)                       yes
``"confidence"``         :math:`\max_k p_k`                                               no
``"entropy"``            :math:`-H(p) = \sum_k p_k \log p_k`                               no
``"modified_entropy"``   :math:`-\mathrm{Mentr}`, :math:`\mathrm{Mentr} = -(1-p_y)\log p_y  yes
                         - \sum_{k \ne y} p_k \log(1 - p_k)` (Song and Mittal 2021)
``"logit_confidence"``   :math:`\phi = \log \frac{p_y}{1 - p_y}` (Carlini et al. 2022,      yes
                         LiRA's per-example statistic)
======================  ===============================================================  ==========

All are computed in float64 in log space. From logits, :math:`\log(1 - p_y) = \mathrm{lse}_{k \ne y}(z) -
\mathrm{lse}(z)`, so :math:`\phi = z_y - \mathrm{lse}_{k \ne y} z_k` holds even when :math:`p_y` rounds to 1;
:math:`\log(1 - p_k)` for the other classes is ``log1mexp`` of :math:`\log p_k` except at the top class,
which gets the exact form. From probabilities, :math:`1 - p_y` is taken as :math:`\sum_{k \ne y} p_k` (as
LiRA's code does), and a probability of exactly 1 or 0 may give an infinite score.

LiRA proper (Carlini et al. 2022) fits Gaussians to :math:`\phi` over shadow models trained with and
without the example; :math:`\phi` alone is its offline, single-model baseline.

Evaluation
----------
:func:`membership_attack` thresholds a score: the attack predicts "member" when score :math:`\ge t`. Over
all thresholds it reports the ROC curve, the AUC (ties count one half: the Mann-Whitney statistic, as
``sklearn.metrics.roc_auc_score``), the best membership advantage :math:`\max_t \mathrm{TPR}(t) -
\mathrm{FPR}(t)` (Yeom et al. 2018) and the TPR at low FPR -- the largest TPR among thresholds whose FPR
is at most :math:`\alpha`, for :math:`\alpha` = 1% and 0.1% by default, the figure of merit Carlini et al.
(2022) argue for (an attack that is right on a few members with near-certainty is a privacy breach that
the AUC averages away). With :math:`M` non-members the FPR moves in steps of :math:`1/M`: below
:math:`1/M` only FPR = 0 qualifies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch

from labelsmooth._validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_scalar_range,
    check_scores,
    check_target,
    expected,
    is_number,
)

__all__ = [
    "MEMBERSHIP_SCORES",
    "MembershipAttack",
    "membership_attack",
    "membership_inference",
    "membership_roc",
    "membership_scores",
]

ScoreKind = Literal["loss", "confidence", "entropy", "modified_entropy", "logit_confidence"]
"""The type of a score name (``kind``)."""

MEMBERSHIP_SCORES: tuple[ScoreKind, ...] = get_args(ScoreKind)
"""The score names of :func:`membership_scores`, in the order of the module docstring."""

NEEDS_LABELS = {"loss": True, "confidence": False, "entropy": False, "modified_entropy": True,
                "logit_confidence": True}  # fmt: skip
"""Whether each score needs the example's label."""


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate on both sides of ``-log 2`` (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_probs_and_complements(x: torch.Tensor, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 ``log p`` and ``log(1 - p)``, ``(N, K)``."""
    if not from_logits:
        p = x.double()
        return p.log(), torch.log1p(-p)
    z = x.double()
    logp = torch.log_softmax(z, dim=1)
    log1mp = _log1mexp(logp.clamp(max=0.0))
    top = z.argmax(1, keepdim=True)
    others = z.scatter(1, top, -math.inf)
    log1mp.scatter_(1, top, (torch.logsumexp(others, 1) - torch.logsumexp(z, 1))[:, None])
    return logp, log1mp


def membership_scores(
    input: Any, target: Any = None, *, from_logits: bool, kind: ScoreKind = "loss"
) -> torch.Tensor:
    r"""Per-example membership score, float64 ``(N,)``, larger meaning "more likely a member".

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K)
        The model's outputs on the examples: probabilities, or logits with ``from_logits=True`` (logits
        give exact scores where probabilities saturate).
    target : Tensor or ndarray, shape (N,), integer, optional
        The labels; required by ``"loss"``, ``"modified_entropy"`` and ``"logit_confidence"``, checked
        when given otherwise.
    from_logits : bool
        Required.
    kind : str, default "loss"
        One of :data:`MEMBERSHIP_SCORES` (table in the module docstring).

    Returns
    -------
    Tensor, float64, shape (N,)

    Raises
    ------
    ValueError
        Unknown ``kind``; a label-based score without ``target``; bad shapes or values.

    Examples
    --------
    >>> import torch
    >>> z, y = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 0])
    >>> membership_scores(z, y, from_logits=True, kind="loss").round(decimals=4).tolist()
    [-0.036, -1.5514]
    >>> membership_scores(z, y, from_logits=True, kind="logit_confidence").round(decimals=4).tolist()
    [3.3069, -1.3133]
    >>> z = torch.tensor([[60.0, 0.0]])  # p_y = 1 - 9e-27 rounds to 1, phi = 60 exactly
    >>> membership_scores(z, torch.tensor([0]), from_logits=True, kind="logit_confidence").tolist()
    [60.0]
    """
    check_choice("kind", kind, MEMBERSHIP_SCORES)
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores("input", as_tensor("input", input), from_logits=from_logits)
    t = None
    if target is not None:
        t = as_tensor("target", target)
        check_target("target", t, x.shape[0], x.shape[1])
        t = t.to(device=x.device, dtype=torch.long)[:, None]
    elif NEEDS_LABELS[kind]:
        raise ValueError(expected("target", f'to be given: score "{kind}" needs the labels', None))
    if kind == "confidence":
        if from_logits:
            z = x.double()
            return torch.exp(z.max(1).values - torch.logsumexp(z, 1))
        return x.amax(1).double()
    logp, log1mp = _log_probs_and_complements(x, from_logits)
    p = logp.exp()
    if kind == "entropy":
        return torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(1)
    assert t is not None  # for mypy: NEEDS_LABELS guarantees it
    logp_y = logp.gather(1, t).squeeze(1)
    if kind == "loss":
        return logp_y
    if kind == "logit_confidence":
        if from_logits:
            z = x.double()
            return z.gather(1, t).squeeze(1) - torch.logsumexp(z.scatter(1, t, -math.inf), 1)
        rest = x.double().scatter(1, t, 0.0).sum(1)
        return logp_y - rest.log()
    # modified entropy: -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k), with 0 log 0 = 0
    p_y = p.gather(1, t).squeeze(1)
    one_minus_py = torch.exp(log1mp.gather(1, t).squeeze(1))
    term_y = torch.where(one_minus_py > 0, -one_minus_py * logp_y, torch.zeros_like(p_y))
    other = torch.where(p > 0, -p * log1mp, torch.zeros_like(p)).scatter(1, t, 0.0).sum(1)
    return -(term_y + other)


# --------------------------------------------------------------------------- evaluation
def _check_score_vector(name: str, value: Any) -> np.ndarray:
    s = as_tensor(name, value)
    if s.dim() != 1:
        raise ValueError(expected(name, "to have shape (N,)", s))
    if s.shape[0] == 0:
        raise ValueError(expected(name, "to hold at least one score", s))
    v = s.double().cpu().numpy()
    if np.isnan(v).any():
        raise ValueError(expected(name, "to hold no NaN", "NaN"))
    return v


def membership_roc(member_scores: Any, nonmember_scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""ROC curve of the threshold attack "member iff score >= t": ``(fpr, tpr, thresholds)``.

    One point per distinct score (decreasing thresholds) after a first point ``(0, 0)`` at threshold
    :math:`+\infty` -- the points of ``sklearn.metrics.roc_curve(drop_intermediate=False)`` with members as
    the positive class. Infinite scores are allowed, NaN is not.

    Raises
    ------
    ValueError
        Either set empty, not 1-D, or holding NaN.

    Examples
    --------
    >>> fpr, tpr, thr = membership_roc([3.0, 2.0, 2.0], [2.0, 0.0])
    >>> fpr.tolist(), tpr.round(3).tolist(), thr.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.333, 1.0, 1.0], [inf, 3.0, 2.0, 0.0])
    """
    return _roc(
        _check_score_vector("member_scores", member_scores),
        _check_score_vector("nonmember_scores", nonmember_scores),
    )


def _roc(m: np.ndarray, nm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.concatenate([m, nm])
    pos = np.concatenate([np.ones(len(m)), np.zeros(len(nm))])
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(pos)[ends]
    fp = (ends + 1) - tp
    tpr = np.r_[0.0, tp / len(m)]
    fpr = np.r_[0.0, fp / len(nm)]
    return fpr, tpr, np.r_[np.inf, s[ends]]


@dataclass(frozen=True)
class MembershipAttack:
    """The evaluation of one threshold attack (floats; ROC arrays numpy float64).

    Attributes
    ----------
    auc : float
        Area under the ROC curve; 0.5 is chance.
    advantage : float
        Best membership advantage, :math:`\\max_t \\mathrm{TPR} - \\mathrm{FPR}`, in [0, 1].
    tpr_at_fpr : dict[float, float]
        For each FPR level :math:`\\alpha`, the largest TPR at FPR :math:`\\le \\alpha`.
    fpr, tpr, thresholds : ndarray
        The ROC curve (:func:`membership_roc`).
    n_members, n_nonmembers : int
    """

    auc: float
    advantage: float
    tpr_at_fpr: dict[float, float]
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_members: int
    n_nonmembers: int


def _check_fpr_levels(fpr_levels: Any) -> tuple[float, ...]:
    if is_number(fpr_levels):
        fpr_levels = (fpr_levels,)
    if not isinstance(fpr_levels, Iterable) or isinstance(fpr_levels, str):
        raise TypeError(expected("fpr_levels", "to be a float or a sequence of floats", fpr_levels))
    levels = tuple(
        check_scalar_range("fpr_levels", a, 0.0, 1.0, lo_open=True, hi_open=True) for a in fpr_levels
    )
    if not levels:
        raise ValueError(expected("fpr_levels", "to hold at least one level", fpr_levels))
    return levels


def membership_attack(
    member_scores: Any, nonmember_scores: Any, *, fpr_levels: float | Iterable[float] = (0.01, 0.001)
) -> MembershipAttack:
    r"""Evaluate a membership-inference score: ROC, AUC, best advantage, TPR at low FPR.

    Parameters
    ----------
    member_scores : Tensor or ndarray, shape (N_in,)
        Scores of the members (larger = "member"), e.g. from :func:`membership_scores`.
    nonmember_scores : Tensor or ndarray, shape (N_out,)
    fpr_levels : float or sequence of float in (0, 1), default (0.01, 0.001)

    Returns
    -------
    MembershipAttack

    Raises
    ------
    ValueError
        Either set empty or holding NaN; an FPR level outside (0, 1); no level.
    TypeError
        ``fpr_levels`` neither a float nor a sequence of floats.

    Examples
    --------
    >>> r = membership_attack([3.0, 2.0, 2.0, 1.0], [2.0, 0.0, 0.5, -1.0], fpr_levels=0.2)
    >>> r.auc, r.advantage, r.tpr_at_fpr
    (0.875, 0.75, {0.2: 0.25})
    """
    levels = _check_fpr_levels(fpr_levels)
    m = _check_score_vector("member_scores", member_scores)
    nm = _check_score_vector("nonmember_scores", nonmember_scores)
    fpr, tpr, thr = _roc(m, nm)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))  # trapezoid rule
    at = {a: float(tpr[fpr <= a].max()) for a in levels}
    return MembershipAttack(
        auc=auc,
        advantage=float(np.max(tpr - fpr)),
        tpr_at_fpr=at,
        fpr=fpr,
        tpr=tpr,
        thresholds=thr,
        n_members=len(m),
        n_nonmembers=len(nm),
    )


def membership_inference(
    member_input: Any,
    member_target: Any,
    nonmember_input: Any,
    nonmember_target: Any,
    *,
    from_logits: bool,
    kinds: Iterable[ScoreKind] = MEMBERSHIP_SCORES,
    fpr_levels: float | Iterable[float] = (0.01, 0.001),
) -> dict[str, MembershipAttack]:
    r"""Every score's attack at once: :func:`membership_scores` on both sets, then :func:`membership_attack`.

    Parameters
    ----------
    member_input, member_target : shapes (N_in, K), (N_in,)
        Outputs and labels on the training examples.
    nonmember_input, nonmember_target : shapes (N_out, K), (N_out,)
        On held-out examples of the same distribution.
    from_logits : bool
        Required.
    kinds : iterable of str, default all of :data:`MEMBERSHIP_SCORES`
    fpr_levels : as :func:`membership_attack`

    Returns
    -------
    dict[str, MembershipAttack]
        Keyed by score name, in the order of ``kinds``.

    Raises
    ------
    ValueError
        As :func:`membership_scores` and :func:`membership_attack` (e.g. zero members or non-members).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> zin, zout = 3 * torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    >>> yin, yout = zin.argmax(1), torch.randint(0, 4, (200,), generator=g)
    >>> res = membership_inference(zin, yin, zout, yout, from_logits=True, kinds=("loss", "entropy"))
    >>> {k: round(v.auc, 2) for k, v in res.items()}
    {'loss': 0.94, 'entropy': 0.89}
    """
    _check_fpr_levels(fpr_levels)
    for name, v in (("member_input", member_input), ("nonmember_input", nonmember_input)):
        a = as_tensor(name, v)
        if a.dim() >= 1 and a.shape[0] == 0:
            raise ValueError(expected(name, "to hold at least one example", a))
    out: dict[str, MembershipAttack] = {}
    for kind in kinds:
        s_in = membership_scores(member_input, member_target, from_logits=from_logits, kind=kind)
        s_out = membership_scores(nonmember_input, nonmember_target, from_logits=from_logits, kind=kind)
        out[kind] = membership_attack(s_in, s_out, fpr_levels=fpr_levels)
    return out
