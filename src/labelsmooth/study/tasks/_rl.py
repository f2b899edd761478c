"""Helpers shared by the reinforcement-learning task cores (:mod:`.value`, :mod:`.preference`).

Engine-agnostic: a run is ``run_one(section, method, param, seed) -> {"metrics", "curves", "arrays"}``, a
record is ``{"method", "param", "seed", "metrics"}``, and the verdicts use
:mod:`labelsmooth.study.stats` (paired 95% t-intervals over seeds).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from labelsmooth._validation import expected
from labelsmooth.study.stats import Estimate, estimate, paired

Metric = tuple[str, str, str, "str | None", bool]
"""(key, header, format, better: "higher" | "lower" | None, measured after temperature scaling)."""


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run with one intra-op thread (the runs are small; threads cost more than they give), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_int(name: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(expected(name, "to be an int", value))
    if value < lo:
        raise ValueError(expected(name, f">= {lo}", value))


def check_float(name: str, value: Any, lo: float, hi: float = math.inf, *, lo_open: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(expected(name, "to be a float", value))
    ok = (value > lo if lo_open else value >= lo) and value <= hi and math.isfinite(value)
    if not ok:
        interval = ("(" if lo_open else "[") + f"{lo:g}, {hi:g}" + "]"
        raise ValueError(expected(name, f"in {interval}", value))


def label(method: str, param: float | None) -> str:
    """``"mse"``, ``"dpo"`` (no parameter, or DPO's e = 0), else ``"method(param)"``."""
    return method if param is None or method == "dpo" else f"{method}({param:g})"


def by_label(records: Sequence[dict]) -> dict[str, list[dict]]:
    """Records grouped by method label, each flattened to ``{"seed", **metrics}`` for the stats helpers."""
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(label(r["method"], r["param"]), []).append({"seed": r["seed"], **r["metrics"]})
    return out


def mean_of(rows: Sequence[dict], key: str) -> Estimate:
    return estimate(r.get(key) for r in rows)


def compare(rows_a: Sequence[dict], rows_b: Sequence[dict], key: str) -> tuple[Estimate, str]:
    """The paired difference a - b and a word for it: "lower", "higher" or "within noise"."""
    d = paired(rows_a, rows_b, key)
    if not d.significant:
        return d, "within noise"
    return d, "lower" if d.mean < 0 else "higher"
