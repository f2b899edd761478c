"""The ``distill`` and ``noise`` engine tasks (issue 14 §2): registration, CLI and API runs, teachers trained
once and handed to their students through ``RunSpec.needs``, resume after ``kill -9``, worker-count
equality, the verdicts and figures, and config errors. Tiny grids: a few seconds each."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelsmooth.cli import main
from labelsmooth.study import load_results, run
from labelsmooth.study.runner import plan, prepare_context
from labelsmooth.study.store import DB_NAME
from labelsmooth.study.tasks import TASKS, get_task
from study_fixtures import assert_figures_are_not_clipped, start_python

TINY_DISTILL = {
    "teacher_smoothing": [0.0, 0.2], "temperatures": [1.0, 4.0], "noise_rates": [0.0],
    "baseline_smoothing": [0.2], "teacher_width": 16, "teacher_depth": 1, "student_width": 8,
    "teacher_epochs": 3, "student_epochs": 3, "batch_size": 0, "lr": 0.01,
}  # fmt: skip
# 2 seeds: 4 teachers, 8 students, (hard, ls 0.2, tfkd) x 2 = 6 baselines: 18 runs
N_TEACHERS, N_RUNS = 4, 18
TINY_NOISE = {
    "noise_rates": [0.0, 0.4], "smoothing": [0.4, 0.0, -0.4], "warmup_epochs": 1, "epochs": 3, "width": 16,
    "depth": 1, "batch_size": 0, "lr": 0.01,
}  # fmt: skip
VOLATILE = {"wall_time", "library_version"}


def _distill_cfg(**top):
    return {"task": "distill", "seeds": 2, "distill": dict(TINY_DISTILL), **top}


def _rows(folder: Path) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT run_hash, axes, needs, metrics, finished_at FROM runs ORDER BY rowid")
        return {
            h: {"axes": json.loads(a), "needs": json.loads(n), "metrics": json.loads(m), "finished_at": f,
                "order": i}
            for i, (h, a, n, m, f) in enumerate(rows)
        }  # fmt: skip
    finally:
        conn.close()


def _numbers(folder: Path) -> dict[str, dict]:
    return {h: {k: v for k, v in r["metrics"].items() if k not in VOLATILE} for h, r in _rows(folder).items()}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The tiny distill study, workers = 1, uninterrupted: the reference of the other tests."""
    out = tmp_path_factory.mktemp("distill") / "serial"
    stored: list[str] = []
    run(_distill_cfg(), out=out, workers=1, on_run=lambda r: stored.append(r["run_hash"]))
    return out, stored


def test_both_tasks_are_listed_with_their_question_and_measured_runtime():
    assert {"distill", "noise"} <= set(TASKS)
    result = CliRunner().invoke(main, ["tasks"])
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "worse students" in lines["distill"] and "190 runs" in lines["distill"]
    assert "best smoothing rate turn negative" in lines["noise"] and "200 runs" in lines["noise"]
    assert "CPU" in lines["distill"] and "CPU" in lines["noise"]


def test_each_student_needs_its_teacher_and_gets_its_stored_artefacts(serial):
    out, stored = serial
    rows = _rows(out)
    assert len(rows) == N_RUNS and len(stored) == N_RUNS
    teachers = {h: r for h, r in rows.items() if r["axes"]["method"] == "teacher"}
    assert len(teachers) == N_TEACHERS
    for h in teachers:  # the engine saved each teacher's artefacts (its logits) before its row
        files = {p.name for p in (out / "artefacts" / h).iterdir()}
        assert {"train_logits.pt", "test_logits.pt", "train_index.pt"} <= files
    students = [r for r in rows.values() if r["axes"]["method"] == "kd"]
    assert len(students) == 8
    for s in students:
        (need,) = s["needs"]
        t = teachers[need]["axes"]
        assert (t["param"], t["seed"], t["noise_rate"]) == (s["axes"]["teacher_a"], s["axes"]["seed"],
                                                             s["axes"]["noise_rate"])  # fmt: skip
        assert teachers[need]["order"] < s["order"]  # stored after its teacher
        assert 0.0 <= s["metrics"]["teacher_agreement"] <= 1.0  # computed from the teacher's test logits
    baselines = [r for r in rows.values() if r["axes"]["method"] in ("hard", "ls", "tfkd")]
    assert len(baselines) == 6 and all(r["needs"] == [] for r in baselines)
    # the plan: a student's hash names its teacher, a teacher's hash ignores the students' temperatures
    specs = plan(prepare_context(_distill_cfg()))
    other = plan(prepare_context(_distill_cfg(distill={**TINY_DISTILL, "temperatures": [1.0, 4.0, 8.0]})))
    hashes = {s.run_hash for s in specs if s.axes["method"] == "teacher"}
    assert hashes == {s.run_hash for s in other if s.axes["method"] == "teacher"} == set(teachers)


