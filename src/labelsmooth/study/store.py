"""The study database: one SQLite file (``study.sqlite``) in the output folder, stdlib ``sqlite3``, and the
runs' artefacts beside it (``artefacts/<run_hash>/``).

Crash safety: WAL journal; one transaction per finished run; only the parent process writes; a run's
artefacts are written (to a temporary folder, then renamed) before its row is committed, so a stored row
always has its artefacts. A study killed with SIGKILL loses the runs in flight and nothing else, and
re-running it skips every stored run (keyed by the run's config hash).

Schema (version 2, generic over tasks)::

    meta(key TEXT PRIMARY KEY, value TEXT)   -- schema_version, library_version, created, task, config
                                             -- (JSON), configs (JSON list, one per --extend), grid, ...
    runs(run_hash TEXT PRIMARY KEY, task TEXT, axes JSON, needs JSON (list of run hashes),
         status TEXT ('done' | 'failed'), library_version, config JSON, metrics JSON, curves JSON,
         arrays JSON, wall_time REAL, finished_at TEXT)

A run that raised is stored with status ``failed``, its ``metrics`` holding ``error`` (one line: the
exception's type and message) and ``traceback``; it is not in the study's results (``report``,
``export``), it is not "done" (so rerunning the study retries it), and a stored ``done`` row replaces it.

Version 1 (labelsmooth 0.1.0, classification only) had the columns dataset, noise_kind, noise_rate,
method, param (JSON text), seed instead of task, axes, needs, status. A version-1 database is read as it
is when opened read-only (report, export, ``--dry-run``) and migrated in place (one transaction) when a
study writes to it; its run hashes are unchanged, so a resumed 0.1.0 study retrains nothing.

Commands that only read open the database read-only (``file:...?mode=ro``; with ``immutable=1`` when the
folder is not writable), so they work on a read-only folder. A writer uses WAL while it is open and
switches the file back to a rollback journal when it closes, so a finished study is one file that readers
open without creating ``-wal`` / ``-shm`` files (a study killed mid-run leaves its WAL files, which the
next writer or a reader in a writable folder picks up).

The report needs nothing but this file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelsmooth import __version__
from labelsmooth._validation import expected

SCHEMA_VERSION = 2
DB_NAME = "study.sqlite"
ARTEFACTS = "artefacts"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_hash TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    axes TEXT NOT NULL,
    needs TEXT NOT NULL,
    status TEXT NOT NULL,
    library_version TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    curves TEXT NOT NULL,
    arrays TEXT NOT NULL,
    wall_time REAL NOT NULL,
    finished_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredRun:
    """One row of ``runs``, decoded."""

    run_hash: str
    spec: dict[str, Any]
    library_version: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    curves: dict[str, list]
    arrays: dict[str, Any]
    wall_time: float
    finished_at: str
    task: str = "classification"
    needs: tuple[str, ...] = ()
    status: str = "done"
    artefact_dir: Path | None = field(default=None, compare=False)

    @property
    def error(self) -> str | None:
        """A failed run's error (``"ValueError: ..."``), None for a finished one."""
        return self.metrics.get("error") if self.status == "failed" else None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))


