"""Run the default grids of the RL tasks' cores (``value``, ``preference``) in one process, without the study
engine, and print time per run and verdicts (``labelsmooth study --task value|preference`` runs the same
numbers through the engine).

    PYTHONPATH=src python benchmarks/bench_rl_tasks.py                 # both default grids
    PYTHONPATH=src python benchmarks/bench_rl_tasks.py --task value --data cartpole --seeds 5
    PYTHONPATH=src python benchmarks/bench_rl_tasks.py --task value --noise-df 100   # near-Gaussian noise

Each run uses one thread (run_one sets it). The machine may be shared: the script prints the wall time and
the process CPU time per run, and the load average before and after, so that a loaded run can be read.
The budget is 2 minutes per default grid on 2 idle cores (the runs are independent: two processes halve
the wall time; this script runs them one after another, so its wall time is the 1-core figure).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

from labelsmooth.study.tasks import preference, value


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def _grid(name, run_one, section, methods, seeds, **axes):
    records, wall, cpu = [], 0.0, 0.0
    for seed in range(seeds):
        for method, param in methods:
            w0, c0 = time.perf_counter(), time.process_time()
            out = run_one(section, method, param, seed, **axes)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            records.append(
                {
                    "method": method,
                    "param": param,
                    "seed": seed,
                    "metrics": out["metrics"],
                    **{"e_true" if k == "flip_rate" else k: v for k, v in axes.items()},
                }
            )
    n = len(records)
    print(
        f"[{name}] {n} runs: {wall:.1f} s wall, {cpu:.1f} s CPU; per run {wall / n:.3f} s wall, {cpu / n:.3f} s CPU"
    )
    return records, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("value", "preference", "both"), default="both")
    ap.add_argument("--data", choices=("synthetic", "cartpole"), default="synthetic")
    ap.add_argument("--seeds", type=int, default=None, help="default: 5 for value, 10 for preference")
    ap.add_argument("--noise-df", type=float, default=None, help="value/synthetic: Student-t dof (default 2)")
    args = ap.parse_args()
    print(_load())
    if args.task in ("value", "both"):
        section = value.ValueSection(data=args.data)
        if args.noise_df is not None:
            section = replace(section, noise_df=args.noise_df)
        section.validate()
        records, wall, cpu = _grid(
            f"value/{args.data}", value.run_one, section, value.METHODS, args.seeds or 5
        )
        print(f"value grid: {wall:.1f} s wall (one process), {cpu:.1f} s CPU")
        for line in value.summarize(records, section):
            print("  " + line)
    if args.task in ("preference", "both"):
        total_wall = total_cpu = 0.0
        for e_true in preference.FLIP_RATES:
            section = preference.PreferenceSection().validate()
            records, wall, cpu = _grid(
                f"preference/e_true={e_true:g}",
                preference.run_one,
                section,
                preference.METHODS,
                args.seeds or 10,
                flip_rate=e_true,
            )
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            for line in preference.summarize(records):
                print("  " + line)
        print(f"preference grid: {total_wall:.1f} s wall (one process), {total_cpu:.1f} s CPU")
    print(_load())


if __name__ == "__main__":
    main()
