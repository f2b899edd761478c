"""The verdicts of the ``preference`` task (:mod:`.preference`): one per true flip rate and claim, from means
and paired 95% t-intervals over seeds (:mod:`labelsmooth.study.stats`)."""

from __future__ import annotations

import math

from labelsmooth.study.tasks._rl import by_label, compare, label, mean_of
from labelsmooth.study.tasks.base import Verdict

__all__ = ["TOLERANCE", "summarize", "verdict"]

TOLERANCE = 0.1
"""cDPO's margins "approach" the optimum when the 95% interval of beta h / log((1-e)/e) lies in 1 ± 0.1."""


def _rate(e: float) -> str:
    return f"e_true = {e:g}"


def _dpo_claim(e_true: float, rows: dict[str, list[dict]]) -> Verdict | None:
    dpo = rows.get("dpo")
    if not dpo:
        return None
    g, m = mean_of(dpo, "margin_growth"), mean_of(dpo, "margin")
    if g.n == 0:  # no margins measured: nothing to judge
        return None
    grows = g.significant and g.mean > 0
    converged = not grows and g.n >= 2 and not math.isnan(g.half) and g.high < 0.01 * abs(m.mean)
    wrong = [x for x in dpo if x.get("top_rank") is not None and x["top_rank"] != 1]
    locked = sum(1 for x in wrong if (x.get("p_top") or 0) > 0.5)
    state = "still growing" if grows else "converged" if converged else "within noise"
    s = [
        f"DPO's mean margin beta*h is {m.fmt(digits=2)} after training; over the second half of training it "
        f"changed by {g.fmt(digits=3)} ({state}, 95% interval over {g.n} seeds).",
        f"Its favourite arm is not the best in {len(wrong)} of {len(dpo)} seeds, holding more than half of "
        f"the mass in {locked} of them (P(favourite) {mean_of(dpo, 'p_top').fmt()}, P(best arm) "
        f"{mean_of(dpo, 'p_best').fmt()}).",
    ]
    if grows and locked:
        outcome, end = (
            "holds",
            "holds: the margins keep growing and DPO locks onto arms that are not the best.",
        )
    elif grows:
        outcome, end = (
            "partly",
            "holds in part: the margins keep growing, but no lock-in onto a wrong arm was seen.",
        )
    elif locked and g.n >= 2:
        outcome = "partly"
        why = "converge (the flipped labels are not separable)" if converged else "do not grow significantly"
        end = f"holds in part: DPO locks onto arms that are not the best, but its margins {why}."
    elif converged:
        outcome, end = "fails", "does not hold here: the margins converge and no lock-in was seen."
    else:
        outcome, end = "undetectable", "not detectable here (growth within noise, no lock-in seen)."
    s.append(f"Claim (DPO's margins grow without bound and lock onto noise-favoured arms): {end}")
    return Verdict(
        f"{_rate(e_true)}: DPO's margins",
        outcome,
        s,
        {"growth": g.mean, "growth_half": g.half, "locked": locked, "seeds": len(dpo)},
    )


def _cdpo_claim(e_true: float, rows: dict[str, list[dict]]) -> Verdict | None:
    cdpo = {n: rs for n, rs in rows.items() if n.startswith("cdpo(") and mean_of(rs, "margin_ratio").n}
    if not cdpo:
        return None
    s, outcomes, numbers = [], [], {}
    for name, rs in cdpo.items():
        ratio, growth = mean_of(rs, "margin_ratio"), mean_of(rs, "margin_growth")
        lo, hi = 1 - TOLERANCE, 1 + TOLERANCE
        if ratio.n < 2 or math.isnan(ratio.half):
            o = "undetectable"
        elif lo <= ratio.low and ratio.high <= hi:
            o = "holds"
        elif ratio.high < lo or ratio.low > hi:
            o = "fails"
        else:
            o = "undetectable"
        outcomes.append(o)
        numbers[name] = ratio.mean
        s.append(
            f"{name}: beta*h / log((1-e)/e) = {ratio.fmt()} (1 at the optimum; growth over the second "
            f"half {growth.fmt(digits=3)})."
        )
    outcome = (
        "fails" if "fails" in outcomes else "holds" if all(o == "holds" for o in outcomes) else "undetectable"
    )
    end = {
        "holds": "holds: every interval lies within 10% of the optimum.",
        "fails": "does not hold here: the margins settle away from log((1-e)/e)/beta (an interval outside "
        "1 ± 0.1). That optimum is the one of an isolated pair; in the bandit the arms couple the "
        "pairs, and pairs that contradict each other pull the margins below it.",
        "undetectable": "not detectable here (an interval straddles the 10% band, or too few seeds).",
    }[outcome]
    s.append(f"Claim (cDPO's margins approach log((1-e)/e)/beta): {end}")
    return Verdict(f"{_rate(e_true)}: cDPO's margins", outcome, s, numbers)


