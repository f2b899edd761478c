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

The engine task (:class:`DistillTask`, registered as ``distill``): a run is a :class:`DistillRun`; each
teacher is one run per (a, noise rate, seed) whose logits the engine stores as artefacts; every student
names its teacher's run hash in ``RunSpec.needs``, so the engine starts it only once the teacher is stored,
resumes it without retraining the teacher, and hands it the teacher's artefacts. A run's hash covers only
the settings that change its numbers (a teacher's: the teacher's architecture and training, not the
temperatures), so extending the grid with a temperature reuses the stored teachers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from labelsmooth._validation import check_scalar_range, expected
from labelsmooth.losses import cross_entropy, distillation_loss, teacher_free_loss
from labelsmooth.study import stats
from labelsmooth.study.tasks import _digits, register
from labelsmooth.study.tasks._common import DigitsTrainingSection
from labelsmooth.study.tasks._digits import BASE_METRICS, Claim, held, pts, select
from labelsmooth.study.tasks.base import Context, Figure, Method, Metric, NeededRun, RunRecord, RunSpec, Task

__all__ = [
    "METHODS",
    "METRICS",
    "TASK",
    "TEACHER_KEYS",
    "Claim",
    "DistillRun",
    "DistillSection",
    "DistillTask",
    "claims",
    "execute",
    "grid",
    "run_baseline",
    "run_student",
    "run_teacher",
    "summarize",
    "verdicts",
]

# --------------------------------------------------------------------------- methods


def _smoothed_ce(param: float | None, *, target: torch.Tensor, **context: Any) -> _digits.BatchLoss:
    """Cross-entropy on the (noisy) labels with smoothing ``param`` (None: hard targets)."""
    a = float(param or 0.0)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return cross_entropy(z, target[idx], label_smoothing=a)

    return loss


def _kd(param: float, *, teacher_logits: torch.Tensor, **context: Any) -> _digits.BatchLoss:
    """Pure distillation (alpha = 1, no labels) from the teacher's stored training logits at T = ``param``."""
    t = float(param)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return distillation_loss(z, teacher_logits[idx], temperature=t)

    return loss


def _tfkd(param: None, *, target: torch.Tensor, section: DistillSection, **context: Any) -> _digits.BatchLoss:
    """Tf-KD_reg with the section's ``tfkd_*`` options (Yuan et al. 2020)."""

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return teacher_free_loss(
            z,
            target[idx],
            correct_prob=section.tfkd_correct_prob,
            temperature=section.tfkd_temperature,
            alpha=section.tfkd_alpha,
            softmax_teacher=section.tfkd_softmax_teacher,
        )

    return loss


METHODS: dict[str, Method] = {
    "teacher": Method(
        "teacher",
        "a",
        _smoothed_ce,
        label=lambda p: f"teacher a={p:g}",
        description="teacher trained with smoothing a (a = 0: hard targets) on the (noisy) labels",
    ),
    "kd": Method(
        "kd",
        "T",
        _kd,
        label=lambda p: f"student KD T={p:g}",
        description="student trained by pure distillation from a teacher at temperature T (no labels)",
    ),
    "hard": Method(
        "hard",
        None,
        _smoothed_ce,
        label=lambda p: "student, hard targets",
        description="student trained on the labels with hard targets",
    ),
    "ls": Method(
        "ls",
        "a",
        _smoothed_ce,
        label=lambda p: f"student, ls a={p:g}",
        description="student trained on the labels with smoothing a",
    ),
    "tfkd": Method(
        "tfkd",
        None,
        _tfkd,
        label=lambda p: "student, Tf-KD_reg",
        description="student trained with teacher-free distillation, Tf-KD_reg (Yuan et al. 2020)",
    ),
}
"""The task's own method registry (looked up before the shared one): ``objective(param, **context)``
returns the batch loss ``(logits, batch_indices, epoch) -> loss`` the run trains with; the context is the
training labels ``target``, the ``teacher_logits`` (kd) and the ``section``."""

