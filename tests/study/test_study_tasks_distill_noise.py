"""The engine-agnostic cores of the ``distill`` and ``noise`` study tasks: tiny grids, determinism, checks."""

import dataclasses
import math

import pytest
import torch

from labelsmooth.study.tasks import _digits, distill, noise

TINY_D = distill.DistillSection(
    teacher_smoothing=(0.0, 0.2),
    temperatures=(1.0, 4.0),
    noise_rates=(0.0,),
    baseline_smoothing=(0.2,),
    teacher_width=16,
    teacher_depth=1,
    student_width=8,
    teacher_epochs=3,
    student_epochs=3,
    batch_size=0,
    lr=0.01,
)
TINY_N = noise.NoiseSection(
    noise_rates=(0.0, 0.4),
    smoothing=(0.4, 0.0, -0.4),
    warmup_epochs=1,
    epochs=3,
    width=16,
    depth=1,
    batch_size=0,
    lr=0.01,
)


def test_distill_grid_and_dependencies():
    runs = distill.grid(TINY_D.validate(), (0, 1))
    teachers = [r for r in runs if r.role == "teacher"]
    students = [r for r in runs if r.role == "student"]
    baselines = [r for r in runs if r.role == "baseline"]
    assert len(teachers) == 4 and len(students) == 8 and len(baselines) == 2 * 3
    assert runs[: len(teachers)] == teachers  # teachers first
    for s in students:
        t = s.needs()
        assert t in teachers and (t.label_smoothing, t.seed, t.noise_rate) == (
            s.label_smoothing,
            s.seed,
            s.noise_rate,
        )
    assert all(r.needs() is None for r in teachers + baselines)
    assert {r.method for r in baselines} == {"hard", "ls", "tfkd"}
    assert set(distill.METHODS) == {"teacher", "kd", "hard", "ls", "tfkd"}
    for task, run in ((distill, runs[0]), (noise, noise.grid(TINY_N)[0])):
        keys = [m.key for m in task.METRICS]
        assert len(keys) == len(set(keys)) and {"accuracy", "val_accuracy", "val_nll"} <= set(keys)
        assert not set(keys) & set(run.axes())  # flat records: metrics never overwrite an axis


def test_distill_runs_are_deterministic_and_artefacts_small():
    t1 = distill.run_teacher(TINY_D, 0.2, 0)
    t2 = distill.run_teacher(TINY_D, 0.2, 0)
    assert t1["metrics"] == t2["metrics"]
    art = t1["artefacts"]
    assert set(art) == {"train_logits", "val_logits", "test_logits", "train_index"}
    for key in art:
        torch.testing.assert_close(art[key], t2["artefacts"][key])
    assert art["train_logits"].dtype == torch.float32 and art["train_logits"].shape[1] == 10
    assert sum(v.numel() * v.element_size() for v in art.values()) < 100_000
    m = t1["metrics"]
    assert distill.TEACHER_KEYS == (
        "accuracy", "nll", "ece", "within_class_cosine", "prob_spread", "wrong_mass", "wrong_entropy",
    )  # fmt: skip
    for key in distill.TEACHER_KEYS:
        assert isinstance(m[key], float) and math.isfinite(m[key])
    s1 = distill.run_student(TINY_D, art, 4.0, 0)
    s2 = distill.run_student(TINY_D, t2["artefacts"], 4.0, 0)
    assert s1["metrics"] == s2["metrics"] and s1["curves"] == s2["curves"]
    assert 0 <= s1["metrics"]["teacher_agreement"] <= 1
    b = distill.run_baseline(TINY_D, "tfkd", 0)
    assert b["metrics"]["teacher_agreement"] is None and b["artefacts"] == {}


def test_distill_student_checks_its_teacher():
    art = distill.run_teacher(TINY_D, 0.0, 0)["artefacts"]
    with pytest.raises(ValueError, match="same seed"):
        distill.run_student(TINY_D, art, 2.0, 1)  # another seed: another split
    with pytest.raises(ValueError, match="to hold 'train_logits'"):
        distill.run_student(
            TINY_D, {"test_logits": art["test_logits"], "train_index": art["train_index"]}, 2.0, 0
        )
    with pytest.raises(ValueError, match=r"train_logits'\]` of shape"):
        distill.run_student(TINY_D, {**art, "train_logits": art["train_logits"][:, :5]}, 2.0, 0)
    with pytest.raises(ValueError, match="`teacher_artefacts` for a student run"):
        distill.execute(TINY_D, distill.DistillRun("student", "kd", 0.0, 0, 0.0, 2.0))
    with pytest.raises(ValueError, match="`temperature` in"):
        distill.run_student(TINY_D, art, 0.0, 0)
    with pytest.raises(ValueError, match="`method` to be one of"):
        distill.run_baseline(TINY_D, "soft", 0)
    with pytest.raises(ValueError, match="`label_smoothing` for the 'ls' baseline"):
        distill.run_baseline(TINY_D, "ls", 0)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"teacher_smoothing": (0.1, 0.3)}, "to include 0"),
        ({"teacher_smoothing": ()}, "non-empty"),
        ({"temperatures": (1.0, 1.0)}, "distinct"),
        ({"temperatures": (0.0,)}, "`distill.temperatures` in"),
        ({"noise_rates": (1.0,)}, "`distill.noise_rates` in"),
        ({"student_epochs": 0}, "`distill.student_epochs` to be an int >= 1"),
        ({"batch_size": -1}, "`distill.batch_size`"),
        ({"tfkd_alpha": 2.0}, "`distill.tfkd_alpha`"),
        ({"val_fraction": 0.0}, "`distill.val_fraction`"),
    ],
)
def test_distill_validate_errors(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY_D, **change).validate()


