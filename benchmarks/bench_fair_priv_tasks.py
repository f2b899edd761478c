"""Run the default grids of the ``fairness`` and ``privacy`` task cores, time every run, print the verdicts.

Target: each default grid finishes in at most 120 s on 2 idle cores. The runs are executed serially in this
process (one thread each, as the engine's workers run them); the per-run wall time and process CPU time
are printed, and the grid's time on 2 idle cores is estimated as ``total CPU / 2`` (the runs are
independent, so two workers split them). On a loaded machine the wall time overstates the idle time; read
the CPU figures and the ratio to the target (below 1 meets it). ``uptime`` load is printed first.

Usage::

    python benchmarks/bench_fair_priv_tasks.py                  # both tasks, default grids
    python benchmarks/bench_fair_priv_tasks.py --task privacy --out records.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

TARGET_S = 120.0


def run_grid(task: str) -> tuple[list[dict], float, float]:
    import torch

    torch.set_num_threads(1)
    if task == "fairness":
        from labelsmooth.study.tasks import fairness as mod

        section = mod.FairnessSection().validate()
    else:
        from labelsmooth.study.tasks import privacy as mod  # type: ignore[no-redef]

        section = mod.PrivacySection().validate()
    records = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for seed in section.seeds:
        for method, param in mod.methods(section):
            w, c = time.perf_counter(), time.process_time()
            out = mod.run_one(section, method, param, seed)
            w, c = time.perf_counter() - w, time.process_time() - c
            print(
                f"  {task:9s} seed {seed} {method:18s} {json.dumps(param):60s} wall {w:5.2f} s  cpu {c:5.2f} s"
            )
            records.append({"method": method, "param": param, "seed": seed, "metrics": out["metrics"]})
    return records, time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("fairness", "privacy", "both"), default="both")
    ap.add_argument("--out", type=Path, help="write the run records (JSON) here")
    args = ap.parse_args()
    print("load average (1, 5, 15 min):", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    all_records = {}
    for task in ("fairness", "privacy") if args.task == "both" else (args.task,):
        records, wall, cpu = run_grid(task)
        all_records[task] = records
        est = cpu / 2.0
        print(
            f"{task}: {len(records)} runs, wall {wall:.1f} s, process CPU {cpu:.1f} s; "
            f"estimated on 2 idle cores {est:.1f} s = {est / TARGET_S:.2f} x the {TARGET_S:.0f} s target "
            f"(1 core: {cpu / TARGET_S:.2f} x)"
        )
        if task == "fairness":
            from labelsmooth.study.tasks.fairness import summarize
        else:
            from labelsmooth.study.tasks.privacy import summarize  # type: ignore[no-redef]
        for line in summarize(records):
            print("  -", line)
    if args.out:
        args.out.write_text(json.dumps(all_records, indent=1, default=float))


if __name__ == "__main__":
    main()
