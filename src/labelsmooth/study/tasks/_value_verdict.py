"""The verdict of the ``value`` task (:mod:`.value`): the claim HL-Gauss <= two-hot <= MSE in RMSE, from
paired 95% t-intervals over seeds (:mod:`labelsmooth.study.stats`)."""

from __future__ import annotations

import math
from typing import Any

from labelsmooth.study.tasks._rl import by_label, compare, mean_of
from labelsmooth.study.tasks.base import Verdict

__all__ = ["CLAIM", "summarize", "verdict"]

CLAIM = "HL-Gauss <= two-hot <= MSE in RMSE"


def verdict(records: list[dict], title: str = "value") -> list[Verdict]:
    """The claim HL-Gauss <= two-hot <= MSE (RMSE against the clean targets), in words, judged by paired 95%
    t-intervals over seeds: *holds* when both steps (HL-Gauss(0.75) - two-hot, two-hot - MSE) are negative
    with intervals excluding 0; *fails* when a step is reversed with an interval excluding 0;
    *undetectable* otherwise (a step within noise, or fewer than 2 common seeds). Records are the
    engine's flat records (or the cores' nested ones)."""
    rows = by_label(records)
    lines = []
    for name, rs in rows.items():
        crps = mean_of(rs, "crps")
        extra = (
            ""
            if math.isnan(crps.mean)
            else f", CRPS {crps.fmt(digits=4)}, 80% coverage {mean_of(rs, 'coverage80').fmt()}"
        )
        lines.append(
            f"{name}: RMSE vs clean {mean_of(rs, 'rmse').fmt(digits=4)} over {len(rs)} seeds{extra}."
        )
    hl = [k for k in rows if k.startswith("hl_gauss(")]
    if not ({"mse", "two_hot"} <= rows.keys() and hl):
        lines.append(f"The claim {CLAIM} needs mse, two_hot and hl_gauss runs; it is not tested.")
        return [Verdict(title, "untested", lines)]
    best_hl = min(hl, key=lambda k: mean_of(rows[k], "rmse").mean)
    ref_hl = "hl_gauss(0.75)" if "hl_gauss(0.75)" in rows else best_hl
    d1, w1 = compare(rows[ref_hl], rows["two_hot"], "rmse")
    d2, w2 = compare(rows["two_hot"], rows["mse"], "rmse")
    d3, w3 = compare(rows[best_hl], rows["mse"], "rmse")
    lines.append(
        f"Paired RMSE differences over seeds (mean ± 95% half-width): {ref_hl} - two_hot {d1.fmt(digits=4)} "
        f"({w1}); two_hot - mse {d2.fmt(digits=4)} ({w2}); best HL-Gauss {best_hl} - mse {d3.fmt(digits=4)} "
        f"({w3})."
    )
    steps = (("HL-Gauss <= two-hot", d1), ("two-hot <= MSE", d2))
    reversed_ = [s for s, d in steps if d.significant and d.mean > 0]
    if reversed_:
        outcome = "fails"
        lines.append(f"Claim {CLAIM}: does not hold here ({', '.join(reversed_)} significantly reversed).")
    elif all(d.significant and d.mean < 0 for _, d in steps):
        outcome = "holds"
        lines.append(f"Claim {CLAIM}: holds, both steps significant.")
    else:
        outcome = "undetectable"
        noisy = [s for s, d in steps if not d.significant]
        order = (
            "the order holds in the means" if d1.mean <= 0 and d2.mean <= 0 else "the means are not in order"
        )
        lines.append(f"Claim {CLAIM}: not detectable here ({order}; {', '.join(noisy)} within noise).")
    numbers = {
        "hl_minus_two_hot": d1.mean,
        "hl_minus_two_hot_half": d1.half,
        "two_hot_minus_mse": d2.mean,
        "two_hot_minus_mse_half": d2.half,
        "best_hl": best_hl,
    }
    return [Verdict(title, outcome, lines, numbers)]


def summarize(records: list[dict], section: Any = None) -> list[str]:
    """The verdict's sentences (for scripts: :mod:`benchmarks.bench_rl_tasks`)."""
    return [s for v in verdict(records) for s in v.sentences]
