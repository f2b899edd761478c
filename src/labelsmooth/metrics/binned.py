r"""Binned calibration errors: top-label ECE / RMS-CE / MCE and classwise ECE.

The binning, stated once for the whole library
----------------------------------------------
Let :math:`c_i = \max_k p_{ik}` be the top-label confidence of sample :math:`i` (computed in, or widened
exactly to, float64) and :math:`B` the number of bins.

* ``strategy="uniform"``, ``right_closed=False`` (default): sample :math:`i` goes to bin
  :math:`b_i = \min(\lfloor c_i B \rfloor, B - 1)`, i.e. bins :math:`[0, 1/B), [1/B, 2/B), \dots,
  [(B-1)/B, 1]`. A confidence of exactly 1.0 lands in the *last* bin. (torchmetrics uses
  ``bucketize(right=True) - 1`` on ``linspace(0, 1, B + 1)``, which sends 1.0 to a hidden extra bin
  :math:`B` that still counts in the ECE; see torchmetrics issue 3510.)
* ``strategy="uniform"``, ``right_closed=True``: :math:`b_i = \max(\lceil c_i B \rceil - 1, 0)`, i.e.
  bins :math:`[0, 1/B], (1/B, 2/B], \dots` -- the convention of Guo et al. (2017) and of
  ``sklearn.calibration.calibration_curve``. The two agree except for confidences that sit exactly on an
  edge ``j/B``, where scikit-learn compares with the float64 ``linspace`` edge instead of ``c_i B``.
* ``strategy="quantile"``: equal-mass bins. The interior edges are the :math:`b/B` quantiles of the
  confidences (linear interpolation, as ``numpy.percentile``), and a sample goes to the bin given by
  the number of interior edges :math:`e` with :math:`e \le c_i` (or :math:`e < c_i` when
  ``right_closed``). Equal confidences always share a bin; bins may be empty when confidences tie.

With :math:`n_b` samples in bin :math:`b`, :math:`\mathrm{acc}_b` their accuracy and
:math:`\mathrm{conf}_b` their mean confidence, and :math:`N = \sum_b n_b`:

.. math::
    \mathrm{ECE} = \sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|, \quad
    \mathrm{RMSCE} = \sqrt{\sum_b \frac{n_b}{N} (\mathrm{acc}_b - \mathrm{conf}_b)^2}, \quad
    \mathrm{MCE} = \max_{b:\, n_b > 0} |\mathrm{acc}_b - \mathrm{conf}_b|.

Empty bins contribute nothing. References: Naeini, Cooper and Hauskrecht (2015); Guo, Pleiss, Sun and
Weinberger (2017), *On Calibration of Modern Neural Networks*; Kull et al. (2019) for classwise ECE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from labelsmooth._validation import (
    check_bool,
    check_n_bins,
    check_norm,
    check_strategy,
    prepare_scores_and_target,
)
from labelsmooth.metrics._inputs import map_top_label_chunks, prepare_shapes
from labelsmooth.metrics.probabilities import probs

__all__ = [
    "CalibrationBins",
    "calibration_bins",
    "classwise_calibration_error",
    "expected_calibration_error",
]


Strategy = Literal["uniform", "quantile"]
"""Equal-width or equal-mass bins (the ``strategy`` argument)."""
Norm = Literal["l1", "l2", "max"]
"""ECE, RMS calibration error or MCE (the ``norm`` argument)."""


# --------------------------------------------------------------------------- bin assignment
def uniform_bin_index(conf: torch.Tensor, n_bins: int, right_closed: bool = False) -> torch.Tensor:
    """Bin index of float64 confidences for ``n_bins`` equal-width bins (see the module docstring)."""
    scaled = conf.double() * n_bins
    if right_closed:
        return (torch.ceil(scaled) - 1.0).clamp_(0, n_bins - 1).long()
    # conf >= 0, so truncation is the floor
    return scaled.long().clamp_(max=n_bins - 1)


def quantile_edges(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The ``b / n_bins`` quantiles (b = 0..n_bins) of ``conf``, linear interpolation, float64."""
    s = conf.double().sort().values
    pos = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=s.device) * (s.numel() - 1)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    frac = pos - lo.double()
    return s[lo] + (s[hi] - s[lo]) * frac


