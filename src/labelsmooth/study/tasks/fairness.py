"""Study task ``fairness``: what smoothing does to groups, to the tail classes, and to selective prediction.

Two problems, measured in every run (metric keys prefixed ``syn_`` and ``lt_``):

(a) **Groups** (synthetic, binary): a majority group (90%) and a minority group (10%) whose features are
    shifted and whose class direction is rotated (60 degrees), so one decision rule does not fit both; the
    minority's *training* labels are flipped at 15% (group-specific noise, the test labels are clean).
    Group membership is not an input. Measures: per-group accuracy and ECE, worst-group accuracy, the
    accuracy and ECE gaps, demographic-parity and equalised-odds differences, AURC.
(b) **Long tail** (scikit-learn's digits): the training split subsampled to an exponential profile with
    imbalance ratio 20 (the class ranks permuted per seed), validation and test balanced. Groups are the
    classes: per-class accuracy and ECE, worst-class accuracy, the tail / head accuracy (the smallest and
    largest half of the classes), the gaps, AURC.

Both report AURC under the maximum softmax probability and under the normalised-logit score of Xia et al.
(ICLR 2025), and ECE before and after temperature scaling (fitted on validation).

Methods: hard targets, uniform smoothing a in {0.05, 0.1, 0.2}, class-wise smoothing (MiSLAS, a from 0.0
on the smallest class to 0.2 on the largest, linear in log N_y; on the balanced binary problem it is nearly
uniform a = 0.1).

There is no established result that smoothing helps group fairness; :func:`summarize` reports what was
measured, with paired 95% intervals over seeds, and says so when no difference is detectable. It also checks
the selective-classification claim of Xia et al.: AURC worse with smoothing under max probability, the
normalised score closing the gap.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from labelsmooth._validation import check_scalar_range, expected
from labelsmooth.metrics import (
    calibration_summary,
    demographic_parity_difference,
    equalized_odds_difference,
    group_metrics,
    risk_coverage_curve,
)
from labelsmooth.study import measure
from labelsmooth.study.data import load_digits, split
from labelsmooth.study.models import MLP
from labelsmooth.study.noise import apply_noise
from labelsmooth.study.stats import Estimate, estimate, group, paired
from labelsmooth.study.tasks._common import SeededSection
from labelsmooth.study.tasks._fit import fit, logits, loss_of, seeded

NAME = "fairness"
PROBLEMS = ("groups", "long_tail")


@dataclass(frozen=True)
class FairnessSection(SeededSection):
    """The ``[fairness]`` section of a study config: data, model, training, method grid.

    Defaults run the grid (5 methods x 5 seeds, both problems in every run) in about a minute on 2 cores.
    """

    section_name = "fairness"

    problems: tuple[str, ...] = ("groups", "long_tail")
    smoothing: tuple[float, ...] = (0.05, 0.1, 0.2)
    classwise: tuple[float, float] = (0.0, 0.2)
    # (a) groups
    n_samples: int = 4000
    n_features: int = 8
    minority_fraction: float = 0.1
    minority_noise: float = 0.15
    separation: float = 2.5
    shift: float = 2.0
    # (b) long tail
    imbalance_ratio: float = 20.0
    # model and training
    width: int = 64
    depth: int = 2
    epochs: int = 150
    lr: float = 0.01
    weight_decay: float = 0.0
    n_bins: int = 15
    curve_points: int = 50

    def validate(self) -> FairnessSection:
        self.check_seeds()
        if not self.problems or any(p not in PROBLEMS for p in self.problems):
            raise ValueError(
                expected("fairness.problems", "to hold one or both of " + ", ".join(PROBLEMS), self.problems)
            )
        if len(set(self.problems)) != len(self.problems):
            raise ValueError(expected("fairness.problems", "to hold distinct values", self.problems))
        for a in self.smoothing:
            check_scalar_range("fairness.smoothing", a, 0.0, 1.0, lo_open=True, hi_open=True)
        if len(self.classwise) != 2:
            raise ValueError(expected("fairness.classwise", "to be [low, high]", self.classwise))
        for a in self.classwise:
            check_scalar_range("fairness.classwise", a, 0.0, 1.0)
        check_scalar_range("fairness.minority_fraction", self.minority_fraction, 0.0, 0.5, lo_open=True)
        check_scalar_range("fairness.minority_noise", self.minority_noise, 0.0, 0.5)
        check_scalar_range("fairness.imbalance_ratio", self.imbalance_ratio, 1.0, 1000.0)
        check_scalar_range("fairness.lr", self.lr, 0.0, 10.0, lo_open=True)
        check_scalar_range("fairness.weight_decay", self.weight_decay, 0.0, 10.0)
        self.check_ints(("n_samples", "n_features", "width", "depth", "epochs", "n_bins", "curve_points"), 1)
        if self.n_samples * self.minority_fraction < 100:
            raise ValueError(
                expected(
                    "fairness.n_samples", "to give the minority group at least 100 samples", self.n_samples
                )
            )
        return self


def methods(section: FairnessSection) -> list[tuple[str, Any]]:
    """The method grid, in report order: ``(name, param)``."""
    return [
        ("hard", None),
        *(("ls", a) for a in sorted(section.smoothing)),
        ("classwise", tuple(section.classwise)),
    ]


def method_label(method: str, param: Any) -> str:
    if method == "hard":
        return "hard"
    if method == "ls":
        return f"ls a={param:g}"
    if method == "classwise":
        return f"class-wise a={param[0]:g}..{param[1]:g}"
    return f"{method} {param}"


# (key, header, format, better, after temperature scaling)
_COMMON = (
    ("accuracy", "acc", ".3f", "higher", False),
    ("ece", "ECE", ".3f", "lower", False),
    ("ts_ece", "ECE (TS)", ".3f", "lower", True),
    ("aurc_msp", "AURC (MSP)", ".4f", "lower", False),
    ("aurc_norm", "AURC (norm)", ".4f", "lower", False),
)
_GAPS = (
    ("accuracy_gap", "acc gap", ".3f", "lower", False),
    ("ece_gap", "ECE gap", ".3f", "lower", False),
    ("ts_ece_gap", "ECE gap (TS)", ".3f", "lower", True),
)


def _rows(prefix: str, where: str, rows: tuple) -> tuple:
    """``rows`` of one problem: keys ``<prefix>_<key>``, headers ``<where> <header>``."""
    return tuple((f"{prefix}_{k}", f"{where} {h}", f, b, t) for k, h, f, b, t in rows)


METRICS: tuple[tuple[str, str, str, str | None, bool], ...] = (
    *_rows("syn", "groups", _COMMON),
    ("syn_worst_group_accuracy", "groups worst-group acc", ".3f", "higher", False),
    ("syn_minority_accuracy", "groups minority acc", ".3f", "higher", False),
    ("syn_majority_accuracy", "groups majority acc", ".3f", "higher", False),
    *_rows("syn", "groups", _GAPS),
    ("syn_minority_gap", "groups minority conf-acc", "+.3f", None, False),
    ("syn_dp_difference", "groups DP diff", ".3f", "lower", False),
    ("syn_eo_difference", "groups EO diff", ".3f", "lower", False),
    *_rows("lt", "tail", _COMMON),
    ("lt_worst_class_accuracy", "tail worst-class acc", ".3f", "higher", False),
    ("lt_tail_accuracy", "tail-half acc", ".3f", "higher", False),
    ("lt_head_accuracy", "head-half acc", ".3f", "higher", False),
    *_rows("lt", "tail", _GAPS),
    ("wall_time", "time (s)", ".1f", None, False),
)
"""One row per stored metric: ``(key, header, format, better, after_temperature_scaling)``."""


# --------------------------------------------------------------------------- data
def make_groups_data(section: FairnessSection, seed: int) -> dict[str, np.ndarray]:
    """The synthetic two-group problem of one seed: ``X``, clean ``y``, group ``g`` (1 = minority)."""
    rng = np.random.default_rng([seed, 101])
    n, d = section.n_samples, section.n_features
    g = (rng.random(n) < section.minority_fraction).astype(np.int64)
    y = rng.integers(0, 2, n)
    sign = (2 * y - 1)[:, None]
    e = np.eye(d)
    theta = np.pi / 3
    direction = np.where(g[:, None] == 1, np.cos(theta) * e[0] + np.sin(theta) * e[1], e[0])
    offset = np.where(g[:, None] == 1, section.shift * e[2], 0.0)
    X = sign * direction * (section.separation / 2) + offset + rng.standard_normal((n, d))
    return {"X": X.astype(np.float32), "y": y.astype(np.int64), "g": g}


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> np.ndarray:
    """Exponential profile ``n_c = n_max * ratio^(-c / (K - 1))``, at least 1 (Cui et al. 2019).

    >>> long_tail_counts(100, 5, 20.0).tolist()
    [100, 47, 22, 11, 5]
    """
    c = np.arange(num_classes)
    return np.maximum(1, np.round(n_max * ratio ** (-c / (num_classes - 1)))).astype(np.int64)


def _standardize(Xtr: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    mean, std = Xtr.mean(0, keepdims=True), Xtr.std(0, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)
    return [torch.from_numpy(((a - mean) / std).astype(np.float32)) for a in (Xtr, *others)]


# --------------------------------------------------------------------------- measures
def _curve_points(c: Any, k: int) -> dict[str, list[float]]:
    idx = np.unique(np.linspace(0, len(c.coverage) - 1, min(k, len(c.coverage))).round().astype(int))
    return {"coverage": c.coverage[idx].round(5).tolist(), "risk": c.risk[idx].round(5).tolist()}


def _common(z_te, yte, z_va, yva, groups, section, prefix, arrays) -> tuple[dict[str, float], Any, Any]:
    out: dict[str, float] = {}
    s = calibration_summary(z_te, yte, from_logits=True, n_bins=section.n_bins)
    out[f"{prefix}accuracy"], out[f"{prefix}ece"] = s["accuracy"], s["ece"]
    temperature, _, z_ts = measure.temperature_scale(z_va, yva, z_te)
    out[f"{prefix}temperature"] = temperature
    out[f"{prefix}ts_ece"] = calibration_summary(z_ts, yte, from_logits=True, n_bins=section.n_bins)["ece"]
    for score, key in (("max_prob", "msp"), ("normalized_logits", "norm")):
        c = risk_coverage_curve(z_te, yte, from_logits=True, score=score)
        out[f"{prefix}aurc_{key}"] = c.aurc
        arrays[f"{prefix}risk_coverage_{key}"] = _curve_points(c, section.curve_points)
    gm = group_metrics(z_te, yte, groups, from_logits=True, n_bins=section.n_bins)
    gm_ts = group_metrics(z_ts, yte, groups, from_logits=True, n_bins=section.n_bins)
    out[f"{prefix}accuracy_gap"] = gm.accuracy_difference
    out[f"{prefix}ece_gap"] = gm.ece_difference
    out[f"{prefix}ts_ece_gap"] = gm_ts.ece_difference
    arrays[f"{prefix}groups"] = gm.to_dict()
    arrays[f"{prefix}groups_ts"] = gm_ts.to_dict()
    return out, gm, z_ts


def _run_groups(section: FairnessSection, method: str, param: Any, seed: int, arrays: dict) -> dict[str, Any]:
    data = make_groups_data(section, seed)
    X, y, g = data["X"], data["y"], data["g"]
    sp = split(y + 2 * g, 0.2, 0.2, seed)  # stratified by class x group
    y_train = y[sp.train].copy()
    minority = g[sp.train] == 1
    y_train[minority] = apply_noise(y_train[minority], "symmetric", section.minority_noise, 2, seed)
    Xtr, Xva, Xte = _standardize(X[sp.train], X[sp.val], X[sp.test])
    ytr = torch.from_numpy(y_train)
    yva, yte, gte = (torch.from_numpy(a) for a in (y[sp.val], y[sp.test], g[sp.test]))
    seeded(seed, "fairness-groups-init")
    model = MLP((section.n_features,), 2, section.width, section.depth)
    curves = fit(
        model, Xtr, ytr, loss_of(method, param, ytr, 2),
        epochs=section.epochs, lr=section.lr, weight_decay=section.weight_decay,
    )  # fmt: skip
    z_va, z_te = logits(model, Xva), logits(model, Xte)
    out, gm, _ = _common(z_te, yte, z_va, yva, gte, section, "syn_", arrays)
    out["syn_worst_group_accuracy"] = gm.worst_group_accuracy
    out["syn_majority_accuracy"], out["syn_minority_accuracy"] = gm.accuracy
    out["syn_minority_gap"] = gm.calibration_gap[1]
    out["syn_dp_difference"] = demographic_parity_difference(z_te, yte, gte, from_logits=True)
    out["syn_eo_difference"] = equalized_odds_difference(z_te, yte, gte, from_logits=True)
    out["syn_label_noise_minority"] = float((y_train[minority] != y[sp.train][minority]).mean())
    out["syn_final_train_loss"] = curves["train_loss"][-1]
    return {"metrics": out, "curves": {"syn_" + k: v for k, v in curves.items() if k != "label_smoothing"}}


def _run_long_tail(
    section: FairnessSection, method: str, param: Any, seed: int, arrays: dict
) -> dict[str, Any]:
    ds = load_digits()
    k = ds.num_classes
    X = ds.X.reshape(len(ds.y), -1)
    sp = split(ds.y, 0.15, 0.25, seed)
    rng = np.random.default_rng([seed, 103])
    rank = rng.permutation(k)  # class rank[i] gets the i-th largest count
    per_class = np.bincount(ds.y[sp.train], minlength=k)
    counts = long_tail_counts(int(per_class.min()), k, section.imbalance_ratio)
    train = []
    for i, c in enumerate(rank):
        idx = sp.train[ds.y[sp.train] == c]
        train.append(rng.permutation(idx)[: counts[i]])
    train_idx = np.sort(np.concatenate(train))
    Xtr, Xva, Xte = _standardize(X[train_idx], X[sp.val], X[sp.test])
    ytr = torch.from_numpy(ds.y[train_idx])
    yva, yte = torch.from_numpy(ds.y[sp.val]), torch.from_numpy(ds.y[sp.test])
    seeded(seed, "fairness-longtail-init")
    model = MLP((X.shape[1],), k, section.width, section.depth)
    curves = fit(
        model, Xtr, ytr, loss_of(method, param, ytr, k),
        epochs=section.epochs, lr=section.lr, weight_decay=section.weight_decay,
    )  # fmt: skip
    z_va, z_te = logits(model, Xva), logits(model, Xte)
    out, gm, _ = _common(z_te, yte, z_va, yva, yte, section, "lt_", arrays)
    acc = np.asarray(gm.accuracy)
    half = k // 2
    out["lt_worst_class_accuracy"] = gm.worst_group_accuracy
    out["lt_head_accuracy"] = float(acc[rank[:half]].mean())
    out["lt_tail_accuracy"] = float(acc[rank[half:]].mean())
    out["lt_final_train_loss"] = curves["train_loss"][-1]
    arrays["lt_train_counts"] = np.bincount(ytr.numpy(), minlength=k).tolist()
    return {"metrics": out, "curves": {"lt_" + k: v for k, v in curves.items() if k != "label_smoothing"}}


def run_one(section: FairnessSection, method: str, param: Any, seed: int) -> dict[str, Any]:
    """Train and measure one (method, seed) on both problems; returns ``{"metrics", "curves", "arrays"}``.

    Deterministic: data, split, label noise, subsampling and initial weights derive from ``seed`` only,
    training is full-batch on one thread. Runs with the same seed are paired (same data, same initial
    weights, another objective).
    """
    section.validate()
    start, cpu = time.perf_counter(), time.process_time()
    torch.set_num_threads(1)
    arrays: dict[str, Any] = {}
    a = _run_groups(section, method, param, seed, arrays)
    b = _run_long_tail(section, method, param, seed, arrays)
    metrics = {**a["metrics"], **b["metrics"]}
    metrics["wall_time"] = time.perf_counter() - start
    metrics["cpu_time"] = time.process_time() - cpu
    return {"metrics": metrics, "curves": {**a["curves"], **b["curves"]}, "arrays": arrays}


# --------------------------------------------------------------------------- verdict
def _flat(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        row = {"method": r["method"], "param": r.get("param"), "seed": r["seed"]}
        row.update(r.get("metrics", {}))
        row["label"] = method_label(row["method"], row["param"])
        out.append(row)
    return out


def _pts(e: Estimate, scale: float = 100.0, digits: int = 1) -> str:
    return e.fmt(scale, digits) if e.n else "n/a"


def _said(e: Estimate) -> str:
    if e.n < 2:
        return "too few seeds for an interval"
    return "a detectable difference" if e.significant else "no detectable difference"


def summarize(records: list[dict]) -> list[str]:
    """Plain-language findings from stored runs, each with its paired 95% interval over seeds.

    ``records``: dicts with ``method``, ``param``, ``seed`` and ``metrics`` (as :func:`run_one` returns
    them). Every method is compared with hard targets on the same seeds; an interval containing 0 is
    reported as "no detectable difference", never as an effect.
    """
    rows = _flat(records)
    by = group(rows, ("label",))
    hard = by.get(("hard",))
    if not hard:
        return ["No hard-target runs: nothing to compare with."]
    lines: list[str] = []
    checks = (
        ("syn_worst_group_accuracy", "worst-group accuracy", 100.0, "points"),
        ("syn_accuracy_gap", "group accuracy gap", 100.0, "points"),
        ("syn_ece_gap", "group ECE gap", 100.0, "points"),
        ("syn_eo_difference", "equalised-odds difference", 100.0, "points"),
        ("syn_dp_difference", "demographic-parity difference", 100.0, "points"),
        ("lt_worst_class_accuracy", "long-tail worst-class accuracy", 100.0, "points"),
        ("lt_tail_accuracy", "long-tail tail-half accuracy", 100.0, "points"),
        ("lt_ece_gap", "long-tail class ECE gap", 100.0, "points"),
    )
    hard_line = ", ".join(
        f"{label} {_pts(estimate(r.get(key) for r in hard), scale)}" for key, label, scale, _ in checks[:1]
    )
    lines.append(f"Hard targets: {hard_line} (n = {len(hard)} seeds).")
    for (label,), recs in by.items():
        if label == "hard":
            continue
        parts = []
        for key, what, scale, unit in checks:
            d = paired(recs, hard, key)
            parts.append(f"{what} {_pts(d, scale)} {unit} ({_said(d)})")
        lines.append(f"{label} vs hard: " + "; ".join(parts) + ".")
    lines.extend(_selective_lines(by, hard))
    return lines


def _selective_lines(by: dict[tuple, list[dict]], hard: list[dict]) -> list[str]:
    """Xia et al. (2025): smoothing degrades AURC under MSP; the normalised score closes the gap."""
    lines = []
    for prefix, name in (("syn_", "groups"), ("lt_", "long tail")):
        for (label,), recs in by.items():
            if not label.startswith("ls"):
                continue
            msp = paired(recs, hard, f"{prefix}aurc_msp")
            norm = paired(recs, hard, f"{prefix}aurc_norm")
            # the closing: does the normalised score of the smoothed model beat its own MSP?
            own = _diff_within(recs, f"{prefix}aurc_norm", f"{prefix}aurc_msp")
            worse = msp.significant and msp.mean > 0
            better = msp.significant and msp.mean < 0
            fixes = own.significant and own.mean < 0
            if worse and fixes:
                verdict = "reproduced: MSP AURC worse than hard, the normalised score improves on MSP"
            elif worse:
                verdict = (
                    "partly reproduced: MSP AURC worse than hard, the normalised score does not improve on it"
                )
            elif better:
                verdict = "adverse: smoothing improved AURC under MSP"
            else:
                verdict = "not reproduced: no detectable AURC difference under MSP"
            lines.append(
                f"Selective classification ({name}, {label}): AURC(MSP) vs hard {msp.fmt(1.0, 4)}, "
                f"AURC(normalised) vs hard {norm.fmt(1.0, 4)}, normalised minus MSP on the smoothed "
                f"model {own.fmt(1.0, 4)}; claim {verdict}."
            )
    return lines


def _diff_within(recs: list[dict], a: str, b: str) -> Estimate:
    return estimate(r[a] - r[b] for r in recs if r.get(a) is not None and r.get(b) is not None)


# --------------------------------------------------------------------------- the engine task
_PREFIX = {"groups": "syn_", "long_tail": "lt_"}
_RENAME = {"worst_class_accuracy": "worst_group_accuracy"}  # long tail: the groups are the classes


def run_problem(section: FairnessSection, problem: str, method: str, param: Any, seed: int) -> dict[str, Any]:
    """One run of the engine's grid: one problem (``groups`` or ``long_tail``), one method, one seed; the
    metrics as the task's :data:`TASK_METRICS` names them (no ``syn_`` / ``lt_`` prefix)."""
    start, cpu = time.perf_counter(), time.process_time()
    torch.set_num_threads(1)
    arrays: dict[str, Any] = {}
    fn = _run_groups if problem == "groups" else _run_long_tail
    rec = fn(section, method, param, seed, arrays)
    pre = _PREFIX[problem]

    def strip(k: str) -> str:
        k = k[len(pre):] if k.startswith(pre) else k
        return _RENAME.get(k, k)

    metrics = {strip(k): v for k, v in rec["metrics"].items()}
    metrics["wall_time"] = time.perf_counter() - start
    metrics["cpu_time"] = time.process_time() - cpu
    return {"metrics": metrics, "curves": {strip(k): v for k, v in rec["curves"].items()},
            "arrays": {strip(k): v for k, v in arrays.items()}}  # fmt: skip