class Store:
    """An open study database. Use as a context manager; ``Store.open(folder)`` creates or upgrades it,
    ``Store.open(folder, create=False, readonly=True)`` only reads it."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.version = SCHEMA_VERSION

    @classmethod
    def open(
        cls, folder: str | Path, *, create: bool = True, readonly: bool = False, option: str = "RUN_DIR"
    ) -> Store:
        """Open ``folder/study.sqlite``; create it when ``create`` (else FileNotFoundError). Refuses a
        database written by a newer schema; migrates an older one unless ``readonly`` (then reads it as
        it is). Refuses, with one line naming the path, a ``study.sqlite`` that is a folder, an empty file
        (for readers) or another program's SQLite database. ``option`` names the folder in messages
        (``RUN_DIR`` for ``report``/``export``, ``--out`` for ``study``)."""
        path = Path(folder) / DB_NAME
        if path.exists() and not path.is_file():
            raise ValueError(
                f"{path} is not a file (a folder?); it should be the study's database: move it away, or "
                f"use another {option}."
            )
        if not path.is_file() and (not create or readonly):
            raise FileNotFoundError(expected(option, f"to hold a study database ({DB_NAME})", str(folder)))
        if readonly and path.stat().st_size == 0:
            raise ValueError(
                f"{path} is empty (0 bytes), not a study database: rerun the study into {folder} "
                "(`labelsmooth study --out ...`), or delete the file."
            )
        if readonly:
            uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
            if not os.access(path.parent, os.W_OK):  # WAL cannot create its -shm file: read as immutable
                uri += "&immutable=1"
            conn = sqlite3.connect(uri, uri=True, timeout=30.0)
        else:
            conn = sqlite3.connect(path, timeout=30.0)
        try:
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(conn, path, readonly=readonly)
            store._init_schema()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            conn.close()
            if isinstance(
                exc, sqlite3.OperationalError
            ):  # locked, disk I/O: not a question of the file's content
                raise
            raise ValueError(
                expected(
                    option,
                    f"to hold a readable study database, but {path} is not one ({exc})",
                    str(folder),
                )
            ) from exc
        except BaseException:  # newer schema, interrupted: close before raising
            conn.close()
            raise
        return store

    def _init_schema(self) -> None:
        have = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not have:
            other = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if other:  # another program's database: never write our schema into it
                raise ValueError(
                    f"{self.path} is a SQLite database of another program ({other} table(s), none of a "
                    "labelsmooth study); it is left untouched: use another folder."
                )
        if have:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    expected(
                        "schema_version",
                        f"<= {SCHEMA_VERSION} (this database was written by a newer labelsmooth; upgrade it)",
                        version,
                    )
                )
            self.version = version
            if version < SCHEMA_VERSION and not self.readonly:
                self._migrate_v1()
            return
        if self.readonly:  # pragma: no cover - a read-only open never creates (checked above)
            raise FileNotFoundError(expected("RUN_DIR", "to hold a study database", str(self.path)))
        with self.conn:
            self.conn.executescript(_SCHEMA)
            self.conn.execute(
                "INSERT OR REPLACE INTO meta VALUES"
                " ('schema_version', ?), ('library_version', ?), ('created', ?)",
                (str(SCHEMA_VERSION), __version__, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2 in one transaction: the axes columns become ``axes`` JSON; task classification."""
        rows = self._v1_rows()
        with self.conn:
            self.conn.execute("ALTER TABLE runs RENAME TO runs_v1")
            self.conn.execute(_RUNS_TABLE)
            for r in rows:
                self._insert(r)
            self.conn.execute("DROP TABLE runs_v1")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.set_meta("migrated_from", "1")
        self.version = SCHEMA_VERSION

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close; a writer first leaves WAL mode (checkpointing the WAL into the file), so that the closed
        database is one self-contained file that read-only readers open without a ``-shm`` file."""
        if not self.readonly:
            try:
                self.conn.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:  # another connection is open: it stays in WAL mode, which is also fine
                pass
        self.conn.close()

    # ---------------------------------------------------------------- meta
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def save_config(self, config: dict[str, Any]) -> None:
        """Record the study's resolved config (the latest one used on this folder)."""
        with self.conn:
            self.set_meta("config", _dumps(config))

    def config(self) -> dict[str, Any] | None:
        text = self.get_meta("config")
        return json.loads(text) if text else None

    def task(self) -> str:
        """The study's task: meta ``task``, else that of its config, else classification (0.1.0)."""
        name = self.get_meta("task")
        if name:
            return name
        cfg = self.config() or {}
        return str(cfg.get("task", "classification"))

    def grid(self) -> list[str] | None:
        """The run hashes of the study's grid (meta ``grid``), None when never set."""
        text = self.get_meta("grid")
        if text is None:
            return None
        return text.split(",") if text else []

    # ---------------------------------------------------------------- runs
    def done_hashes(self) -> set[str]:
        if self.version < 2:
            return {r[0] for r in self.conn.execute("SELECT run_hash FROM runs")}
        return {r[0] for r in self.conn.execute("SELECT run_hash FROM runs WHERE status='done'")}

    def add_run(self, record: dict[str, Any]) -> None:
        """Insert one finished run in its own transaction (all of the row or none of it). ``record`` holds
        run_hash, spec (the axes), config, metrics, curves, arrays, and optionally task, needs and status
        (``"done"``, or ``"failed"`` with ``metrics`` holding ``error`` and ``traceback``)."""
        status = record.get("status", "done")
        if status not in ("done", "failed"):
            raise ValueError(expected("status", "to be 'done' or 'failed'", status))
        row = StoredRun(
            record["run_hash"], dict(record["spec"]), __version__, record["config"],
            _clean(record["metrics"]), _clean(record["curves"]), _clean(record["arrays"]),
            float(record["metrics"].get("wall_time", 0.0) or 0.0),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            task=record.get("task", "classification"), needs=tuple(record.get("needs", ())), status=status,
        )  # fmt: skip
        with self.conn:
            self._insert(row)

    def _insert(self, r: StoredRun) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.run_hash, r.task, _dumps(r.spec), _dumps(list(r.needs)), r.status, r.library_version,
             _dumps(r.config), _dumps(r.metrics), _dumps(r.curves), _dumps(r.arrays), float(r.wall_time),
             r.finished_at),
        )  # fmt: skip

    def failed_runs(self) -> list[StoredRun]:
        """The stored runs that failed (status ``failed``), in the order they were stored."""
        return [r for r in self.runs() if r.status == "failed"]

    def runs(self) -> list[StoredRun]:
        """Every stored run, failed ones included, in the order they were stored (version 1: dataset,
        noise, seed, method)."""
        if self.version < 2:
            return self._v1_rows()
        rows = self.conn.execute(
            "SELECT run_hash, task, axes, needs, status, library_version, config, metrics, curves, arrays,"
            " wall_time, finished_at FROM runs ORDER BY rowid"
        ).fetchall()
        folder = self.path.parent / ARTEFACTS
        return [
            StoredRun(r[0], json.loads(r[2]), r[5], json.loads(r[6]), json.loads(r[7]), json.loads(r[8]),
                      json.loads(r[9]), r[10], r[11], task=r[1], needs=tuple(json.loads(r[3])), status=r[4],
                      artefact_dir=folder / r[0] if (folder / r[0]).is_dir() else None)
            for r in rows
        ]  # fmt: skip

    def _v1_rows(self) -> list[StoredRun]:
        mid_migration = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs_v1'"
        ).fetchone()
        table = "runs_v1" if mid_migration else "runs"
        rows = self.conn.execute(
            "SELECT run_hash, dataset, noise_kind, noise_rate, method, param, seed, library_version, config,"
            f" metrics, curves, arrays, wall_time, finished_at FROM {table}"
            " ORDER BY dataset, noise_kind, noise_rate, seed, method, param"
        ).fetchall()
        out = []
        for r in rows:
            spec = {
                "dataset": r[1],
                "noise_kind": r[2],
                "noise_rate": r[3],
                "method": r[4],
                "param": json.loads(r[5]) if r[5] is not None else None,
                "seed": r[6],
            }
            out.append(StoredRun(r[0], spec, r[7], json.loads(r[8]), json.loads(r[9]), json.loads(r[10]),
                                 json.loads(r[11]), r[12], r[13]))  # fmt: skip
        return out


