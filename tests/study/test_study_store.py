"""The study database: schema, versions, one transaction per run."""

from __future__ import annotations

import sqlite3

import pytest

from labelsmooth import __version__
from labelsmooth.study.store import DB_NAME, SCHEMA_VERSION, Store


def _record(h="abc", seed=0, **metrics):
    return {
        "run_hash": h,
        "spec": {"dataset": "digits", "noise_kind": "symmetric", "noise_rate": 0.0, "method": "ls", "param": 0.1,
                 "seed": seed},
        "config": {"x": 1},
        "metrics": {"accuracy": 0.9, "wall_time": 1.0, "gap": float("inf"), **metrics},
        "curves": {"epoch": [1]},
        "arrays": {"hist": [1, 2]},
    }  # fmt: skip


def test_create_and_read_back(tmp_path):
    with Store.open(tmp_path) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.get_meta("library_version") == __version__
        store.add_run(_record())
        store.save_config({"seeds": [0]})
    with Store.open(tmp_path, create=False) as store:
        (run,) = store.runs()
        assert run.spec["param"] == 0.1 and run.spec["seed"] == 0
        assert run.metrics["accuracy"] == 0.9 and run.metrics["gap"] is None  # inf is stored as null
        assert run.library_version == __version__
        assert store.config() == {"seeds": [0]}
        assert store.done_hashes() == {"abc"}
        mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="RUN_DIR"):
        Store.open(tmp_path, create=False)
    assert not (tmp_path / DB_NAME).exists()


def test_corrupt_database_is_a_clear_error(tmp_path):
    """A file that is not SQLite: ValueError naming RUN_DIR (the CLI prints it as one line), file untouched."""
    (tmp_path / DB_NAME).write_bytes(b"not a database at all" * 10)
    with pytest.raises(ValueError, match=r"RUN_DIR.*not one"):
        Store.open(tmp_path, create=False)
    assert (tmp_path / DB_NAME).read_bytes() == b"not a database at all" * 10
    from click.testing import CliRunner

    from labelsmooth.cli import main

    for cmd in (["report", str(tmp_path)], ["export", str(tmp_path)]):
        result = CliRunner().invoke(main, cmd)
        assert result.exit_code == 1
        assert "Traceback" not in result.output and "RUN_DIR" in result.output


def test_newer_schema_is_refused(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    with conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(RuntimeError, match="newer labelsmooth"):
        Store.open(tmp_path)


def test_a_failed_insert_leaves_no_row(tmp_path):
    with Store.open(tmp_path) as store:
        bad = _record("bad")
        bad["curves"] = {"epoch": [object()]}  # not JSON: fails inside the transaction
        with pytest.raises(TypeError):
            store.add_run(bad)
        assert store.runs() == []
        store.add_run(_record("ok"))
        assert [r.run_hash for r in store.runs()] == ["ok"]


def test_connection_closed_when_open_fails(tmp_path, monkeypatch):
    (tmp_path / DB_NAME).write_bytes(b"not a database" * 512)
    opened, real_connect = [], sqlite3.connect

    def connect(*args, **kwargs):
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(ValueError, match="RUN_DIR"):
        Store.open(tmp_path)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")