METRICS: tuple[Metric, ...] = (
    *BASE_METRICS,
    Metric(
        "teacher_agreement",
        "agreement",
        "%",
        "higher",
        cli=True,
        description="a student's test predictions equal to its teacher's (None for teachers, baselines)",
    ),
    Metric(
        "within_class_cosine",
        "within-class cos",
        ".3f",
        description="a teacher's mean within-class cosine similarity of its penultimate features (test)",
    ),
    Metric(
        "prob_spread",
        "prob spread",
        ".4f",
        description="a teacher's within-class spread of its probabilities (Shen et al. 2021; test)",
    ),
    Metric("wrong_mass", "wrong mass", ".3f", description="a teacher's mean 1 - p_y (test)"),
    Metric(
        "wrong_entropy",
        "wrong entropy",
        ".3f",
        description="entropy of a teacher's wrong-class mass / log(K - 1): 1 = uniform, no dark knowledge",
    ),
    Metric(
        "train_accuracy",
        "train accuracy",
        "%",
        summary=False,
        description="against the (noisy) training labels",
    ),
)
"""The ``distill`` metrics table. The four erasure measures are teacher metrics (None for students)."""

TEACHER_KEYS = ("accuracy", "nll", "ece", "within_class_cosine", "prob_spread", "wrong_mass", "wrong_entropy")
"""A teacher's test metrics in the erasure table: accuracy, NLL, ECE and the four erasure measures."""


@dataclass(frozen=True)
class DistillSection(DigitsTrainingSection):
    """The ``[distill]`` config section (the seeds and ``n_bins`` are the study's top-level keys).

    Default grid: 3 teachers x 2 noise rates x 5 seeds = 30 teacher runs, 4 temperatures per teacher = 120
    students, (hard + 2 smoothed + Tf-KD) x 2 x 5 = 40 baselines: 190 runs.
    """

    section_name = "distill"

    teacher_smoothing: tuple[float, ...] = (0.0, 0.1, 0.3)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    noise_rates: tuple[float, ...] = (0.0, 0.4)
    baseline_smoothing: tuple[float, ...] = (0.1, 0.3)
    tfkd: bool = True
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

    def validate(self) -> DistillSection:
        """Check every value; raise ValueError naming the key (``distill.<key>``). Returns self."""
        for key in ("teacher_smoothing", "temperatures", "noise_rates"):
            _digits.check_nonempty(f"distill.{key}", getattr(self, key))
        if self.baseline_smoothing:
            _digits.check_nonempty("distill.baseline_smoothing", self.baseline_smoothing)
        for a in self.teacher_smoothing:
            check_scalar_range("distill.teacher_smoothing", a, 0.0, 1.0)
        for a in self.baseline_smoothing:
            check_scalar_range("distill.baseline_smoothing", a, 0.0, 1.0)
        if 0.0 not in self.teacher_smoothing:
            raise ValueError(
                expected(
                    "distill.teacher_smoothing",
                    "to include 0 (the hard-target teacher)",
                    self.teacher_smoothing,
                )
            )
        for t in self.temperatures:
            check_scalar_range("distill.temperatures", t, 0.0, float("inf"), lo_open=True, hi_open=True)
        check_scalar_range(
            "distill.tfkd_temperature", self.tfkd_temperature, 0.0, float("inf"), lo_open=True, hi_open=True
        )
        for r in self.noise_rates:
            check_scalar_range("distill.noise_rates", r, 0.0, 1.0, hi_open=True)
        check_scalar_range("distill.tfkd_correct_prob", self.tfkd_correct_prob, 0.0, 1.0)
        check_scalar_range("distill.tfkd_alpha", self.tfkd_alpha, 0.0, 1.0)
        for key in (
            "teacher_width",
            "teacher_depth",
            "student_width",
            "student_depth",
            "teacher_epochs",
            "student_epochs",
        ):
            _digits.check_positive_int(f"distill.{key}", getattr(self, key))
        self.check_training()
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
        """The run's stored axes: ``method`` and ``param`` (a for ``teacher`` and ``ls``, T for ``kd``, None
        for ``hard`` and ``tfkd``), ``seed``, ``noise_rate`` (of the training labels), ``role`` and
        ``teacher_a`` (the a of the teacher a run is or learns from; None for the baselines)."""
        param = self.temperature if self.method == "kd" else self.label_smoothing
        teacher_a = self.label_smoothing if self.role in ("teacher", "student") else None
        return {
            "method": self.method,
            "param": param,
            "seed": self.seed,
            "noise_rate": self.noise_rate,
            "role": self.role,
            "teacher_a": teacher_a,
        }

    @classmethod
    def from_axes(cls, axes: Mapping[str, Any]) -> DistillRun:
        m = axes["method"]
        role: Role = "teacher" if m == "teacher" else "student" if m == "kd" else "baseline"
        a = axes["teacher_a"] if role != "baseline" else axes["param"]
        return cls(role, m, axes["noise_rate"], axes["seed"], a, axes["param"] if m == "kd" else None)


