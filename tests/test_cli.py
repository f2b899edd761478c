"""The `labelsmooth` command: CliRunner end to end, and a real `python -m labelsmooth` subprocess killed
with SIGKILL mid-study, then resumed by the same command."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from click.testing import CliRunner

from labelsmooth.cli import main
from study_fixtures import PYTHON, subprocess_env

TINY_FLAGS = [
    "--seeds", "2", "--epochs", "8", "--noise", "0,0.3", "--alphas", "0.1", "--width", "32", "--depth", "1",
    "--set", "methods.prior=[]", "--set", "methods.negative=[]", "--set", "methods.confidence_penalty=[]",
    "--set", "methods.focal=[]", "--set", "train.eval_every=4", "--workers", "1",
]  # fmt: skip


def study_command(out, *flags: str) -> list[str]:
    """``python -m labelsmooth study --out OUT FLAGS...`` as the argument list of a real subprocess."""
    return [PYTHON, "-m", "labelsmooth", "study", "--out", str(out), *flags]


def stored_runs(db) -> int:
    """The rows of the study database's ``runs`` table; 0 while it is missing or locked (opened read-only, so
    polling it never creates it)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "study"
    result = CliRunner().invoke(main, ["study", "--out", str(out), *TINY_FLAGS])
    return out, result


def test_study_end_to_end(cli_study):
    out, result = cli_study
    assert result.exit_code == 0, result.output
    assert "hard (a=0)" in result.output and "ls a=0.1" in result.output  # the summary table
    assert "Verdict" in result.output
    assert str(out / "report.html") in result.output
    for name in ("study.sqlite", "report.html", "report.md", "config.toml"):
        assert (out / name).is_file()
    assert "epochs = 8" in (out / "config.toml").read_text()  # the resolved config is saved


def test_flags_override_the_config_file(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("seeds = 4\n[train]\nepochs = 99\n")
    result = CliRunner().invoke(main, ["study", "--config", str(cfg), "--epochs", "3", "--dry-run",
                                       "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("72 runs (3 epochs each)")  # 4 seeds x 2 noise x 9 methods
    assert not (tmp_path / "o").exists()
    cfg_out = CliRunner().invoke(main, ["study", "--config", str(cfg), "--epochs", "0"])
    assert cfg_out.exit_code != 0 and "train.epochs" in cfg_out.output


def test_dry_run_lists_the_grid_and_marks_stored_runs(cli_study):
    out, _ = cli_study
    result = CliRunner().invoke(main, ["study", "--out", str(out), *TINY_FLAGS, "--seeds", "3", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("12 runs (8 epochs each), 4 to train")
    rows = [line.split() for line in result.output.splitlines()[1:] if line.strip()[:1].isdigit()]
    assert [r[-1] for r in rows].count("stored") == 8 and [r[-1] for r in rows].count("todo") == 4
    # a grid that differs from the stored one (3 seeds instead of 2) is announced: `study` would refuse it
    assert "holds another study (8 runs stored)" in result.output and "--extend" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--epochs", "0"], "train.epochs"),
        (["--set", "train.epoch=3"], "train.epoch"),
        (["--set", "nokey"], "KEY=VALUE"),
        (["--noise", "0,abc"], "--noise"),
        (["--noise", "1.5"], "noise.rates"),
        (["--alphas", "1.2"], "methods.label_smoothing"),
        (["--seeds", "x"], "--seeds"),
        (["--dataset", "npz", "--data-path", "missing.npz"], "data.path"),
        (["--dataset", "csv"], "data.path"),
        (["--config", "missing.toml"], "config"),
    ],
)
def test_bad_configs_are_one_line_errors_and_write_nothing(tmp_path, args, fragment):
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["study", "--out", str(out), *args])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_export_csv_and_json(cli_study, tmp_path):
    out, _ = cli_study
    res = CliRunner().invoke(main, ["export", str(out), "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 + 8 and lines[0].startswith("dataset,noise_kind,noise_rate,method")
    target = tmp_path / "runs.json"
    res = CliRunner().invoke(main, ["export", str(out), "--format", "json", "-o", str(target)])
    assert res.exit_code == 0, res.output
    rows = json.loads(target.read_text())
    assert len(rows) == 8 and {"accuracy", "ts_ece", "run_hash"} <= set(rows[0])


def test_report_redraws_identically(cli_study):
    out, _ = cli_study
    before = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").read_bytes() == before


def test_report_and_export_of_a_missing_folder(tmp_path):
    for cmd in (["report"], ["export"]):
        res = CliRunner().invoke(main, [*cmd, str(tmp_path / "nothing")])
        assert res.exit_code != 0 and "RUN_DIR" in res.output


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "killed"
    args = study_command(
        out, "--quiet", "--no-report", *TINY_FLAGS, "--seeds", "4", "--epochs", "40", "--noise", "0"
    )  # 8 runs
    proc = subprocess.Popen(args, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "study.sqlite"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None and (not db.exists() or stored_runs(db) < 1):
        time.sleep(0.02)
    assert proc.poll() is None, "the study finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = stored_runs(db)
    assert 1 <= done_before < 8
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    resumed = CliRunner().invoke(main, args[3:])  # the same command, in this process (no second start-up)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip() == str(out / "study.sqlite")  # --quiet --no-report prints the database
    assert resumed.stderr == ""  # --quiet and not a TTY: no progress bar
    con = sqlite3.connect(db)
    hashes = [h for (h,) in con.execute("SELECT run_hash FROM runs")]
    grid = con.execute("SELECT value FROM meta WHERE key='grid'").fetchone()[0].split(",")
    assert len(hashes) == len(set(hashes)) == 8
    assert sorted(hashes) == sorted(grid)
    for (metrics,) in con.execute("SELECT metrics FROM runs"):
        assert json.loads(metrics)["accuracy"] is not None  # no partial rows
