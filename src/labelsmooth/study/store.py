"""The study database: one SQLite file (``study.sqlite``) in the output folder, stdlib ``sqlite3``.

Crash safety: WAL journal; one transaction per finished run; only the parent process writes. A study
killed with SIGKILL loses the runs in flight and nothing else, and re-running it skips every stored run
(keyed by the run's config hash).

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)        -- schema_version, library_version, config (JSON), ...
    runs(run_hash TEXT PRIMARY KEY, dataset, noise_kind, noise_rate, method, param, seed,
         library_version, config JSON, metrics JSON, curves JSON, arrays JSON, wall_time, finished_at)

The report needs nothing but this file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelsmooth import __version__
from labelsmooth._validation import expected

SCHEMA_VERSION = 1
DB_NAME = "study.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_hash TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    noise_kind TEXT NOT NULL,
    noise_rate REAL NOT NULL,
    method TEXT NOT NULL,
    param TEXT,
    seed INTEGER NOT NULL,
    library_version TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    curves TEXT NOT NULL,
    arrays TEXT NOT NULL,
    wall_time REAL NOT NULL,
    finished_at TEXT NOT NULL
);
"""

MIGRATIONS: dict[int, str] = {}
"""SQL taking schema version v to v + 1, keyed by v (none yet)."""


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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))


def _param_text(param: Any) -> str | None:
    return None if param is None else json.dumps(param)


class Store:
    """An open study database. Use as a context manager; ``Store.open(folder)`` creates or upgrades it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, folder: str | Path, *, create: bool = True) -> Store:
        """Open ``folder/study.sqlite``; create it when ``create`` (else FileNotFoundError). Refuses a
        database
        written by a newer schema; migrates an older one."""
        path = Path(folder) / DB_NAME
        if not path.is_file() and not create:
            raise FileNotFoundError(expected("RUN_DIR", f"to hold a study database ({DB_NAME})", str(folder)))
        conn = sqlite3.connect(path, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(conn, path)
            store._init_schema()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            conn.close()
            if isinstance(
                exc, sqlite3.OperationalError
            ):  # locked, disk I/O: not a question of the file's content
                raise
            raise ValueError(
                expected(
                    "RUN_DIR",
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
            with self.conn:
                while version < SCHEMA_VERSION:  # pragma: no cover - no migration exists yet
                    self.conn.executescript(MIGRATIONS[version])
                    version += 1
                    self.set_meta("schema_version", str(version))
            return
        with self.conn:
            self.conn.executescript(_SCHEMA)
            self.conn.execute(
                "INSERT OR REPLACE INTO meta VALUES"
                " ('schema_version', ?), ('library_version', ?), ('created', ?)",
                (str(SCHEMA_VERSION), __version__, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
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

    # ---------------------------------------------------------------- runs
    def done_hashes(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT run_hash FROM runs")}

    def add_run(self, record: dict[str, Any]) -> None:
        """Insert one finished run in its own transaction (all of the row or none of it)."""
        spec = record["spec"]
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record["run_hash"],
                    spec["dataset"],
                    spec["noise_kind"],
                    float(spec["noise_rate"]),
                    spec["method"],
                    _param_text(spec["param"]),
                    int(spec["seed"]),
                    __version__,
                    _dumps(record["config"]),
                    _dumps(_clean(record["metrics"])),
                    _dumps(_clean(record["curves"])),
                    _dumps(_clean(record["arrays"])),
                    float(record["metrics"].get("wall_time", 0.0)),
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                ),
            )

    def runs(self) -> list[StoredRun]:
        """Every stored run, in a stable order (dataset, noise, seed, method, param)."""
        rows = self.conn.execute(
            "SELECT run_hash, dataset, noise_kind, noise_rate, method, param, seed, library_version, config,"
            " metrics, curves, arrays, wall_time, finished_at FROM runs"
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
            out.append(
                StoredRun(
                    r[0],
                    spec,
                    r[7],
                    json.loads(r[8]),
                    json.loads(r[9]),
                    json.loads(r[10]),
                    json.loads(r[11]),
                    r[12],
                    r[13],
                )
            )
        return out


def grid_runs(store: Store) -> list[StoredRun]:
    """The stored runs of the study's latest grid (meta ``grid``), in grid order (datasets, noise rates,
    seeds, then methods as configured: hard, smoothing, prior, negative, penalty, focal)."""
    grid = store.get_meta("grid")
    runs = store.runs()
    if grid is None:
        return runs
    order = {h: i for i, h in enumerate(grid.split(","))} if grid else {}
    return sorted((r for r in runs if r.run_hash in order), key=lambda r: order[r.run_hash])


def _clean(obj: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