def bin_index(
    conf: torch.Tensor, n_bins: int, strategy: str, right_closed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(index, edges)`` for ``conf`` under ``strategy``; ``edges`` has ``n_bins + 1`` entries."""
    if strategy == "uniform":
        edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)
        return uniform_bin_index(conf, n_bins, right_closed), edges
    edges = quantile_edges(conf, n_bins)
    idx = torch.searchsorted(edges[1:-1].contiguous(), conf.double(), right=not right_closed)
    return idx, edges


def bin_sums(
    idx: torch.Tensor, conf: torch.Tensor, correct: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin ``(count, sum of confidence, sum of correct)``: int64, float64, float64; ``(n_bins,)``."""
    # one integer bincount over (bin, correct) pairs gives both the counts and the correct counts
    pairs = torch.bincount(idx + n_bins * correct.long(), minlength=2 * n_bins)
    counts = pairs[:n_bins] + pairs[n_bins:]
    sum_conf = torch.bincount(idx, weights=conf.double(), minlength=n_bins)
    return counts, sum_conf, pairs[n_bins:].double()


def top_label_all(x: torch.Tensor, t: torch.Tensor, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated top-label ``(confidence, correct)`` of every row, computed chunk by chunk."""
    parts = map_top_label_chunks(lambda c, k: (c, k), x, t, from_logits=from_logits)
    return torch.cat([c for c, _ in parts]), torch.cat([k for _, k in parts])


def binned_sums(
    x: torch.Tensor, t: torch.Tensor, n_bins: int, strategy: str, right_closed: bool, from_logits: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(counts, sum_conf, sum_correct, edges)`` of validated inputs; uniform bins stream chunk by chunk."""
    if strategy == "uniform":

        def chunk_sums(conf: torch.Tensor, correct: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return bin_sums(uniform_bin_index(conf, n_bins, right_closed), conf, correct, n_bins)

        parts = map_top_label_chunks(chunk_sums, x, t, from_logits=from_logits)
        counts, sc, sk = (torch.stack(col).sum(0) for col in zip(*parts))
        edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=x.device)
        return counts, sc, sk, edges
    conf, correct = top_label_all(x, t, from_logits)
    idx, edges = bin_index(conf, n_bins, strategy, right_closed)
    return (*bin_sums(idx, conf, correct, n_bins), edges)


def ce_from_bins(counts: torch.Tensor, sum_conf: torch.Tensor, sum_correct: torch.Tensor, norm: str) -> float:
    r"""ECE (``l1``), RMS calibration error (``l2``) or MCE (``max``) from per-bin sums, ``(n_bins,)``.

    ``counts`` :math:`n_b`, ``sum_conf`` :math:`\sum_{i \in b} c_i`, ``sum_correct``
    :math:`\sum_{i \in b} 1[\hat y_i = y_i]`; NaN when every bin is empty. See :func:`ce_from_bin_rows`.
    """
    return float(ce_from_bin_rows(counts, sum_conf, sum_correct, norm))


def ce_from_bin_rows(
    counts: torch.Tensor, sum_conf: torch.Tensor, sum_correct: torch.Tensor, norm: str
) -> torch.Tensor:
    r"""The library's one formula for a binned calibration error, over the last dimension of bin sums.

    With :math:`N = \sum_b n_b` and :math:`d_b = \sum_{i \in b} 1[\hat y_i = y_i] - \sum_{i \in b} c_i
    = n_b (\mathrm{acc}_b - \mathrm{conf}_b)`: ``l1`` gives :math:`\sum_b |d_b| / N`, ``l2``
    :math:`\sqrt{\sum_{b: n_b > 0} d_b^2 / n_b / N}` and ``max`` :math:`\max_{b: n_b > 0} |d_b| / n_b`.
    ``counts`` may be real (bootstrap resample weights). Tensors or numpy arrays of shape ``(..., n_bins)``
    give a float64 tensor ``(...)``; NaN where every bin is empty.
    """
    counts = torch.as_tensor(counts).double()
    n = counts.sum(-1)
    diff = torch.as_tensor(sum_correct).double() - torch.as_tensor(sum_conf).double()  # n_b (acc_b - conf_b)
    if norm == "l1":
        err = diff.abs().sum(-1) / n
    else:
        nonempty = counts > 0
        gap = torch.where(nonempty, diff / torch.where(nonempty, counts, 1.0), 0.0)
        err = torch.sqrt((counts * gap * gap).sum(-1) / n) if norm == "l2" else gap.abs().amax(-1)
    return torch.where(n > 0, err, torch.full_like(err, float("nan")))


# --------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class CalibrationBins:
    r"""Per-bin statistics of a top-label reliability diagram (numpy arrays, float64 unless noted).

    Attributes
    ----------
    edges : ndarray, shape (n_bins + 1,)
        Bin edges; ``[0, 1/B, ..., 1]`` for uniform bins, the confidence quantiles for quantile bins.
    counts : ndarray of int64, shape (n_bins,)
        :math:`n_b`, the number of samples per bin.
    sum_confidence, sum_correct : ndarray, shape (n_bins,)
        :math:`\sum_{i \in b} c_i` and :math:`\sum_{i \in b} 1[\hat y_i = y_i]`.
    """

    edges: np.ndarray
    counts: np.ndarray
    sum_confidence: np.ndarray
    sum_correct: np.ndarray

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[0])

    @property
    def confidence(self) -> np.ndarray:
        """Mean confidence per bin, :math:`\\mathrm{conf}_b` (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sum_confidence / self.counts, np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        """Accuracy per bin, :math:`\\mathrm{acc}_b` (NaN for empty bins)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sum_correct / self.counts, np.nan)

    def calibration_error(self, norm: Norm = "l1") -> float:
        """ECE / RMS-CE / MCE of these bins (``norm`` in ``"l1"``, ``"l2"``, ``"max"``), a Python float."""
        return ce_from_bins(
            torch.from_numpy(self.counts),
            torch.from_numpy(self.sum_confidence),
            torch.from_numpy(self.sum_correct),
            check_norm(norm),
        )


