r"""Proper scores and confidence statistics, and :func:`calibration_summary` (every scalar metric at once).

Notation: :math:`p_{ik}` the predicted probability of class :math:`k` for sample :math:`i` (softmax of
the logits when ``from_logits=True``), :math:`y_i` the label, :math:`c_i = \max_k p_{ik}` the confidence,
:math:`\hat y_i = \arg\max_k p_{ik}` the prediction, :math:`N` samples and :math:`K` classes.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch

from labelsmooth._validation import check_n_bins, prepare_scores_and_target
from labelsmooth.metrics.binned import (
    bin_sums,
    ce_from_bins,
    classwise_bin_sums,
    uniform_bin_index,
)
from labelsmooth.metrics.probabilities import log_probs, log_probs_and_probs, probs, top_label
from labelsmooth.metrics.smooth import smece_from_top_label

__all__ = [
    "SUMMARY_KEYS",
    "accuracy",
    "brier_score",
    "calibration_gap",
    "calibration_summary",
    "mean_confidence",
    "negative_log_likelihood",
    "predictive_entropy",
]

SummaryKey = Literal[
    "accuracy",
    "nll",
    "brier",
    "ece",
    "rms_ce",
    "mce",
    "smece",
    "classwise_ece",
    "mean_confidence",
    "calibration_gap",
    "entropy",
]
"""A key of :func:`calibration_summary` (and a metric name of :func:`~labelsmooth.metrics.bootstrap`)."""

SUMMARY_KEYS: tuple[SummaryKey, ...] = get_args(SummaryKey)
"""Keys of :func:`calibration_summary`, in order."""


# --------------------------------------------------------------------------- per-sample pieces (float64)
def nll_terms(logp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return -logp.gather(1, t[:, None]).squeeze(1)


def brier_terms(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # sum_k (p_k - 1[k = y])^2 = sum_k p_k^2 - 2 p_y + 1
    return (p * p).sum(1) - 2.0 * p.gather(1, t[:, None]).squeeze(1) + 1.0


def entropy_terms(p: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    # 0 log 0 = 0
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(1)


# --------------------------------------------------------------------------- public scalar metrics
def negative_log_likelihood(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Mean negative log-likelihood of the labels, :math:`-\frac1N \sum_i \log p_{i y_i}`.

    Computed in float64 with ``log_softmax`` for logits. With probabilities a zero probability on the
    label gives ``inf`` (honestly: pass logits to avoid float32 saturation).

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K), floating point
        :math:`p_{ik}`, or the logits :math:`z_{ik}` of :math:`p_i = \mathrm{softmax}(z_i)`.
    target : Tensor or ndarray, shape (N,), integer
        :math:`y_i \in [0, K)`.
    from_logits : bool
        Required, keyword-only: whether ``input`` holds logits (there is no default, because a wrong one
        silently gives a wrong number).

    Returns
    -------
    float
        Nats, as a Python float; ``inf`` when a label has probability exactly 0.

    Raises
    ------
    ValueError, TypeError
        As :func:`~labelsmooth.metrics.expected_calibration_error`; TypeError without ``from_logits``.

    Examples
    --------
    >>> import torch
    >>> p, y = torch.tensor([[0.5, 0.5], [0.8, 0.2]]), torch.tensor([0, 0])
    >>> round(negative_log_likelihood(p, y, from_logits=False), 4)  # -(log 0.5 + log 0.8) / 2
    0.4581
    >>> round(negative_log_likelihood(p.log(), y, from_logits=True), 4)
    0.4581
    """
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    return float(nll_terms(log_probs(x, from_logits=from_logits), t).mean())


