"""The ``distill`` task's core: do smoothed teachers make worse students? (engine-agnostic)

Teachers (an MLP, 256 x 2) are trained on the digits with label smoothing ``a`` in
``teacher_smoothing`` and, optionally, symmetric label noise in their training labels. Each teacher's
*artefacts* — its logits on the training, validation and test inputs and the training indices — are what its
students need: a student (an MLP, 32 x 1) is trained by pure distillation
(:func:`labelsmooth.distillation_loss` with ``alpha = 1``, no labels) at each temperature in
``temperatures``. Baselines train the same student on the labels: hard targets, smoothing at each
``baseline_smoothing``, and Tf-KD_reg (:func:`labelsmooth.teacher_free_loss`).

Claims measured (:func:`claims`, paired over seeds with :func:`labelsmooth.study.stats.paired`):

1. Smoothed teachers are as good or better alone (Müller, Kornblith and Hinton 2019).
2. Their students are worse than the students of the hard-target teacher at higher temperatures, and no
   better than students trained with smoothing directly (Müller et al. 2019; Chandrasegaran et al. 2022).
3. At ``T = 1`` the gap closes (Shen et al. 2021).
4. With symmetric noise in the teacher's labels, a smoothed teacher gives better students (Lukasik et al.
   2020).

The teacher's information erasure is measured on the test split: the mean within-class cosine similarity of
its penultimate features, the within-class spread of its probabilities, its mass on wrong classes and how
uniform that mass is (:func:`labelsmooth.study.tasks._digits.probability_geometry`).

Engine glue: a run is a :class:`DistillRun`; :meth:`DistillRun.needs` is the teacher run a student depends
on; :func:`execute` runs one point given the needed teacher's artefacts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

from labelsmooth._validation import check_scalar_range, expected
from labelsmooth.losses import cross_entropy, distillation_loss, teacher_free_loss
from labelsmooth.study import stats
from labelsmooth.study.tasks import _digits
from labelsmooth.study.tasks._digits import BASE_METRICS, VERDICT, Claim, Metric, held, select

__all__ = [
    "METHODS",
    "METRICS",
    "Claim",
    "DistillRun",
    "DistillSection",
    "claims",
    "execute",
    "grid",
    "run_baseline",
    "run_student",
    "run_teacher",
    "summarize",
]

METHODS: dict[str, str] = {
    "teacher": "teacher trained with smoothing a (a = 0: hard targets) on the (noisy) labels",
    "kd": "student trained by pure distillation from a teacher at temperature T (no labels)",
    "hard": "student trained on the labels with hard targets",
    "ls": "student trained on the labels with smoothing a",
    "tfkd": "student trained with teacher-free distillation, Tf-KD_reg (Yuan et al. 2020)",
}
"""The methods grid: a teacher kind and four student kinds."""

METRICS: tuple[Metric, ...] = (
    *BASE_METRICS,
    ("teacher_agreement", "agree", "%", "higher", False),
    ("within_class_cosine", "cos_in", ".3f", None, False),
    ("prob_spread", "p_spread", ".4f", None, False),
    ("wrong_mass", "wrong", ".3f", None, False),
    ("wrong_entropy", "H_wrong", ".3f", None, False),
    ("train_accuracy", "train acc", "%", None, False),
)
"""``(key, header, format, better, scaled)``. ``teacher_agreement`` (test predictions equal to the teacher's)
is a student metric; the four erasure measures are teacher metrics (None for students)."""


@dataclass(frozen=True)
class DistillSection:
    """The ``[distill]`` config section. Every tuple is an axis of the grid.

    Default grid: 3 teachers x 2 noise rates x 5 seeds = 30 teacher runs, 4 temperatures per teacher = 120
    students, (hard + 2 smoothed + Tf-KD) x 2 x 5 = 40 baselines: 190 runs, under 3 minutes on 2 cores.
    """

    teacher_smoothing: tuple[float, ...] = (0.0, 0.1, 0.3)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    noise_rates: tuple[float, ...] = (0.0, 0.4)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    baseline_smoothing: tuple[float, ...] = (0.1, 0.3)
    tfkd_correct_prob: float = 0.9
    tfkd_temperature: float = 4.0
    tfkd_alpha: float = 0.5
    tfkd_softmax_teacher: bool = False
    teacher_width: int = 256
    teacher_depth: int = 2
    student_width: int = 32
    student_depth: int = 1
    teacher_epochs: int = 60
    student_epochs: int = 60
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    n_bins: int = 15

    def validate(self) -> DistillSection:
        """Check every value; raise ValueError naming the key (``distill.<key>``). Returns self."""
        for key in ("teacher_smoothing", "temperatures", "noise_rates", "seeds", "baseline_smoothing"):
            _digits.check_nonempty(f"distill.{key}", getattr(self, key))
        for a in self.teacher_smoothing + self.baseline_smoothing:
            check_scalar_range("distill.teacher_smoothing / baseline_smoothing", a, 0.0, 1.0)
        if 0.0 not in self.teacher_smoothing:
            raise ValueError(
                expected(
                    "distill.teacher_smoothing",
                    "to include 0 (the hard-target teacher)",
                    self.teacher_smoothing,
                )
            )
        for t in (*self.temperatures, self.tfkd_temperature):
            check_scalar_range("distill.temperatures", t, 0.0, float("inf"), lo_open=True, hi_open=True)
        for r in self.noise_rates:
            check_scalar_range("distill.noise_rates", r, 0.0, 1.0, hi_open=True)
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(expected("distill.seeds", "to hold ints >= 0", s))
        check_scalar_range("distill.tfkd_correct_prob", self.tfkd_correct_prob, 0.0, 1.0)
        check_scalar_range("distill.tfkd_alpha", self.tfkd_alpha, 0.0, 1.0)
        for key in (
            "teacher_width",
            "teacher_depth",
            "student_width",
            "student_depth",
            "teacher_epochs",
            "student_epochs",
            "n_bins",
        ):
            _digits.check_positive_int(f"distill.{key}", getattr(self, key))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(
                expected("distill.batch_size", "to be an int >= 0 (0 = full batch)", self.batch_size)
            )
        check_scalar_range("distill.lr", self.lr, 0.0, float("inf"), lo_open=True, hi_open=True)
        check_scalar_range("distill.weight_decay", self.weight_decay, 0.0, float("inf"), hi_open=True)
        check_scalar_range("distill.val_fraction", self.val_fraction, 0.0, 0.5, lo_open=True)
        check_scalar_range("distill.test_fraction", self.test_fraction, 0.0, 0.5, lo_open=True)
        return self


Role = Literal["teacher", "student", "baseline"]


@dataclass(frozen=True)
class DistillRun:
    """One point of the grid. ``label_smoothing`` is the teacher's a (teachers and their students) or the
    baseline's a (``ls``); ``temperature`` is the student's; both None where they do not apply."""

    role: Role
    method: str
    noise_rate: float
    seed: int
    label_smoothing: float | None = None
    temperature: float | None = None

    def needs(self) -> DistillRun | None:
        """The run whose artefacts this one needs: a student's teacher (same a, noise and seed); else None."""
        if self.role != "student":
            return None
        return DistillRun("teacher", "teacher", self.noise_rate, self.seed, self.label_smoothing)

    def axes(self) -> dict[str, Any]:
        return asdict(self)


def grid(section: DistillSection) -> list[DistillRun]:
    """Every run of the section, teachers first (so a sequential engine never waits for a dependency)."""
    out: list[DistillRun] = []
    for r in section.noise_rates:
        for s in section.seeds:
            out += [DistillRun("teacher", "teacher", r, s, a) for a in section.teacher_smoothing]
    for r in section.noise_rates:
        for s in section.seeds:
            out += [
                DistillRun("student", "kd", r, s, a, t)
                for a in section.teacher_smoothing
                for t in section.temperatures
            ]
            out.append(DistillRun("baseline", "hard", r, s))
            out += [DistillRun("baseline", "ls", r, s, a) for a in section.baseline_smoothing]
            out.append(DistillRun("baseline", "tfkd", r, s))
    return out


def execute(
    section: DistillSection, run: DistillRun, teacher_artefacts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run one point; a student needs the artefacts of ``run.needs()``."""
    if run.role == "teacher":
        return run_teacher(section, run.label_smoothing or 0.0, run.seed, noise_rate=run.noise_rate)
    if run.role == "student":
        if teacher_artefacts is None:
            raise ValueError(expected("teacher_artefacts", "for a student run (see DistillRun.needs)", None))
        return run_student(section, teacher_artefacts, run.temperature or 1.0, run.seed)
    return run_baseline(
        section, run.method, run.seed, label_smoothing=run.label_smoothing, noise_rate=run.noise_rate
    )


def _prepare(section: DistillSection, seed: int, noise_rate: float) -> _digits.Prepared:
    return _digits.prepare(seed, section.val_fraction, section.test_fraction, noise_rate)


def _train_args(section: DistillSection, epochs: int, seed: int, role: str) -> dict[str, Any]:
    return {
        "epochs": epochs,
        "lr": section.lr,
        "batch_size": section.batch_size,
        "weight_decay": section.weight_decay,
        "seed": seed,
        "role": role,
    }


def run_teacher(
    section: DistillSection, label_smoothing: float, seed: int, *, noise_rate: float = 0.0
) -> dict[str, Any]:
    """Train one teacher with smoothing ``label_smoothing`` on the seed's (noisy) training labels.

    Returns ``{"metrics", "curves", "arrays", "artefacts"}``; the artefacts are small (about 70 KB):
    ``train_logits`` / ``val_logits`` / ``test_logits`` (float32, (n, 10)) and ``train_index`` (int64, the
    training rows of the digits, so a student can check it sees the same split).
    """
    check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    d = _prepare(section, seed, noise_rate)
    model = _digits.mlp(d.num_classes, section.teacher_width, section.teacher_depth, seed, "teacher")
    y = d.y_train

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return cross_entropy(z, y[idx], label_smoothing=label_smoothing)

    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.teacher_epochs, seed, "teacher")
    )
    z_tr, z_va, z_te = (_digits.logits(model, x) for x in (d.X_train, d.X_val, d.X_test))
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, section.n_bins)
    with torch.no_grad():
        feats = model.features(d.X_test)
    metrics["within_class_cosine"] = _digits.within_class_cosine(feats, d.y_test)
    metrics.update(_digits.probability_geometry(z_te, d.y_test))
    metrics["train_accuracy"] = float((z_tr.argmax(1) == y).double().mean())
    metrics["teacher_agreement"] = None
    artefacts = {
        "train_logits": z_tr,
        "val_logits": z_va,
        "test_logits": z_te,
        "train_index": torch.from_numpy(d.train_index.astype(np.int64)),
    }
    return {"metrics": metrics, "curves": curves, "arrays": {}, "artefacts": artefacts}


def _check_artefacts(art: Mapping[str, Any], d: _digits.Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    for key in ("train_logits", "test_logits", "train_index"):
        if key not in art:
            raise ValueError(expected("teacher_artefacts", f"to hold {key!r}", sorted(art)))
    index = torch.as_tensor(art["train_index"]).numpy()
    if index.shape != d.train_index.shape or not np.array_equal(index, d.train_index):
        raise ValueError(
            expected(
                "teacher_artefacts",
                "from a teacher of the same seed (split)",
                f"a training split of {index.shape[0]} other rows",
            )
        )
    z_tr = torch.as_tensor(art["train_logits"]).float()
    z_te = torch.as_tensor(art["test_logits"]).float()
    if tuple(z_tr.shape) != (len(index), d.num_classes):
        want = f"of shape ({len(index)}, {d.num_classes})"
        raise ValueError(expected("teacher_artefacts['train_logits']", want, z_tr))
    return z_tr, z_te


def _student_result(
    section: DistillSection, model, curves, d: _digits.Prepared, z_teacher_test=None
) -> dict[str, Any]:
    z_tr, z_va, z_te = (_digits.logits(model, x) for x in (d.X_train, d.X_val, d.X_test))
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, section.n_bins)
    metrics["train_accuracy"] = float((z_tr.argmax(1) == d.y_train).double().mean())
    metrics["teacher_agreement"] = (
        float((z_te.argmax(1) == z_teacher_test.argmax(1)).double().mean())
        if z_teacher_test is not None
        else None
    )
    for key in ("within_class_cosine", "prob_spread", "wrong_mass", "wrong_entropy"):
        metrics[key] = None
    return {"metrics": metrics, "curves": curves, "arrays": {}, "artefacts": {}}


def run_student(
    section: DistillSection, teacher_artefacts: Mapping[str, Any], temperature: float, seed: int
) -> dict[str, Any]:
    """Train one student by pure distillation (``alpha = 1``) from a teacher's stored training logits.

    The student never sees a label; the teacher's ``train_index`` must match the seed's split.
    """
    check_scalar_range("temperature", temperature, 0.0, float("inf"), lo_open=True, hi_open=True)
    d = _prepare(section, seed, 0.0)
    z_teacher, z_teacher_test = _check_artefacts(teacher_artefacts, d)
    model = _digits.mlp(d.num_classes, section.student_width, section.student_depth, seed, "student")

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return distillation_loss(z, z_teacher[idx], temperature=temperature)

    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.student_epochs, seed, "student")
    )
    return _student_result(section, model, curves, d, z_teacher_test)


def run_baseline(
    section: DistillSection,
    method: str,
    seed: int,
    *,
    label_smoothing: float | None = None,
    noise_rate: float = 0.0,
) -> dict[str, Any]:
    """Train the student on the (noisy) labels: ``"hard"``, ``"ls"`` (smoothing ``label_smoothing``) or
    ``"tfkd"`` (Tf-KD_reg with the section's ``tfkd_*`` options)."""
    if method not in ("hard", "ls", "tfkd"):
        raise ValueError(expected("method", "to be one of 'hard', 'ls', 'tfkd'", method))
    if method == "ls":
        if label_smoothing is None:
            raise ValueError(expected("label_smoothing", "for the 'ls' baseline", None))
        check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    d = _prepare(section, seed, noise_rate)
    model = _digits.mlp(d.num_classes, section.student_width, section.student_depth, seed, "student")
    y = d.y_train
    a = float(label_smoothing or 0.0) if method == "ls" else 0.0

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        if method == "tfkd":
            return teacher_free_loss(
                z,
                y[idx],
                correct_prob=section.tfkd_correct_prob,
                temperature=section.tfkd_temperature,
                alpha=section.tfkd_alpha,
                softmax_teacher=section.tfkd_softmax_teacher,
            )
        return cross_entropy(z, y[idx], label_smoothing=a)

    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.student_epochs, seed, "student")
    )
    return _student_result(section, model, curves, d)


# --------------------------------------------------------------------------- verdict
def claims(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Claim]:
    """The four claims of the module docstring, measured on ``key`` (test accuracy by default).

    How ``held`` is decided from the paired 95% interval: "as good or better" and "no worse" hold unless the
    difference is significantly negative; "not better" / "no better than direct" hold unless it is
    significantly positive; "better" (the noisy-teacher claim) holds only when it is significantly positive.

    ``records`` are flat dicts: the :class:`DistillRun` axes (``role``, ``method``, ``noise_rate``, ``seed``,
    ``label_smoothing``, ``temperature``) merged with the run's metrics.
    """
    out: list[Claim] = []
    noise_rates = sorted({r["noise_rate"] for r in records})
    smoothings = sorted({r["label_smoothing"] for r in records if r["role"] == "teacher"})
    temps = sorted({r["temperature"] for r in records if r["role"] == "student"})
    for eta in noise_rates:
        tag = f"eta={eta:g}"
        hard_t = select(records, role="teacher", noise_rate=eta, label_smoothing=0.0)
        for a in (x for x in smoothings if x > 0):
            est = stats.paired(
                select(records, role="teacher", noise_rate=eta, label_smoothing=a), hard_t, key
            )
            out.append(
                Claim(
                    f"teacher_alone[{tag},a={a:g}]",
                    f"a={a:g} teacher vs hard teacher ({tag})",
                    est,
                    held(est, ">=0"),
                )
            )
        for t in temps:
            hard_s = select(records, role="student", noise_rate=eta, label_smoothing=0.0, temperature=t)
            for a in (x for x in smoothings if x > 0):
                stud = select(records, role="student", noise_rate=eta, label_smoothing=a, temperature=t)
                est = stats.paired(stud, hard_s, key)
                if eta == 0:
                    direction: Literal["<=0", ">=0", "<0", ">0"] = "<=0" if t > 1 else ">=0"
                    name = "students_not_better" if t > 1 else "gap_closes_t1"
                    stmt = f"student of a={a:g} teacher vs of hard teacher at T={t:g} ({tag})" + (
                        ": not better (Müller)" if t > 1 else ": no worse (Shen)"
                    )
                else:
                    direction, name = ">0", "noisy_teacher_helps"
                    stmt = (
                        f"student of a={a:g} teacher vs of hard teacher at T={t:g} ({tag}): better (Lukasik)"
                    )
                out.append(Claim(f"{name}[{tag},a={a:g},T={t:g}]", stmt, est, held(est, direction)))
                direct = select(records, role="baseline", method="ls", noise_rate=eta, label_smoothing=a)
                if direct:
                    est = stats.paired(stud, direct, key)
                    out.append(
                        Claim(
                            f"no_better_than_direct[{tag},a={a:g},T={t:g}]",
                            f"student of a={a:g} teacher at T={t:g} vs student smoothed directly ({tag})",
                            est,
                            held(est, "<=0"),
                        )
                    )
    return out


def erasure_table(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (noise rate, teacher a): mean and interval of the erasure measures and the test accuracy."""
    rows = []
    for (eta, a), group in stats.group(
        select(records, role="teacher"), ("noise_rate", "label_smoothing")
    ).items():
        row: dict[str, Any] = {"noise_rate": eta, "label_smoothing": a}
        for key in (
            "accuracy",
            "nll",
            "ece",
            "within_class_cosine",
            "prob_spread",
            "wrong_mass",
            "wrong_entropy",
        ):
            row[key] = stats.estimate(r.get(key) for r in group)
        rows.append(row)
    return rows


def summarize(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[str]:
    """Plain-language lines: the teachers' erasure table, then each claim with its paired interval."""
    lines = ["Teachers (test split; mean ± 95% t-interval over seeds):"]
    for row in erasure_table(records):
        lines.append(
            f"  eta={row['noise_rate']:g} a={row['label_smoothing']:g}: acc {row['accuracy'].fmt(100, 1)}%, "
            f"NLL {row['nll'].fmt()}, ECE {row['ece'].fmt(100, 1)}%, within-class cos "
            f"{row['within_class_cosine'].fmt()}, prob spread {row['prob_spread'].fmt(1, 4)}, "
            f"wrong mass {row['wrong_mass'].fmt()}, wrong-class entropy {row['wrong_entropy'].fmt()}"
        )
    lines.append(f"Claims (paired differences of test {key}, points):")
    for c in claims(records, key):
        lines.append(f"  {c.statement}: {c.estimate.fmt(100, 2)} -> {VERDICT[c.held]}")
    return lines