def _m(key, header, fmt=".3f", better=None, **kw):
    from labelsmooth.study.tasks.base import Metric

    return Metric(key, header, fmt=fmt, better=better, **kw)


TASK_METRICS = (
    _m("accuracy", "accuracy", better="higher", cli=True, panel=True, description="test accuracy"),
    _m("worst_group_accuracy", "worst-group acc", better="higher", cli=True, panel=True,
       description="lowest per-group accuracy (long tail: per-class)"),
    _m("accuracy_gap", "acc gap", better="lower", description="largest minus smallest group accuracy"),
    _m("ece", "ECE", better="lower", scaled=True, cli=True, scaled_in=("summary",), description="test ECE"),
    _m("ece_gap", "ECE gap", better="lower", scaled=True, scaled_in=("summary",),
       description="largest difference in ECE between groups"),
    _m("aurc_msp", "AURC (MSP)", fmt=".4f", better="lower", cli=True,
       description="area under the risk-coverage curve, max-probability score"),
    _m("aurc_norm", "AURC (norm)", fmt=".4f", better="lower", cli=True,
       description="AURC with the normalised-logit score (Xia et al. 2025)"),
    _m("minority_accuracy", "minority acc", better="higher", description="groups: minority accuracy"),
    _m("majority_accuracy", "majority acc", better="higher", summary=False),
    _m("minority_gap", "minority conf-acc", fmt="+.3f", summary=False,
       description="groups: minority confidence minus accuracy"),
    _m("dp_difference", "DP diff", better="lower", description="groups: demographic-parity difference"),
    _m("eo_difference", "EO diff", better="lower", description="groups: equalised-odds difference"),
    _m("tail_accuracy", "tail-half acc", better="higher", description="long tail: the smaller half"),
    _m("head_accuracy", "head-half acc", better="higher", summary=False),
    _m("temperature", "T", summary=False, description="temperature fitted on validation"),
    _m("label_noise_minority", "minority noise", summary=False),
    _m("final_train_loss", "train loss", summary=False),
    _m("wall_time", "wall (s)", fmt=".2f", summary=False),
    _m("cpu_time", "CPU (s)", fmt=".2f", summary=False),
)  # fmt: skip
"""The ``fairness`` task's metrics table (keys shared by both problems; a problem's own keys are None for
the other)."""