def calibration_bins(
    input: Any,
    target: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    from_logits: bool,
    right_closed: bool = False,
) -> CalibrationBins:
    """Bin the top-label confidences and return the per-bin counts and sums.

    The numbers behind a reliability diagram and behind :func:`expected_calibration_error`; the bin
    assignment is defined in the module docstring of :mod:`labelsmooth.metrics.binned`.

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K), floating point
        Probabilities (``from_logits=False``) or logits (``from_logits=True``).
    target : Tensor or ndarray, shape (N,), integer
        Class indices in ``[0, K)``.
    from_logits : bool
        Required, keyword-only: whether ``input`` holds logits.
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
    right_closed : bool, default False
        Use ``(lo, hi]`` bins (Guo et al. 2017, scikit-learn) instead of ``[lo, hi)``.

    Returns
    -------
    CalibrationBins

    Raises
    ------
    ValueError
        Bad shapes or values (see :func:`expected_calibration_error`).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [1.0, 0.0]])
    >>> bins = calibration_bins(p, torch.tensor([0, 1, 1, 0]), n_bins=2, from_logits=False)
    >>> bins.counts.tolist(), bins.accuracy.round(3).tolist()
    ([0, 4], [nan, 0.75])
    """
    n_bins = check_n_bins(n_bins)
    check_strategy(strategy)
    right_closed = check_bool("right_closed", right_closed)
    x, t, from_logits = prepare_shapes(input, target, from_logits=from_logits)
    counts, sc, sk, edges = binned_sums(x, t, n_bins, strategy, right_closed, from_logits)
    return CalibrationBins(
        edges=edges.cpu().numpy(),
        counts=counts.cpu().numpy(),
        sum_confidence=sc.cpu().numpy(),
        sum_correct=sk.cpu().numpy(),
    )


