"""Run the default grids of the ``distill`` and ``noise`` task cores; print per-run times and the claims.

The study engine runs the same grids (``labelsmooth study --task distill`` / ``--task noise``); this script
times the runs without the engine (no store, no report), to separate the cost of training from the engine's.

Usage::

    PYTHONPATH=src python benchmarks/bench_distill_noise_tasks.py [--task distill|noise|both] [--workers 2]
        [--seeds 5] [--json out.json]

Each run is timed in its worker by wall clock and by process CPU time (``time.process_time``): on a loaded,
shared machine the CPU time is the figure that says what the grid costs on idle cores (the budget is 3
minutes of wall time per grid on 2 idle cores, i.e. about 360 CPU-seconds). Students start once their
teacher has finished (the dependency the study engine expresses); teachers and the independent runs are
spread over ``--workers`` processes. The script ends with the claims of each task, paired over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

from labelsmooth.study.tasks import distill, noise


def _timed(task: str, section, run, artefacts=None):
    wall, cpu = time.perf_counter(), time.process_time()
    if task == "distill":
        res = distill.execute(section, run, artefacts)
    else:
        res = noise.execute(section, run)
    res["wall_s"] = time.perf_counter() - wall
    res["cpu_s"] = time.process_time() - cpu
    return run, res


def _record(run, res) -> dict:
    return {**run.axes(), **res["metrics"], "wall_s": res["wall_s"], "cpu_s": res["cpu_s"]}


def _print_times(records: list[dict], label) -> None:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(label(r), []).append(r)
    for name, rs in groups.items():
        wall = [r["wall_s"] for r in rs]
        cpu = [r["cpu_s"] for r in rs]
        print(
            f"  {name:<22} {len(rs):4d} runs  wall/run {sum(wall) / len(rs):6.2f} s  cpu/run "
            f"{sum(cpu) / len(rs):6.2f} s  (max cpu {max(cpu):.2f} s)"
        )


def bench_distill(pool: ProcessPoolExecutor, seeds: int) -> list[dict]:
    section = distill.DistillSection().validate()
    runs = distill.grid(section, tuple(range(seeds)))
    start = time.perf_counter()
    teachers = [r for r in runs if r.role == "teacher"]
    artefacts, records = {}, []
    for run, res in pool.map(_timed, ["distill"] * len(teachers), [section] * len(teachers), teachers):
        artefacts[run] = res["artefacts"]
        records.append(_record(run, res))
    rest = [r for r in runs if r.role != "teacher"]
    needed = [artefacts.get(r.needs()) if r.needs() else None for r in rest]
    for run, res in pool.map(_timed, ["distill"] * len(rest), [section] * len(rest), rest, needed):
        records.append(_record(run, res))
    wall = time.perf_counter() - start
    cpu = sum(r["cpu_s"] for r in records)
    print(
        f"distill: {len(runs)} runs, grid wall {wall:.1f} s, summed run CPU {cpu:.1f} s "
        f"(= {cpu / 2:.1f} s of wall on 2 idle cores)"
    )
    _print_times(records, lambda r: f"{r['role']}:{r['method']}")
    print("\n".join(distill.summarize(records)))
    return records


def bench_noise(pool: ProcessPoolExecutor, seeds: int) -> list[dict]:
    section = noise.NoiseSection().validate()
    runs = noise.grid(section, tuple(range(seeds)))
    start = time.perf_counter()
    records = [
        _record(run, res) for run, res in pool.map(_timed, ["noise"] * len(runs), [section] * len(runs), runs)
    ]
    wall = time.perf_counter() - start
    cpu = sum(r["cpu_s"] for r in records)
    print(
        f"noise: {len(runs)} runs, grid wall {wall:.1f} s, summed run CPU {cpu:.1f} s "
        f"(= {cpu / 2:.1f} s of wall on 2 idle cores)"
    )
    _print_times(records, lambda r: r["method"])
    print("\n".join(noise.summarize(records)))
    print(
        "best r against eta (figure data):",
        [(p["noise_rate"], p["best_r"]) for p in noise.best_r_curve(records)],
    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("distill", "noise", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", default="", help="write every run's record to this file")
    parser.add_argument("--summarize", default="", help="only print the claims of records stored by --json")
    args = parser.parse_args()
    if args.summarize:
        with open(args.summarize) as f:
            stored = json.load(f)
        if "distill" in stored:
            print("\n".join(distill.summarize(stored["distill"])))
        if "noise" in stored:
            print("\n".join(noise.summarize(stored["noise"])))
            print(
                "best r against eta:",
                [(p["noise_rate"], p["best_r"]) for p in noise.best_r_curve(stored["noise"])],
            )
        return
    print(f"load average {os.getloadavg()}, workers {args.workers}, seeds {args.seeds}")
    out = {}
    with ProcessPoolExecutor(args.workers) as pool:
        if args.task in ("distill", "both"):
            out["distill"] = bench_distill(pool, args.seeds)
        if args.task in ("noise", "both"):
            out["noise"] = bench_noise(pool, args.seeds)
    print(f"load average {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)


if __name__ == "__main__":
    main()
