"""The study's Ray backend (``--backend ray``): the same stored numbers as the local backend for any
cluster size, runs that need other runs (artefacts by value), faults (a killed worker is retried a bounded
number of times, a killed driver resumes, a run that raises is stored as failed), the CLI, and the errors
(Ray missing, an unreachable address).

One local Ray instance (2 CPUs) serves the whole module (starting one costs seconds); its tests share an
xdist group so that a parallel run starts it once. Ray is in the test extra: in CI (``CI`` set) a missing
Ray fails the module instead of skipping it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import study_fault_task  # noqa: F401  (registers toy_fault)
import study_toy_task  # noqa: F401  (registers toy_chain)
from labelsmooth.cli import main
from labelsmooth.study.runner import run
from labelsmooth.study.store import Store
from study_fixtures import sigkill_once_a_run_is_stored

if importlib.util.find_spec("ray") is None:  # imported by the fixture below, not here: collecting stays cheap
    if os.environ.get("CI"):
        import ray  # fails: CI installs the test extra
    pytest.skip("could not import 'ray'", allow_module_level=True)

pytestmark = pytest.mark.xdist_group("ray")
TESTS = Path(__file__).resolve().parents[1]  # tests/: the toy task modules
SRC = TESTS.parent / "src"
TIMING = {"wall_time"}  # the only metric that may differ between two executions of a run


@pytest.fixture(scope="module")
def ray():
    """The ``ray`` module, imported by the tests that use it (a second or two), not by collection."""
    return importlib.import_module("ray")


KEEP_IDLE_WORKERS = {"idle_worker_killing_time_threshold_ms": 600_000, "num_workers_soft_limit": 8,
                     "prestart_worker_first_driver": False}
"""Ray kills a job's idle workers once the node holds more than its CPU count; here they are kept, so a
test does not pay for new workers (each imports torch, seconds of CPU) where an earlier test's are idle.
The faults the tests cause (a killed worker, a killed driver) are unchanged."""


@pytest.fixture(scope="module")
def cluster(ray):
    """A local Ray instance with 2 CPUs for the module; its workers import the tests' task modules."""
    assert not ray.is_initialized()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS)] + ([old] if old else []))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        for attempt in range(3):  # on a loaded machine the raylet may miss Ray's 30 s start-up limit
            try:
                info = ray.init(
                    num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                    _system_config=KEEP_IDLE_WORKERS,
                )
                break
            except Exception:
                ray.shutdown()
                if attempt == 2:
                    raise
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    yield info.address_info["gcs_address"]
    ray.shutdown()


def _stored(folder):
    with Store.open(folder, create=False, readonly=True) as store:
        return {r.run_hash: r for r in store.runs()}


def _numbers(run):
    return ({k: v for k, v in run.metrics.items() if k not in TIMING}, run.curves, run.arrays, run.status)


TINY = {  # 4 runs: enough for two at a time
    "seeds": 1, "noise": {"rates": [0.0, 0.3]}, "train": {"epochs": 4, "eval_every": 2},
    "model": {"width": 16, "depth": 1},
    "methods": {"label_smoothing": [0.1], "prior": [], "negative": [], "confidence_penalty": [], "focal": []},
}  # fmt: skip


def test_ray_stores_the_local_numbers_bit_for_bit_for_any_cluster_size(ray, cluster, tmp_path):
    local = run(TINY, out=tmp_path / "local", workers=1, report=False)
    assert len(local) == 4
    want = {h: _numbers(r) for h, r in _stored(tmp_path / "local").items()}
    # 2 runs at a time first, when no worker runs yet, so that Ray starts two at once (measured: both
    # train; run second, the second worker came up after the first had trained every run), then 1 at a time
    # (nothing here asserts which worker trained which run: the records do not say)
    for name, cpus in (("two-at-a-time", 1.0), ("one-at-a-time", 2.0)):
        cfg = {**TINY, "backend": "ray", "ray": {"cpus_per_run": cpus}}
        res = run(cfg, out=tmp_path / name, report=False)
        got = {h: _numbers(r) for h, r in _stored(tmp_path / name).items()}
        assert got == want, name  # every metric, curve and array, exactly
        assert [r["run_hash"] for r in res] == [r["run_hash"] for r in local]
    assert ray.is_initialized()  # a session opened by the caller is left open