def expected_calibration_error(
    input: Any,
    target: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    from_logits: bool,
    right_closed: bool = False,
) -> float:
    r"""Top-label expected calibration error (ECE), RMS calibration error or maximum calibration error.

    .. math::
        \mathrm{ECE} = \sum_{b=1}^{B} \frac{n_b}{N}\, |\mathrm{acc}_b - \mathrm{conf}_b|
        = \frac{1}{N} \sum_b \Big|\sum_{i \in b} (1[\hat y_i = y_i] - c_i)\Big|

    where :math:`c_i = \max_k p_{ik}` is the confidence, :math:`\hat y_i = \arg\max_k p_{ik}` the
    prediction, :math:`n_b` the number of samples in bin :math:`b`, :math:`\mathrm{acc}_b` their
    accuracy and :math:`\mathrm{conf}_b` their mean confidence. ``norm="l2"`` gives
    :math:`\sqrt{\sum_b (n_b/N)(\mathrm{acc}_b - \mathrm{conf}_b)^2}` (RMS calibration error) and
    ``norm="max"`` gives :math:`\max_{b: n_b > 0} |\mathrm{acc}_b - \mathrm{conf}_b|` (MCE). Bins: uniform
    bin :math:`b_i = \min(\lfloor c_i B\rfloor, B-1)` in float64, so :math:`c_i = 1` lands in the last
    bin; see :mod:`labelsmooth.metrics.binned` for ``right_closed`` and ``strategy="quantile"``.

    One vectorised pass: max over classes, a float64 bin index, three ``bincount`` calls.

    Parameters
    ----------
    input : Tensor or ndarray, shape (N, K), floating point
        Probabilities (rows in [0, 1] summing to 1 within 1e-4, or the dtype's epsilon for float16 and
        bfloat16) or, with ``from_logits=True``, logits.
    target : Tensor or ndarray, shape (N,), integer
        Class indices in ``[0, K)``.
    from_logits : bool
        Required, keyword-only: whether ``input`` holds logits (softmax is applied in float64). There is
        no default: a wrong one silently computes a wrong number.
    n_bins : int, default 15
        Number of bins :math:`B \ge 1`.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width or equal-mass bins.
    norm : {"l1", "l2", "max"}, default "l1"
        ECE, RMS calibration error or MCE.
    right_closed : bool, default False
        ``(lo, hi]`` bins as in Guo et al. (2017) and ``sklearn.calibration.calibration_curve``.

    Returns
    -------
    float
        A Python float in :math:`[0, 1]`.

    Raises
    ------
    ValueError
        ``input`` not ``(N, K)`` with ``N >= 1, K >= 2``; NaN or inf; probabilities outside [0, 1] or not
        summing to 1; ``target`` of the wrong length or out of range; ``n_bins < 1``; unknown
        ``strategy`` or ``norm``.
    TypeError
        Integer ``input``, float ``target``, non-int ``n_bins``, non-bool flags; ``from_logits`` missing.

    References
    ----------
    Guo, Pleiss, Sun and Weinberger (2017), *On Calibration of Modern Neural Networks*, ICML: the ECE of
    their Section 2, with ``right_closed=True`` their bins exactly.

    Examples
    --------
    torchmetrics' documented example, by hand: bin (1/3, 2/3] holds confidences 0.55, 0.55 and 0.60 (one
    of three right), bin [2/3, 1] the confidence 0.90 (right), so ECE = (|1 - 1.70| + |1 - 0.90|) / 4.

    >>> import torch
    >>> p = torch.tensor([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    >>> y = torch.tensor([0, 1, 2, 0])
    >>> round(expected_calibration_error(p, y, from_logits=False, n_bins=3), 4)
    0.2
    >>> round(expected_calibration_error(p, y, from_logits=False, n_bins=3, norm="max"), 4)
    0.2333
    """
    n_bins = check_n_bins(n_bins)
    check_strategy(strategy)
    check_norm(norm)
    right_closed = check_bool("right_closed", right_closed)
    x, t, from_logits = prepare_shapes(input, target, from_logits=from_logits)
    counts, sc, sk, _ = binned_sums(x, t, n_bins, strategy, right_closed, from_logits)
    return ce_from_bins(counts, sc, sk, norm)