_CHECKS = {
    "groups": (("worst_group_accuracy", "worst-group accuracy"), ("accuracy_gap", "group accuracy gap"),
               ("ece_gap", "group ECE gap"), ("eo_difference", "equalised-odds difference"),
               ("dp_difference", "demographic-parity difference")),
    "long_tail": (("worst_group_accuracy", "worst-class accuracy"), ("tail_accuracy", "tail-half accuracy"),
                  ("ece_gap", "class ECE gap")),
}  # fmt: skip


def judge(records: list[dict[str, Any]]) -> list[Any]:
    """Two verdicts per problem, from flat engine records: the group-fairness one (every method against
    hard targets, paired over seeds, "no detectable difference" when every interval holds 0) and the
    selective-classification claim of Xia et al. (2025)."""
    from labelsmooth.study.tasks.base import Verdict

    out: list[Any] = []
    for (problem,), recs in group(records, ("problem",)).items():
        by = group(recs, ("method", "param"))
        hard = by.get(("hard", None))
        where = "synthetic groups (90% / 10%, 15% minority label noise)" if problem == "groups" else (
            "digits with a long tail (imbalance ratio 20)")
        if not hard:
            out.append(Verdict(f"{problem}: group fairness", "no baseline",
                               ["No hard-target runs: nothing to compare with."]))
            continue
        sentences, found, numbers = [], [], {}
        wg = estimate(r.get("worst_group_accuracy") for r in hard)
        sentences.append(f"On {where}, hard targets reach worst-group accuracy {_pts(wg)}% "
                         f"(n = {len(hard)} seeds).")  # fmt: skip
        for key, rs in by.items():
            if key == ("hard", None):
                continue
            parts = []
            for metric, what in _CHECKS[problem]:
                d = paired(rs, hard, metric)
                numbers[f"{rs[0]['label']}:{metric}"] = (d.mean, d.half, d.n)
                parts.append(f"{what} {_pts(d)} points ({_said(d)})")
                if d.significant:
                    found.append(f"{rs[0]['label']} {what} {'higher' if d.mean > 0 else 'lower'}")
            sentences.append(f"{rs[0]['label']} minus hard: " + "; ".join(parts) + ".")
        outcome = "no detectable difference" if not found else "differences detected"
        sentences.append(
            "No method changed any group measure detectably (every paired 95% interval holds 0): there is "
            "no evidence here that smoothing helps, or hurts, group fairness." if not found else
            "Detectable, against hard targets: " + ", ".join(found) + "."
        )  # fmt: skip
        if problem == "long_tail":
            claim = _mislas(by, hard)
            if claim:
                sentences.append(claim)
        out.append(Verdict(f"{problem}: group fairness", outcome, sentences, numbers))
        out.append(_selective(problem, by, hard))
    return out


