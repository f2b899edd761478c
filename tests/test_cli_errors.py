"""Issue 10 §3/§4: every user error of the CLI is one line naming the path and what to do; the help shows
defaults; progress without a terminal; the closing line counts trained and stored runs."""

from __future__ import annotations

import os
import random
import re
import sqlite3

import numpy as np
from click.testing import CliRunner

from labelsmooth.cli import main, one_line
from labelsmooth.study import runner as runner_mod
from labelsmooth.study.config import StudyConfig

TINY = ["--seeds", "1", "--epochs", "4", "--noise", "0", "--alphas", "0.1", "--width", "8", "--depth", "1",
        "--set", "methods.prior=[]", "--set", "methods.negative=[]", "--set", "methods.confidence_penalty=[]",
        "--set", "methods.focal=[]", "--set", "train.eval_every=2", "--workers", "1"]  # fmt: skip


def _error(args, **kw) -> str:
    """The error output of a failing command: one line, no traceback."""
    result = CliRunner().invoke(main, args, **kw)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 or lines[-2].startswith("Try "), result.output  # click's usage hint + the line
    return lines[-1]


def _csv(path, n=60, nan_at=None, labels=None):
    rng = random.Random(0)
    rows = ["x1,x2,label"]
    for i in range(n):
        x2 = "nan" if i == nan_at else f"{rng.random():.3f}"
        rows.append(f"{rng.random():.3f},{x2},{labels[i] if labels else i % 2}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_data_file_errors_are_one_line_naming_the_file(tmp_path):
    dry = ["study", "--dry-run", "--data-path"]
    assert "to be a .csv file for dataset 'csv'" in _error([*dry, str(tmp_path), "--dataset", "csv"])
    assert "to be a .npz file for dataset 'npz'" in _error([*dry, str(tmp_path), "--dataset", "npz"])
    np.save(tmp_path / "a.npy", np.zeros((10, 3)))
    assert "a.npy is a .npy file (one array), not a .npz archive" in _error(
        [*dry, str(tmp_path / "a.npy"), "--dataset", "npz"])  # fmt: skip
    (tmp_path / "t.npz").write_text("hello")
    msg = _error([*dry, str(tmp_path / "t.npz"), "--dataset", "npz"])
    assert "t.npz is not a .npz archive" in msg and "allow_pickle" not in msg and "pickle.load" not in msg
    np.savez(tmp_path / "o.npz", X=np.zeros((40, 3)), y=np.array(["a", "b"] * 20, dtype=object))
    msg = _error([*dry, str(tmp_path / "o.npz"), "--dataset", "npz"])
    assert "array y has object dtype, which is never loaded" in msg and "allow_pickle" not in msg
    (tmp_path / "bad.csv").write_bytes(b"x,label\n1,\xe9\n")
    assert "bad.csv is not UTF-8 text (byte 0xe9 at offset 10)" in _error(
        [*dry, str(tmp_path / "bad.csv"), "--dataset", "csv"])  # fmt: skip
    (tmp_path / "bad.toml").write_bytes(b'seeds = "\xe9"\n')
    assert "bad.toml is not UTF-8 text" in _error(
        ["study", "--dry-run", "--config", str(tmp_path / "bad.toml")]
    )
    few = _csv(tmp_path / "few.csv", n=42, labels=["cat"] * 40 + ["rare"] * 2)
    assert "Expected `class 'rare'` to have at least 3 examples" in _error(
        [*dry, str(few), "--dataset", "csv"]
    )
    nan = _csv(tmp_path / "nan.csv", nan_at=7)
    assert "Expected `nan.csv line 9, column 'x2'` to be a finite number, got 'nan'." in _error(
        [*dry, str(nan), "--dataset", "csv"])  # fmt: skip


def test_flag_mistakes_are_refused(tmp_path):
    few = _csv(tmp_path / "d.csv")
    assert "did you mean `--dataset csv`?" in _error(["study", "--dry-run", "--data-path", str(few)])
    assert "Expected `--alphas` to list at least one number" in _error(["study", "--dry-run", "--alphas", ""])
    msg = _error(["study", "--dry-run", "--alphas", "0.1,-0.1"])
    assert "negative smoothing is the method methods.negative (--set methods.negative=[-0.1])" in msg


def test_folder_and_database_errors_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    assert _error(["study", "--out", str(tmp_path / "f"), *TINY]) == (
        f"Error: Expected `--out` to be a folder, got '{tmp_path / 'f'} (a file)'."
    )
    d = tmp_path / "d"
    (d / "study.sqlite").mkdir(parents=True)
    assert "study.sqlite is not a file (a folder?)" in _error(["export", str(d)])
    assert "use another --out" in _error(["study", "--out", str(d), *TINY])  # --out, not RUN_DIR
    z = tmp_path / "z"
    z.mkdir()
    (z / "study.sqlite").write_bytes(b"")
    for cmd in ("export", "report"):
        assert "study.sqlite is empty (0 bytes), not a study database" in _error([cmd, str(z)])
    assert (z / "study.sqlite").stat().st_size == 0  # no schema written into it
    fo = tmp_path / "fo"
    fo.mkdir()
    with sqlite3.connect(fo / "study.sqlite") as c:
        c.execute("CREATE TABLE t (x)")
    for args in (["export", str(fo)], ["study", "--out", str(fo), *TINY]):
        assert "is a SQLite database of another program" in _error(args)
    with sqlite3.connect(fo / "study.sqlite") as c:  # left untouched
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["t"]
    assert "study.sqlite" in _error(["export", str(tmp_path / "nothing")])  # missing: names the database
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(runner_mod.os, "access", lambda path, mode: not mode & os.W_OK)  # root ignores chmod
    assert "the folder is read-only. Choose another --out" in _error(["study", "--out", str(ro), *TINY])


def test_locked_database_and_os_errors_read_as_one_line():
    assert one_line(sqlite3.OperationalError("database is locked")).startswith(
        "The study database is locked by another process (waited 30 s)"
    )
    assert one_line(IsADirectoryError(21, "Is a directory", "x/y")) == "x/y: Is a directory."


def test_export_to_a_missing_folder_is_one_line(tmp_path):
    out = tmp_path / "s"
    assert CliRunner().invoke(main, ["study", "--out", str(out), "--no-report", *TINY]).exit_code == 0
    msg = _error(["export", str(out), "-o", str(tmp_path / "missing" / "r.csv")])
    assert "r.csv (No such file or directory): create its folder first" in msg


def test_help_shows_the_defaults_and_which_options_repeat():
    text = " ".join(CliRunner().invoke(main, ["study", "--help"]).output.split())
    cfg = StudyConfig()
    shown = {
        "--noise": ",".join(f"{r:g}" for r in cfg.noise.rates),
        "--alphas": ",".join(f"{a:g}" for a in cfg.to_dict()["methods"]["label_smoothing"]),
        "--epochs": str(cfg.train.epochs), "--model": cfg.model.kind, "--width": str(cfg.model.width),
        "--depth": str(cfg.model.depth), "--lr": f"{cfg.train.lr:g}", "--seeds": str(len(cfg.seeds)),
        "--out": cfg.out, "--noise-kind": cfg.noise.kind, "--dataset": cfg.data.datasets[0],
    }  # fmt: skip
    for option, default in shown.items():
        assert re.search(
            re.escape(option) + r"\b(?:(?!--).)*?\[default: " + re.escape(default) + r"\]", text
        ), option
    assert "repeat for several. [default: digits]" in text and "train.lr=0.001; repeat for several" in text


def test_progress_lines_without_a_terminal_and_trained_vs_stored(tmp_path):
    out = str(tmp_path / "s")
    first = CliRunner().invoke(main, ["study", "--out", out, "--no-report", *TINY])
    assert first.exit_code == 0, first.output
    assert "labelsmooth: 1/2 runs done" in first.output and "labelsmooth: 2/2 runs done" in first.output
    assert "2 runs: 2 trained in" in first.output
    again = CliRunner().invoke(
        main, ["study", "--out", out, "--no-report", *TINY, "--alphas", "0.1,0.2", "--extend"]
    )
    assert again.exit_code == 0, again.output
    assert re.search(r"3 runs: 1 trained in [0-9.]+ s, 2 already stored\.", again.output), again.output
    assert "1/1 runs done" in again.output