def test_two_workers_store_the_same_numbers_as_one(serial, tmp_path):
    out, _ = serial
    order: list[dict] = []
    run(_distill_cfg(), out=tmp_path / "w2", workers=2, report=False, on_run=order.append)
    assert _numbers(tmp_path / "w2") == _numbers(out)
    # a student was handed to a worker only with its teacher's stored record (the engine reads needs from
    # the store at submission), so every student is stored after its teacher
    seen: set[str] = set()
    for rec in order:
        assert set(rec["needs"]) <= seen
        seen.add(rec["run_hash"])


def test_kill_9_then_resume_trains_no_stored_teacher_and_loses_no_student(serial, tmp_path):
    out = tmp_path / "killed"
    cfg_path = tmp_path / "distill.toml"
    lines = ['task = "distill"', "seeds = 2", "", "[distill]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in TINY_DISTILL.items()]
    cfg_path.write_text("\n".join(lines) + "\n")
    kill_after = N_TEACHERS + 2  # every teacher and two more runs stored, then SIGKILL from inside
    script = textwrap.dedent(f"""
        import os, signal
        from labelsmooth.study import run
        n = []
        def on_run(rec):
            n.append(rec)
            if len(n) == {kill_after}:
                os.kill(os.getpid(), signal.SIGKILL)
        run({str(cfg_path)!r}, out={str(out)!r}, workers=1, on_run=on_run)
    """)
    proc = start_python(script)
    proc.join(300)
    assert proc.exitcode == -9, proc.exitcode
    before = _rows(out)
    assert len(before) == kill_after
    teachers = {h: r for h, r in before.items() if r["axes"]["method"] == "teacher"}
    assert len(teachers) == N_TEACHERS
    art = {h: {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "artefacts" / h).iterdir()}
           for h in teachers}  # fmt: skip

    cli = CliRunner()
    dry = cli.invoke(main, ["study", "--config", str(cfg_path), "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{N_RUNS} runs (task distill), {N_RUNS - kill_after} to train" in dry.output
    assert dry.output.count("stored") == kill_after
    args = ["study", "--config", str(cfg_path), "--out", str(out), "--workers", "2", "--no-report"]
    res = cli.invoke(main, args)  # the verdict is printed without drawing the report
    assert res.exit_code == 0, res.output
    after = _rows(out)
    assert len(after) == N_RUNS
    for h, r in teachers.items():  # not retrained: the same row, the same artefact files, untouched
        assert after[h] == r
        assert {
            p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "artefacts" / h).iterdir()
        } == art[h]
    assert _numbers(out) == _numbers(serial[0])  # nothing lost, nothing changed by the kill or the workers
    assert "Smoothed teachers are as good or better alone" in res.output


def test_distill_report_has_the_verdicts_and_figures(serial):
    out, _ = serial
    md = (out / "report.md").read_text()
    for claim in ("Müller et al. 2019", "Shen et al. 2021", "Chandrasegaran", "information erasure"):
        assert claim in md
    assert "points (n = 2)" in md  # every comparison with its paired interval
    figs = {p.name for p in (out / "figures").iterdir()}
    assert figs == {"student_accuracy_vs_temperature.png", "teacher_erasure.png"}
    assert_figures_are_not_clipped(out)
    res = load_results(out)
    assert {r["label"] for r in res if r["method"] == "kd"} == {"student KD T=1", "student KD T=4"}


def test_noise_cli_runs_selects_on_validation_and_draws_best_r(tmp_path):
    out = tmp_path / "noise"
    sets = [f"noise.{k}={json.dumps(v)}" for k, v in TINY_NOISE.items()]
    args = ["study", "--task", "noise", "--seeds", "2", "--out", str(out), "--workers", "1"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "The best r moves from positive to negative" in res.output and "24 runs" in res.output
    assert (out / "figures" / "best_r_vs_noise.png").stat().st_size > 10_000
    records = list(load_results(out))
    assert len(records) == 24 and all(r["val_accuracy"] is not None for r in records)
    from labelsmooth.study.tasks import _digits, noise

    for p in noise.best_r_curve(records):  # the reported r is the validation choice
        gls = [r for r in records if r["method"] == "gls" and r["noise_rate"] == p["noise_rate"]]
        groups: dict = {}
        for r in gls:
            groups.setdefault(r["param"], []).append(r)
        assert p["best_r"] == _digits.choose_by_validation(groups)
    md = (out / "report.md").read_text()
    assert "never by test numbers" in md and "Lukasik et al. 2020" in md


@pytest.mark.parametrize(
    "config,match",
    [
        ({"task": "distill", "distill": {"temperature": [1.0]}}, r"did you mean `distill.temperatures`"),
        ({"task": "distill", "distill": {"temperatures": [0.0]}}, r"`distill.temperatures` in \(0, inf\)"),
        ({"task": "distill", "distill": {"teacher_smoothing": [0.1]}}, "to include 0"),
        ({"task": "distill", "distill": {"teacher_epochs": 0}}, "`distill.teacher_epochs` to be an int >= 1"),
        ({"task": "distill", "distill": {"lr": "fast"}}, "`distill.lr` to be a number"),
        ({"task": "distill", "noise": {"rates": [0.1]}}, "to be a section of task 'distill'"),
        ({"task": "noise", "noise": {"rates": [0.1]}}, r"did you mean `noise.noise_rates`"),
        ({"task": "noise", "noise": {"smoothing": [1.5]}}, r"`noise.smoothing` in \(-inf, 1\]"),
        ({"task": "noise", "noise": {"relaxation": [1.0]}}, r"`noise.relaxation` in \(0, 1\)"),
        ({"task": "noise", "noise": {"warmup_epochs": 60}}, "`noise.warmup_epochs`"),
        ({"task": "noise", "distill": {"lr": 0.1}}, "belongs to task 'distill'"),
        ({"distill": {"lr": 0.1}}, "to be a section of task 'classification'"),
    ],
)
def test_bad_configs_fail_before_anything_is_written(tmp_path, config, match):
    out = tmp_path / "never"
    with pytest.raises((ValueError, TypeError), match=match):
        run(config, out=out)
    assert not out.exists()


def test_bad_flag_in_the_cli_names_the_key(tmp_path):
    out = tmp_path / "never"
    res = CliRunner().invoke(
        main, ["study", "--task", "distill", "--set", "distill.temprature=2", "--out", str(out)]
    )
    assert res.exit_code == 1 and "did you mean `distill.temperatures`" in res.output and not out.exists()


def test_distill_verdict_words_on_hand_made_records():
    from labelsmooth.study.tasks import distill

    def fake(values, **axes):
        return [{**axes, "seed": s, "accuracy": v} for s, v in enumerate(values)]

    recs = fake([0.90, 0.91, 0.92], method="teacher", param=0.0, teacher_a=0.0, noise_rate=0.4)
    recs += fake([0.90, 0.91, 0.92], method="teacher", param=0.3, teacher_a=0.3, noise_rate=0.4)
    recs += fake([0.80, 0.81, 0.82], method="kd", param=1.0, teacher_a=0.0, noise_rate=0.4)
    recs += fake([0.80, 0.812, 0.821], method="kd", param=1.0, teacher_a=0.3, noise_rate=0.4)  # within noise
    recs += fake([0.80, 0.81, 0.82], method="kd", param=8.0, teacher_a=0.0, noise_rate=0.4)
    recs += fake([0.85, 0.86, 0.871], method="kd", param=8.0, teacher_a=0.3, noise_rate=0.4)  # better
    by = {v.title.split(" (")[0]: v for v in distill.verdicts(recs)}
    lukasik = by["With symmetric noise in the teacher's labels, a smoothed teacher helps"]
    assert lukasik.outcome == "partly held"
    assert "+5.03 ± 0.14 points (n = 3) (held)" in lukasik.text and "(did NOT hold)" in lukasik.text
    assert by["Smoothed teachers are as good or better alone"].outcome == "held"
    assert distill.verdicts(recs[:2] + recs[3:4])[0].outcome == "too few seeds"


def test_a_finished_study_trains_nothing_on_rerun_and_dry_run_names_the_needs(serial):
    out, _ = serial
    trained: list = []
    res = run(_distill_cfg(), out=out, workers=1, report=False, on_run=trained.append)
    assert trained == [] and len(res) == N_RUNS
    specs = plan(prepare_context(_distill_cfg()))
    student = next(s for s in specs if s.axes["method"] == "kd")
    line = get_task("distill").describe(student)
    assert "teacher a=" in line and line.endswith(f"needs {student.needs[0]}")
