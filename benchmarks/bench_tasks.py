"""Time the default grid of the `sequence` and `gan` task cores and print their verdicts.

Runs every (dataset, method, param, seed) of a task's default grid through its ``run_one`` on a pool of
``--workers`` processes (each run on one thread), and prints per run its wall and CPU time
(``time.process_time``), then the whole grid's wall time, and the task's ``summarize`` lines.

    PYTHONPATH=src python benchmarks/bench_tasks.py --task sequence --workers 2 --json /tmp/seq.json
    PYTHONPATH=src python benchmarks/bench_tasks.py --task gan --workers 2 --json /tmp/gan.json

The budget (issue 9): a task's default grid within 3 minutes on 2 idle cores with 2 workers. On a loaded
machine the wall time overstates it; the sum of per-run CPU seconds / workers is the idle estimate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

TASKS = ("sequence", "gan")


def _module(task: str):
    if task == "sequence":
        from labelsmooth.study.tasks import sequence as m
    else:
        from labelsmooth.study.tasks import gan as m
    return m


def _section(task: str):
    m = _module(task)
    return (m.SequenceSection() if task == "sequence" else m.GanSection()).validate()


def _one(job: tuple[str, str, str, float | None, int]) -> dict:
    task, dataset, method, param, seed = job
    m = _module(task)
    wall, cpu = time.perf_counter(), time.process_time()
    out = m.run_one(_section(task), method, param, seed, dataset=dataset)
    return {
        "dataset": dataset, "method": method, "param": param, "seed": seed, "metrics": out["metrics"],
        "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=(*TASKS, "all"), default="all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default="", help="write the records here (a task name is appended for 'all')")
    args = ap.parse_args()
    for task in TASKS if args.task == "all" else (args.task,):
        m = _module(task)
        jobs = [(task, *run) for run in m.default_grid(_section(task))]
        print(
            f"== {task}: {len(jobs)} runs, {args.workers} workers, load {os.getloadavg()[0]:.2f}", flush=True
        )
        t0 = time.perf_counter()
        with mp.get_context("fork").Pool(args.workers) as pool:
            records = []
            for r in pool.imap(_one, jobs):
                records.append(r)
                print(f"{r['dataset']:8s} {r['method']:18s} {r['param']!s:5s} seed {r['seed']}  "
                      f"wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s", flush=True)  # fmt: skip
        wall = time.perf_counter() - t0
        cpu = sum(r["cpu_s"] for r in records)
        print(f"{task}: grid wall {wall:.1f} s; per run cpu {cpu / len(records):.2f} s (sum {cpu:.1f} s, "
              f"idle estimate with {args.workers} workers {cpu / args.workers:.1f} s); load now "
              f"{os.getloadavg()[0]:.2f}")  # fmt: skip
        for line in m.summarize(records):
            print(line)
        if args.json:
            path = args.json if args.task != "all" else args.json.replace(".json", f"_{task}.json")
            with open(path, "w") as f:
                json.dump({"wall_s": wall, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
