r"""Metrics by group: per-group calibration, worst-group accuracy, and the fairness gaps of binary tasks.

Notation as in :mod:`labelsmooth.metrics.scores`, plus :math:`g_i \in \{0, \dots, G-1\}` the group of
sample :math:`i` (a protected attribute, a data source, or the class itself for per-class numbers) and
:math:`S_g = \{i : g_i = g\}` with :math:`n_g = |S_g|` members. Every per-group number is the library's
metric restricted to :math:`S_g`:

.. math::
    \mathrm{acc}_g = \frac{1}{n_g} \sum_{i \in S_g} 1[\hat y_i = y_i], \quad
    \mathrm{ECE}_g = \frac{1}{n_g} \sum_b \Big| \sum_{i \in S_g \cap b} (1[\hat y_i = y_i] - c_i) \Big|,

and likewise the NLL, the Brier score and the signed gap :math:`\bar c_g - \mathrm{acc}_g` (> 0
overconfident). ECE uses uniform bins ``[j/B, (j+1)/B)`` as :func:`~labelsmooth.metrics.
expected_calibration_error` with its defaults.

The gaps that fairness work reports:

* worst-group accuracy :math:`\min_g \mathrm{acc}_g` (Sagawa et al. 2020, group DRO);
* the accuracy and ECE differences :math:`\max_g m_g - \min_g m_g`;
* for binary tasks (:math:`K = 2`, class 1 "positive", :math:`\hat y_i = \arg\max_k p_{ik}`, a tie going to
  class 0), with selection rate :math:`\mathrm{SR}_g = P(\hat y = 1 \mid g)`, true- and false-positive
  rates :math:`\mathrm{TPR}_g = P(\hat y = 1 \mid y = 1, g)`, :math:`\mathrm{FPR}_g = P(\hat y = 1 \mid y = 0,
  g)`:

  .. math::
      \Delta_{\mathrm{DP}} = \max_g \mathrm{SR}_g - \min_g \mathrm{SR}_g, \qquad
      \Delta_{\mathrm{EO}} = \max\big(\max_g \mathrm{TPR}_g - \min_g \mathrm{TPR}_g,\;
      \max_g \mathrm{FPR}_g - \min_g \mathrm{FPR}_g\big),

  fairlearn's ``demographic_parity_difference`` and ``equalized_odds_difference`` (``method=
  "between_groups"``, ``agg="worst_case"``; Hardt, Price and Srebro 2016 for equalised odds).

``groups`` holds integer group indices in ``[0, G)``, aligned with the rows of ``input``. ``G`` is
``num_groups`` when given, else ``max(groups) + 1``; every group in ``[0, G)`` must have a member (an empty
group has no accuracy: it is an error, never a silent NaN). Intervals: :func:`group_bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from labelsmooth._validation import as_tensor, check_int, check_n_bins, expected, prepare_scores_and_target
from labelsmooth.metrics.binned import uniform_bin_index
from labelsmooth.metrics.bootstrap import BootstrapResult, bootstrap
from labelsmooth.metrics.probabilities import log_probs_and_probs, top_label
from labelsmooth.metrics.scores import brier_terms, nll_terms

__all__ = [
    "GroupMetrics",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "group_bootstrap",
    "group_ece_difference",
    "group_metrics",
    "worst_group_accuracy",
]


@dataclass(frozen=True)
class GroupMetrics:
    r"""Per-group metrics, one tuple entry per group ``0 .. G-1`` (Python floats and ints).

    Attributes
    ----------
    counts : tuple of int
        :math:`n_g`.
    accuracy, ece, brier, nll, calibration_gap : tuple of float
        The library's metric restricted to each group (``calibration_gap``: mean confidence minus
        accuracy, > 0 overconfident).

    Properties ``worst_group_accuracy``, ``accuracy_difference`` and ``ece_difference`` give the gaps;
    :meth:`to_dict` a JSON-ready dict of all of it.
    """

    counts: tuple[int, ...]
    accuracy: tuple[float, ...]
    ece: tuple[float, ...]
    brier: tuple[float, ...]
    nll: tuple[float, ...]
    calibration_gap: tuple[float, ...]

    @property
    def num_groups(self) -> int:
        return len(self.counts)

    @property
    def worst_group_accuracy(self) -> float:
        r""":math:`\min_g \mathrm{acc}_g`."""
        return min(self.accuracy)

    @property
    def accuracy_difference(self) -> float:
        r""":math:`\max_g \mathrm{acc}_g - \min_g \mathrm{acc}_g`."""
        return max(self.accuracy) - min(self.accuracy)

    @property
    def ece_difference(self) -> float:
        r""":math:`\max_g \mathrm{ECE}_g - \min_g \mathrm{ECE}_g`."""
        return max(self.ece) - min(self.ece)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: list(v) for k, v in asdict(self).items()}
        out["worst_group_accuracy"] = self.worst_group_accuracy
        out["accuracy_difference"] = self.accuracy_difference
        out["ece_difference"] = self.ece_difference
        return out


# --------------------------------------------------------------------------- input checks
def check_groups(groups: Any, n: int, num_groups: Any = None) -> tuple[torch.Tensor, int]:
    """Validate ``groups`` against ``n`` samples; return ``(groups as int64, G)``."""
    g = as_tensor("groups", groups)
    if g.is_floating_point() or g.is_complex() or g.dtype == torch.bool:
        raise TypeError(expected("groups", "to hold integer group indices", g.dtype))
    if g.dim() != 1:
        raise ValueError(expected("groups", "to have shape (N,)", g))
    if g.shape[0] != n:
        raise ValueError(expected("groups", f"to have length {n} (one group per row of `input`)", g.shape[0]))
    g = g.long()
    lo, hi = (int(v) for v in torch.aminmax(g))
    if lo < 0:
        raise ValueError(expected("groups", "to hold group indices >= 0", lo))
    if num_groups is None:
        num = hi + 1
    else:
        num = check_int("num_groups", num_groups)
        if hi >= num:
            raise ValueError(expected("groups", f"to hold group indices in [0, {num})", hi))
    if num < 2:
        raise ValueError(expected("groups", "to hold at least 2 groups", num))
    counts = torch.bincount(g, minlength=num)
    empty = (counts == 0).nonzero()
    if empty.numel():
        raise ValueError(
            expected(f"group {int(empty[0])}", f"to have at least one member (G = {num} groups)", 0)
        )
    return g.to(device="cpu"), num


def _binary_predictions(
    input: Any, target: Any, groups: Any, from_logits: Any, num_groups: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    if x.shape[1] != 2:
        raise ValueError(expected("input", "to have 2 columns (a binary task, class 1 positive)", x))
    g, num = check_groups(groups, x.shape[0], num_groups)
    _, correct = top_label(x, t, from_logits=from_logits)
    pred = torch.where(correct, t, 1 - t).cpu()  # argmax, the first index on ties
    return pred, t.cpu(), g, num


def _rates(pred: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, num: int, what: str) -> torch.Tensor:
    """``P(pred = 1 | mask, group)`` per group; raises when a group has no row in ``mask``."""
    n = torch.bincount(g[mask], minlength=num)
    if bool((n == 0).any()):
        first = int((n == 0).nonzero()[0])
        raise ValueError(expected(f"group {first}", f"to have at least one sample with {what}", 0))
    pos = torch.bincount(g[mask], weights=pred[mask].double(), minlength=num)
    return pos / n


# --------------------------------------------------------------------------- public metrics
def group_metrics(
    input: Any,
    target: Any,
    groups: Any,
    *,
    from_logits: bool,
    num_groups: int | None = None,
    n_bins: int = 15,
) -> GroupMetrics:
    r"""Accuracy, ECE, Brier, NLL and signed confidence gap of each group (see the module docstring).

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K)
        Probabilities, or logits with ``from_logits=True``.
    target : Tensor or ndarray, shape (N,), integer
    groups : Tensor or ndarray, shape (N,), integer
        Group index of each sample in ``[0, G)``; pass ``groups=target`` for per-class numbers.
    from_logits : bool
        Required: whether ``input`` holds logits.
    num_groups : int, optional
        ``G``; default ``max(groups) + 1``.
    n_bins : int, default 15
        Uniform bins of the per-group ECE.

    Returns
    -------
    GroupMetrics

    Raises
    ------
    ValueError
        ``groups`` not of shape ``(N,)`` (not aligned with the samples), a negative index or one
        ``>= num_groups``, fewer than 2 groups, a group in ``[0, G)`` with no member; what the
        metrics raise for ``input`` and ``target``.
    TypeError
        ``groups`` not integer, ``num_groups`` not an int.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> m = group_metrics(p, torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]), from_logits=False)
    >>> m.accuracy, m.worst_group_accuracy, m.counts
    ((0.5, 0.5), 0.5, (2, 2))
    >>> [round(v, 3) for v in m.calibration_gap]
    [0.35, 0.15]
    """
    n_bins = check_n_bins(n_bins)
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    g, num = check_groups(groups, x.shape[0], num_groups)
    logp, p = log_probs_and_probs(x, from_logits=from_logits)
    conf, correct = top_label(x, t, from_logits=from_logits)
    conf, ok = conf.cpu(), correct.double().cpu()
    nll = nll_terms(logp, t).cpu()
    brier = brier_terms(p, t).cpu()
    n = torch.bincount(g, minlength=num).double()

    def mean(v: torch.Tensor) -> list[float]:
        return (torch.bincount(g, weights=v, minlength=num) / n).tolist()

    cell = g * n_bins + uniform_bin_index(conf, n_bins)
    resid = torch.bincount(cell, weights=ok - conf, minlength=num * n_bins).reshape(num, n_bins)
    ece = (resid.abs().sum(1) / n).tolist()
    acc = mean(ok)
    gap = [c - a for c, a in zip(mean(conf), acc)]
    return GroupMetrics(
        counts=tuple(int(c) for c in n.tolist()),
        accuracy=tuple(acc),
        ece=tuple(ece),
        brier=tuple(mean(brier)),
        nll=tuple(mean(nll)),
        calibration_gap=tuple(gap),
    )


def worst_group_accuracy(
    input: Any, target: Any, groups: Any, *, from_logits: bool, num_groups: int | None = None
) -> float:
    r"""Worst-group accuracy :math:`\min_g \mathrm{acc}_g` (Sagawa et al. 2020).

    Arguments and errors as :func:`group_metrics`; returns a Python float in :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> worst_group_accuracy(p, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), from_logits=False)
    0.5
    """
    return group_metrics(
        input, target, groups, from_logits=from_logits, num_groups=num_groups
    ).worst_group_accuracy


def group_ece_difference(
    input: Any,
    target: Any,
    groups: Any,
    *,
    from_logits: bool,
    num_groups: int | None = None,
    n_bins: int = 15,
) -> float:
    r"""Largest difference in ECE between groups, :math:`\max_g \mathrm{ECE}_g - \min_g \mathrm{ECE}_g`.

    Arguments and errors as :func:`group_metrics`; returns a Python float in :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> y, g = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])
    >>> round(group_ece_difference(p, y, g, from_logits=False), 3)
    0.3
    """
    return group_metrics(
        input, target, groups, from_logits=from_logits, num_groups=num_groups, n_bins=n_bins
    ).ece_difference


def demographic_parity_difference(
    input: Any, target: Any, groups: Any, *, from_logits: bool, num_groups: int | None = None
) -> float:
    r"""Demographic-parity difference of a binary classifier, :math:`\max_g \mathrm{SR}_g - \min_g
    \mathrm{SR}_g`.

    :math:`\mathrm{SR}_g` is the fraction of group :math:`g` predicted positive (class 1, by argmax: a tie
    goes to class 0). Equals fairlearn's ``demographic_parity_difference(y, y_pred, sensitive_features=
    groups)``. ``target`` is only validated (the signature is that of every group metric, so that
    :func:`group_bootstrap` takes it). 0 means equal selection rates; it says nothing about errors.

    Raises
    ------
    ValueError
        ``input`` without exactly 2 columns; as :func:`group_metrics`.

    Returns
    -------
    float
        A Python float in :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.3, 0.7]])
    >>> y, g = torch.tensor([1, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> demographic_parity_difference(p, y, g, from_logits=False)
    0.5
    """
    pred, _, g, num = _binary_predictions(input, target, groups, from_logits, num_groups)
    sr = _rates(pred, torch.ones_like(pred, dtype=torch.bool), g, num, "any label")
    return float(sr.max() - sr.min())


def equalized_odds_difference(
    input: Any, target: Any, groups: Any, *, from_logits: bool, num_groups: int | None = None
) -> float:
    r"""Equalised-odds difference of a binary classifier: the larger of the TPR and FPR gaps between groups.

    .. math::
        \Delta_{\mathrm{EO}} = \max\big(\max_g \mathrm{TPR}_g - \min_g \mathrm{TPR}_g,\;
        \max_g \mathrm{FPR}_g - \min_g \mathrm{FPR}_g\big)

    Hardt, Price and Srebro (2016); equals fairlearn's ``equalized_odds_difference`` (its default
    ``agg="worst_case"``). Predictions by argmax (a tie goes to class 0).

    Raises
    ------
    ValueError
        ``input`` without exactly 2 columns; a group without a positive (``y = 1``) or without a negative
        sample (its TPR or FPR is undefined; fairlearn would warn and use 0); as :func:`group_metrics`.

    Returns
    -------
    float
        A Python float in :math:`[0, 1]`; 0 when both rates are equal across groups.

    Examples
    --------
    Group 0 predicts positive for both of its samples (TPR 1, FPR 1), group 1 only for its positive one
    (TPR 1, FPR 0): the false-positive rates differ by 1.

    >>> import torch
    >>> p = torch.tensor([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.3, 0.7]])
    >>> y, g = torch.tensor([1, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> equalized_odds_difference(p, target=y, groups=g, from_logits=False)
    1.0
    """
    pred, t, g, num = _binary_predictions(input, target, groups, from_logits, num_groups)
    tpr = _rates(pred, t == 1, g, num, "label 1 (for its true-positive rate)")
    fpr = _rates(pred, t == 0, g, num, "label 0 (for its false-positive rate)")
    return float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))


def group_bootstrap(
    metric: Callable[..., float],
    input: Any,
    target: Any,
    groups: Any,
    *,
    num_groups: int | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **metric_kwargs: Any,
) -> BootstrapResult:
    r"""Percentile bootstrap interval of a group metric, through :func:`~labelsmooth.metrics.bootstrap`.

    The rows are resampled with replacement together with their groups (the same indices as
    ``bootstrap`` draws for the same ``seed`` and ``N``), and ``metric(input[idx], target[idx],
    groups[idx], num_groups=G, **metric_kwargs)`` is evaluated on each resample, ``G`` being fixed from the
    full data. A resample in which a group draws no member (probability about :math:`e^{-n_g}` per
    resample) raises: give each group a few dozen members, or bootstrap the per-group metric yourself.

    Parameters
    ----------
    metric : callable
        ``metric(input, target, groups, *, num_groups, **metric_kwargs) -> float``, e.g.
        :func:`worst_group_accuracy`, :func:`group_ece_difference`, :func:`demographic_parity_difference`,
        :func:`equalized_odds_difference`.
    input, target, groups
        As :func:`group_metrics`.
    num_groups : int, optional
        ``G``, default ``max(groups) + 1``; fixed from the full data and passed to every evaluation.
    n_resamples, confidence, seed
        As :func:`~labelsmooth.metrics.bootstrap`.
    **metric_kwargs
        Passed to the metric (``from_logits=`` is required by every group metric).

    Returns
    -------
    BootstrapResult

    Raises
    ------
    TypeError
        ``metric`` not callable; as ``bootstrap``.
    ValueError
        A resample left a group empty; as ``bootstrap`` and the metric.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> z, y = torch.randn(400, 2, generator=g), torch.randint(0, 2, (400,), generator=g)
    >>> grp = torch.randint(0, 2, (400,), generator=g)
    >>> r = group_bootstrap(worst_group_accuracy, z, y, grp, from_logits=True, n_resamples=200)
    >>> r.low <= r.estimate <= r.high
    True
    """
    if not callable(metric):
        raise TypeError(expected("metric", "to be a callable", type(metric).__name__))
    t = as_tensor("target", target)
    if t.dim() != 1:
        raise ValueError(expected("target", "to have shape (N,)", t))
    gt, num = check_groups(groups, t.shape[0], num_groups)
    packed = torch.stack([t.long().cpu(), gt], dim=1)

    def on_packed(x: Any, tg: torch.Tensor, **kw: Any) -> float:
        try:
            return float(metric(x, tg[:, 0], tg[:, 1], num_groups=num, **kw))
        except ValueError as exc:
            if tg.shape[0] != t.shape[0] or not torch.equal(tg, packed):
                raise ValueError(
                    f"A bootstrap resample broke the metric ({exc}) Groups need a few dozen members each."
                ) from exc
            raise

    return bootstrap(
        on_packed, input, packed, n_resamples=n_resamples, confidence=confidence, seed=seed, **metric_kwargs
    )
