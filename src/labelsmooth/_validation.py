"""Argument checks shared by every public function.

One message template for the whole library (DESIGN.md, convention 4)::

    Expected `label_smoothing` in [0, 1], got 1.2.

ValueError for values and shapes, TypeError for dtypes. These helpers never use ``assert``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Literal, get_args, overload

import numpy as np
import torch

# Mode arguments: one ``Literal`` alias per mode that recurs, and the tuple of its values derived from
# it (for ``check_choice``), so the type hint and the runtime check cannot drift apart.
Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)
Backend = Literal["auto", "torch", "triton"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
WeightMode = Literal["torch", "row"]
WEIGHT_MODES: tuple[WeightMode, ...] = get_args(WeightMode)


def _fmt(value: Any) -> str:
    """Short, readable rendering of a received value for an error message."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"tensor({value.item()!r})"
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value)
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return f"an array of shape {value.shape} and dtype {value.dtype}"
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return repr(value)


def expected(name: str, what: str, got: Any) -> str:
    """The library's one error template."""
    return f"Expected `{name}` {what}, got {_fmt(got)}."


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(expected(name, "to be one of " + ", ".join(repr(c) for c in choices), value))
    return value


def check_reduction(reduction: Any) -> str:
    return check_choice("reduction", reduction, REDUCTIONS)


def check_num_classes(num_classes: Any, name: str = "num_classes") -> int:
    """A class count: an int ``>= 2``."""
    return check_number(name, num_classes, lo=2, integer=True)


def check_float_tensor(name: str, tensor: Any) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(expected(name, "to be a torch.Tensor", type(tensor).__name__))
    if not tensor.is_floating_point():
        raise TypeError(expected(name, "to be a floating-point tensor", tensor.dtype))
    return tensor