def test_distill_summarize_on_a_tiny_grid():
    records, arts = [], {}
    for run in distill.grid(TINY_D, (0, 1)):
        res = distill.execute(TINY_D, run, arts.get(run.needs()))
        if run.role == "teacher":
            arts[run] = res["artefacts"]
        records.append({**run.axes(), **res["metrics"]})
    lines = distill.summarize(records)
    assert lines[0].startswith("Smoothed teachers") and any("within-class cosine" in line for line in lines)
    names = [c.name for c in distill.claims(records)]
    assert "teacher_alone[eta=0,a=0.2]" in names
    assert "students_worse[eta=0,a=0.2,T=4]" in names and "gap_closes_t1[eta=0,a=0.2,T=1]" in names
    assert "no_better_than_direct[eta=0,a=0.2,T=4]" in names
    assert all(c.estimate.n == 2 for c in distill.claims(records))


def _fake(records, **axes_values):
    return [{**axes_values, "seed": s, "accuracy": v} for s, v in enumerate(records)]


def test_distill_claim_directions_on_constructed_records():
    recs = []
    recs += _fake([0.90, 0.91, 0.92], method="teacher", param=0.0, teacher_a=0.0, noise_rate=0.0)
    recs += _fake([0.93, 0.94, 0.95], method="teacher", param=0.1, teacher_a=0.1, noise_rate=0.0)
    for t in (1.0, 4.0):
        recs += _fake([0.90, 0.91, 0.92], method="kd", param=t, teacher_a=0.0, noise_rate=0.0)
        recs += _fake([0.85, 0.86, 0.861], method="kd", param=t, teacher_a=0.1, noise_rate=0.0)
    recs += _fake([0.80, 0.80, 0.81], method="ls", param=0.1, teacher_a=None, noise_rate=0.0)
    by = {c.name: c for c in distill.claims(recs)}
    assert by["teacher_alone[eta=0,a=0.1]"].held is True
    assert by["students_worse[eta=0,a=0.1,T=4]"].held is True  # significantly worse: Müller's claim holds
    assert by["gap_closes_t1[eta=0,a=0.1,T=1]"].held is False  # significantly worse at T = 1: no closing
    assert by["students_worse[eta=0,a=0.1,T=4]"].estimate.mean == pytest.approx(-0.0533, abs=1e-3)
    assert by["no_better_than_direct[eta=0,a=0.1,T=4]"].held is False  # +5.4 points over direct smoothing
    assert "no_better_than_direct[eta=0,a=0.1,T=1]" not in by  # the claim is about T > 1


def test_noise_grid_runs_and_determinism():
    sec = TINY_N.validate()
    assert noise.methods(sec) == [
        ("gls", 0.4),
        ("gls", 0.0),
        ("gls", -0.4),
        ("ols", None),
        ("relax", 0.2),
        ("forward", None),
    ]
    runs = noise.grid(sec, (0,))
    assert len(runs) == 2 * 6 and all(r.needs() is None for r in runs)
    a = noise.run_one(sec, "gls", -0.4, 0.4, 0)
    b = noise.run_one(sec, "gls", -0.4, 0.4, 0)
    assert a["metrics"] == b["metrics"] and a["curves"] == b["curves"]
    o = noise.run_one(sec, "ols", None, 0.4, 0)
    soft = torch.tensor(o["arrays"]["ols_soft_labels"])
    torch.testing.assert_close(soft.sum(1), torch.ones(10))
    f0 = noise.run_one(sec, "forward", None, 0.0, 0)
    ce0 = noise.run_one(sec, "gls", 0.0, 0.0, 0)  # T = I: forward correction is cross-entropy
    assert f0["metrics"]["accuracy"] == ce0["metrics"]["accuracy"]
    assert a["metrics"]["memorised"] is not None and f0["metrics"]["memorised"] is None
    records = [{**r.axes(), **noise.execute(sec, r)["metrics"]} for r in runs]
    lines = noise.summarize(records)
    assert lines[0].startswith("Best r against eta") and len(noise.best_r_curve(records)) == 2