def _mislas(by: dict, hard: list[dict]) -> str:
    """The long-tail claim of Zhong et al. (CVPR 2021, MiSLAS): label-aware (class-wise) smoothing helps the
    tail classes. Held = tail-half accuracy detectably higher and the class ECE gap not detectably wider;
    in part = one of the two detectably better, neither worse; adverse = either detectably worse."""
    rs = next((v for (m, _), v in by.items() if m == "classwise"), None)
    if not rs:
        return ""
    tail = paired(rs, hard, "tail_accuracy")
    gap = paired(rs, hard, "ece_gap")
    tail_up, gap_down = tail.significant and tail.mean > 0, gap.significant and gap.mean < 0
    if (tail.significant and tail.mean < 0) or (gap.significant and gap.mean > 0):
        said = "did not hold (adverse)"
    elif tail_up:
        said = "held"
    elif gap_down:
        said = "held in part (calibration across classes, not tail accuracy)"
    else:
        said = "did not hold (no detectable difference)"
    return (f"Zhong et al. (CVPR 2021, MiSLAS), class-wise smoothing helps the tail classes: {said} here "
            f"({rs[0]['label']} minus hard: tail-half accuracy {_pts(tail)} points, class ECE gap "
            f"{_pts(gap)} points).")  # fmt: skip