def test_ray_runs_that_need_runs_get_their_artefacts_by_value(cluster, tmp_path):
    cfg = {"task": "toy_chain", "seeds": 2, "toy_chain": {"scale": 0.5}}
    local = {(r["method"], r["seed"]): r for r in run(cfg, out=tmp_path / "local", workers=1, report=False)}
    res = run({**cfg, "backend": "ray"}, out=tmp_path / "ray", report=False)
    by = {(r["method"], r["seed"]): r for r in res}
    assert set(by) == set(local)
    for key, r in by.items():
        for metric in ("total", "student_total", "teacher_logits"):
            assert r.get(metric) == local[key].get(metric), (key, metric)
    assert by[("student", 1)]["student_total"] == 2 * float(sum(range(3))) * 2 * 0.5
    assert {r["pid"] for r in res} & {os.getpid()} == set()  # they ran in Ray workers


@pytest.mark.parametrize("backend", ["ray", "local"])
def test_a_run_that_raises_is_stored_as_failed_once_and_the_study_goes_on(request, tmp_path, backend):
    if backend == "ray":
        request.getfixturevalue("cluster")
    marks = tmp_path / "marks"
    marks.mkdir()
    cfg = {"task": "toy_fault", "seeds": 2, "backend": backend, "workers": 1,
           "toy_fault": {"marker_dir": str(marks), "methods": {"raise": True, "ok": True}}}  # fmt: skip
    res = run(cfg, out=tmp_path / "s", report=True, log=lambda m: None)
    assert sorted(r["seed"] for r in res) == [0, 1] and {r["method"] for r in res} == {"ok"}
    assert sorted(f["seed"] for f in res.failed) == [0, 1]
    assert all(f["error"] == f"ValueError: deterministic failure of seed {f['seed']}" for f in res.failed)
    calls = (marks / "calls.log").read_text().split("\n")
    assert calls.count("raise 0") == 1 and calls.count("raise 1") == 1  # not retried
    rows = _stored(tmp_path / "s")
    failed = [r for r in rows.values() if r.status == "failed"]
    assert len(failed) == 2 and "in run_one" in failed[0].metrics["traceback"]
    assert "\x1b[" not in failed[0].metrics["traceback"]
    report = (tmp_path / "s" / "report.md").read_text()
    assert "2 runs failed" in report and "deterministic failure of seed 0" in report
    export = CliRunner().invoke(main, ["export", str(tmp_path / "s"), "--format", "json"])
    assert export.exit_code == 0 and {r["method"] for r in json.loads(export.output)} == {"ok"}
    run(cfg, out=tmp_path / "s", report=False, log=lambda m: None)  # rerunning retries the failed runs only
    calls = (marks / "calls.log").read_text().split("\n")
    assert calls.count("raise 0") == 2 and calls.count("ok 0") == 1


def test_a_killed_driver_resumes(cluster, tmp_path):
    """A driver (a process of its own, joined to the module's cluster) SIGKILLed once 2 of its 6 runs are
    stored; rerunning the study (from this process) trains the other 4 and none of the stored ones. The
    killed driver takes one run at a time (2 CPUs a run), so its job starts one Ray worker, not two."""
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "s"
    cfg = {"task": "toy_fault", "seeds": 6, "backend": "ray", "ray": {"address": cluster, "cpus_per_run": 2.0},
           "toy_fault": {"marker_dir": str(marks), "sleep": 0.5, "methods": {"slow": True}}}  # fmt: skip
    code = (
        "import json, study_fault_task\n"
        "from labelsmooth.study.runner import run\n"
        f"run(json.loads({json.dumps(cfg)!r}), out={str(out)!r}, report=False)\n"
    )
    stored = sigkill_once_a_run_is_stored(code, out, at_least=2, env=dict(os.environ))  # ray.init's RAY_AUTH_MODE
    assert 2 <= len(stored) < 6, stored
    res = run({**cfg, "ray": {}}, out=out, report=False)
    assert len(res) == 6 and not res.failed
    calls = (marks / "calls.log").read_text().split("\n")
    stored_seeds = {r.spec["seed"] for h, r in _stored(out).items() if h in stored}
    assert len(stored_seeds) == len(stored)
    assert all(calls.count(f"slow {s}") == 1 for s in stored_seeds)  # stored runs were not retrained


