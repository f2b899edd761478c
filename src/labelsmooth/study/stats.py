"""Means and 95% confidence intervals over seeds (Student t), plain and paired; t-test p-values and the
Holm–Bonferroni adjustment for a family of comparisons.

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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for aa in (even, odd):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_pvalue(e: Estimate) -> float:
    """Two-sided p-value of the one-sample t-test of ``mean = 0`` for an :class:`Estimate` (its standard
    error is ``half / t_critical(n - 1)``); NaN when n < 2.

    With :math:`t = \\bar d / (s / \\sqrt{n})` and :math:`\\nu = n - 1`,
    :math:`p = I_{\\nu/(\\nu + t^2)}(\\nu/2, 1/2)` (the regularised incomplete beta function).

    >>> round(t_pvalue(Estimate(1.0, 1.0, 5)), 4)  # on the 95% interval's edge
    0.05
    """
    if e.n < 2 or math.isnan(e.half) or math.isnan(e.mean):
        return math.nan
    se = e.half / t_critical(e.n - 1)
    if se == 0.0:
        return 1.0 if e.mean == 0.0 else 0.0
    t = e.mean / se
    df = e.n - 1
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1; NaN stays NaN and does not count
    in the family). Rejecting where the adjusted p < 0.05 controls the family-wise error rate at 5%.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    idx = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=lambda i: pvalues[i])
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = round(running, 12)
    return out