def _selective(problem: str, by: dict, hard: list[dict]) -> Any:
    from labelsmooth.study.tasks.base import Verdict

    sentences, outcomes = [], []
    for (method, _), rs in by.items():
        if method != "ls":
            continue
        msp = paired(rs, hard, "aurc_msp")
        norm = paired(rs, hard, "aurc_norm")
        own = _diff_within(rs, "aurc_norm", "aurc_msp")
        worse = msp.significant and msp.mean > 0
        closes = own.significant and own.mean < 0  # the normalised score improves on the model's own MSP
        if worse and closes:
            o = "reproduced"
        elif worse:
            o = "partly reproduced"
        elif msp.significant and msp.mean < 0:
            o = "adverse"
        else:
            o = "not reproduced"
        outcomes.append((rs[0]["label"], o))
        sentences.append(
            f"{rs[0]['label']}: AURC(MSP) minus hard {msp.fmt(1.0, 4)}, AURC(normalised) minus hard "
            f"{norm.fmt(1.0, 4)}, normalised minus MSP on the smoothed model {own.fmt(1.0, 4)}: {o}"
            + {"partly reproduced": " (MSP worse with smoothing, but the normalised score does not improve "
                                    "on it: the gap is not closed)",
               "adverse": " (smoothing made AURC better under MSP)",
               "not reproduced": " (no detectable AURC difference under MSP)"}.get(o, "") + "."
        )  # fmt: skip
    if not outcomes:
        return Verdict(f"{problem}: selective classification", "no uniform smoothing runs", [])
    kinds = list(dict.fromkeys(o for _, o in outcomes))
    outcome = kinds[0] if len(kinds) == 1 else "mixed: " + ", ".join(f"{lab} {o}" for lab, o in outcomes)
    sentences.insert(0, "Xia et al. (ICLR 2025): smoothing makes AURC worse under max-probability scoring "
                     "and normalising the logits closes the gap. Reproduced = AURC(MSP) detectably worse "
                     "than hard targets and the normalised score detectably better than MSP on the smoothed "
                     "model.")  # fmt: skip
    return Verdict(f"{problem}: selective classification", outcome, sentences)


