"""Means and 95% confidence intervals over seeds (Student t), plain and paired.

Why t-intervals: a study has few seeds (3-10), each an independent replicate (its own split, label noise
and initialisation); the t-interval is the textbook interval for a mean of few replicates. Paired
differences (same seed = same split, same noisy labels, same initial weights, another objective) cancel the
seed-to-seed variation shared by both methods, so a difference is judged against its own spread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Two-sided 95% critical values of Student's t, df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_critical(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (table to 30, then 1.96 + 2.4/df).

    >>> t_critical(4)
    2.776
    """
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= 30 else 1.96 + 2.4 / df


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds with the half-width of its 95% t-interval (NaN when n < 2)."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def significant(self) -> bool:
        """The interval excludes zero (meaningful for differences)."""
        return self.n >= 2 and not math.isnan(self.half) and abs(self.mean) > self.half

    def fmt(self, scale: float = 1.0, digits: int = 3) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.half):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.half * scale:.{digits}f}"


def estimate(values: Iterable[Any]) -> Estimate:
    """Mean and 95% t-interval half-width of the finite values (None and NaN dropped)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    mean = sum(v) / n
    if n < 2:
        return Estimate(mean, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    return Estimate(mean, t_critical(n - 1) * sd / math.sqrt(n), n)


def paired(records_a: Sequence[dict], records_b: Sequence[dict], key: str) -> Estimate:
    """Mean and 95% t-interval of ``a[key] - b[key]`` over the seeds present (and finite) in both."""
    b_by_seed = {r["seed"]: r.get(key) for r in records_b}
    diffs = []
    for r in records_a:
        va, vb = r.get(key), b_by_seed.get(r["seed"])
        if va is not None and vb is not None and math.isfinite(va) and math.isfinite(vb):
            diffs.append(va - vb)
    return estimate(diffs)


def group(records: Iterable[dict], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    """Records grouped by the values of ``keys``, groups and members in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in records:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out