def grid(section: DistillSection, seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> list[DistillRun]:
    """Every run of the section, teachers first (so a sequential engine never waits for a dependency)."""
    out: list[DistillRun] = []
    for r in section.noise_rates:
        for s in seeds:
            out += [DistillRun("teacher", "teacher", r, s, a) for a in section.teacher_smoothing]
    for r in section.noise_rates:
        for s in seeds:
            out += [
                DistillRun("student", "kd", r, s, a, t)
                for a in section.teacher_smoothing
                for t in section.temperatures
            ]
            out.append(DistillRun("baseline", "hard", r, s))
            out += [DistillRun("baseline", "ls", r, s, a) for a in section.baseline_smoothing]
            if section.tfkd:
                out.append(DistillRun("baseline", "tfkd", r, s))
    return out


def execute(
    section: DistillSection,
    run: DistillRun,
    teacher_artefacts: Mapping[str, Any] | None = None,
    *,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Run one point; a student needs the artefacts of ``run.needs()``."""
    if run.role == "teacher":
        return run_teacher(
            section, run.label_smoothing or 0.0, run.seed, noise_rate=run.noise_rate, n_bins=n_bins
        )
    if run.role == "student":
        if teacher_artefacts is None:
            raise ValueError(expected("teacher_artefacts", "for a student run (see DistillRun.needs)", None))
        return run_student(section, teacher_artefacts, run.temperature or 1.0, run.seed, n_bins=n_bins)
    return run_baseline(
        section,
        run.method,
        run.seed,
        label_smoothing=run.label_smoothing,
        noise_rate=run.noise_rate,
        n_bins=n_bins,
    )


def _digits_split(section: DistillSection, seed: int, noise_rate: float) -> _digits.DigitsSplit:
    return _digits.digits_split(seed, section.val_fraction, section.test_fraction, noise_rate)


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
    section: DistillSection, label_smoothing: float, seed: int, *, noise_rate: float = 0.0, n_bins: int = 15
) -> dict[str, Any]:
    """Train one teacher with smoothing ``label_smoothing`` on the seed's (noisy) training labels.

    Returns ``{"metrics", "curves", "arrays", "artefacts"}``; the artefacts are small (about 70 KB):
    ``train_logits`` / ``val_logits`` / ``test_logits`` (float32, (n, 10)) and ``train_index`` (int64, the
    training rows of the digits, so a student can check it sees the same split).
    """
    check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    d = _digits_split(section, seed, noise_rate)
    model = _digits.mlp(d.num_classes, section.teacher_width, section.teacher_depth, seed, "teacher")
    y = d.y_train
    loss = METHODS["teacher"].objective(label_smoothing, target=y, section=section)
    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.teacher_epochs, seed, "teacher")
    )
    z_tr, z_va, z_te = (_digits.logits(model, x) for x in (d.X_train, d.X_val, d.X_test))
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, n_bins)
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


def _check_artefacts(art: Mapping[str, Any], d: _digits.DigitsSplit) -> tuple[torch.Tensor, torch.Tensor]:
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
    model, curves, d: _digits.DigitsSplit, z_teacher_test=None, n_bins: int = 15
) -> dict[str, Any]:
    z_tr, z_va, z_te = (_digits.logits(model, x) for x in (d.X_train, d.X_val, d.X_test))
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, n_bins)
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
    section: DistillSection,
    teacher_artefacts: Mapping[str, Any],
    temperature: float,
    seed: int,
    *,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Train one student by pure distillation (``alpha = 1``) from a teacher's stored training logits.

    The student never sees a label; the teacher's ``train_index`` must match the seed's split.
    """
    check_scalar_range("temperature", temperature, 0.0, float("inf"), lo_open=True, hi_open=True)
    d = _digits_split(section, seed, 0.0)
    z_teacher, z_teacher_test = _check_artefacts(teacher_artefacts, d)
    model = _digits.mlp(d.num_classes, section.student_width, section.student_depth, seed, "student")
    loss = METHODS["kd"].objective(temperature, teacher_logits=z_teacher, section=section)
    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.student_epochs, seed, "student")
    )
    return _student_result(model, curves, d, z_teacher_test, n_bins)