from labelsmooth.study.tasks.base import Context, Figure, RunRecord, RunSpec, Task  # noqa: E402


class FairnessTask(Task):
    """The ``fairness`` task: problems x methods x seeds, one verdict pair per problem."""

    name = NAME
    summary = (
        "does smoothing change worst-group accuracy, group gaps, the tail classes or selective prediction?"
    )
    runtime = "50 runs (2 problems, 5 methods, 5 seeds); measured 13-20 s wall on 2 idle cores"
    config_cls = FairnessSection
    metrics = TASK_METRICS
    setting_axes = ("problem",)
    report_note = ("Intervals are 95% Student-t intervals over seeds; differences are paired by seed (same "
                   "data, split, label noise and initial weights).")  # fmt: skip

    def validate(self, section: Any) -> None:
        section.validate()

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        section = cfg.section
        base = asdict(section)
        for key in ("seeds", "problems"):
            base.pop(key)
        return [
            RunSpec(axes := {"problem": pr, "method": m, "param": p, "seed": s},
                    {"task": NAME, "section": base, "run": dict(axes)})
            for pr in section.problems
            for s in section.seeds
            for m, p in methods(section)
        ]  # fmt: skip

    def execute(self, spec: RunSpec, ctx: Context, needs: Any) -> RunRecord:
        a = spec.axes
        return RunRecord.of(run_problem(ctx.section, a["problem"], a["method"], a["param"], a["seed"]))

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        return judge(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        from labelsmooth.study.tasks._bars import bars

        if not records:
            return []
        probs = group(records, ("problem",))

        def rows(recs, a, b=None):
            return [(rs[0]["label"], estimate(r.get(a) for r in rs),
                     estimate(r.get(b) for r in rs) if b else None)
                    for rs in group(recs, ("method", "param")).values()]  # fmt: skip

        return [
            Figure("worst_group_accuracy", "Worst-group accuracy per method (groups: minority or majority; "
                   "long tail: the worst class); error bars: 95% t-intervals over seeds.",
                   bars([(p, rows(rs, "worst_group_accuracy"), None) for (p,), rs in probs.items()],
                        "worst-group accuracy")),
            Figure("aurc", "AURC per method under the max-probability score and the normalised-logit score "
                   "(lower is better); error bars: 95% t-intervals over seeds.",
                   bars([(p, rows(rs, "aurc_msp", "aurc_norm"), ("MSP", "normalised"))
                         for (p,), rs in probs.items()], "AURC")),
        ]  # fmt: skip


def _register() -> Task:
    from labelsmooth.study.tasks import register

    return register(FairnessTask())


TASK = _register()