_RUNS_TABLE = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS runs") :].rstrip().rstrip(";")


def grid_runs(store: Store) -> list[StoredRun]:
    """The finished (``done``) runs of the study's grid (meta ``grid``), in grid order (classification:
    datasets, noise rates, seeds, then methods in registry order). See :func:`outside_grid` for the others."""
    grid = store.grid()
    runs = [r for r in store.runs() if r.status == "done"]
    if grid is None:
        return runs
    order = {h: i for i, h in enumerate(grid)}
    return sorted((r for r in runs if r.run_hash in order), key=lambda r: order[r.run_hash])


def outside_grid(store: Store) -> list[StoredRun]:
    """Stored runs that are not in the study's grid (a folder reused with another config by 0.1.0, which
    replaced the grid silently). ``export --all`` includes them; ``export`` says how many it left out."""
    grid = store.grid()
    if grid is None:
        return []
    keep = set(grid)
    return [r for r in store.runs() if r.run_hash not in keep and r.status == "done"]


# ------------------------------------------------------------------------------------------- artefacts
def save_artefacts(folder: str | Path, run_hash: str, artefacts: dict[str, Any]) -> Path | None:
    """Write a run's artefacts to ``folder/artefacts/<run_hash>/``: tensors as ``<name>.pt``
    (``torch.save``), numpy arrays as ``<name>.npy``. Written to a temporary folder and renamed, so the
    folder is complete or absent. Returns it (None when there are no artefacts)."""
    if not artefacts:
        return None
    import numpy as np
    import torch

    root = Path(folder) / ARTEFACTS
    final = root / run_hash
    tmp = root / f".{run_hash}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for name, value in artefacts.items():
            if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(expected("artefact name", "to be a plain identifier", name))
            if isinstance(value, torch.Tensor):
                torch.save(value.detach().cpu(), tmp / f"{name}.pt")
            elif isinstance(value, np.ndarray):
                np.save(tmp / f"{name}.npy", value, allow_pickle=False)
            else:
                raise TypeError(expected(f"artefact {name!r}", "to be a torch.Tensor or a numpy array",
                                         type(value).__name__))  # fmt: skip
        if final.exists():  # a run retrained after its row was lost: replace its artefacts
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_artefacts(path: str | Path) -> dict[str, Any]:
    """The artefacts saved by :func:`save_artefacts` (tensors with ``weights_only=True``, arrays without
    pickle)."""
    import numpy as np
    import torch

    out: dict[str, Any] = {}
    for f in sorted(Path(path).iterdir()):
        if f.suffix == ".pt":
            out[f.stem] = torch.load(f, weights_only=True)
        elif f.suffix == ".npy":
            out[f.stem] = np.load(f, allow_pickle=False)
    return out


def _clean(obj: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
