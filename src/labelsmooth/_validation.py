"""Argument checks shared by every public function.

One message template for the whole library (DESIGN.md, convention 4)::

    Expected `label_smoothing` in [0, 1], got 1.2.

ValueError for values and shapes, TypeError for dtypes. These helpers never use ``assert``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

REDUCTIONS = ("mean", "sum", "none")


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
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(expected(name, "to be an int", num_classes))
    if num_classes < 2:
        raise ValueError(expected(name, ">= 2", num_classes))
    return num_classes


def check_float_tensor(name: str, tensor: Any) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(expected(name, "to be a torch.Tensor", type(tensor).__name__))
    if not tensor.is_floating_point():
        raise TypeError(expected(name, "to be a floating-point tensor", tensor.dtype))
    return tensor


def check_scalar_range(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(expected(name, "to be a float", value))
    v = float(value)
    ok = not math.isnan(v)
    ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        interval = ("(" if lo_open else "[") + f"{lo:g}, {hi:g}" + (")" if hi_open else "]")
        raise ValueError(expected(name, f"in {interval}", value))
    return v


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
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(expected(name, "to be a float or a tensor", label_smoothing))
    v = float(label_smoothing)
    if math.isnan(v) or v > 1 or v < lo:
        if v < 0 and not allow_negative and not math.isnan(v):
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
    if isinstance(num_items_in_batch, bool) or not isinstance(num_items_in_batch, (int, float)):
        raise TypeError(expected("num_items_in_batch", "to be a number or a tensor", num_items_in_batch))
    if not (num_items_in_batch > 0 and math.isfinite(num_items_in_batch)):
        raise ValueError(expected("num_items_in_batch", "> 0", num_items_in_batch))
    return num_items_in_batch
