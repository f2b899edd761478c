r"""Percentile bootstrap confidence intervals for any metric."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from labelsmooth._validation import (
    as_tensor,
    check_bool,
    check_int,
    check_n_bins,
    check_norm,
    check_positive_int,
    check_scalar_range,
    check_strategy,
    expected,
    prepare_scores_and_target,
)
from labelsmooth.metrics.binned import (
    ce_from_bin_rows,
    classwise_calibration_error,
    expected_calibration_error,
    uniform_bin_index,
)
from labelsmooth.metrics.probabilities import log_probs_and_probs, top_label
from labelsmooth.metrics.scores import (
    SummaryKey,
    accuracy,
    brier_score,
    brier_terms,
    calibration_gap,
    entropy_terms,
    mean_confidence,
    negative_log_likelihood,
    nll_terms,
    predictive_entropy,
)
from labelsmooth.metrics.smooth import smooth_calibration_error

__all__ = ["BootstrapResult", "bootstrap"]

MetricName = SummaryKey
"""The names :func:`bootstrap` accepts: the keys of :func:`~labelsmooth.metrics.calibration_summary`."""

_BY_NAME: dict[str, tuple[Callable[..., float], dict[str, Any]]] = {
    "accuracy": (accuracy, {}),
    "nll": (negative_log_likelihood, {}),
    "brier": (brier_score, {}),
    "ece": (expected_calibration_error, {"norm": "l1"}),
    "rms_ce": (expected_calibration_error, {"norm": "l2"}),
    "mce": (expected_calibration_error, {"norm": "max"}),
    "smece": (smooth_calibration_error, {}),
    "classwise_ece": (classwise_calibration_error, {}),
    "mean_confidence": (mean_confidence, {}),
    "calibration_gap": (calibration_gap, {}),
    "entropy": (predictive_entropy, {}),
}
_MEAN_METRICS = {
    accuracy: "accuracy",
    negative_log_likelihood: "nll",
    brier_score: "brier",
    mean_confidence: "mean_confidence",
    calibration_gap: "calibration_gap",
    predictive_entropy: "entropy",
}
_CHUNK_ELEMENTS = 4_000_000  # resample weights held at once (float64: 32 MB)


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate and its percentile bootstrap interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int


def _resample_indices(n: int, n_resamples: int, seed: int) -> Iterator[torch.Tensor]:
    """Chunks of ``(r, n)`` bootstrap indices, reproducible from ``seed`` whatever the chunking."""
    g = torch.Generator().manual_seed(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    done = 0
    while done < n_resamples:
        r = min(chunk, n_resamples - done)
        yield torch.randint(0, n, (r, n), generator=g)
        done += r


def _counts(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Resample multiplicities ``w[r, i]`` = how often sample ``i`` appears in resample ``r``."""
    r = idx.shape[0]
    flat = idx + n * torch.arange(r)[:, None]
    return torch.bincount(flat.reshape(-1), minlength=r * n).reshape(r, n).double()