def run_baseline(
    section: DistillSection,
    method: str,
    seed: int,
    *,
    label_smoothing: float | None = None,
    noise_rate: float = 0.0,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Train the student on the (noisy) labels: ``"hard"``, ``"ls"`` (smoothing ``label_smoothing``) or
    ``"tfkd"`` (Tf-KD_reg with the section's ``tfkd_*`` options)."""
    if method not in ("hard", "ls", "tfkd"):
        raise ValueError(expected("method", "to be one of 'hard', 'ls', 'tfkd'", method))
    if method == "ls":
        if label_smoothing is None:
            raise ValueError(expected("label_smoothing", "for the 'ls' baseline", None))
        check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    d = _digits_split(section, seed, noise_rate)
    model = _digits.mlp(d.num_classes, section.student_width, section.student_depth, seed, "student")
    param = label_smoothing if method == "ls" else None
    loss = METHODS[method].objective(param, target=d.y_train, section=section)
    curves = _digits.train(
        model, d.X_train, loss, **_train_args(section, section.student_epochs, seed, "student")
    )
    return _student_result(model, curves, d, n_bins=n_bins)


# --------------------------------------------------------------------------- verdict


def claims(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Claim]:
    """Every comparison behind the claims of the module docstring, measured on test ``key`` (accuracy by
    default) as paired differences over seeds (same seed = same split, same noisy labels, same initial
    weights).

    How ``held`` is decided from the paired 95% interval: "as good or better" (teachers alone) and "no worse"
    (Shen, T = 1) hold unless the difference is significantly negative; "no better than direct smoothing"
    holds unless it is significantly positive; "worse" (Müller, T > 1) holds only when it is significantly
    negative; "better" (Lukasik, noisy teacher labels) only when it is significantly positive.

    ``records`` are flat dicts: the axes of :meth:`DistillRun.axes` (``method``, ``param``, ``seed``,
    ``noise_rate``, ``teacher_a``) merged with the run's metrics. Claim names start with the claim's kind
    (``teacher_alone``, ``students_worse``, ``no_better_than_direct``, ``gap_closes_t1``,
    ``noisy_teacher_helps``).
    """
    out: list[Claim] = []
    noise_rates = sorted({r["noise_rate"] for r in records})
    smoothings = sorted({r["param"] for r in records if r["method"] == "teacher"})
    temps = sorted({r["param"] for r in records if r["method"] == "kd"})
    for eta in noise_rates:
        tag = f"eta={eta:g}"
        hard_t = select(records, method="teacher", noise_rate=eta, param=0.0)
        for a in (x for x in smoothings if x > 0):
            est = stats.paired(select(records, method="teacher", noise_rate=eta, param=a), hard_t, key)
            out.append(
                Claim(
                    f"teacher_alone[{tag},a={a:g}]",
                    f"teacher a={a:g} minus hard teacher ({tag})",
                    est,
                    held(est, ">=0"),
                    {"noise_rate": eta, "a": a},
                )
            )
        for t in temps:
            hard_s = select(records, method="kd", noise_rate=eta, teacher_a=0.0, param=t)
            for a in (x for x in smoothings if x > 0):
                stud = select(records, method="kd", noise_rate=eta, teacher_a=a, param=t)
                est = stats.paired(stud, hard_s, key)
                where = {"noise_rate": eta, "a": a, "T": t}
                what = f"student of the a={a:g} teacher minus student of the hard teacher, T={t:g} ({tag})"
                if eta > 0:
                    out.append(
                        Claim(
                            f"noisy_teacher_helps[{tag},a={a:g},T={t:g}]", what, est, held(est, ">0"), where
                        )
                    )
                elif t > 1:
                    out.append(
                        Claim(f"students_worse[{tag},a={a:g},T={t:g}]", what, est, held(est, "<0"), where)
                    )
                else:
                    out.append(
                        Claim(f"gap_closes_t1[{tag},a={a:g},T={t:g}]", what, est, held(est, ">=0"), where)
                    )
                direct = select(records, method="ls", noise_rate=eta, param=a)
                if direct and t > 1:
                    est = stats.paired(stud, direct, key)
                    out.append(
                        Claim(
                            f"no_better_than_direct[{tag},a={a:g},T={t:g}]",
                            f"student of the a={a:g} teacher at T={t:g} minus student smoothed directly with "
                            f"a={a:g} ({tag})",
                            est,
                            held(est, "<=0"),
                            where,
                        )
                    )
    return out


_CLAIMS: tuple[tuple[str, str, str], ...] = (
    (
        "teacher_alone",
        "Smoothed teachers are as good or better alone (Müller et al. 2019)",
        "held unless a smoothed teacher is significantly worse than the hard-target teacher",
    ),
    (
        "students_worse",
        "Students of smoothed teachers are worse at T > 1 (Müller et al. 2019), clean labels",
        "held only where the student of a smoothed teacher is significantly worse than the hard teacher's",
    ),
    (
        "no_better_than_direct",
        "Distilling a smoothed teacher is no better than smoothing the student "
        "directly, T > 1 (Müller 2019; Chandrasegaran et al. 2022)",
        "held unless the distilled student is significantly better than the student trained with the same a",
    ),
    (
        "gap_closes_t1",
        "At T = 1 the gap closes (Shen et al. 2021), clean labels",
        "held unless the student of a smoothed teacher is significantly worse than the hard teacher's",
    ),
    (
        "noisy_teacher_helps",
        "With symmetric noise in the teacher's labels, a smoothed teacher helps (Lukasik et al. 2020)",
        "held only where the student of a smoothed teacher is significantly better than the hard teacher's",
    ),
)


def verdicts(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Any]:
    """One :class:`~labelsmooth.study.tasks.Verdict` per claim of issue 14 (and one descriptive verdict on
    the teachers' information erasure): outcome "held", "did not hold", "partly held" (some comparisons
    held) or "too few seeds", and one sentence per comparison with its paired 95% interval."""
    from labelsmooth.study.tasks.base import Verdict

    found = claims(records, key)
    out = []
    for kind, title, rule in _CLAIMS:
        cs = [c for c in found if c.name.startswith(kind + "[")]
        if not cs:
            continue
        word = _digits.outcome([c.held for c in cs])
        sentences = [f"Rule: {rule} (paired 95% t-interval of test {key} over seeds)."]
        sentences += [f"{c.statement}: {pts(c.estimate)} ({_digits.VERDICT[c.held]})." for c in cs]
        if kind == "gap_closes_t1":
            worse = [c for c in found if c.name.startswith("students_worse[") and c.held]
            if not worse:
                sentences.append(
                    "There was no significant harm at T > 1 on this data, so nothing had to close."
                )
        sentences.append(f"Overall: {word}.")
        numbers = {
            c.name: {"mean": c.estimate.mean, "half": c.estimate.half, "n": c.estimate.n, "held": c.held}
            for c in cs
        }
        out.append(Verdict(title, word, sentences, numbers))
    rows = erasure_table(records)
    if rows:
        sentences = [
            f"eta={r['noise_rate']:g}, a={r['label_smoothing']:g}: test accuracy "
            f"{r['accuracy'].fmt(100, 1)}%, "
            f"within-class cosine {r['within_class_cosine'].fmt()}, probability spread "
            f"{r['prob_spread'].fmt(1, 4)}, wrong-class mass {r['wrong_mass'].fmt()}, wrong-class entropy "
            f"{r['wrong_entropy'].fmt()}."
            for r in rows
        ]
        sentences.append(
            "Measured, not judged: higher wrong-class entropy and lower spread mean more erased "
            "information (Müller 2019; Shen 2021)."
        )
        out.append(
            Verdict(
                "Teachers' information erasure (test split, mean ± 95% t-interval)", "measured", sentences
            )
        )
    return out


def erasure_table(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (noise rate, teacher a): mean and interval of the erasure measures and the test accuracy."""
    rows = []
    for (eta, a), group in stats.group(select(records, method="teacher"), ("noise_rate", "param")).items():
        row: dict[str, Any] = {"noise_rate": eta, "label_smoothing": a}
        for k in TEACHER_KEYS:
            row[k] = stats.estimate(r.get(k) for r in group)
        rows.append(row)
    return rows


def summarize(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[str]:
    """Plain-language lines: each verdict's title and outcome, then its sentences."""
    lines = []
    for v in verdicts(records, key):
        lines.append(f"{v.title}: {v.outcome}")
        lines += [f"  {s}" for s in v.sentences]
    return lines


# --------------------------------------------------------------------------- figures


def student_figure(records: Sequence[Mapping[str, Any]]) -> bytes:
    """Student test accuracy against the temperature, one curve per teacher a, one panel per noise rate,
    with 95% t-intervals over seeds; dashed lines: the baselines trained on the labels."""
    from labelsmooth.study import figures

    plt = figures._plt()
    etas = sorted({r["noise_rate"] for r in records})
    fig, axes = plt.subplots(1, len(etas), figsize=(4.6 * len(etas), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, eta in zip(axes[0], etas):
        kd = select(records, method="kd", noise_rate=eta)
        for ci, ((a,), rs) in enumerate(sorted(stats.group(kd, ("teacher_a",)).items())):
            by_t = sorted(stats.group(rs, ("param",)).items())
            ts = [t for (t,), _ in by_t]
            est = [stats.estimate(r.get("accuracy") for r in g) for _, g in by_t]
            ax.errorbar(
                ts,
                [e.mean * 100 for e in est],
                yerr=[0 if e.n < 2 else e.half * 100 for e in est],
                marker="o",
                capsize=3,
                color=colors[ci % len(colors)],
                label=f"teacher a={a:g}",
            )
        base = [dict(r) for r in records if r["method"] in ("hard", "ls", "tfkd") and r["noise_rate"] == eta]
        for bi, ((m, p), rs) in enumerate(stats.group(base, ("method", "param")).items()):
            e = stats.estimate(r.get("accuracy") for r in rs)
            label = METHODS[m].label_of(p).replace("student, ", "labels: ")
            ax.axhline(e.mean * 100, ls="--", lw=1, color=colors[(bi + 3) % len(colors)], label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("distillation temperature T")
        ax.set_ylabel("student test accuracy (%)")
        ax.set_title(f"teacher labels: {eta:.0%} symmetric noise")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figures.to_png(fig)


def erasure_figure(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The teachers' erasure measures against their a, one curve per noise rate, 95% t-intervals."""
    from labelsmooth.study import figures

    plt = figures._plt()
    keys = (
        ("accuracy", "test accuracy"),
        ("within_class_cosine", "within-class cosine (features)"),
        ("prob_spread", "within-class probability spread"),
        ("wrong_entropy", "wrong-class entropy"),
    )
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.3))
    teachers = select(records, method="teacher")
    for (eta,), rs in sorted(stats.group(teachers, ("noise_rate",)).items()):
        by_a = sorted(stats.group(rs, ("param",)).items())
        a_values = [a for (a,), _ in by_a]
        for ax, (k, title) in zip(axes, keys):
            est = [stats.estimate(r.get(k) for r in g) for _, g in by_a]
            ax.errorbar(
                a_values,
                [e.mean for e in est],
                yerr=[0 if e.n < 2 else e.half for e in est],
                marker="o",
                capsize=3,
                label=f"noise {eta:.0%}",
            )
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("teacher a")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return figures.to_png(fig)


# --------------------------------------------------------------------------- the engine task

_TEACHER_KEYS = (
    "teacher_width",
    "teacher_depth",
    "teacher_epochs",
    "lr",
    "batch_size",
    "weight_decay",
    "val_fraction",
    "test_fraction",
)
_STUDENT_KEYS = (
    "student_width",
    "student_depth",
    "student_epochs",
    "lr",
    "batch_size",
    "weight_decay",
    "val_fraction",
    "test_fraction",
)
_TFKD_KEYS = ("tfkd_correct_prob", "tfkd_temperature", "tfkd_alpha", "tfkd_softmax_teacher")


class DistillTask(Task):
    """The ``distill`` study task: teachers once per (a, noise rate, seed), students that need them."""

    name = "distill"
    summary = (
        "do smoothed teachers make worse students (Müller 2019), does the gap close at T = 1 (Shen "
        "2021), does a smoothed teacher help under label noise (Lukasik 2020)?"
    )
    runtime = (
        "190 runs (30 teachers, 120 students, 40 baselines; 5 seeds): measured 53-71 s wall on 2 idle cores "
        "(165 s CPU)"
    )
    config_cls = DistillSection
    metrics = METRICS
    methods: Mapping[str, Method] = METHODS
    setting_axes = ("noise_rate", "teacher_a")
    report_note = (
        "Intervals are 95% Student-t intervals over seeds; every claim is a paired difference of test "
        "accuracy (same seed = same split, same noisy labels, same initial weights). Each teacher is trained "
        "once per (a, noise rate, seed) and its stored logits are what its students learn from. Temperature "
        "scaling (the 'after T' columns) is fitted on the validation split."
    )

    def validate(self, section: Any) -> None:
        section.validate()

    def setting_header(self) -> list[str]:
        return ["teacher label noise", "teacher"]

    def setting_cells(self, key: tuple) -> list[str]:
        eta, a = key
        return [f"{eta:.0%}", "none (trained on labels)" if a is None else f"a={a:g}"]

    def _run_config(self, cfg: Any, run: DistillRun, teacher_hash: str | None) -> dict[str, Any]:
        sec = cfg.section
        keys: tuple[str, ...] = _TEACHER_KEYS if run.role == "teacher" else _STUDENT_KEYS
        if run.method == "tfkd":
            keys = keys + _TFKD_KEYS
        conf: dict[str, Any] = {
            "task": self.name,
            "n_bins": cfg.n_bins,
            "run": run.axes(),
            "train": {k: getattr(sec, k) for k in keys},
        }
        if teacher_hash is not None:
            conf["teacher"] = teacher_hash
        return conf

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        runs = grid(cfg.section, cfg.seeds)
        teachers: dict[DistillRun, str] = {}
        specs = []
        for run in runs:
            need = run.needs()
            th = teachers[need] if need is not None else None
            spec = RunSpec(run.axes(), self._run_config(cfg, run, th), needs=(th,) if th else (), payload=run)
            if run.role == "teacher":
                teachers[run] = spec.run_hash
            specs.append(spec)
        return specs

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        run = DistillRun.from_axes(spec.axes)
        art = needs[spec.needs[0]].artefacts if spec.needs else None
        return RunRecord.of(execute(ctx.section, run, art, n_bins=ctx.config.n_bins))

    def describe(self, spec: RunSpec) -> str:
        a = spec.axes
        teacher = "" if a["teacher_a"] is None else f" (teacher a={a['teacher_a']:g})"
        needs = f" needs {spec.needs[0]}" if spec.needs else ""
        return f"noise {a['noise_rate']:<4g} {self.label(a) + teacher:34s} seed {a['seed']:<3d}{needs}"

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        return verdicts(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        out = []
        if select(records, method="kd"):
            out.append(
                Figure(
                    "student_accuracy_vs_temperature",
                    "Student test accuracy against the distillation temperature T, one curve per "
                    "teacher a, one "
                    "panel per noise rate of the teachers' labels; error bars: 95% t-intervals over "
                    "seeds; dashed: "
                    "the same student trained on the labels (hard targets, smoothing, Tf-KD_reg).",
                    student_figure(records),
                )
            )
        if select(records, method="teacher"):
            out.append(
                Figure(
                    "teacher_erasure",
                    "The teachers against their smoothing a: test accuracy, mean within-class cosine "
                    "similarity of "
                    "the penultimate features, within-class spread of the probabilities (Shen et al. "
                    "2021), and the "
                    "entropy of the wrong-class mass (1 = uniform: no dark knowledge); 95% t-intervals "
                    "over seeds.",
                    erasure_figure(records),
                )
            )
        return out


TASK = register(DistillTask())
