"""Study task ``privacy``: what a smoothed model leaks, to membership inference and to model inversion.

Data: scikit-learn's digits, split per seed (stratified) into a *public* part (40%), the *members* (30%,
the target model's training set) and the *non-members* (30%, never trained on; also the test set).

(a) **Membership inference** (metric keys ``mia_*``). The target model is an MLP trained full-batch long
    enough to fit its members perfectly. Every score of :mod:`labelsmooth.privacy` (loss, confidence,
    entropy, modified entropy, logit-scaled confidence) is evaluated: AUC, TPR at 1% FPR (Carlini et al.
    2022), best advantage; plus train and test accuracy (the utility cost).
(b) **Model inversion** (keys ``inv_*``), an analog of Struppek, Hintersdorf and Kersting (ICLR 2024), whose
    attack searches a GAN's latent space: here the prior is a PCA basis fitted on the public part (the
    mean image plus ``pca_components`` directions, each coefficient bounded to +-``coef_bound`` standard
    deviations through a tanh). Per class, ``inversion_restarts`` coefficient vectors are optimised with Adam
    to maximise the target model's log-probability of the class. Leakage is measured by an evaluation
    classifier trained on the public part only (attack accuracy: the fraction of reconstructions it assigns
    to the targeted class) and by the pixel distance from each reconstruction to the nearest member of its
    class (lower = closer to private training images), next to the same distance for public images of the
    class as a reference (``inv_public_distance``).

Methods: hard targets (a = 0), uniform smoothing a in {0.05, 0.1, 0.3}, and negative smoothing a in {-0.05,
-0.1} trained as Struppek et al. do: hard targets for ``warmup_epochs``, then a linear ramp to a over
``ramp_epochs`` (:class:`~labelsmooth.study.objectives.SmoothingSchedule`, stored as the method's
parameter).

Published directions :func:`summarize` checks: positive smoothing increases inversion leakage, negative
smoothing reduces it at a utility cost (Struppek et al. 2024); smoothing is a weak defence against
membership inference (Kaya and Dumitras 2021; RelaxLoss, Chen et al. 2022, uses it only as a baseline).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from labelsmooth._validation import check_scalar_range, expected
from labelsmooth.privacy import membership_inference
from labelsmooth.study.data import load_digits, split
from labelsmooth.study.models import MLP
from labelsmooth.study.objectives import SmoothingSchedule
from labelsmooth.study.stats import Estimate, estimate, group, paired
from labelsmooth.study.tasks._common import SeededSection
from labelsmooth.study.tasks._fit import fit, logits, loss_of, seeded

NAME = "privacy"
SCORE_KEYS = {"loss": "loss", "confidence": "conf", "entropy": "entropy",
              "modified_entropy": "mentr", "logit_confidence": "logit"}  # fmt: skip


@dataclass(frozen=True)
class PrivacySection(SeededSection):
    """The ``[privacy]`` section of a study config. Defaults: 6 methods x 5 seeds in about a minute on
    2 cores."""

    section_name = "privacy"

    smoothing: tuple[float, ...] = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.3)
    public_fraction: float = 0.4
    member_fraction: float = 0.3
    width: int = 128
    depth: int = 2
    epochs: int = 300
    lr: float = 0.003
    warmup_epochs: int = 200
    ramp_epochs: int = 50
    pca_components: int = 16
    coef_bound: float = 3.0
    inversion_restarts: int = 8
    inversion_steps: int = 30
    inversion_lr: float = 0.05
    eval_epochs: int = 200

    def validate(self) -> PrivacySection:
        self.check_seeds()
        if not self.smoothing:
            raise ValueError(expected("privacy.smoothing", "to hold at least one factor", self.smoothing))
        for a in self.smoothing:
            check_scalar_range("privacy.smoothing", a, -1.0, 1.0, hi_open=True)
        check_scalar_range(
            "privacy.public_fraction", self.public_fraction, 0.0, 1.0, lo_open=True, hi_open=True
        )
        check_scalar_range(
            "privacy.member_fraction", self.member_fraction, 0.0, 1.0, lo_open=True, hi_open=True
        )
        if self.public_fraction + self.member_fraction >= 0.95:
            raise ValueError(
                expected(
                    "privacy.public_fraction + member_fraction",
                    "< 0.95 (leave non-members)",
                    self.public_fraction + self.member_fraction,
                )
            )
        check_scalar_range("privacy.lr", self.lr, 0.0, 10.0, lo_open=True)
        check_scalar_range("privacy.coef_bound", self.coef_bound, 0.0, 100.0, lo_open=True)
        check_scalar_range("privacy.inversion_lr", self.inversion_lr, 0.0, 100.0, lo_open=True)
        counts = ("width", "depth", "epochs", "pca_components", "inversion_restarts", "inversion_steps",
                  "eval_epochs")  # fmt: skip
        self.check_ints(counts, 1)
        self.check_ints(("warmup_epochs", "ramp_epochs"), 0)
        if self.warmup_epochs + self.ramp_epochs >= self.epochs:
            raise ValueError(
                expected("privacy.warmup_epochs + ramp_epochs", f"< epochs = {self.epochs}",
                         self.warmup_epochs + self.ramp_epochs)
            )  # fmt: skip
        if self.pca_components > 64:
            raise ValueError(expected("privacy.pca_components", "<= 64 (8x8 digits)", self.pca_components))
        return self


def methods(section: PrivacySection) -> list[tuple[str, Any]]:
    """The grid ``(name, param)``: ``hard`` for a = 0, ``ls`` for a > 0, ``negative-schedule`` (param: the
    schedule's dict) for a < 0; sorted by a."""
    out: list[tuple[str, Any]] = []
    for a in sorted(section.smoothing):
        if a == 0:
            out.append(("hard", None))
        elif a > 0:
            out.append(("ls", a))
        else:
            s = SmoothingSchedule(
                final=a, warmup_epochs=section.warmup_epochs, ramp_epochs=section.ramp_epochs
            )
            out.append(("negative-schedule", s.to_dict()))
    return out


def method_alpha(method: str, param: Any) -> float:
    """The final smoothing factor of a method (the x axis of the report)."""
    if method == "hard":
        return 0.0
    if method == "ls":
        return float(param)
    if method == "negative-schedule":
        return float(param["final"] if isinstance(param, dict) else param)
    raise ValueError(expected("method", "to be one of 'hard', 'ls', 'negative-schedule'", method))


METRICS: tuple[tuple[str, str, str, str | None, bool], ...] = (
    ("test_accuracy", "test acc", ".3f", "higher", False),
    ("train_accuracy", "train acc", ".3f", None, False),
    *(
        row
        for kind, key in SCORE_KEYS.items()
        for row in (
            (f"mia_{key}_auc", f"MIA {kind} AUC", ".3f", "lower", False),
            (f"mia_{key}_tpr1", f"MIA {kind} TPR@1%", ".3f", "lower", False),
        )
    ),
    ("mia_loss_advantage", "MIA loss advantage", ".3f", "lower", False),
    ("mia_best_auc", "MIA best AUC", ".3f", "lower", False),
    ("inv_attack_accuracy", "inversion attack acc", ".3f", "lower", False),
    ("inv_member_distance", "inversion dist. to members", ".3f", "higher", False),
    ("inv_public_distance", "inversion dist. to public", ".3f", None, False),
    ("inv_distance_gap", "inversion members - public dist.", "+.3f", "higher", False),
    ("inv_eval_confidence", "inversion evaluator conf.", ".3f", "lower", False),
    ("inv_target_confidence", "inversion target conf.", ".3f", None, False),
    ("wall_time", "time (s)", ".1f", None, False),
)
"""``(key, header, format, better, after_temperature_scaling)``; "better" from the defender's side (less
leakage is better)."""


# --------------------------------------------------------------------------- data and the attacker's tools
def _splits(y: np.ndarray, section: PrivacySection, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(public, members, non-members) indices: ``split``'s stratified cut with public as "test" and members
    as "validation"."""
    sp = split(y, section.member_fraction, section.public_fraction, seed)
    return sp.test, sp.val, sp.train


@lru_cache(maxsize=8)
def _public_tools(section: PrivacySection, seed: int) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """The attacker's prior (PCA of the public images) and evaluation classifier (trained on public data);
    they depend on the seed's split only, so every method of a seed shares them."""
    ds = load_digits()
    X = torch.from_numpy(ds.X.reshape(len(ds.y), -1)).double()
    public, _, _ = _splits(ds.y, section, seed)
    Xp = X[public]
    mean = Xp.mean(0)
    _, s, vh = torch.linalg.svd(Xp - mean, full_matrices=False)
    k = section.pca_components
    std = s[:k] / math.sqrt(max(len(public) - 1, 1))
    prior = {"mean": mean.float(), "basis": vh[:k].float(), "std": std.float()}
    seeded(seed, "privacy-evaluator")
    evaluator = MLP((64,), ds.num_classes, 256, 1)
    yp = torch.from_numpy(ds.y[public])
    fit(
        evaluator,
        Xp.float(),
        yp,
        loss_of("hard", None, yp, ds.num_classes),
        epochs=section.eval_epochs,
        lr=0.003,
    )
    for p in evaluator.parameters():
        p.requires_grad_(False)
    return prior, evaluator


def invert(
    model: torch.nn.Module,
    prior: dict[str, torch.Tensor],
    num_classes: int,
    section: PrivacySection,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inversion in the PCA prior: per class, maximise ``log p(class | mean + basis^T c)`` over
    bounded coefficients ``c = coef_bound * std * tanh(w)``. Returns images ``(K * R, 64)`` and their
    target classes."""
    r = section.inversion_restarts
    target = torch.arange(num_classes).repeat_interleave(r)
    g = torch.Generator().manual_seed(seeded(seed, "privacy-inversion"))
    w = (0.1 * torch.randn(len(target), len(prior["std"]), generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=section.inversion_lr)
    for p in model.parameters():
        p.requires_grad_(False)

    def images() -> torch.Tensor:
        c = section.coef_bound * prior["std"] * torch.tanh(w)
        return prior["mean"] + c @ prior["basis"]

    for _ in range(section.inversion_steps):
        opt.zero_grad(set_to_none=True)
        loss = -torch.log_softmax(model(images()), 1).gather(1, target[:, None]).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return images(), target


def _nearest_distance(x: torch.Tensor, cls: torch.Tensor, ref: torch.Tensor, ref_y: torch.Tensor) -> float:
    """Mean over reconstructions of the L2 distance to the nearest reference image of the same class."""
    d = torch.cdist(x.double(), ref.double())
    d = torch.where(cls[:, None] == ref_y[None, :], d, torch.full_like(d, math.inf))
    return float(d.min(1).values.mean())


# --------------------------------------------------------------------------- one run
def run_one(section: PrivacySection, method: str, param: Any, seed: int) -> dict[str, Any]:
    """Train the target model of one (method, seed), attack it; ``{"metrics", "curves", "arrays"}``.

    Deterministic given the seed (split, initial weights, attack restarts); one thread, full batch.
    Methods with the same seed share the split, the initial weights, the prior and the evaluator (paired).
    """
    section.validate()
    start, cpu = time.perf_counter(), time.process_time()
    torch.set_num_threads(1)
    ds = load_digits()
    k = ds.num_classes
    X = torch.from_numpy(ds.X.reshape(len(ds.y), -1))
    y = torch.from_numpy(ds.y)
    public, members, nonmembers = _splits(ds.y, section, seed)
    prior, evaluator = _public_tools(section, seed)
    Xin, yin, Xout, yout = X[members], y[members], X[nonmembers], y[nonmembers]

    seeded(seed, "privacy-target-init")
    model = MLP((64,), k, section.width, section.depth)
    curves = fit(model, Xin, yin, loss_of(method, param, yin, k), epochs=section.epochs, lr=section.lr)
    z_in, z_out = logits(model, Xin), logits(model, Xout)
    metrics: dict[str, Any] = {
        "label_smoothing": method_alpha(method, param),
        "epochs_run": len(curves["epoch"]),
    }
    metrics["diverged"] = not (bool(torch.isfinite(z_in).all()) and bool(torch.isfinite(z_out).all()))
    arrays: dict[str, Any] = {}
    if not metrics["diverged"]:
        metrics["train_accuracy"] = float((z_in.argmax(1) == yin).double().mean())
        metrics["test_accuracy"] = float((z_out.argmax(1) == yout).double().mean())
        attacks = membership_inference(z_in, yin, z_out, yout, from_logits=True, fpr_levels=(0.01, 0.001))
        for kind, att in attacks.items():
            key = SCORE_KEYS[kind]
            metrics[f"mia_{key}_auc"] = att.auc
            metrics[f"mia_{key}_tpr1"] = att.tpr_at_fpr[0.01]
            metrics[f"mia_{key}_tpr01"] = att.tpr_at_fpr[0.001]
            metrics[f"mia_{key}_advantage"] = att.advantage
        metrics["mia_best_auc"] = max(a.auc for a in attacks.values())
        loss_roc = attacks["loss"]
        idx = np.unique(
            np.linspace(0, len(loss_roc.fpr) - 1, min(100, len(loss_roc.fpr))).round().astype(int)
        )
        arrays["mia_loss_roc"] = {"fpr": loss_roc.fpr[idx].tolist(), "tpr": loss_roc.tpr[idx].tolist()}

        recon, cls = invert(model, prior, k, section, seed)
        with torch.no_grad():
            p_eval = torch.softmax(evaluator(recon), 1)
            metrics["inv_attack_accuracy"] = float((p_eval.argmax(1) == cls).double().mean())
            metrics["inv_eval_confidence"] = float(p_eval.gather(1, cls[:, None]).mean())
            metrics["inv_target_confidence"] = float(
                torch.softmax(model(recon), 1).gather(1, cls[:, None]).mean()
            )
        metrics["inv_member_distance"] = _nearest_distance(recon, cls, Xin, yin)
        metrics["inv_public_distance"] = _nearest_distance(recon, cls, X[public], y[public])
        metrics["inv_distance_gap"] = metrics["inv_member_distance"] - metrics["inv_public_distance"]
        arrays["inversions"] = (
            recon[:: section.inversion_restarts].reshape(k, 8, 8).round(decimals=3).tolist()
        )
    metrics["wall_time"] = time.perf_counter() - start
    metrics["cpu_time"] = time.process_time() - cpu
    return {"metrics": metrics, "curves": curves, "arrays": arrays}


# --------------------------------------------------------------------------- verdict
def _label(method: str, param: Any) -> str:
    a = method_alpha(method, param)
    if method == "negative-schedule":
        return f"a={a:g} (after {param['warmup_epochs']} hard epochs)"
    return f"a={a:g}"


def summarize(records: list[dict]) -> list[str]:
    """Plain-language findings, each a paired 95% interval over seeds against hard targets (a = 0).

    ``records``: dicts with ``method``, ``param``, ``seed``, ``metrics`` as :func:`run_one` returns them.
    """
    rows = []
    for r in records:
        row = {"method": r["method"], "param": r.get("param"), "seed": r["seed"], **r.get("metrics", {})}
        row["alpha"] = method_alpha(row["method"], row["param"])
        row["label"] = _label(row["method"], row["param"])
        rows.append(row)
    by = group(sorted(rows, key=lambda r: r["alpha"]), ("label",))
    hard = next((recs for (label,), recs in by.items() if recs[0]["alpha"] == 0.0), None)
    if not hard:
        return ["No hard-target runs (a = 0): nothing to compare with."]
    keys = ("test_accuracy", "mia_loss_auc", "mia_best_auc", "mia_logit_tpr1", "inv_attack_accuracy")
    h = {key: estimate(r.get(key) for r in hard) for key in keys}
    lines = [
        f"Hard targets: test accuracy {h['test_accuracy'].fmt(100, 1)}%, loss-attack AUC "
        f"{h['mia_loss_auc'].fmt(1, 3)}, best MIA AUC {h['mia_best_auc'].fmt(1, 3)}, logit-confidence "
        f"TPR@1%FPR {h['mia_logit_tpr1'].fmt(100, 1)}%, inversion attack accuracy "
        f"{h['inv_attack_accuracy'].fmt(100, 1)}% "
        f"(n = {len(hard)} seeds)."
    ]
    mia: dict[str, Estimate] = {}
    inv: dict[str, tuple[float, Estimate, Estimate, Estimate]] = {}
    for (label,), recs in by.items():
        if recs is hard:
            continue
        a = recs[0]["alpha"]
        d_acc = paired(recs, hard, "test_accuracy")
        d_auc = paired(recs, hard, "mia_best_auc")
        d_tpr = paired(recs, hard, "mia_logit_tpr1")
        d_inv = paired(recs, hard, "inv_attack_accuracy")
        d_dist = paired(recs, hard, "inv_member_distance")
        diverged = sum(bool(r.get("diverged")) for r in recs)
        d_conf = paired(recs, hard, "inv_eval_confidence")
        mia[label], inv[label] = d_auc, (a, d_inv, d_conf, d_acc)
        lines.append(
            f"{label} vs hard: test accuracy {d_acc.fmt(100, 1)} points; best MIA AUC {d_auc.fmt(1, 3)}, "
            f"logit-confidence TPR@1%FPR {d_tpr.fmt(100, 1)} points; inversion attack accuracy "
            f"{d_inv.fmt(100, 1)} points, distance to nearest member {d_dist.fmt(1, 3)}"
            + (f"; {diverged} run(s) diverged" if diverged else "")
            + "."
        )
    ceiling = h["inv_attack_accuracy"].mean >= 0.95
    pos = [(lab, v) for lab, v in inv.items() if v[0] > 0]
    neg = [(lab, v) for lab, v in inv.items() if v[0] < 0]
    up = [lab for lab, (_, d, _, _) in pos if d.significant and d.mean > 0]
    up_conf = [lab for lab, (_, _, c, _) in pos if c.significant and c.mean > 0]
    down = [lab for lab, (_, d, _, _) in neg if d.significant and d.mean < 0]
    cost = [lab for lab, (_, _, _, acc) in neg if acc.significant and acc.mean < 0]
    text = (
        f"reproduced in attack accuracy for {', '.join(up)}"
        if up
        else "not reproduced in attack accuracy"
        + (
            f" (against hard targets it already succeeds on {h['inv_attack_accuracy'].mean * 100:.1f}% of"
            " the reconstructions: little room to increase)"
            if ceiling
            else ""
        )
    )
    text += (
        f"; the evaluator's confidence in the reconstructions rose for {', '.join(up_conf)}."
        if up_conf
        else "; no significant rise in the evaluator's confidence in the reconstructions."
    )
    lines.append("Struppek et al. (2024), positive smoothing increases inversion leakage: " + text)
    lines.append(
        "Struppek et al. (2024), negative smoothing reduces inversion leakage at a utility cost: "
        + (
            f"leakage reduced for {', '.join(down)}"
            if down
            else "no significant reduction in attack accuracy"
        )
        + (f"; test accuracy fell for {', '.join(cost)}." if cost else "; no significant utility cost.")
    )
    rose = [lab for lab, d in mia.items() if d.significant and d.mean > 0]
    strong = [lab for lab, d in mia.items() if d.significant and d.mean < -0.05]
    weak = [lab for lab, d in mia.items() if d.significant and -0.05 <= d.mean < 0]
    lines.append(
        "Kaya and Dumitras (2021), smoothing is a weak defence against membership inference "
        "(best AUC of five scores): "
        + (
            f"AUC fell by more than 0.05 for {', '.join(strong)} (a stronger effect than claimed); "
            if strong
            else ""
        )
        + (f"a small but significant fall for {', '.join(weak)}; " if weak else "")
        + ("no other significant reduction" if strong or weak else "no significant reduction for any a")
        + (f"; the AUC rose (more leakage) for {', '.join(rose)}." if rose else ".")
    )
    return lines


# --------------------------------------------------------------------------- the engine task
from labelsmooth.study.tasks.base import Context, Figure, Metric, RunRecord, RunSpec, Task, Verdict  # noqa: E402

_CLI = ("test_accuracy", "mia_best_auc", "mia_logit_tpr1", "inv_attack_accuracy")
TASK_METRICS: tuple[Metric, ...] = (
    Metric("label_smoothing", "a", fmt=".2f", description="the final smoothing factor"),
    *(Metric(key, header, fmt=fmt, better=better, cli=key in _CLI, panel=key in _CLI)  # type: ignore[arg-type]
      for key, header, fmt, better, _ in METRICS if key != "wall_time"),
    *(Metric(f"mia_{key}_tpr01", f"MIA {kind} TPR@0.1%", better="lower", summary=False)
      for kind, key in SCORE_KEYS.items()),
    *(Metric(f"mia_{key}_advantage", f"MIA {kind} advantage", better="lower", summary=False)
      for kind, key in SCORE_KEYS.items() if key != "loss"),
    Metric("diverged", "diverged", summary=False),
    Metric("epochs_run", "epochs", summary=False),
    Metric("wall_time", "wall (s)", fmt=".2f", summary=False),
    Metric("cpu_time", "CPU (s)", fmt=".2f", summary=False),
)  # fmt: skip
"""The ``privacy`` task's metrics table ("better" from the defender's side: less leakage is better)."""


def judge(records: list[dict[str, Any]]) -> list[Verdict]:
    """The three published directions, from flat engine records (``method``, ``param``, ``seed`` and the
    metrics), each a :class:`Verdict` whose sentences are those of :func:`summarize`."""
    nested = [{"method": r["method"], "param": dict(r["param"]) if isinstance(r.get("param"), dict)
               else r.get("param"), "seed": r["seed"], "metrics": r} for r in records]  # fmt: skip
    lines = summarize(nested)
    if len(lines) == 1:
        return [Verdict("privacy", "no baseline", lines)]
    head, *per, inv_pos, inv_neg, mia = lines

    def outcome(text: str) -> str:
        t = text.split(": ", 1)[1]
        if t.startswith("reproduced") or t.startswith("leakage reduced"):
            return "reproduced"
        if "no significant reduction" in t or t.startswith("not reproduced"):
            return "not measurable (attack saturated)" if "little room" in t else "not reproduced"
        return "partly reproduced"

    def mia_outcome(text: str) -> str:
        parts = []
        if "rose (more leakage)" in text:
            parts.append("adverse: the attack AUC rose with positive smoothing")
        if "stronger effect" in text:
            parts.append("a stronger defence than claimed for some a")
        elif "small but significant fall" in text:
            parts.append("weak defence reproduced for some a")
        return "; ".join(parts) or "not reproduced: no detectable change in attack AUC"

    return [
        Verdict("membership inference (Kaya and Dumitras 2021)", mia_outcome(mia), [head, *per, mia]),
        Verdict("inversion, positive smoothing (Struppek et al. 2024)", outcome(inv_pos), [inv_pos]),
        Verdict("inversion, negative smoothing (Struppek et al. 2024)", outcome(inv_neg), [inv_neg]),
    ]


def _grid_label(method: str, param: Any) -> str:
    return _label(method, dict(param) if isinstance(param, dict) else param)


class PrivacyTask(Task):
    """The ``privacy`` task: a x seeds; each run trains one target model and attacks it twice."""

    name = NAME
    summary = "does smoothing change what a model leaks to membership inference and to model inversion?"
    runtime = "30 runs (6 values of a, 5 seeds); measured 15-23 s wall on 2 idle cores"
    config_cls = PrivacySection
    metrics = TASK_METRICS
    report_note = ("Intervals are 95% Student-t intervals over seeds, differences paired by seed (same "
                   "split, initial weights, prior and evaluator). Both attacks hit the same target model.")

    def validate(self, section: Any) -> None:
        section.validate()

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        section = cfg.section
        base = asdict(section)
        base.pop("seeds")
        base.pop("smoothing")
        return [
            RunSpec({"method": m, "param": p, "seed": s},
                    {"task": NAME, "section": base, "run": {"method": m, "param": p, "seed": s}})
            for s in section.seeds
            for m, p in methods(section)
        ]  # fmt: skip

    def execute(self, spec: RunSpec, ctx: Context, needs: Any) -> RunRecord:
        a = spec.axes
        return RunRecord.of(run_one(ctx.section, a["method"], a["param"], a["seed"]))

    def label(self, axes: Any) -> str:
        return _grid_label(axes["method"], axes.get("param"))

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        return judge(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        from labelsmooth.study.tasks._bars import bars

        if not records:
            return []
        by = sorted(group(records, ("method", "param")).values(), key=lambda rs: rs[0]["label_smoothing"])

        def rows(a: str, b: str | None = None) -> list:
            return [(rs[0]["label"], estimate(r.get(a) for r in rs),
                     estimate(r.get(b) for r in rs) if b else None) for rs in by]  # fmt: skip

        return [
            Figure("membership_inference", "Membership inference per a: AUC of the loss attack and of the "
                   "best of five scores (left), TPR at 1% FPR of the logit-scaled confidence and of the loss "
                   "(right); error bars: 95% t-intervals over seeds.",
                   bars([("attack AUC", rows("mia_loss_auc", "mia_best_auc"), ("loss score", "best score")),
                         ("TPR at 1% FPR", rows("mia_logit_tpr1", "mia_loss_tpr1"),
                          ("logit-scaled confidence", "loss score"))], "")),
            Figure("inversion", "Model inversion per a: the evaluator's accuracy on the reconstructions "
                   "(attack accuracy) and test accuracy of the target (utility); error bars: 95% "
                   "t-intervals over seeds.",
                   bars([("inversion attack accuracy", rows("inv_attack_accuracy"), None),
                         ("test accuracy", rows("test_accuracy"), None)], "")),
        ]  # fmt: skip


def _register() -> Task:
    from labelsmooth.study.tasks import register

    return register(PrivacyTask())


TASK = _register()