def _vectorised_stats(
    metric: Callable[..., float], kwargs: dict[str, Any], x: torch.Tensor, t: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function of resample weights ``(r, n)`` giving the metric per resample, or None to fall back."""
    from_logits = check_bool("from_logits", kwargs["from_logits"])  # required by every metric here
    conf, correct = top_label(x, t, from_logits=from_logits)
    n = x.shape[0]
    if metric in _MEAN_METRICS:
        if set(kwargs) - {"from_logits"}:
            return None
        name = _MEAN_METRICS[metric]
        if name in ("nll", "brier", "entropy"):
            logp, p = log_probs_and_probs(x, from_logits=from_logits)
            v = {"nll": lambda: nll_terms(logp, t), "brier": lambda: brier_terms(p, t)}.get(
                name, lambda: entropy_terms(p, logp)
            )()
        else:
            v = {
                "accuracy": correct.double(),
                "mean_confidence": conf,
                "calibration_gap": conf - correct.double(),
            }[name]
        return lambda w: (w @ v) / n
    if metric is expected_calibration_error:
        if set(kwargs) - {"from_logits", "n_bins", "norm", "right_closed", "strategy"}:
            return None
        if check_strategy(kwargs.get("strategy", "uniform")) != "uniform":
            return None
        n_bins = check_n_bins(kwargs.get("n_bins", 15))
        norm = check_norm(kwargs.get("norm", "l1"))
        idx = uniform_bin_index(conf, n_bins, check_bool("right_closed", kwargs.get("right_closed", False)))
        c, k = conf, correct.double()

        def binned(w: torch.Tensor) -> torch.Tensor:
            r = w.shape[0]
            index = idx.expand(r, n)
            cnt = torch.zeros(r, n_bins, dtype=torch.float64).scatter_add_(1, index, w)
            sc = torch.zeros(r, n_bins, dtype=torch.float64).scatter_add_(1, index, w * c)
            sk = torch.zeros(r, n_bins, dtype=torch.float64).scatter_add_(1, index, w * k)
            return ce_from_bin_rows(cnt, sc, sk, norm)

        return binned
    return None


def bootstrap(
    metric: Callable[..., float] | MetricName,
    input: Any,
    target: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **metric_kwargs: Any,
) -> BootstrapResult:
    r"""Percentile bootstrap confidence interval for a metric of ``(input, target)``.

    Draw :math:`R` resamples of the :math:`N` rows with replacement, evaluate the metric on each,
    :math:`\hat\theta^{*}_1, \dots, \hat\theta^{*}_R`, and report the empirical
    :math:`(1 - \gamma)/2` and :math:`(1 + \gamma)/2` quantiles (linear interpolation) as the interval
    for confidence level :math:`\gamma`, next to the estimate :math:`\hat\theta` on the full data
    (Efron and Tibshirani 1993). Binned ECE on a few thousand samples moves by a percentage point between
    resamples; report its interval.

    Metrics that are means of per-sample terms (accuracy, NLL, Brier, mean confidence, calibration gap,
    entropy) and uniform-bin ECE / RMS-CE / MCE are evaluated for all resamples at once from resample
    weights; any other callable is called once per resample with torch tensors ``(input[idx],
    target[idx], **metric_kwargs)``. Both paths draw the same indices for the same ``seed``.

    Parameters
    ----------
    metric : callable or str
        ``metric(input, target, **metric_kwargs) -> float``, or a key of
        :func:`~labelsmooth.metrics.calibration_summary` (``"ece"``, ``"nll"``, ...).
    input : Tensor or ndarray, shape (N, K)
    target : Tensor or ndarray, shape (N,)
    n_resamples : int, default 1000
    confidence : float in (0, 1), default 0.95
    seed : int, default 0
        Seeds a ``torch.Generator``: the result is reproducible.
    **metric_kwargs
        Passed to the metric, e.g. ``from_logits=True, n_bins=10``; every metric of the library requires
        ``from_logits``.

    Returns
    -------
    BootstrapResult
        ``estimate``, ``low``, ``high``, ``confidence``, ``n_resamples``.

    Raises
    ------
    ValueError
        ``n_resamples < 1``, ``confidence`` outside (0, 1), an unknown metric name, or what the metric raises.
    TypeError
        ``metric`` neither callable nor str, non-int ``n_resamples`` or ``seed``.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth.metrics import bootstrap, expected_calibration_error
    >>> g = torch.Generator().manual_seed(0)
    >>> z, y = torch.randn(2000, 3, generator=g), torch.randint(0, 3, (2000,), generator=g)
    >>> r = bootstrap(expected_calibration_error, z, y, from_logits=True, n_bins=10, n_resamples=200)
    >>> r.low < r.estimate < r.high
    True
    >>> round(r.estimate, 3)
    0.276
    """
    if isinstance(metric, str):
        if metric not in _BY_NAME:
            raise ValueError(expected("metric", "to be a callable or one of " + ", ".join(_BY_NAME), metric))
        fn, extra = _BY_NAME[metric]
        metric_kwargs = {**extra, **metric_kwargs}
    elif callable(metric):
        fn = metric
    else:
        raise TypeError(expected("metric", "to be a callable or a metric name", type(metric).__name__))
    n_resamples = check_positive_int("n_resamples", n_resamples)
    confidence = check_scalar_range("confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    seed = check_int("seed", seed)

    estimate = float(fn(input, target, **metric_kwargs))  # validates the data and the arguments
    x = as_tensor("input", input)
    t = as_tensor("target", target)
    n = x.shape[0]
    fast = None
    if fn is expected_calibration_error or fn in _MEAN_METRICS:
        xv, tv = prepare_scores_and_target(x, t, from_logits=metric_kwargs["from_logits"])
        fast = _vectorised_stats(fn, metric_kwargs, xv, tv)
    stats = []
    for idx in _resample_indices(n, int(n_resamples), int(seed)):
        if fast is not None:
            stats.append(fast(_counts(idx, n)))
        else:
            stats.append(
                torch.tensor([float(fn(x[i], t[i], **metric_kwargs)) for i in idx], dtype=torch.float64)
            )
    all_stats = torch.cat(stats)
    q = torch.tensor([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0], dtype=torch.float64)
    low, high = torch.quantile(all_stats, q).tolist()
    return BootstrapResult(
        estimate=estimate,
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_resamples=int(n_resamples),
    )