def classwise_bin_sums(
    p: torch.Tensor, target: torch.Tensor, n_bins: int, right_closed: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-(class, bin) ``(count, sum of p_k, sum of 1[y = k])``, each of shape ``(K, n_bins)``."""
    n, k = p.shape
    idx = uniform_bin_index(p, n_bins, right_closed)
    flat = (idx + n_bins * torch.arange(k, device=p.device)).reshape(-1)
    onehot = torch.zeros_like(p, dtype=torch.float64)
    onehot[torch.arange(n, device=p.device), target] = 1.0
    size = k * n_bins
    counts = torch.bincount(flat, minlength=size).reshape(k, n_bins)
    sum_p = torch.bincount(flat, weights=p.double().reshape(-1), minlength=size).reshape(k, n_bins)
    sum_y = torch.bincount(flat, weights=onehot.reshape(-1), minlength=size).reshape(k, n_bins)
    return counts, sum_p, sum_y


def classwise_calibration_error(
    input: Any,
    target: Any,
    *,
    n_bins: int = 15,
    from_logits: bool,
    right_closed: bool = False,
) -> float:
    r"""Classwise expected calibration error (Kull et al. 2019), uniform bins.

    Every class :math:`k` is treated as a one-vs-rest problem with probability :math:`p_{ik}` and outcome
    :math:`1[y_i = k]`; its ECE is averaged over the :math:`K` classes:

    .. math::
        \text{cw-ECE} = \frac{1}{K} \sum_{k=1}^{K} \sum_{b=1}^{B} \frac{n_{kb}}{N}
        \big|\bar y_{kb} - \bar p_{kb}\big|
        = \frac{1}{NK} \sum_{k, b} \Big|\sum_{i:\, b_{ik} = b} (1[y_i = k] - p_{ik})\Big|

    with :math:`b_{ik} = \min(\lfloor p_{ik} B \rfloor, B - 1)` (or the right-closed variant) and
    :math:`n_{kb}` the number of samples whose class-:math:`k` probability falls in bin :math:`b`.
    ``input``, ``target``, ``from_logits`` (required), ``n_bins`` and ``right_closed`` are those of
    :func:`expected_calibration_error`, and so are the errors; the result is a Python float in
    :math:`[0, 1]`, 0 only when every class is calibrated in every bin.

    References
    ----------
    Kull, Perello-Nieto, Kängsepp, Silva Filho, Song and Flach (2019), *Beyond temperature scaling:
    obtaining well-calibrated multi-class probabilities with Dirichlet calibration*, NeurIPS.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    >>> round(classwise_calibration_error(p, torch.tensor([0, 0]), n_bins=2, from_logits=False), 4)
    0.45
    """
    n_bins = check_n_bins(n_bins)
    right_closed = check_bool("right_closed", right_closed)
    x, t = prepare_scores_and_target(input, target, from_logits=from_logits)
    p = probs(x, from_logits=from_logits)
    _, sum_p, sum_y = classwise_bin_sums(p, t, n_bins, right_closed)
    return float((sum_y - sum_p).abs().sum() / (p.shape[0] * p.shape[1]))
