r"""Streaming, mergeable calibration metrics for evaluation sets that do not fit in memory."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from labelsmooth._validation import (
    check_bool,
    check_int,
    check_n_bins,
    check_strategy,
    expected,
    prepare_scores_and_target,
)
from labelsmooth.metrics.binned import (
    CalibrationBins,
    Strategy,
    bin_sums,
    classwise_bin_sums,
    uniform_bin_index,
)
from labelsmooth.metrics.probabilities import log_probs_and_probs, top_label
from labelsmooth.metrics.scores import SUMMARY_KEYS, brier_terms, entropy_terms, nll_terms, summary_from_sums

__all__ = ["METER_KEYS", "CalibrationMeter"]

METER_KEYS = tuple(key for key in SUMMARY_KEYS if key != "smece")
"""Keys of :meth:`CalibrationMeter.compute`: those of ``calibration_summary`` except ``smece``."""


class CalibrationMeter:
    r"""Accumulate calibration metrics batch by batch in :math:`O(K \cdot B)` memory; merge across workers.

    State: per top-label bin :math:`b` the count :math:`n_b`, :math:`\sum_{i\in b} c_i` and
    :math:`\sum_{i\in b} 1[\hat y_i = y_i]`; the same three per (class, bin) for classwise ECE; and running
    sums of the per-sample NLL, Brier score, correctness, confidence and entropy. Every metric is a function
    of these sums, so :meth:`compute` equals :func:`~labelsmooth.metrics.calibration_summary` on the
    concatenated data (up to float64 summation order, ~1e-15), and the state of the union of two data
    sets is the sum of their states (:meth:`merge`, ``+``) -- what distributed evaluation needs.

    Only uniform bins stream. Quantile bins and smECE depend on all the confidences at once (the bin edges,
    the bandwidth); compute them with the functional API on the gathered data. :meth:`compute` returns a
    dict of Python floats, :meth:`bins` the accumulated :class:`~labelsmooth.metrics.CalibrationBins`.

    Parameters
    ----------
    n_bins : int, default 15
    num_classes : int, optional
        K; inferred from the first batch when omitted, then enforced.
    from_logits : bool
        Required, keyword-only: whether the batches hold logits (softmax in float64) or probabilities.
    strategy : {"uniform"}, default "uniform"
        ``"quantile"`` raises a ValueError explaining why it cannot stream.
    right_closed : bool, default False
        As in :func:`~labelsmooth.metrics.expected_calibration_error`.

    Raises
    ------
    ValueError
        ``n_bins < 1``, ``num_classes < 2``, ``strategy="quantile"``; in :meth:`update`, bad batches (as
        the functional metrics) or a batch with a different number of classes; in :meth:`compute`, no data;
        in :meth:`merge`, meters with different settings.

    Examples
    --------
    Three batches of a 5-class evaluation set, one meter; the result is that of the whole set at once:

    >>> import torch
    >>> from labelsmooth.metrics import CalibrationMeter, expected_calibration_error
    >>> batches = [(torch.randn(300, 5), torch.randint(0, 5, (300,))) for _ in range(3)]
    >>> meter = CalibrationMeter(n_bins=10, from_logits=True)
    >>> for zb, yb in batches:
    ...     meter.update(zb, yb)
    >>> r = meter.compute()
    >>> z, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    >>> abs(r["ece"] - expected_calibration_error(z, y, n_bins=10, from_logits=True)) < 1e-12
    True
    >>> sorted(r)[:3]
    ['accuracy', 'brier', 'calibration_gap']
    """

    def __init__(
        self,
        n_bins: int = 15,
        num_classes: int | None = None,
        *,
        from_logits: bool,
        strategy: Strategy = "uniform",
        right_closed: bool = False,
    ) -> None:
        self.n_bins = check_n_bins(n_bins)
        if num_classes is not None:
            num_classes = check_int("num_classes", num_classes, lo=2, type_what="to be an int or None")
        self.num_classes = num_classes
        self.from_logits = check_bool("from_logits", from_logits)
        if check_strategy(strategy) != "uniform":
            raise ValueError(
                expected(
                    "strategy",
                    "to be 'uniform' for a streaming CalibrationMeter (quantile bin edges depend on all the "
                    "data; use expected_calibration_error(..., strategy='quantile') on the gathered data)",
                    strategy,
                )
            )
        self.strategy = strategy
        self.right_closed = check_bool("right_closed", right_closed)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every sample seen (``num_classes`` given explicitly is kept)."""
        b = self.n_bins
        self.n = 0
        self.counts = torch.zeros(b, dtype=torch.long)
        self.sum_confidence = torch.zeros(b, dtype=torch.float64)
        self.sum_correct = torch.zeros(b, dtype=torch.float64)
        self.sum_nll = 0.0
        self.sum_brier = 0.0
        self.sum_entropy = 0.0
        self.classwise: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if self.num_classes is not None:
            self._init_classwise(self.num_classes)
        self._inferred_classes = False

    def _init_classwise(self, k: int) -> None:
        shape = (k, self.n_bins)
        self.classwise = (
            torch.zeros(shape, dtype=torch.long),
            torch.zeros(shape, dtype=torch.float64),
            torch.zeros(shape, dtype=torch.float64),
        )

    def update(self, input: Any, target: Any) -> None:
        """Add a batch: ``input`` ``(n, K)`` probabilities or logits, ``target`` ``(n,)`` class indices."""
        x, t = prepare_scores_and_target(input, target, from_logits=self.from_logits)
        k = x.shape[1]
        if self.num_classes is None:
            self.num_classes = k
            self._inferred_classes = True
            self._init_classwise(k)
        elif k != self.num_classes:
            raise ValueError(expected("input", f"to have {self.num_classes} classes (columns)", x))
        logp, p = log_probs_and_probs(x, from_logits=self.from_logits)
        conf, correct = top_label(x, t, from_logits=self.from_logits)
        idx = uniform_bin_index(conf, self.n_bins, self.right_closed)
        for acc, new in zip(
            (self.counts, self.sum_confidence, self.sum_correct), bin_sums(idx, conf, correct, self.n_bins)
        ):
            acc += new.cpu()
        assert self.classwise is not None  # set above; internal invariant, not user input
        for acc, new in zip(self.classwise, classwise_bin_sums(p, t, self.n_bins, self.right_closed)):
            acc += new.cpu()
        self.n += x.shape[0]
        self.sum_nll += float(nll_terms(logp, t).sum())
        self.sum_brier += float(brier_terms(p, t).sum())
        self.sum_entropy += float(entropy_terms(p, logp).sum())

    # ------------------------------------------------------------------ results
    def bins(self) -> CalibrationBins:
        """The accumulated top-label bins (for :func:`~labelsmooth.plots.plot_reliability` and friends)."""
        return CalibrationBins(
            edges=np.linspace(0.0, 1.0, self.n_bins + 1),
            counts=self.counts.numpy().copy(),
            sum_confidence=self.sum_confidence.numpy().copy(),
            sum_correct=self.sum_correct.numpy().copy(),
        )

    def compute(self) -> dict[str, float]:
        """Every streamable metric (:data:`METER_KEYS`), equal to ``calibration_summary`` on all the data."""
        if self.n == 0:
            raise ValueError(
                expected("CalibrationMeter", "to have seen at least one sample before compute()", 0)
            )
        assert self.classwise is not None
        return summary_from_sums(
            self.n,
            sum_correct=float(self.sum_correct.sum()),
            sum_confidence=float(self.sum_confidence.sum()),
            sum_nll=self.sum_nll,
            sum_brier=self.sum_brier,
            sum_entropy=self.sum_entropy,
            bins=(self.counts, self.sum_confidence, self.sum_correct),
            classwise=self.classwise,
        )

    # ------------------------------------------------------------------ merging
    def merge(self, other: CalibrationMeter) -> CalibrationMeter:
        """Add ``other``'s state into this meter (in place) and return it: the meter of the union."""
        if not isinstance(other, CalibrationMeter):
            raise TypeError(expected("other", "to be a CalibrationMeter", type(other).__name__))
        for name in ("n_bins", "from_logits", "right_closed"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(
                    expected(f"other.{name}", f"to equal {getattr(self, name)!r}", getattr(other, name))
                )
        if other.n == 0:
            return self
        if self.num_classes is None or (self.n == 0 and self._inferred_classes):
            self.num_classes = other.num_classes
            self._inferred_classes = other._inferred_classes
            self._init_classwise(int(other.num_classes))  # type: ignore[arg-type]
        elif other.num_classes != self.num_classes:
            raise ValueError(expected("other.num_classes", f"to equal {self.num_classes}", other.num_classes))
        self.n += other.n
        self.counts += other.counts
        self.sum_confidence += other.sum_confidence
        self.sum_correct += other.sum_correct
        assert self.classwise is not None and other.classwise is not None
        for acc, new in zip(self.classwise, other.classwise):
            acc += new
        self.sum_nll += other.sum_nll
        self.sum_brier += other.sum_brier
        self.sum_entropy += other.sum_entropy
        return self

    def __add__(self, other: CalibrationMeter) -> CalibrationMeter:
        if not isinstance(other, CalibrationMeter):
            return NotImplemented
        return copy.deepcopy(self).merge(other)

    def __repr__(self) -> str:
        return (
            f"CalibrationMeter(n_bins={self.n_bins}, num_classes={self.num_classes}, "
            f"from_logits={self.from_logits}, n={self.n})"
        )
