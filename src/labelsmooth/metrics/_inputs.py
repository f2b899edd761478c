"""Conversion and validation of ``(input, target)`` pairs shared by every metric.

Every public metric accepts torch tensors or numpy arrays. ``input`` is ``(N, K)`` and holds either
probabilities (``from_logits=False``) or logits (``from_logits=True``); the caller says which, the value
range is never used to guess. ``target`` is ``(N,)`` and holds integer class indices in ``[0, K)``.

The checks are written as a handful of full passes over the data (``aminmax``, one row sum), so that
validating ten million rows costs a fraction of the metric itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from labelsmooth._parallel import map_blocks
from labelsmooth._validation import check_choice, expected

T = TypeVar("T")

PROB_ATOL = 1e-4
"""Tolerance on ``|sum_k p_k - 1|`` for float32/float64 probability inputs (see :func:`prob_atol`)."""


def prob_atol(dtype: torch.dtype, num_classes: int = 2) -> float:
    """Tolerance on ``|sum_k p_k - 1|`` for rows of ``num_classes`` probabilities stored in ``dtype``.

    ``PROB_ATOL`` (1e-4), or the dtype's machine epsilon when that is larger, plus half a subnormal step
    per class. Rounding a normal ``p_k`` to bfloat16 (eps 2^-7) or float16 (eps 2^-10) moves it by at
    most ``eps / 2`` relative, so the row sum by at most ``eps / 2``; a subnormal one (below 6.1e-5 in
    float16) by up to half a subnormal step, absolute: a uniform float16 row over 50000 classes sums to
    1.0014. Measured on softmax outputs with K = 10 to 32000: up to 2.9e-3 in bfloat16, 3.5e-4 in float16.

    >>> prob_atol(torch.float32), prob_atol(torch.bfloat16)
    (0.0001, 0.0078125)
    >>> round(prob_atol(torch.float16), 7), round(prob_atol(torch.float16, 50000), 5)
    (0.0009766, 0.00247)
    """
    info = torch.finfo(dtype)
    return max(PROB_ATOL, info.eps) + num_classes * info.tiny * info.eps / 2


def as_tensor(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` as a (detached) torch tensor, without copying when possible."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(expected(name, "to be a numeric array", value))
        return torch.from_numpy(np.ascontiguousarray(value))
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy accepts nearly anything
        raise TypeError(
            expected(name, "to be a torch.Tensor or a numpy array", type(value).__name__)
        ) from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(expected(name, "to be a torch.Tensor or a numpy array", type(value).__name__))
    return torch.from_numpy(arr)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(expected(name, "to be True or False", value))
    return bool(value)


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1; TypeError for a non-int, ValueError below 1."""
    if not is_int(value):
        raise TypeError(expected(name, "to be an int", value))
    if value < 1:
        raise ValueError(expected(name, ">= 1", int(value)))
    return int(value)


def check_n_bins(n_bins: Any, name: str = "n_bins") -> int:
    return check_positive_int(name, n_bins)


def check_strategy(strategy: Any) -> str:
    return check_choice("strategy", strategy, ("uniform", "quantile"))


def check_norm(norm: Any) -> str:
    return check_choice("norm", norm, ("l1", "l2", "max"))


def check_scores_shape(name: str, x: torch.Tensor) -> torch.Tensor:
    """Dtype and shape of a ``(N, K)`` float matrix of probabilities or logits (no pass over the values)."""
    if not x.is_floating_point():
        raise TypeError(expected(name, "to be a floating-point tensor or array", x.dtype))
    if x.dim() != 2:
        raise ValueError(expected(name, "to have shape (N, K)", x))
    if x.shape[0] == 0:
        raise ValueError(expected(name, "to hold at least one sample", x))
    if x.shape[1] < 2:
        raise ValueError(expected(name, "to hold at least 2 classes (shape (N, K) with K >= 2)", x))
    return x