def brier_score(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Multiclass Brier score, :math:`\frac1N \sum_i \sum_k (p_{ik} - 1[k = y_i])^2`.

    The sum over classes follows Brier (1950); divide by 2 for a score in [0, 1]. It is a proper scoring
    rule: it rewards both accuracy and calibration. ``input``, ``target`` and ``from_logits`` (required)
    are those of :func:`negative_log_likelihood`, and so are the errors.

    Returns
    -------
    float
        A Python float in :math:`[0, 2]`, 0 only for right one-hot predictions.

    Examples
    --------
    Each row misses its label by 0.5 and 0.2 on both classes:

    >>> import torch
    >>> brier = brier_score(torch.tensor([[0.5, 0.5], [0.8, 0.2]]), torch.tensor([0, 0]), from_logits=False)
    >>> round(brier, 4)  # ((0.5^2 + 0.5^2) + (0.2^2 + 0.2^2)) / 2
    0.29
    """
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    return float(brier_terms(probs(x, from_logits=from_logits), t).mean())


def accuracy(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Top-1 accuracy, :math:`\frac1N \sum_i 1[\hat y_i = y_i]` (ties go to the lowest index).

    Arguments and errors as :func:`negative_log_likelihood` (``from_logits`` is required: it decides how
    ties are read, and validates ``input`` as probabilities or as logits).

    Returns
    -------
    float
        The fraction of rows whose prediction is their label (a Python float).

    Examples
    --------
    >>> import torch
    >>> accuracy(torch.tensor([[0.6, 0.4], [0.8, 0.2]]), torch.tensor([0, 1]), from_logits=False)
    0.5
    """
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    return float(top_label(x, t, from_logits=from_logits)[1].double().mean())


def mean_confidence(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Mean top-label confidence, :math:`\frac1N \sum_i \max_k p_{ik}`.

    ``target`` is only validated (it keeps the signature uniform across metrics); arguments and errors as
    :func:`negative_log_likelihood`.

    Returns
    -------
    float
        Between :math:`1/K` and 1, as a Python float.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # logits: confidences 0.5 and 0.881
    >>> round(mean_confidence(z, torch.tensor([0, 1]), from_logits=True), 4)
    0.6904
    """
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    return float(top_label(x, t, from_logits=from_logits)[0].mean())


def calibration_gap(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Signed confidence gap, :math:`\frac1N \sum_i c_i - \frac1N \sum_i 1[\hat y_i = y_i]`.

    Positive: the model is **overconfident** on average (typical of hard one-hot targets). Negative:
    **underconfident**, the signature of too much label smoothing on a clean, separable problem. Unlike
    ECE it is signed, so over- and underconfidence in different confidence ranges cancel: read it
    together with ECE. Arguments and errors as :func:`negative_log_likelihood`.

    Returns
    -------
    float
        Mean confidence minus accuracy, in :math:`[-1, 1]` (a Python float).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.6, 0.4], [0.8, 0.2]])
    >>> round(calibration_gap(p, torch.tensor([0, 1]), from_logits=False), 4)  # 0.7 - 0.5: overconfident
    0.2
    """
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    conf, correct = top_label(x, t, from_logits=from_logits)
    return float(conf.mean() - correct.double().mean())


def predictive_entropy(input: Any, target: Any, *, from_logits: bool) -> float:
    r"""Mean entropy of the predictive distribution, :math:`-\frac1N \sum_i \sum_k p_{ik} \log p_{ik}` (nats).

    With :math:`0 \log 0 = 0`. Label smoothing with factor :math:`\alpha` drives it towards the entropy
    of the smoothed target. ``target`` is only validated; arguments and errors as
    :func:`negative_log_likelihood`.

    Returns
    -------
    float
        Nats between 0 and :math:`\log K`, as a Python float.

    Examples
    --------
    >>> import math, torch
    >>> p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    >>> round(predictive_entropy(p, torch.tensor([0, 0]), from_logits=False), 4), round(math.log(2) / 2, 4)
    (0.3466, 0.3466)
    """
    x, _ = prepare_scores_and_target(input, target, from_logits=from_logits)
    logp, p = log_probs_and_probs(x, from_logits=from_logits)
    return float(entropy_terms(p, logp).mean())


def calibration_summary(input: Any, target: Any, *, from_logits: bool, n_bins: int = 15) -> dict[str, float]:
    r"""Every scalar calibration metric at once, from one validation and one softmax.

    Keys (see :data:`SUMMARY_KEYS`): ``accuracy``, ``nll``, ``brier``, ``ece`` (l1, uniform bins),
    ``rms_ce`` (l2), ``mce`` (max), ``smece``, ``classwise_ece``, ``mean_confidence``, ``calibration_gap``
    (mean confidence - accuracy; > 0 overconfident, < 0 underconfident), ``entropy`` (mean predictive
    entropy, nats). Each equals the corresponding function with default arguments and ``n_bins``.

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K)
    target : Tensor or ndarray, shape (N,), integer
    from_logits : bool
        Required: whether ``input`` holds logits.
    n_bins : int, default 15
        Uniform bins for ``ece``, ``rms_ce``, ``mce`` and ``classwise_ece``.

    Returns
    -------
    dict[str, float]

    Raises
    ------
    ValueError, TypeError
        As :func:`~labelsmooth.metrics.expected_calibration_error`.

    Examples
    --------
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    >>> s = calibration_summary(z, y, from_logits=True)
    >>> {k: round(v, 3) for k, v in s.items() if k in ("accuracy", "nll", "calibration_gap")}
    {'accuracy': 0.5, 'nll': 0.72, 'calibration_gap': 0.306}
    """
    n_bins = check_n_bins(n_bins)
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    logp, p = log_probs_and_probs(x, from_logits=from_logits)
    conf, correct = top_label(x, t, from_logits=from_logits)
    return summary_from_sums(
        x.shape[0],
        sum_correct=float(correct.double().sum()),
        sum_confidence=float(conf.sum()),
        sum_nll=float(nll_terms(logp, t).sum()),
        sum_brier=float(brier_terms(p, t).sum()),
        sum_entropy=float(entropy_terms(p, logp).sum()),
        bins=bin_sums(uniform_bin_index(conf, n_bins), conf, correct, n_bins),
        classwise=classwise_bin_sums(p, t, n_bins, False),
        smece=smece_from_top_label(conf, correct)[0],
    )


def summary_from_sums(
    n: int,
    *,
    sum_correct: float,
    sum_confidence: float,
    sum_nll: float,
    sum_brier: float,
    sum_entropy: float,
    bins: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    classwise: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    smece: float | None = None,
) -> dict[str, float]:
    r"""The summary (:data:`SUMMARY_KEYS`, in order) from sums over :math:`n` samples: its one assembly.

    ``sum_*`` are :math:`\sum_i` of the per-sample correctness, confidence, NLL, Brier score and entropy;
    ``bins`` the top-label ``(counts, sum_confidence, sum_correct)`` and ``classwise`` the per-(class, bin)
    ``(counts, sum_p, sum_y)`` of :func:`~labelsmooth.metrics.binned.classwise_bin_sums`. ``smece`` (which
    needs all the confidences) is left out when None, as :class:`~labelsmooth.metrics.CalibrationMeter`
    does. Used by :func:`calibration_summary` and :meth:`CalibrationMeter.compute`.
    """
    acc, mconf = sum_correct / n, sum_confidence / n
    _, cw_p, cw_y = classwise
    out = {
        "accuracy": acc,
        "nll": sum_nll / n,
        "brier": sum_brier / n,
        "ece": ce_from_bins(*bins, "l1"),
        "rms_ce": ce_from_bins(*bins, "l2"),
        "mce": ce_from_bins(*bins, "max"),
        "smece": smece,
        "classwise_ece": float((cw_y - cw_p).abs().sum()) / (n * cw_p.shape[0]),
        "mean_confidence": mconf,
        "calibration_gap": mconf - acc,
        "entropy": sum_entropy / n,
    }
    return {key: value for key, value in out.items() if value is not None}
