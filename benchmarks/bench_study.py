"""Benchmark the study runner against its two speed targets and print the ratios.

1. One digits MLP run (the default model and training: 300 full-batch Adam epochs, evaluation, temperature
   scaling, figures' arrays) on one core: target < 3 s.
2. The default study (``labelsmooth study`` with no arguments: 90 runs, workers = auto) in a fresh
   process: target < 120 s wall on a 2-core machine.

Ratios below 1 meet the target. These machines are shared: run it on a quiet machine and read the ratios,
not the seconds. Usage::

    python benchmarks/bench_study.py            # both
    python benchmarks/bench_study.py --single   # only the one-run timing
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import busy_seconds

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

RUN_TARGET_S = 3.0
STUDY_TARGET_S = 120.0


def bench_single(repeats: int = 3) -> tuple[float, float]:
    """Median wall and CPU time of one default digits run (a = 0.1, clean labels, seed 0), one thread. On a
    shared machine the CPU time is the better estimate of the idle wall time."""
    import torch

    from labelsmooth.study.grid import Method, RunSpec
    from labelsmooth.study.runner import prepare_context
    from labelsmooth.study.train import RunContext, execute

    torch.set_num_threads(1)
    prepared = prepare_context(None)
    ctx = RunContext(prepared.config, prepared.datasets, prepared.model_fn)
    spec = RunSpec("digits", "symmetric", 0.0, Method("ls", 0.1), 0)
    execute(spec, ctx)  # warm-up: imports, allocator
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        execute(spec, ctx)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def bench_default_study() -> tuple[float, float | None]:
    """Wall time of ``python -m labelsmooth study --out TMP --quiet`` (the default grid) in a fresh process,
    and the CPU time the machine spent meanwhile (``/proc/stat``: every process, so the study's own on an
    idle machine). The study's workers are forked by a forkserver that the study does not wait for, so the
    children's rusage would miss them. On a shared machine, CPU time / 2 estimates the wall time on an
    idle 2-core machine only if nothing else ran."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    before = busy_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "labelsmooth", "study", "--out", str(Path(tmp) / "s"), "--quiet"],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - t
    after = busy_seconds()
    return wall, (after - before) if before is not None and after is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", action="store_true", help="only the one-run timing")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    one, one_cpu = bench_single()
    print(
        f"one digits MLP run, 1 thread : {one:6.2f} s   target {RUN_TARGET_S:.0f} s   ratio {one / RUN_TARGET_S:.2f}"
    )
    print(f"  CPU time {one_cpu:.2f} s, ratio {one_cpu / RUN_TARGET_S:.2f}")
    if not args.single:
        full, cpu = bench_default_study()
        print(
            f"default study (90 runs)      : {full:6.1f} s   target {STUDY_TARGET_S:.0f} s   "
            f"ratio {full / STUDY_TARGET_S:.2f}"
        )
        if cpu is not None:
            print(f"  machine CPU time meanwhile {cpu:.1f} s; CPU / 2 = {cpu / 2:.1f} s (idle 2-core estimate), "
                  f"ratio {cpu / 2 / STUDY_TARGET_S:.2f}; load average now {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