def test_noise_errors():
    with pytest.raises(ValueError, match="`method` to be one of"):
        noise.run_one(TINY_N, "mixup", None, 0.0, 0)
    with pytest.raises(ValueError, match="`param` \\(r or a\\) for method 'gls'"):
        noise.run_one(TINY_N, "gls", None, 0.0, 0)
    with pytest.raises(ValueError, match="`param` in \\(0, 1\\)"):
        noise.run_one(TINY_N, "relax", 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="`noise_rate` in"):
        noise.run_one(TINY_N, "forward", None, 1.0, 0)
    for change, match in [
        ({"warmup_epochs": 3}, "`noise.warmup_epochs`"),
        ({"relaxation": (0.0,)}, "`noise.relaxation` in"),
        ({"smoothing": (1.5,)}, "`noise.smoothing` in"),
        ({"noise_rates": ()}, "non-empty"),
        ({"ols_alpha": -0.1}, "`noise.ols_alpha`"),
        ({"epochs": 0}, "`noise.epochs`"),
    ]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(TINY_N, **change).validate()


def _fake_noise(eta, by_r, val_by_r):
    out = []
    for r, v in by_r.items():
        for s_, d in enumerate((0.0, 0.01, 0.005)):
            out.append({"method": "gls", "param": r, "noise_rate": eta, "seed": s_, "accuracy": v + d,
                        "val_accuracy": val_by_r[r] + d, "val_nll": 1.0})  # fmt: skip
    return out


def test_noise_claims_select_r_on_validation_not_test():
    recs = []
    # eta = 0: test prefers r = 0.4, validation too; eta = 0.6: test prefers r = -0.4 but validation r = 0
    recs += _fake_noise(0.0, {0.4: 0.95, 0.0: 0.93, -0.4: 0.90}, {0.4: 0.96, 0.0: 0.94, -0.4: 0.91})
    recs += _fake_noise(0.6, {0.4: 0.50, 0.0: 0.52, -0.4: 0.60}, {0.4: 0.50, 0.0: 0.70, -0.4: 0.60})
    curve = noise.best_r_curve(recs)
    assert [(p["noise_rate"], p["best_r"], p["test_best_r"]) for p in curve] == [
        (0.0, 0.4, 0.4),
        (0.6, 0.0, -0.4),
    ]
    assert curve[1]["test"].mean == pytest.approx(0.525)  # the test number of the validation choice
    assert curve[1]["per_seed"] == {0: 0.0, 1: 0.0, 2: 0.0}
    by = {c.name: c for c in noise.claims(recs)}
    assert by["best_r_positive[eta=0]"].held is True
    assert by["best_r_negative[eta=0.6]"].held is False  # validation picks r = 0, whatever test says
    # the estimate: best negative r (validation) minus best non-negative r (validation: 0), on test
    assert by["best_r_negative[eta=0.6]"].estimate.mean == pytest.approx(0.60 - 0.52)
    (phase,) = [v for v in noise.verdicts(recs) if v.title.startswith("The best r")]
    assert phase.outcome == "did not hold" and "test selection would pick r = -0.4" in phase.text
    # ties on validation accuracy break on the lower validation NLL
    tie = _fake_noise(0.2, {0.4: 0.8, -0.4: 0.7}, {0.4: 0.9, -0.4: 0.9})
    for r in tie:
        r["val_nll"] = 0.5 if r["param"] == -0.4 else 0.6
    assert noise.best_r_curve(tie)[0]["best_r"] == -0.4


def test_noise_phase_transition_holds_on_records_made_to_show_it():
    recs = _fake_noise(0.0, {0.4: 0.95, 0.0: 0.93, -0.4: 0.90}, {0.4: 0.96, 0.0: 0.94, -0.4: 0.91})
    recs += _fake_noise(0.6, {0.4: 0.50, 0.0: 0.52, -0.4: 0.60}, {0.4: 0.50, 0.0: 0.52, -0.4: 0.61})
    (phase,) = [v for v in noise.verdicts(recs) if v.title.startswith("The best r")]
    assert phase.outcome == "held"
    assert phase.numbers["best_r_negative[eta=0.6]"]["best_r"] == -0.4


def test_geometry_helpers_hand_cases():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    # class 0: identical vectors (cos 1); class 1: 45 degrees (cos 0.7071)
    assert _digits.within_class_cosine(f, y) == pytest.approx((1 + math.sqrt(0.5)) / 2)
    z = torch.log(torch.tensor([[0.8, 0.1, 0.1], [0.8, 0.2, 1e-12]]))
    g = _digits.probability_geometry(z, torch.tensor([0, 0]))
    assert g["wrong_mass"] == pytest.approx(0.2, abs=1e-6)
    assert g["wrong_entropy"] == pytest.approx(0.5, abs=1e-6)  # uniform wrong mass (1) and a point mass (0)
    assert g["prob_spread"] == pytest.approx(2 * 0.05**2, abs=1e-6)


def test_noise_verdict_survives_runs_without_validation_numbers():
    recs = _fake_noise(0.0, {0.4: 0.9, -0.4: 0.8}, {0.4: 0.9, -0.4: 0.8})
    recs += [{**r, "noise_rate": 0.6, "val_accuracy": None, "accuracy": None} for r in recs]  # all diverged
    curve = noise.best_r_curve(recs)
    assert curve[1]["best_r"] is None and curve[1]["test_best_r"] is None
    (phase,) = [v for v in noise.verdicts(recs) if v.title.startswith("The best r")]
    assert "eta=0.6: selected r = n/a" in phase.text
