r"""Selective classification: the risk-coverage curve and its area (AURC), for a confidence score.

A selective classifier answers only when its confidence score :math:`s_i` reaches a threshold :math:`t`
and abstains otherwise. At threshold :math:`t` the *coverage* is the fraction of samples answered and the
*selective risk* the error rate among them:

.. math::
    \mathrm{cov}(t) = \frac{1}{N} \sum_i 1[s_i \ge t], \qquad
    r(t) = \frac{\sum_i 1[s_i \ge t]\, 1[\hat y_i \ne y_i]}{\sum_i 1[s_i \ge t]}.

Sorting the samples by decreasing score, with :math:`r_k` the error rate of the first :math:`k`, the area
under the risk-coverage curve is (Geifman, Uziel and El-Yaniv 2019)

.. math::
    \mathrm{AURC} = \frac{1}{N} \sum_{k=1}^{N} r_k \quad \text{(lower is better)}.

**Ties** are resolved deterministically, by averaging over every order of the tied samples: within a block
of :math:`m` tied samples, entered after :math:`s` samples with :math:`E_s` errors and holding :math:`e`
errors, the :math:`j`-th position counts :math:`E_s + j e / m` expected errors. This is the expectation of
the AURC under a random tie-break, computed exactly (not the arbitrary order of a sort). The curve itself
is reported at the distinct thresholds only (one point per tie block), as ``sklearn.metrics.roc_curve`` does.

Scores (``score=``), larger meaning more confident:

* ``"max_prob"`` (default): the maximum softmax probability :math:`\max_k p_{ik}` (MSP; Hendrycks and
  Gimpel 2017);
* ``"normalized_logits"``: the MSP of the L2-normalised logits, :math:`\max_k \mathrm{softmax}(z_i /
  \lVert z_i \rVert_2)_k` (logits needed: ``from_logits=True``). Xia, Bouganis and others (ICLR 2025,
  *Towards understanding why label smoothing degrades selective classification and how to fix it*) found
  that label smoothing consistently degrades selective classification under MSP and that this
  normalisation (from Cattelan and Silva 2024) recovers most of the loss. A row of zero logits scores
  :math:`1/K`.
* an array of shape ``(N,)``: any score of your own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from labelsmooth._validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_scores,
    expected,
    prepare_scores_and_target,
)
from labelsmooth.metrics.probabilities import top_label

__all__ = ["SELECTIVE_SCORES", "RiskCoverageCurve", "aurc", "risk_coverage_curve", "selective_score"]

SELECTIVE_SCORES = ("max_prob", "normalized_logits")
"""Names accepted by ``score=``."""

Score = Literal["max_prob", "normalized_logits"]


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Points of a risk-coverage curve, one per distinct score (decreasing threshold), numpy float64.

    Attributes
    ----------
    coverage : ndarray, shape (M,)
        Fraction of samples with score >= ``thresholds[j]``, increasing to 1.
    risk : ndarray, shape (M,)
        Error rate among them.
    thresholds : ndarray, shape (M,)
        The distinct scores, decreasing.
    aurc : float
        Area under the curve, ties averaged (module docstring).
    """

    coverage: np.ndarray
    risk: np.ndarray
    thresholds: np.ndarray
    aurc: float


def selective_score(input: Any, *, from_logits: bool, score: Score = "max_prob") -> torch.Tensor:
    r"""A confidence score per sample, float64 ``(N,)``: ``"max_prob"`` or ``"normalized_logits"``.

    ``"normalized_logits"`` is :math:`\max_k \mathrm{softmax}(z / \max(\lVert z \rVert_2, 10^{-12}))_k`
    and needs logits.

    Raises
    ------
    ValueError
        Unknown ``score``; ``"normalized_logits"`` with ``from_logits=False``; bad ``input``.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[3.0, 0.0], [30.0, 0.0]])
    >>> selective_score(z, from_logits=True).round(decimals=4).tolist()
    [0.9526, 1.0]
    >>> selective_score(z, from_logits=True, score="normalized_logits").round(decimals=4).tolist()
    [0.7311, 0.7311]
    """
    check_choice("score", score, SELECTIVE_SCORES)
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores("input", as_tensor("input", input), from_logits=from_logits)
    if score == "max_prob":
        if from_logits:
            z = x.double()
            return torch.exp(z.max(1).values - torch.logsumexp(z, 1))
        return x.amax(1).double()
    if not from_logits:
        raise ValueError(
            expected("from_logits", 'True for score="normalized_logits" (it needs logits)', False)
        )
    z = x.double()
    z = z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp(min=1e-12)
    return torch.exp(z.max(1).values - torch.logsumexp(z, 1))


