"""The plain-language verdict of a study, computed from the stored numbers only.

For each setting (dataset x noise), the rules are:

* the smoothing factor reported is the uniform-smoothing a with the best mean *validation* accuracy (ties:
  lower validation NLL) -- chosen on validation, never on test, so the verdict does not cherry-pick;
* every comparison with hard targets is a paired difference over seeds with its 95% t-interval; a
  difference whose interval contains 0 is called "within noise", never an improvement;
* the signed confidence gap (mean confidence - accuracy) is called underconfident / overconfident only
  when its interval excludes 0;
* the bottom line is "helps" when accuracy rises significantly and NLL does not rise significantly, or
  NLL falls significantly while accuracy does not fall significantly; "trade-off" when accuracy rises but
  NLL rises too (underconfidence; temperature scaling is then recommended); "hurts" when accuracy falls
  significantly, or NLL rises significantly while accuracy does not rise; else "within noise".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labelsmooth.study.stats import Estimate, estimate, group, paired

SETTING_KEYS = ("dataset", "noise_kind", "noise_rate")
HARD = ("hard", None)  # the baseline's (method, param): runs are looked up by it, never by a label


@dataclass(frozen=True)
class SettingVerdict:
    """The verdict for one setting: the chosen a, the outcome, and the sentences that justify it."""

    dataset: str
    noise_kind: str
    noise_rate: float
    outcome: str  # "helps" | "trade-off" | "hurts" | "within noise" | "no baseline"
    alpha: float | None
    sentences: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.dataset}, {noise_phrase(self.noise_kind, self.noise_rate)}"

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def noise_phrase(kind: str, rate: float) -> str:
    if rate == 0:
        return "clean labels"
    if kind == "matrix":
        return f"transition-matrix noise at rate {rate:g}"
    return f"{rate * 100:g}% {'pair-flip' if kind == 'pairflip' else 'symmetric'} label noise"


def _pts(e: Estimate, signed: bool = True) -> str:
    """An estimate of a fraction, in percentage points."""
    if math.isnan(e.mean):
        return "n/a"
    m = f"{e.mean * 100:+.1f}" if signed else f"{e.mean * 100:.1f}"
    return m if math.isnan(e.half) else f"{m} ± {e.half * 100:.1f}"


def _num(e: Estimate, digits: int = 3) -> str:
    if math.isnan(e.mean):
        return "n/a"
    return f"{e.mean:+.{digits}f}" + ("" if math.isnan(e.half) else f" ± {e.half:.{digits}f}")


def _direction(e: Estimate, up: str, down: str) -> str:
    if not e.significant:
        return "did not change"
    return up if e.mean > 0 else down


def choose_alpha(by_method: dict[tuple, list[dict]]) -> tuple[tuple, float] | None:
    """The uniform-smoothing method with the best mean validation accuracy (ties: lower validation NLL):
    its ``(method, param)`` key and its a. ``by_method`` maps ``(method, param)`` to the runs."""
    best = None
    for mkey, recs in by_method.items():
        if recs[0]["method"] != "ls":
            continue
        acc = estimate(r.get("val_accuracy") for r in recs).mean
        nll = estimate(r.get("val_nll") for r in recs).mean
        key = (-acc if not math.isnan(acc) else math.inf, nll if not math.isnan(nll) else math.inf)
        if best is None or key < best[0]:
            best = (key, mkey, recs[0]["alpha"])
    return (best[1], best[2]) if best else None


def judge_setting(records: list[dict]) -> SettingVerdict:
    """The verdict for the runs of one setting."""
    r0 = records[0]
    ds, kind, rate = r0["dataset"], r0["noise_kind"], r0["noise_rate"]
    by_method = group(records, ("method", "param"))
    hard = by_method.get(HARD)
    choice = choose_alpha(by_method)
    if hard is None or choice is None:
        why = "no hard-target baseline" if hard is None else "no uniform label smoothing in the grid"
        return SettingVerdict(ds, kind, rate, "no baseline", None, [f"No comparison: {why}."])
    key, alpha = choice
    ls = by_method[key]
    n = len({r["seed"] for r in ls} & {r["seed"] for r in hard})
    d_acc, d_nll, d_ece = (paired(ls, hard, k) for k in ("accuracy", "nll", "ece"))
    gap_ls, gap_hard = (
        estimate(r.get("calibration_gap") for r in ls),
        estimate(r.get("calibration_gap") for r in hard),
    )
    temp = estimate(r.get("temperature") for r in ls)
    ts_gap, ts_ece = estimate(r.get("ts_calibration_gap") for r in ls), estimate(r.get("ts_ece") for r in ls)
    hard_ts_ece = estimate(r.get("ts_ece") for r in hard)
    where = f"With {noise_phrase(kind, rate)} ({ds}, {n} seeds, paired 95% t-intervals)"
    s = [
        f"{where}, a = {alpha:g} (the best a by validation accuracy) "
        f"{_direction(d_acc, 'raised', 'lowered')} test accuracy: {_pts(d_acc)} points vs hard targets"
        + (" (within noise)." if not d_acc.significant else "."),
        f"Test NLL {_direction(d_nll, 'rose', 'fell')} ({_num(d_nll)}) and ECE "
        f"{_direction(d_ece, 'rose', 'fell')} ({_pts(d_ece)} points).",
    ]
    if gap_ls.significant and gap_ls.mean < 0:
        s.append(
            "It made the model underconfident: confidence below accuracy by "
            f"{_pts(Estimate(-gap_ls.mean, gap_ls.half, gap_ls.n), signed=False)} "
            f"points (hard targets: {_pts(gap_hard)})."
        )
    elif gap_ls.significant:
        s.append(
            "The model stayed overconfident: confidence above accuracy by "
            f"{_pts(gap_ls, signed=False)} points (hard targets: {_pts(gap_hard)})."
        )
    else:
        s.append(
            f"Its confidence matched its accuracy within noise (gap {_pts(gap_ls)} points; "
            f"hard targets: {_pts(gap_hard)})."
        )
    s.append(
        f"Temperature scaling (T = {temp.mean:.2f}) brought the gap to {_pts(ts_gap)} points and ECE to "
        f"{_pts(ts_ece, signed=False)} (hard targets after scaling: ECE {_pts(hard_ts_ece, signed=False)})."
    )
    if rate > 0:
        mem_h, mem_l = estimate(r.get("memorised") for r in hard), estimate(r.get("memorised") for r in ls)
        if not math.isnan(mem_h.mean):
            s.append(
                f"Hard targets memorised {mem_h.mean * 100:.0f}% of the noisy training labels, a = {alpha:g} "
                f"{mem_l.mean * 100:.0f}%."
            )
    alt = _best_alternative(by_method, hard)
    if alt:
        s.append(alt)
    nll_up = d_nll.significant and d_nll.mean > 0
    if d_acc.significant and d_acc.mean > 0:
        outcome = "trade-off" if nll_up else "helps"
    elif d_acc.significant and d_acc.mean < 0:
        outcome = "hurts"
    elif d_nll.significant and d_nll.mean < 0:
        outcome = "helps"
    elif d_nll.significant and d_nll.mean > 0:
        outcome = "hurts"
    else:
        outcome = "within noise"
    s.append(
        {
            "helps": f"Verdict: smoothing helps here (a = {alpha:g}).",
            "trade-off": f"Verdict: a = {alpha:g} buys accuracy at the cost of calibration (NLL rose); "
            f"use it with temperature scaling (T = {temp.mean:.2f}) to get both.",
            "hurts": f"Verdict: smoothing hurts here (a = {alpha:g}); keep hard targets "
            "or use temperature scaling alone.",
            "within noise": "Verdict: no difference beyond seed-to-seed noise; smoothing is not needed here.",
        }[outcome]
    )
    numbers = {
        "d_accuracy": d_acc, "d_nll": d_nll, "d_ece": d_ece, "gap": gap_ls, "gap_hard": gap_hard,
        "temperature": temp, "ts_gap": ts_gap, "ts_ece": ts_ece, "n": n,
    }  # fmt: skip
    return SettingVerdict(ds, kind, rate, outcome, alpha, s, numbers)


def _best_alternative(by_method: dict[tuple, list[dict]], hard: list[dict]) -> str | None:
    """One sentence on the best non-uniform-smoothing alternative (by validation accuracy)."""
    best = None
    for (method, _), recs in by_method.items():
        if method in ("hard", "ls"):
            continue
        label = recs[0].get("label") or method
        acc = estimate(r.get("val_accuracy") for r in recs).mean
        if not math.isnan(acc) and (best is None or acc > best[0]):
            best = (acc, label, recs)
    if best is None:
        return None
    _, label, recs = best
    d_acc, d_nll = paired(recs, hard, "accuracy"), paired(recs, hard, "nll")
    return (
        f"Best alternative by validation accuracy: {label}, test accuracy {_pts(d_acc)} points and NLL "
        f"{_num(d_nll)} vs hard targets"
        + (" (within noise)." if not (d_acc.significant or d_nll.significant) else ".")
    )


def judge(records: list[dict]) -> list[SettingVerdict]:
    """One verdict per setting, in first-seen order."""
    return [judge_setting(recs) for recs in group(records, SETTING_KEYS).values()]
