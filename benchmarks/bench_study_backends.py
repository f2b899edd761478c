"""The study's Ray backend against the local backend on this machine: wall time of the same study with
``--backend local`` and ``--backend ray`` (a local Ray instance started and stopped by the study), each in
a fresh process, and the overhead as a ratio. It also checks that both stored the same numbers.

The default study is ``labelsmooth study`` with no arguments (90 runs). On a loaded machine pass a reduced
grid (``--seeds 2 --epochs 100``) and say so. Ratios measured in one run; the seconds depend on the load
(printed with ``os.getloadavg``). Usage::

    python benchmarks/bench_study_backends.py                       # the default study
    python benchmarks/bench_study_backends.py --seeds 2 --epochs 100  # a reduced grid
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def study(out: Path, backend: str, extra: list[str]) -> float:
    """Wall seconds of one `labelsmooth study` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "labelsmooth", "study", "--out", str(out), "--backend", backend, "--quiet",
           "--no-report", *extra]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def numbers(out: Path) -> dict[str, dict]:
    """run_hash -> metrics without the wall time, from the stored database."""
    with sqlite3.connect(out / "study.sqlite") as conn:
        rows = conn.execute("SELECT run_hash, metrics FROM runs WHERE status='done'").fetchall()
    out_ = {}
    for h, m in rows:
        metrics = json.loads(m)
        metrics.pop("wall_time", None)
        out_[h] = metrics
    return out_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", help="seeds (default: the default study's 5)")
    parser.add_argument("--epochs", help="epochs per run (default: the default study's 300)")
    args = parser.parse_args()
    extra = (["--seeds", args.seeds] if args.seeds else []) + (
        ["--epochs", args.epochs] if args.epochs else []
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        t_local = study(Path(tmp) / "local", "local", extra)
        t_ray = study(Path(tmp) / "ray", "ray", extra)
        same = numbers(Path(tmp) / "local") == numbers(Path(tmp) / "ray")
        n = len(numbers(Path(tmp) / "local"))
    load_after = os.getloadavg()
    grid = "the default study" if not extra else "a reduced grid (" + " ".join(extra) + ")"
    print(f"{grid}: {n} runs; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print(f"local backend (workers = auto): {t_local:7.1f} s")
    print(f"ray backend (local instance):   {t_ray:7.1f} s")
    print(f"ratio ray / local: {t_ray / t_local:.2f}; stored numbers identical: {same}")


if __name__ == "__main__":
    main()
