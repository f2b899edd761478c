"""The study engine (issue 9 §1, issue 10 §1-2): tasks and their registry, run dependencies and artefacts,
schema 2 reading a 0.1.0 (schema 1) folder, the folder lock, one folder = one study, read-only readers,
capped workers."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import study_toy_task  # noqa: F401  (registers the toy task "toy_chain")
from labelsmooth.cli import main
from labelsmooth.study import load_results, run, write_report
from labelsmooth.study.runner import FolderLock, StudyLockedError, StudyMismatchError, plan, prepare_context
from labelsmooth.study.store import DB_NAME, SCHEMA_VERSION, Store
from labelsmooth.study.tasks import TASKS, Method, RunSpec, get_method, get_task, register
from labelsmooth.study.tasks.base import order_plan
from study_fixtures import assert_numbers_agree_across_cpus, start_python, tiny

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "study_v1"
VOLATILE = {"wall_time", "run_hash", "library_version"}


def _by_axes(records):
    key = ("dataset", "noise_kind", "noise_rate", "method", "param", "seed")
    return {tuple(r[k] for k in key): {k: v for k, v in r.items() if k not in VOLATILE} for r in records}


def _v1_copy(tmp_path) -> Path:
    out = tmp_path / "v1"
    shutil.copytree(FIXTURE, out)
    return out


def _schema(folder) -> str:
    conn = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------- schema 1 folders


def test_a_0_1_0_folder_is_read_reported_and_exported_without_being_changed(tmp_path):
    folder = _v1_copy(tmp_path)
    before = (folder / DB_NAME).read_bytes()
    res = load_results(folder)
    assert len(res) == 12 and res.hidden == 0
    assert {r["label"] for r in res} == {"hard (a=0)", "ls a=0.1", "focal g=2"}
    html = write_report(folder)
    assert "Verdict" in html.read_text() and (folder / "figures").is_dir()
    result = CliRunner().invoke(main, ["export", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 12
    assert _schema(folder) == "1" and (folder / DB_NAME).read_bytes() == before  # readers never migrate


def test_a_0_1_0_folder_resumes_without_retraining_and_is_migrated(tmp_path):
    folder = _v1_copy(tmp_path)
    old = load_results(folder)
    seen = []
    new = run(tiny(), out=folder, on_run=seen.append, report=False)
    assert seen == []  # every run of the same grid is already stored: same run hashes as 0.1.0
    assert _schema(folder) == str(SCHEMA_VERSION) == "2"
    assert [r["run_hash"] for r in new] == [r["run_hash"] for r in old]
    assert _by_axes(new) == _by_axes(old)
    with Store.open(folder, create=False, readonly=True) as store:
        assert {r.task for r in store.runs()} == {"classification"} and store.get_meta("migrated_from") == "1"


def test_a_fresh_run_stores_the_numbers_0_1_0_stored(tmp_path):
    """Numbers parity on the tiny grid: the engine's classification task against the checked-in 0.1.0
    database (compared by axes; every metric, wall time aside; floats to 1e-4, as the fixture was written on
    another CPU: see assert_numbers_agree_across_cpus)."""
    old = load_results(_v1_copy(tmp_path))  # never read in place: a WAL reader would leave files in tests/
    new = run(tiny(), out=tmp_path / "new", report=False)
    assert_numbers_agree_across_cpus(_by_axes(new), _by_axes(old), rel=1e-4)
    assert [r["run_hash"] for r in new] == [r["run_hash"] for r in old]


# ------------------------------------------------------------------------------------------- registry


def test_task_registry_and_did_you_mean():
    assert get_task("classification") is TASKS["classification"]
    with pytest.raises(ValueError, match=r"`task`.*did you mean 'classification'"):
        get_task("clasification")
    with pytest.raises(ValueError, match="not yet registered"):
        register(type(get_task("toy_chain"))())
    with pytest.raises(ValueError, match=r"did you mean 'ls'"):
        get_method("lss")
    with pytest.raises(ValueError, match="not yet registered"):
        from labelsmooth.study.methods import register_method

        register_method(Method("ls", "a", lambda p, **_: None))
    assert get_method("ls").label_of(0.1) == "ls a=0.1" and get_method("hard").label_smoothing(None) == 0.0


def test_cli_tasks_lists_every_task_and_study_takes_task(tmp_path):
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "classification" in lines and "toy_chain" in lines
    assert "with which a" in lines["classification"] and "55-85 s" in lines["classification"]
    bad = CliRunner().invoke(main, ["study", "--task", "clasification", "--out", str(tmp_path / "x")])
    assert (
        bad.exit_code == 1 and "did you mean 'classification'" in bad.output and not (tmp_path / "x").exists()
    )


def test_a_section_of_another_task_or_an_unknown_key_is_an_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"`noise` to be a section of task 'toy_chain'.*belongs to task 'classification'"
    ):
        prepare_context({"task": "toy_chain", "noise": {"rates": [0.0]}})
    with pytest.raises(ValueError, match=r"`toy_chain` to be a section of task 'classification'"):
        prepare_context({"toy_chain": {"scale": 2.0}})
    with pytest.raises(ValueError, match=r"`toy_chain.scal`.*did you mean `toy_chain.scale`"):
        prepare_context({"task": "toy_chain", "toy_chain": {"scal": 2.0}})
    with pytest.raises(ValueError, match=r"toy_chain.scale"):
        run({"task": "toy_chain", "toy_chain": {"scale": -1.0}}, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------- dependencies


def test_plan_order_puts_needs_first_and_rejects_missing_needs_and_cycles():
    a = RunSpec({"seed": 0}, {"x": "a"})
    b = RunSpec({"seed": 1}, {"x": "b"}, needs=(a.run_hash,))
    assert order_plan([b, a], set()) == [a, b]
    assert order_plan([b], {a.run_hash}) == [b]  # a stored need is fine
    with pytest.raises(ValueError, match="`needs`"):
        order_plan([b], set())
    c = RunSpec({"seed": 2}, {"x": "c"}, needs=("d",))
    d = RunSpec({"seed": 3}, {"x": "d"}, needs=(c.run_hash,))
    object.__setattr__(c, "needs", (d.run_hash,))
    with pytest.raises(ValueError, match="no cycle"):
        order_plan([c, d], set())


def _toy(**section):
    return {"task": "toy_chain", "seeds": 2, "workers": 1, "toy_chain": section}


def test_dependent_runs_get_their_needs_records_and_artefacts_and_resume_reuses_them(tmp_path):
    out = tmp_path / "toy"
    res = run(_toy(scale=2.0), out=out)
    by = {(r["method"], r["seed"]): r for r in res}
    assert by[("teacher", 1)]["total"] == 2 * 3 * 2.0 and by[("student", 1)]["student_total"] == 24.0
    assert by[("student", 1)]["teacher_logits"] == 4.0  # the numpy artefact too
    teacher = by[("teacher", 0)]["run_hash"]
    assert sorted(p.name for p in (out / "artefacts" / teacher).iterdir()) == ["logits.npy", "weights.pt"]
    with Store.open(out, create=False, readonly=True) as store:
        students = [r for r in store.runs() if r.spec["method"] == "student"]
        assert all(len(r.needs) == 1 for r in students) and {r.task for r in store.runs()} == {"toy_chain"}
    assert (out / "report.html").is_file() and "toy_chain" in (out / "report.md").read_text()
    # a lost student is retrained from its stored teacher (the teacher is not retrained)
    with sqlite3.connect(out / DB_NAME) as conn:
        conn.execute("DELETE FROM runs WHERE json_extract(axes, '$.method') = 'student' AND "
                     "json_extract(axes, '$.seed') = 1")  # fmt: skip
    conn.close()
    seen = []
    again = run(_toy(scale=2.0), out=out, on_run=seen.append, report=False)
    assert [(r["spec"]["method"], r["spec"]["seed"]) for r in seen] == [("student", 1)]
    assert {r["run_hash"]: r.get("student_total") for r in again} == {
        r["run_hash"]: r.get("student_total") for r in res
    }


def test_parallel_workers_never_start_a_run_before_its_needs_are_stored(tmp_path):
    serial = run(_toy(teacher_sleep=0.0), out=tmp_path / "serial", report=False)
    par = run(_toy(teacher_sleep=0.3), out=tmp_path / "par", report=False, workers=2)
    pick = lambda rs: {(r["method"], r["seed"]): (r["total"], r.get("student_total")) for r in rs}  # noqa: E731
    assert pick(par) == pick(serial)
    assert len({r["pid"] for r in par}) >= 1 and all(r["pid"] != 0 for r in par)


def test_dry_run_works_for_every_task(tmp_path):
    result = CliRunner().invoke(main, ["study", "--task", "toy_chain", "--seeds", "2", "--dry-run",
                                       "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("4 runs (task toy_chain), 4 to train")
    assert "method=teacher" in result.output and not (tmp_path / "o").exists()
    run(_toy(), out=tmp_path / "o", report=False)
    other = CliRunner().invoke(main, ["study", "--task", "toy_chain", "--seeds", "3", "--dry-run",
                                      "--out", str(tmp_path / "o")])  # fmt: skip
    assert other.output.startswith("6 runs (task toy_chain), 2 to train")
    assert "holds another study (4 runs stored); `study` refuses it without --extend" in other.output


# ------------------------------------------------------------------------------------------- one folder, one study


def test_a_second_study_in_a_locked_folder_refuses_naming_the_folder_and_pid(tmp_path):
    import os

    out = tmp_path / "o"
    out.mkdir()
    with FolderLock(out):
        with pytest.raises(
            StudyLockedError, match=rf"{out} is in use by another labelsmooth study \(PID {os.getpid()}\)"
        ):
            run(_toy(), out=out)
        result = CliRunner().invoke(main, ["study", "--task", "toy_chain", "--out", str(out)])
        assert result.exit_code == 1 and f"PID {os.getpid()}" in result.output
    assert not (out / DB_NAME).exists()
    assert len(run(_toy(), out=out, report=False)) == 4  # released: the folder is free again


def test_the_lock_dies_with_a_killed_process(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    locked = out / "locked"
    code = (f"from labelsmooth.study.runner import FolderLock; lock = FolderLock(__import__('pathlib').Path("
            f"{str(out)!r})).acquire(); open({str(locked)!r}, 'w').close(); __import__('time').sleep(60)")  # fmt: skip
    proc = start_python(code)
    try:
        deadline = time.monotonic() + 60
        while not locked.exists() and proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert locked.exists()
        with pytest.raises(StudyLockedError, match=f"PID {proc.pid}"):
            FolderLock(out).acquire()
    finally:
        proc.kill()
        proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    FolderLock(out).acquire().release()  # kill -9 left no stale lock


def test_another_task_in_the_folder_is_refused_even_with_extend(tmp_path):
    out = tmp_path / "o"
    run(_toy(), out=out, report=False)
    with pytest.raises(StudyMismatchError, match="holds a study of task 'toy_chain'"):
        run(tiny(seeds=1, noise={"rates": [0.0]}), out=out, extend=True, report=False)


def test_export_says_when_stored_runs_are_outside_the_grid(tmp_path):
    """A folder reused with another config by 0.1.0 holds rows outside its grid: export says so and
    --all exports them."""
    folder = _v1_copy(tmp_path)
    with sqlite3.connect(folder / DB_NAME) as conn:
        grid = conn.execute("SELECT value FROM meta WHERE key='grid'").fetchone()[0].split(",")
        conn.execute("UPDATE meta SET value=? WHERE key='grid'", (",".join(grid[:5]),))
    conn.close()
    result = CliRunner().invoke(main, ["export", str(folder), "--format", "json"])
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 5
    assert "7 stored runs are outside this study's grid" in result.stderr and "--all" in result.stderr
    every = CliRunner().invoke(main, ["export", str(folder), "--format", "json", "--all"])
    assert len(json.loads(every.stdout)) == 12 and every.stderr == ""
    write_report(folder)
    assert "also stores 7 runs outside the study's grid" in (folder / "report.md").read_text()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_readers_leave_the_folder_untouched(tmp_path):
    folder = tmp_path / "s"
    run(tiny(seeds=1, noise={"rates": [0.0]}), out=folder, report=False)
    snap = _snapshot(folder)
    runner = CliRunner()
    assert runner.invoke(main, ["export", str(folder)]).exit_code == 0
    dry = runner.invoke(main, ["study", "--out", str(folder), "--dry-run", "--seeds", "1", "--noise", "0",
                               "--set", "methods.label_smoothing=[0.1]", "--set", "methods.prior=[]",
                               "--set", "methods.negative=[]", "--set", "methods.confidence_penalty=[]",
                               "--set", "methods.focal=[2.0]", "--width", "32", "--depth", "1",
                               "--epochs", "12", "--set", "train.eval_every=4"])  # fmt: skip
    assert dry.exit_code == 0 and "0 to train" in dry.output, dry.output
    rep = runner.invoke(main, ["report", str(folder), "-o", str(tmp_path / "elsewhere")])
    assert rep.exit_code == 0 and (tmp_path / "elsewhere" / "report.html").is_file()
    assert _snapshot(folder) == snap


def test_readers_open_the_database_read_only_when_the_folder_is_not_writable(tmp_path, monkeypatch):
    """Without write access to the folder, WAL cannot create its -shm file: the store opens the database
    immutable. (The tests run as root on CI, which chmod does not stop: os.access is what the store asks.)"""
    import os

    import labelsmooth.study.store as store_mod

    folder = _v1_copy(tmp_path)
    opened = []
    real = sqlite3.connect
    monkeypatch.setattr(store_mod.os, "access", lambda path, mode: not mode & os.W_OK)  # no write access
    monkeypatch.setattr(store_mod.sqlite3, "connect", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    assert len(load_results(folder)) == 12
    assert opened and all(o.startswith("file:") and o.endswith("?mode=ro&immutable=1") for o in opened)
    import labelsmooth.study.report as report_mod

    built = []
    real_build = report_mod.build
    monkeypatch.setattr(report_mod, "build", lambda f: built.append(f) or real_build(f))
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 1 and "read-only" in result.output and "-o OTHER_DIR" in result.output, result.output
    assert "Traceback" not in result.output and not (folder / "report.html").exists()
    assert built == []  # refused before drawing any figure
    not_a_study = CliRunner().invoke(main, ["report", str(tmp_path)])  # read-only too, and holds no study
    assert not_a_study.exit_code == 1 and "read-only" not in not_a_study.output, not_a_study.output
    assert CliRunner().invoke(main, ["report", str(folder), "-o", str(tmp_path / "r")]).exit_code == 0


def test_workers_are_capped_at_the_cores_with_a_message(tmp_path, monkeypatch):
    import labelsmooth.study.config as config_mod
    import labelsmooth.study.runner as runner_mod

    monkeypatch.setattr(config_mod, "available_cores", lambda: 1)
    monkeypatch.setattr(runner_mod, "available_cores", lambda: 1)
    said = []
    res = run(_toy(), out=tmp_path / "o", workers=1000, log=said.append, report=False)
    assert len(res) == 4
    assert said == ["--workers 1000 is more than the 1 cores available; using 1 worker processes."]


def test_prepare_and_plan_write_nothing(tmp_path):
    ctx = prepare_context(dict(_toy(), out=str(tmp_path / "o")))
    assert len(plan(ctx)) == 4 and not (tmp_path / "o").exists()
    time.sleep(0)  # nothing else to wait for
