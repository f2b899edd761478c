"""The plain-language verdict of a study, computed from the stored numbers only.

For each setting (dataset x noise), the rules are:

* **Which a.** The smoothing factor reported is the uniform-smoothing a with the lowest mean *validation
  NLL* over seeds (ties: higher validation accuracy). Validation NLL is a proper scoring rule and moves
  smoothly with a; validation accuracy on a small split moves in steps of 1/n_val and its argmax is mostly
  noise. The choice is made on validation, never on test, so the verdict does not cherry-pick.
* **How stable the choice is.** The same rule is applied to each seed alone (each seed has its own split,
  noisy labels and initialisation): the report lists how often each a wins. The choice is called *unstable*
  when the chosen a wins in fewer than half of the seeds; the verdict then says so.
* **Each comparison.** Every comparison with hard targets is a paired difference over seeds with its 95%
  t-interval; a difference whose interval contains 0 is "within noise", never an improvement. The verdict
  makes one pre-specified comparison (the validation-chosen a, on test accuracy and test NLL), so its
  intervals are not adjusted. The report's *a curve* compares every method of the grid with hard targets
  (accuracy and NLL): that family of comparisons is corrected with Holm–Bonferroni, and "significant" there
  means a Holm-adjusted p < 0.05 (family-wise error rate 5%).
* **The signed gap.** The signed confidence gap (mean confidence - accuracy) is called underconfident /
  overconfident only when its interval excludes 0.
* **The outcome** (symmetric in accuracy and NLL; "up"/"down" mean significantly):

  ===============  ======================  ===========================================================
  accuracy         NLL                     outcome
  ===============  ======================  ===========================================================
  up               down or unchanged       helps
  unchanged        down                    helps
  up               up                      trade-off: accuracy gained, calibration (NLL) lost
  down             down                    trade-off: calibration (NLL) gained, accuracy lost
  down             up or unchanged         hurts
  unchanged        up                      hurts
  unchanged        unchanged               within noise
  ===============  ======================  ===========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labelsmooth._deprecation import warn_renamed
from labelsmooth.study.stats import Estimate, estimate, group, holm, paired, t_pvalue

SETTING_KEYS = ("dataset", "noise_kind", "noise_rate")
HARD = ("hard", None)  # the baseline's (method, param): runs are looked up by it, never by a label


@dataclass(frozen=True)
class SettingVerdict:
    """The verdict for one setting: the chosen a, the outcome, and the sentences that justify it."""

    dataset: str
    noise_kind: str
    noise_rate: float
    outcome: str  # "helps" | "trade-off" | "hurts" | "within noise" | "no baseline"
    # what a trade-off trades: "accuracy for calibration" (accuracy up, NLL up) or
    # "calibration for accuracy" (NLL down, accuracy down); None otherwise
    label_smoothing: float | None
    """The chosen smoothing factor a (None when none is chosen); ``alpha`` is its old spelling."""
    sentences: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    trade: str | None = None

    @property
    def alpha(self) -> float | None:
        """Deprecated spelling of :attr:`label_smoothing` (one release)."""
        warn_renamed("SettingVerdict.alpha", "SettingVerdict.label_smoothing")
        return self.label_smoothing

    @property
    def title(self) -> str:
        return f"{self.dataset}, {noise_phrase(self.noise_kind, self.noise_rate)}"

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def statistics(self) -> tuple[str, list[str], list[list[str]]]:
        """What a reader can check next to the verdict: a note (the selection's stability, the correction
        used), and the a curve as a table (header, rows): every method against hard targets."""
        curve = self.numbers.get("curve") or []
        if not curve:
            return "", [], []
        wins = self.numbers.get("selection") or {}
        n_sel = sum(wins.values())
        picks = ", ".join(f"a = {a:g} in {k}" for a, k in wins.items())
        note = (
            f"Choice of a: the lowest mean validation NLL; each seed choosing alone picks {picks} (of "
            f"{n_sel} seeds; {'stable' if self.numbers.get('stable') else 'unstable'}: the chosen a must "
            "win in at least half of them). The verdict's comparison (the chosen a) is one pre-specified "
            "test per metric, not adjusted. In the table, p is the paired t-test against hard targets and "
            f"Holm its Holm–Bonferroni adjustment over the family of {2 * len(curve)} comparisons (accuracy "
            f"and NLL of {len(curve)} methods); * marks Holm-adjusted p < 0.05."
        )
        header = ["method", "Δ accuracy (points)", "p", "Holm", "Δ NLL", "p", "Holm", "Δ ECE (points)",
                  "diverged"]  # fmt: skip
        rows = []
        for row in curve:
            chosen = " (chosen)" if row["method"] == "ls" and row["alpha"] == self.label_smoothing else ""
            rows.append([
                row["label"] + chosen,
                _pts(row["d_accuracy"]), _p(row["p_accuracy"]), _p(row["holm_accuracy"], star=True),
                _num(row["d_nll"]), _p(row["p_nll"]), _p(row["holm_nll"], star=True),
                _pts(row["d_ece"]), f"{row['diverged']} of {row['runs']}",
            ])  # fmt: skip
        return note, header, rows


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


def _p(p: float, star: bool = False) -> str:
    if math.isnan(p):
        return "n/a"
    text = f"{p:.3f}" if p >= 0.001 else "<0.001"
    return text + ("*" if star and p < 0.05 else "")


def _direction(e: Estimate, up: str, down: str) -> str:
    if not e.significant:
        return "did not change"
    return up if e.mean > 0 else down


def _selection_key(recs: list[dict]) -> tuple[float, float]:
    """Lower is better: (mean validation NLL, - mean validation accuracy); NaN sorts last."""
    nll = estimate(r.get("val_nll") for r in recs).mean
    acc = estimate(r.get("val_accuracy") for r in recs).mean
    return (nll if not math.isnan(nll) else math.inf, -acc if not math.isnan(acc) else math.inf)


def choose_alpha(by_method: dict[tuple, list[dict]]) -> tuple[tuple, float] | None:
    """The uniform-smoothing method with the lowest mean validation NLL (ties: higher validation accuracy):
    its ``(method, param)`` key and its a. ``by_method`` maps ``(method, param)`` to the runs."""
    best = None
    for mkey, recs in by_method.items():
        if recs[0]["method"] != "ls":
            continue
        key = _selection_key(recs)
        if best is None or key < best[0]:
            best = (key, mkey, recs[0]["alpha"])
    return (best[1], best[2]) if best else None


def selection_stability(by_method: dict[tuple, list[dict]]) -> dict[float, int]:
    """How often each a of uniform smoothing has the lowest validation NLL when each seed chooses alone
    (the rule of :func:`choose_alpha` on one seed's runs): ``{a: wins}``, every a of the grid listed,
    largest a count first in grid order. Seeds where no a has a finite validation NLL do not count."""
    ls = {mkey: recs for mkey, recs in by_method.items() if recs[0]["method"] == "ls"}
    wins = {recs[0]["alpha"]: 0 for recs in ls.values()}
    seeds = sorted({r["seed"] for recs in ls.values() for r in recs})
    for seed in seeds:
        best = None
        for recs in ls.values():
            mine = [r for r in recs if r["seed"] == seed]
            key = _selection_key(mine) if mine else (math.inf, math.inf)
            if key[0] < math.inf and (best is None or key < best[0]):
                best = (key, recs[0]["alpha"])
        if best is not None:
            wins[best[1]] += 1
    return wins


def a_curve(by_method: dict[tuple, list[dict]], hard: list[dict]) -> list[dict[str, Any]]:
    """Every method of the setting against hard targets, paired by seed: test accuracy, NLL and ECE
    differences with 95% t-intervals, the accuracy and NLL p-values (paired t-test) and their
    Holm–Bonferroni adjustment over the family (every method x {accuracy, NLL}), and the diverged runs."""
    rows: list[dict[str, Any]] = []
    for (method, param), recs in by_method.items():
        if (method, param) == HARD:
            continue
        d = {k: paired(recs, hard, k) for k in ("accuracy", "nll", "ece")}
        rows.append({
            "method": method, "param": param, "label": recs[0].get("label") or method,
            "alpha": recs[0].get("alpha"), "d_accuracy": d["accuracy"], "d_nll": d["nll"], "d_ece": d["ece"],
            "p_accuracy": t_pvalue(d["accuracy"]), "p_nll": t_pvalue(d["nll"]),
            "diverged": sum(bool(r.get("diverged")) for r in recs), "runs": len(recs),
        })  # fmt: skip
    adjusted = holm([row[k] for row in rows for k in ("p_accuracy", "p_nll")])
    for i, row in enumerate(rows):
        row["holm_accuracy"], row["holm_nll"] = adjusted[2 * i], adjusted[2 * i + 1]
    return rows


def outcome_of(d_acc: Estimate, d_nll: Estimate) -> tuple[str, str | None]:
    """The outcome of the rule (module docstring) and, for a trade-off, what it trades."""
    acc_up, acc_down = d_acc.significant and d_acc.mean > 0, d_acc.significant and d_acc.mean < 0
    nll_up, nll_down = d_nll.significant and d_nll.mean > 0, d_nll.significant and d_nll.mean < 0
    if acc_up and nll_up:
        return "trade-off", "accuracy for calibration"
    if acc_down and nll_down:
        return "trade-off", "calibration for accuracy"
    if acc_up or (nll_down and not acc_down):
        return "helps", None
    if acc_down or nll_up:
        return "hurts", None
    return "within noise", None


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
    wins = selection_stability(by_method)
    n_sel = sum(wins.values())
    stable = n_sel > 0 and 2 * wins.get(alpha, 0) >= n_sel
    where = f"With {noise_phrase(kind, rate)} ({ds}, {n} seeds, paired 95% t-intervals)"
    s = [
        f"{where}, a = {alpha:g} (the lowest validation NLL) "
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
    diverged = [(recs[0].get("label") or m, sum(bool(r.get("diverged")) for r in recs), len(recs))
                for (m, _), recs in by_method.items()]  # fmt: skip
    if any(k for _, k, _ in diverged):
        s.append("Diverged runs: " + ", ".join(f"{label} {k} of {n}" for label, k, n in diverged if k)
                 + " (non-finite or exploding loss, or the temperature at its bound).")  # fmt: skip
    if not stable:
        others = ", ".join(f"a = {a:g} in {k}" for a, k in wins.items() if k and a != alpha)
        s.append(
            f"The choice of a is unstable: seed by seed, a = {alpha:g} has the lowest validation NLL in only "
            f"{wins.get(alpha, 0)} of {n_sel} seeds ({others}); read the whole a curve in the "
            "report, not this one a."
        )
    outcome, trade = outcome_of(d_acc, d_nll)
    s.append(
        {
            "helps": f"Verdict: smoothing helps here (a = {alpha:g}).",
            "hurts": f"Verdict: smoothing hurts here (a = {alpha:g}); keep hard targets "
            "or use temperature scaling alone.",
            "within noise": "Verdict: no difference beyond seed-to-seed noise; smoothing is not needed here.",
        }.get(outcome)
        or (
            f"Verdict: a trade-off: a = {alpha:g} gains {_pts(d_acc)} points of accuracy and loses "
            f"calibration (NLL {_num(d_nll)}); use it with temperature scaling (T = {temp.mean:.2f}) to "
            "recover calibration, or keep hard targets if probabilities matter more than accuracy."
            if trade == "accuracy for calibration"
            else f"Verdict: a trade-off: a = {alpha:g} gains calibration (NLL {_num(d_nll)}, ECE "
            f"{_pts(d_ece)} points) and loses {_pts(Estimate(-d_acc.mean, d_acc.half, d_acc.n), False)} "
            "points of accuracy; use it if probabilities matter more than accuracy, else keep hard targets "
            "(with temperature scaling for calibration)."
        )
    )
    numbers = {
        "d_accuracy": d_acc, "d_nll": d_nll, "d_ece": d_ece, "gap": gap_ls, "gap_hard": gap_hard,
        "temperature": temp, "ts_gap": ts_gap, "ts_ece": ts_ece, "n": n,
        "selection": wins, "stable": stable, "curve": a_curve(by_method, hard),
    }  # fmt: skip
    return SettingVerdict(ds, kind, rate, outcome, alpha, s, numbers, trade)


def _best_alternative(by_method: dict[tuple, list[dict]], hard: list[dict]) -> str | None:
    """One sentence on the best non-uniform-smoothing alternative (by validation NLL, as the a)."""
    best = None
    for (method, _), recs in by_method.items():
        if method in ("hard", "ls"):
            continue
        label = recs[0].get("label") or method
        key = _selection_key(recs)
        if key[0] < math.inf and (best is None or key < best[0]):
            best = (key, label, recs)
    if best is None:
        return None
    _, label, recs = best
    d_acc, d_nll = paired(recs, hard, "accuracy"), paired(recs, hard, "nll")
    return (
        f"Best alternative by validation NLL: {label}, test accuracy {_pts(d_acc)} points and NLL "
        f"{_num(d_nll)} vs hard targets"
        + (" (within noise)." if not (d_acc.significant or d_nll.significant) else ".")
    )


def judge(records: list[dict]) -> list[SettingVerdict]:
    """One verdict per setting, in first-seen order."""
    return [judge_setting(recs) for recs in group(records, SETTING_KEYS).values()]