def check_scores(name: str, x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Validate a ``(N, K)`` float matrix of probabilities or logits: shape, then values."""
    return check_score_values(name, check_scores_shape(name, x), from_logits=from_logits)


def check_score_values(name: str, x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Finite; for probabilities also in [0, 1] with rows summing to 1 within :func:`prob_atol`."""
    lo, hi = torch.aminmax(x)
    lo_f, hi_f = float(lo), float(hi)
    if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
        bad = x[~torch.isfinite(x)][0]
        raise ValueError(expected(name, "to be finite (no NaN or inf)", bad))
    if not from_logits:
        if lo_f < 0.0 or hi_f > 1.0:
            worst = lo if lo_f < 0.0 else hi
            raise ValueError(
                expected(name, "to hold probabilities in [0, 1] (pass from_logits=True for logits)", worst)
            )
        if x.dtype == torch.float32 and x.shape[1] <= 64:
            # float32 accumulation is exact to ~1e-6 here; a matrix-vector product is the fastest row sum
            sums = x @ torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
        else:
            sums = x.sum(dim=1, dtype=torch.float64)
        dev = (sums - 1.0).abs()
        worst_i = int(dev.argmax())
        atol = prob_atol(x.dtype, x.shape[1])
        if float(dev[worst_i]) > atol:
            raise ValueError(
                expected(
                    name,
                    f"rows to sum to 1 within {atol:g} (pass from_logits=True for logits)",
                    sums[worst_i],
                )
            )
    return x


def check_target(name: str, target: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    check_target_shape(name, target, n)
    return check_target_values(name, target, num_classes)


def check_target_shape(name: str, target: torch.Tensor, n: int) -> torch.Tensor:
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(expected(name, "to hold integer class indices", target.dtype))
    if target.dim() != 1:
        raise ValueError(expected(name, "to have shape (N,)", target))
    if target.shape[0] != n:
        raise ValueError(
            expected(name, f"to have length {n} (the number of rows of `input`)", target.shape[0])
        )
    return target


def check_target_values(name: str, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    if target.numel():
        lo, hi = torch.aminmax(target)
        if int(lo) < 0 or int(hi) >= num_classes:
            bad = int(lo) if int(lo) < 0 else int(hi)
            raise ValueError(expected(name, f"to hold class indices in [0, {num_classes})", bad))
    return target


def prepare(
    input: Any, target: Any, *, from_logits: Any, input_name: str = "input"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert and validate; return ``(scores, target)`` with ``target`` as int64 on the scores' device."""
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores(input_name, as_tensor(input_name, input), from_logits=from_logits)
    t = as_tensor("target", target)
    check_target("target", t, x.shape[0], x.shape[1])
    return x, t.to(device=x.device, dtype=torch.long)


CHUNK_ROWS = 1 << 15
"""Rows per chunk in the chunked CPU paths: a chunk of input and its per-row temporaries stay in L2."""


def prepare_shapes(
    input: Any, target: Any, *, from_logits: Any, input_name: str = "input"
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Convert and check dtypes and shapes only; pair with :func:`map_top_label_chunks`."""
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores_shape(input_name, as_tensor(input_name, input))
    t = check_target_shape("target", as_tensor("target", target), x.shape[0])
    return x, t.to(device=x.device, dtype=torch.long), from_logits


def map_top_label_chunks(
    fn: Callable[[torch.Tensor, torch.Tensor], T],
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    from_logits: bool,
    input_name: str = "input",
) -> list[T]:
    """Validate and apply ``fn(confidence, correct)`` to row chunks of ``(x, t)``; results in chunk order.

    On CPU the rows are cut into L2-sized chunks (:data:`CHUNK_ROWS`), so the input is read from memory
    once rather than once per pass, and the chunks are shared dynamically among ``torch.get_num_threads()``
    Python threads (at most 16), each running its (small) tensor operations single-threaded: no barrier
    per operation, which on a loaded machine costs more than the operation itself. The threads are the
    shared workers of :func:`labelsmooth._parallel.map_blocks`; the caller's intra-op thread count is
    untouched. Elsewhere (GPU, one thread, one chunk) the chunks are processed in order on the calling
    thread.
    """
    n, k = x.shape
    step = CHUNK_ROWS if x.device.type == "cpu" else max(n, 1)
    starts = range(0, n, step)

    def work(s: int) -> T:
        xc = check_score_values(input_name, x[s : s + step], from_logits=from_logits)
        tc = check_target_values("target", t[s : s + step], k)
        return fn(*top_label(xc, tc, from_logits=from_logits))

    return map_blocks(work, starts, max_workers=16)


def log_probs(x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Float64 log-probabilities, ``(N, K)``: ``log_softmax`` of logits or ``log`` of probabilities."""
    if from_logits:
        return torch.log_softmax(x.double(), dim=1)
    return x.double().log()


def probs(x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Float64 probabilities ``(N, K)``."""
    if from_logits:
        return torch.softmax(x.double(), dim=1)
    return x.double()


def top_label(
    x: torch.Tensor, target: torch.Tensor, *, from_logits: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence ``c_i = max_k p_ik`` (float64) and correctness ``1[argmax_k p_ik = y_i]`` (bool).

    ``argmax`` takes the first maximal index on ties (as ``torch.argmax``). For probabilities the maximum
    is taken in the input dtype and then widened exactly to float64, so the stored value decides the bin;
    for logits ``c_i = exp(z_max - logsumexp(z))`` in float64.

    Fast path for validated probabilities: ``amax`` plus a gather (``p_iy == c_i``) instead of
    ``max(dim=1)`` with indices, which is several times slower on CPU. A tie at the maximum needs two
    entries equal to ``c_i``, so ``2 c_i <= sum_k p_ik <= 1 + atol`` (:func:`prob_atol`); only rows with
    ``c_i <= 1/2 + atol`` whose label attains the maximum are re-checked with ``argmax``.
    """
    if from_logits:
        z = x.double()
        zmax, pred = z.max(dim=1)
        conf = torch.exp(zmax - torch.logsumexp(z, dim=1))
        return conf, pred == target
    c = x.amax(dim=1)
    correct = x.gather(1, target[:, None]).squeeze(1) == c
    maybe_tied = correct & (c <= 0.5 + prob_atol(x.dtype, x.shape[1]))
    rows = maybe_tied.nonzero().squeeze(1)
    if rows.numel():
        correct[rows] = x[rows].argmax(dim=1) == target[rows]
    return c.double(), correct