def check_scalar_range(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    """A float in the interval from ``lo`` to ``hi`` (each end closed unless ``*_open``)."""
    return check_number(name, value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


def is_number(value: Any, *, integer: bool = False) -> bool:
    """Whether ``value`` is a real number (an integer with ``integer``), never a bool.

    Real numbers are :class:`numbers.Real` (``int``, ``float``, numpy's scalars such as ``np.float32``);
    integers are :class:`numbers.Integral` (``int``, ``np.int64``). ``bool`` is a subclass of ``int`` in
    Python, so ``isinstance(True, int)`` holds; a flag passed where a number belongs is a mistake this
    predicate does not let through. Tensors, strings and complex numbers are not numbers here.

    >>> is_number(3), is_number(0.5), is_number(True), is_number("3"), is_number(2.0, integer=True)
    (True, True, False, False, False)
    """
    return not isinstance(value, bool) and isinstance(value, numbers.Integral if integer else numbers.Real)


def _bound(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def format_interval(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> str:
    """The interval from ``lo`` to ``hi`` as the error messages write it: ``[0, 1)``, ``(0, inf]``.

    >>> format_interval(0, 1, hi_open=True), format_interval(0.0, math.inf, lo_open=True)
    ('[0, 1)', '(0, inf]')
    """
    return ("(" if lo_open else "[") + f"{_bound(lo)}, {_bound(hi)}" + (")" if hi_open else "]")


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool, finite: bool) -> str:
    if lo is not None and hi is not None:
        return "in " + format_interval(lo, hi, lo_open=lo_open, hi_open=hi_open)
    if lo is None and hi is None:
        return "to be finite" if finite else "not to be NaN"
    if lo is not None:
        text = ("> " if lo_open else ">= ") + _bound(lo)
    elif hi is not None:
        text = ("< " if hi_open else "<= ") + _bound(hi)
    return text + " and finite" if finite else text


# Two signatures for a precise result type: an int with integer=True, a float otherwise.
@overload
def check_number(name: str, value: Any, *, lo: float | None = ..., hi: float | None = ...,
                 lo_open: bool = ..., hi_open: bool = ..., integer: Literal[True], finite: bool = ...,
                 what: str | None = ..., type_what: str | None = ...) -> int: ...  # fmt: skip
@overload
def check_number(name: str, value: Any, *, lo: float | None = ..., hi: float | None = ...,
                 lo_open: bool = ..., hi_open: bool = ..., integer: Literal[False] = ..., finite: bool = ...,
                 what: str | None = ..., type_what: str | None = ...) -> float: ...  # fmt: skip
def check_number(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
    finite: bool = False,
    what: str | None = None,
    type_what: str | None = None,
) -> float | int:
    """Check a number argument and return it as a Python ``float`` (an ``int`` with ``integer=True``).

    The one home of the "a bool, or not a number" guard. ``value`` must be a real number (an integer
    with ``integer``; a bool is never a number, see :func:`is_number`), not NaN, and lie in the
    interval from ``lo`` to ``hi``: ``lo <= value <= hi``, with ``<`` at an end marked ``lo_open`` /
    ``hi_open``; a missing bound is no constraint. ``finite=True`` also rejects ``±inf`` (a closed
    infinite bound alone lets ``inf`` through).

    Args:
        name: the argument's name, as the message prints it.
        value: what the caller passed.
        lo, hi: the bounds, or ``None``.
        lo_open, hi_open: whether each bound is excluded.
        integer: require an ``int`` (a float such as ``2.0`` is a TypeError) and return an ``int``.
        finite: reject ``inf`` and ``-inf``.
        what: the ValueError's description; default the interval (``in [0, 1)``, ``>= 2``, ``> 0 and
            finite``).
        type_what: the TypeError's description; default ``to be an int`` or ``to be a float``.

    Raises:
        TypeError: ``value`` is a bool, not a number, or not an int where ``integer`` asks for one.
        ValueError: ``value`` is NaN, infinite with ``finite``, or outside the interval.

    >>> check_number("label_smoothing", 0.1, lo=0, hi=1), check_number("bins", 5, lo=2, integer=True)
    (0.1, 5)
    >>> check_number("beta", 0, lo=0, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: Expected `beta` > 0, got 0.
    >>> check_number("steps", True, integer=True)
    Traceback (most recent call last):
    ...
    TypeError: Expected `steps` to be an int, got True.
    """
    if not is_number(value, integer=integer):
        raise TypeError(expected(name, type_what or ("to be an int" if integer else "to be a float"), value))
    v = int(value) if integer else float(value)
    ok = not math.isnan(v) and not (finite and math.isinf(v))
    if lo is not None:
        ok = ok and (v > lo if lo_open else v >= lo)
    if hi is not None:
        ok = ok and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ValueError(expected(name, what or _range_text(lo, hi, lo_open, hi_open, finite), value))
    return v


def check_bool(name: str, value: Any, what: str = "to be a bool") -> bool:
    """Check a flag and return it as a Python ``bool``: ``True``, ``False`` or a numpy bool only (not
    ``0``/``1``, not a one-element tensor).

    Raises:
        TypeError: ``value`` is not a bool; ``what`` describes what was expected.

    >>> check_bool("from_logits", True)
    True
    >>> check_bool("from_logits", 1)
    Traceback (most recent call last):
    ...
    TypeError: Expected `from_logits` to be a bool, got 1.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(expected(name, what, value))
    return bool(value)


def check_smoothing(
    label_smoothing: Any,
    *,
    n: int | None = None,
    allow_negative: bool = False,
    name: str = "label_smoothing",
) -> float | torch.Tensor:
    """Validate a smoothing factor: a float, or a per-sample tensor of shape ``(n,)``.

    Without ``allow_negative`` it must lie in [0, 1]; with it, in (-inf, 1].
    """
    lo = -math.inf if allow_negative else 0.0
    what = "in (-inf, 1] (allow_negative=True)" if allow_negative else "in [0, 1]"
    if isinstance(label_smoothing, torch.Tensor):
        if not label_smoothing.is_floating_point():
            raise TypeError(expected(name, "to be a float or a floating-point tensor", label_smoothing.dtype))
        if label_smoothing.dim() == 0:
            return check_smoothing(
                float(label_smoothing.item()), n=n, allow_negative=allow_negative, name=name
            )
        if label_smoothing.dim() != 1 or (n is not None and label_smoothing.shape[0] != n):
            shape = f"({n},)" if n is not None else "(N,)"
            raise ValueError(expected(name, f"to be a float or a tensor of shape {shape}", label_smoothing))
        if label_smoothing.numel():
            bad = torch.isnan(label_smoothing) | (label_smoothing > 1) | (label_smoothing < lo)
            if bool(bad.any()):
                first = label_smoothing[bad][0].item()
                raise ValueError(expected(name, what + " for every sample", first))
        return label_smoothing
    v = check_number(name, label_smoothing, lo=-math.inf, hi=1, what=what,
                     type_what="to be a float or a tensor")  # fmt: skip
    if v < lo:
        what = "in [0, 1] (negative smoothing needs allow_negative=True)"
        raise ValueError(expected(name, what, label_smoothing))
    return v


def check_distribution(name: str, p: torch.Tensor, *, atol: float = 1e-4) -> torch.Tensor:
    """Check that the last dimension of ``p`` holds probability distributions."""
    check_float_tensor(name, p)
    if p.numel() == 0:
        return p
    sums = p.double().sum(-1)
    # One host sync for a valid input (priors are re-checked on every loss call); the checks below
    # only run, in order, to say what is wrong.
    if bool(torch.isfinite(p).all() & (p >= 0).all() & ((sums - 1).abs() <= atol).all()):
        return p
    if not bool(torch.isfinite(p).all()):
        raise ValueError(expected(name, "to be finite", p))
    if bool((p < 0).any()):
        raise ValueError(expected(name, "to be non-negative (a distribution)", p.min()))
    if bool(((sums - 1).abs() > atol).any()):
        worst = sums[(sums - 1).abs().argmax()] if sums.dim() else sums
        raise ValueError(expected(name, "to sum to 1 over its last dimension", worst))
    return p


def check_prior(prior: Any, num_classes: int, n: int | None, name: str = "prior") -> torch.Tensor:
    """A prior is a (K,) distribution or one distribution per sample, (N, K).

    Returns it renormalised to sum to 1 exactly (it was checked to within 1e-4), so that every formula
    that relies on ``sum_k u_k = 1`` holds to rounding, in the reference and the kernels alike.
    """
    if not isinstance(prior, torch.Tensor):
        raise TypeError(expected(name, "to be a torch.Tensor", type(prior).__name__))
    check_distribution(name, prior)
    ok = prior.dim() == 1 and prior.shape[0] == num_classes
    ok = ok or (prior.dim() == 2 and prior.shape[1] == num_classes and (n is None or prior.shape[0] == n))
    if not ok:
        rows = "N" if n is None else str(n)
        raise ValueError(expected(name, f"of shape ({num_classes},) or ({rows}, {num_classes})", prior))
    return prior / prior.sum(-1, keepdim=True)


def check_labels(name: str, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> None:
    """Labels must lie in [0, num_classes), except ``ignore_index``."""
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(expected(name, "to hold integer class indices", target.dtype))
    if target.numel() == 0:
        return
    # Three tensor ops and one host sync: the range of the labels with ignore_index replaced by 0.
    t = target if ignore_index is None else torch.where(target == ignore_index, 0, target)
    lo, hi = torch.stack(torch.aminmax(t)).tolist()
    if lo < 0 or hi >= num_classes:
        first = int(target[(t < 0) | (t >= num_classes)][0].item())
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(expected(name, f"to hold class indices in [0, {num_classes}){extra}", first))


def check_softcap(softcap: Any) -> float | None:
    """Final-logit soft-capping ``c``: ``None`` (off) or a finite float ``> 0``."""
    if softcap is None:
        return None
    return check_scalar_range("softcap", softcap, 0.0, math.inf, lo_open=True, hi_open=True)


def check_z_loss(z_loss: Any) -> float:
    """The z-loss weight ``lambda``: a finite float ``>= 0``."""
    return check_scalar_range("z_loss", z_loss, 0.0, math.inf, hi_open=True)


def check_num_items(num_items_in_batch: Any, reduction: str) -> float | torch.Tensor | None:
    """The global denominator of ``reduction="mean"``: ``None``, a number ``> 0`` or a 1-element tensor.

    A tensor (e.g. a count all-reduced over data-parallel ranks, possibly on the GPU) is returned as a
    0-d tensor and its value is not read (no host synchronisation).
    """
    if num_items_in_batch is None:
        return None
    if reduction != "mean":
        raise ValueError(
            expected("num_items_in_batch", f'to be None unless reduction="mean" (reduction={reduction!r})',
                     num_items_in_batch)
        )  # fmt: skip
    if isinstance(num_items_in_batch, torch.Tensor):
        if num_items_in_batch.numel() != 1:
            raise ValueError(expected("num_items_in_batch", "to hold one number", num_items_in_batch))
        if num_items_in_batch.dtype == torch.bool or num_items_in_batch.is_complex():
            raise TypeError(
                expected("num_items_in_batch", "to be an integer or float tensor", num_items_in_batch.dtype)
            )
        return num_items_in_batch.reshape(())
    check_number("num_items_in_batch", num_items_in_batch, lo=0, lo_open=True, finite=True, what="> 0",
                 type_what="to be a number or a tensor")  # fmt: skip
    return num_items_in_batch


# --------------------------------------------------------------------------- metric inputs
# The checks of a metric's arguments (labelsmooth.metrics, labelsmooth.calibration, labelsmooth.plots,
# labelsmooth.privacy). Every metric accepts torch tensors or numpy arrays: ``input`` ``(N, K)`` holds
# probabilities (``from_logits=False``) or logits (``from_logits=True``) -- the caller says which, the value
# range is never used to guess -- and ``target`` ``(N,)`` integer class indices in ``[0, K)``. The value
# checks are a handful of full passes over the data (``aminmax``, one row sum), so that validating ten
# million rows costs a fraction of the metric itself.

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


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool (:func:`is_number` with ``integer=True``)."""
    return is_number(value, integer=True)


def check_int(
    name: str, value: Any, *, lo: int | None = None, what: str | None = None, type_what: str = "to be an int"
) -> int:
    """``value`` as an int (a Python or numpy integer, not a bool), ``>= lo`` when ``lo`` is given.

    :func:`check_number` with ``integer=True``: TypeError (``type_what``) for a non-int; ValueError
    (``what``, default ``>= lo``) below ``lo``.

    >>> check_int("seed", 3), check_int("n_bins", 15, lo=1)
    (3, 15)
    """
    return int(check_number(name, value, lo=lo, integer=True, what=what, type_what=type_what))


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1; TypeError for a non-int, ValueError below 1."""
    return check_int(name, value, lo=1)


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


def prepare_scores_and_target(
    input: Any, target: Any, *, from_logits: Any, input_name: str = "input"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert and validate a metric's ``(input, target)`` pair: ``(N, K)`` scores and ``(N,)`` class indices.

    Returns ``(scores, target)``, ``target`` as int64 on the scores' device.
    """
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores(input_name, as_tensor(input_name, input), from_logits=from_logits)
    t = as_tensor("target", target)
    check_target("target", t, x.shape[0], x.shape[1])
    return x, t.to(device=x.device, dtype=torch.long)