def _rdpo_claim(e_true: float, rows: dict[str, list[dict]]) -> Verdict | None:
    robust = {n: rs for n, rs in rows.items() if n.startswith("rdpo(")}
    if "dpo" in rows:
        robust = {"dpo": rows["dpo"], **robust}  # rDPO at e = 0 is DPO
    robust = {n: rs for n, rs in robust.items() if mean_of(rs, "kendall_tau").n}
    if len(robust) < 2:
        return None
    target = "dpo" if e_true == 0 else label("rdpo", e_true)
    taus = "; ".join(f"{n} {mean_of(rs, 'kendall_tau').fmt()}" for n, rs in robust.items())
    s = [f"Kendall tau against the true rewards: {taus}."]
    if target not in robust:
        s.append(f"Claim (rDPO ranks best when e = e_true): not tested, {target} is not in the grid.")
        return Verdict(f"{_rate(e_true)}: rDPO's ranking", "untested", s)
    diffs = [(n, *compare(robust[target], rs, "kendall_tau")) for n, rs in robust.items() if n != target]
    s.append(
        f"Paired tau of {target} (e = e_true) minus: "
        + "; ".join(f"{n} {d.fmt()} ({w})" for n, d, w in diffs)
        + "."
    )
    best = max(robust, key=lambda n: mean_of(robust[n], "kendall_tau").mean)
    if any(d.significant and d.mean < 0 for _, d, _ in diffs):
        outcome, end = (
            "fails",
            f"does not hold here: another e ranks significantly better (best mean: {best}).",
        )
    elif all(d.significant and d.mean > 0 for _, d, _ in diffs):
        outcome, end = "holds", f"holds: {target} ranks significantly better than every other e."
    else:
        outcome = "undetectable"
        end = (
            f"not detectable here: {target} is {'the best' if best == target else 'not the best'} in the "
            f"means{'' if best == target else f' ({best} is)'}, but a difference is within noise."
        )
    s.append(f"Claim (rDPO ranks best when e = e_true): {end}")
    return Verdict(f"{_rate(e_true)}: rDPO's ranking", outcome, s, {"best": best})


def _reward_report(e_true: float, rows: dict[str, list[dict]]) -> Verdict | None:
    rows = {n: rs for n, rs in rows.items() if mean_of(rs, "reward").n}
    if "dpo" not in rows or len(rows) < 2:
        return None
    diffs = [(n, *compare(rs, rows["dpo"], "reward")) for n, rs in rows.items() if n != "dpo"]
    s = [
        f"Expected true reward: dpo {mean_of(rows['dpo'], 'reward').fmt()}; minus DPO's, paired over seeds: "
        + "; ".join(f"{n} {d.fmt()} ({w})" for n, d, w in diffs)
        + "."
    ]
    better = [n for n, d, _ in diffs if d.significant and d.mean > 0]
    worse = [n for n, d, _ in diffs if d.significant and d.mean < 0]
    if better or worse:
        outcome = "differs"
        s.append(
            "Significantly "
            + "; ".join(
                x
                for x in (
                    f"higher than DPO: {', '.join(better)}" if better else "",
                    f"lower than DPO: {', '.join(worse)}" if worse else "",
                )
                if x
            )
            + "."
        )
    else:
        outcome = "within noise"
        s.append("No method's expected true reward differs significantly from DPO's.")
    return Verdict(f"{_rate(e_true)}: expected true reward", outcome, s)


def verdict(records: list[dict]) -> list[Verdict]:
    """One verdict per true flip rate (the records' ``e_true``) and claim, judged by means and paired 95%
    t-intervals over seeds: DPO's margins (*holds* when they still grow significantly and DPO puts more
    than half its mass on a wrong arm in some seed; *fails* when they converge and it never does); cDPO's
    margins (*holds* when every cDPO(e)'s interval of beta h / log((1-e)/e) lies in 1 ± 0.1, *fails* when
    one lies outside); rDPO's ranking (*holds* when rDPO(e_true) — DPO at e_true = 0 — has a significantly
    higher Kendall tau than every other e, *fails* when another is significantly higher); and the expected
    true reward against DPO's. Anything else is *undetectable*."""
    out: list[Verdict] = []
    for e_true in dict.fromkeys(r["e_true"] for r in records):
        rows = by_label([r for r in records if r["e_true"] == e_true])
        for claim in (_dpo_claim, _cdpo_claim, _rdpo_claim, _reward_report):
            v = claim(e_true, rows)
            if v is not None:
                out.append(v)
    return out


def summarize(records: list[dict]) -> list[str]:
    """The verdicts as lines (for scripts: :mod:`benchmarks.bench_rl_tasks`)."""
    return [f"{v.title} [{v.outcome}]: {v.text}" for v in verdict(records)]