def _score_and_errors(input: Any, target: Any, from_logits: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    _, correct = top_label(x, t, from_logits=from_logits)
    if isinstance(score, str):
        s = selective_score(x, from_logits=from_logits, score=score)  # type: ignore[arg-type]
    else:
        s = as_tensor("score", score)
        if not s.is_floating_point():
            s = s.double()
        if s.dim() != 1 or s.shape[0] != x.shape[0]:
            raise ValueError(expected("score", f"to be a name or an array of shape ({x.shape[0]},)", s))
        if not bool(torch.isfinite(s).all()):
            raise ValueError(expected("score", "to be finite (no NaN or inf)", s[~torch.isfinite(s)][0]))
    return s.double().cpu().numpy(), (~correct).cpu().numpy().astype(np.float64)


def _curve(s: np.ndarray, err: np.ndarray) -> RiskCoverageCurve:
    n = s.shape[0]
    order = np.argsort(-s, kind="stable")
    s, err = s[order], err[order]
    # block ends: last index of each run of equal scores
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    cum = np.cumsum(err)
    starts = np.r_[0, ends[:-1] + 1]
    e_before = np.r_[0.0, cum[ends[:-1]]]
    m = ends - starts + 1
    e_block = cum[ends] - e_before
    # expected errors among the first k (k = 1..N), averaging over the orders of tied samples
    block = np.repeat(np.arange(len(ends)), m)
    j = np.arange(n) - starts[block] + 1
    expected_err = e_before[block] + j * e_block[block] / m[block]
    area = float(np.mean(expected_err / np.arange(1, n + 1)))
    cover = (ends + 1) / n
    risk = cum[ends] / (ends + 1)
    return RiskCoverageCurve(coverage=cover, risk=risk, thresholds=s[ends].copy(), aurc=area)


def risk_coverage_curve(
    input: Any, target: Any, *, from_logits: bool, score: Score | Any = "max_prob"
) -> RiskCoverageCurve:
    r"""The risk-coverage curve of the top-1 prediction under a confidence score, and its AURC.

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K)
        Probabilities, or logits with ``from_logits=True``.
    target : Tensor or ndarray, shape (N,), integer
    from_logits : bool
        Required.
    score : {"max_prob", "normalized_logits"} or array of shape (N,), default "max_prob"
        The confidence score (module docstring); larger is more confident.

    Returns
    -------
    RiskCoverageCurve
        One point per distinct score; ``aurc`` with ties averaged.

    Raises
    ------
    ValueError
        Bad ``input``/``target``; an unknown score name; a score array of the wrong shape or not finite;
        ``"normalized_logits"`` with probabilities.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    >>> c = risk_coverage_curve(p, torch.tensor([0, 1, 0, 0]), from_logits=False)
    >>> c.coverage.tolist(), c.risk.round(3).tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.5, 0.333, 0.25])
    >>> round(c.aurc, 4)
    0.2708
    """
    return _curve(*_score_and_errors(input, target, from_logits, score))


def aurc(input: Any, target: Any, *, from_logits: bool, score: Score | Any = "max_prob") -> float:
    r"""Area under the risk-coverage curve, :math:`\frac1N \sum_k r_k` with ties averaged (lower is better).

    Arguments and errors as :func:`risk_coverage_curve`. A perfect ranking (every error scored below every
    correct prediction) reaches the minimum for the given error rate; a random score gives about the error
    rate itself.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    >>> round(aurc(p, torch.tensor([0, 1, 0, 0]), from_logits=False), 4)
    0.2708
    >>> round(aurc(p, torch.tensor([0, 0, 0, 1]), from_logits=False), 4)  # the error ranked last
    0.0625
    """
    return risk_coverage_curve(input, target, from_logits=from_logits, score=score).aurc