def test_a_killed_ray_worker_is_retried_and_nothing_is_lost(cluster, tmp_path):
    """One run's worker is SIGKILLed on its first attempt while another run goes on beside it; the killed
    run is retried (on a new worker) and both are stored, done."""
    marks = tmp_path / "marks"
    marks.mkdir()
    cfg = {"task": "toy_fault", "seeds": 1, "backend": "ray", "ray": {"max_retries": 2},
           "toy_fault": {"marker_dir": str(marks), "methods": {"ok": True, "crash_once": True}}}  # fmt: skip
    box: dict = {}
    study = threading.Thread(target=lambda: box.setdefault("res", run(cfg, out=tmp_path / "s", report=False)))
    study.start()
    pid_file, killed = marks / "0.pid", None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:  # crash_once, on its first attempt
        if pid_file.exists() and pid_file.read_text():
            killed = int(pid_file.read_text())
            assert killed != os.getpid()
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    study.join(120)
    assert killed is not None, "crash_once never started"
    assert not study.is_alive() and "res" in box
    res = box["res"]
    assert len(res) == 2 and not res.failed
    calls = (marks / "calls.log").read_text().split("\n")
    assert calls.count("crash_once 0") == 2 and calls.count("ok 0") == 1  # killed once, retried once
    assert all(r.status == "done" for r in _stored(tmp_path / "s").values())
    assert [r["score"] for r in res.where(method="crash_once")] == [1 / 7]


def test_retries_are_bounded_then_the_run_is_stored_as_failed(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    cfg = {"task": "toy_fault", "seeds": 1, "backend": "ray", "ray": {"max_retries": 1},
           "toy_fault": {"marker_dir": str(marks), "methods": {"ok": True, "crash_always": True}}}  # fmt: skip
    messages: list[str] = []
    res = run(cfg, out=tmp_path / "s", report=False, log=messages.append)
    assert [r["method"] for r in res] == ["ok"]
    (failed,) = res.failed
    assert failed["method"] == "crash_always" and "after 1 retries" in failed["error"]
    assert (marks / "calls.log").read_text().split("\n").count("crash_always 0") == 2  # 1 + max_retries
    assert any("failed" in m for m in messages)


def test_the_cli_lists_failed_runs_and_exits_1(tmp_path):
    out = tmp_path / "s"
    args = ["study", "--task", "toy_fault", "--out", str(out), "--seeds", "1", "--workers", "1", "--no-report",
            "--set", 'toy_fault.methods={"ok" = true, "raise" = true}']  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "1 runs failed" in result.output and "ValueError: deterministic failure of seed 0" in result.output


def test_dry_run_shows_the_backend_and_the_resources_per_run(tmp_path):
    base = ["study", "--task", "toy_fault", "--out", str(tmp_path / "s"), "--dry-run"]
    result = CliRunner().invoke(main, [*base, "--backend", "ray", "--set", "ray.gpus_per_run=0.5"])
    assert result.exit_code == 0, result.output
    assert "backend ray: a local Ray instance" in result.output and "per run 1 CPU, 0.5 GPU" in result.output
    result = CliRunner().invoke(main, [*base, "--backend", "ray", "--ray-address", "10.0.0.1:6379"])
    assert "the Ray cluster at 10.0.0.1:6379" in result.output
    result = CliRunner().invoke(main, [*base, "--workers", "1"])
    assert "backend local: this process; per run 1 CPU" in result.output
    assert not (tmp_path / "s").exists()


def test_without_ray_the_backend_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r'pip install "labelsmooth\[ray\]"'):
        run({"task": "toy_fault", "backend": "ray"}, out=tmp_path / "s")
    result = CliRunner().invoke(main, ["study", "--task", "toy_fault", "--out", str(tmp_path / "s"),
                                       "--backend", "ray"])  # fmt: skip
    assert result.exit_code == 1 and 'pip install "labelsmooth[ray]"' in result.output
    assert not (tmp_path / "s").exists()


def test_an_unreachable_address_is_one_line_naming_it(ray, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    monkeypatch.setattr(
        ray, "init", lambda *a, **k: pytest.fail("ray.init called for an unreachable address")
    )
    start = time.monotonic()
    result = CliRunner().invoke(main, ["study", "--task", "toy_fault", "--out", str(tmp_path / "s"),
                                       "--backend", "ray", "--ray-address", address,
                                       "--set", "ray.connect_timeout=1"])  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "`ray.address`" in lines[0], result.output
    assert time.monotonic() - start < 10
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [("backend", "dask", "`backend`"), ("ray.address", "nohost", "`ray.address`"),
     ("ray.address", "h:99999", "`ray.address`"), ("ray.cpus_per_run", 0, "`ray.cpus_per_run`"),
     ("ray.gpus_per_run", -1, "`ray.gpus_per_run`"), ("ray.max_retries", -1, "`ray.max_retries`"),
     ("ray.connect_timeout", 0, "`ray.connect_timeout`"), ("ray.adress", "auto", "did you mean `ray.address`")],
)  # fmt: skip
def test_backend_settings_are_validated(key, value, match):
    from labelsmooth.study.config import load_config

    with pytest.raises(ValueError, match=match):
        load_config(None, {key: value})
