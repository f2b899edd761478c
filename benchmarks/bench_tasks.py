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


def _section(task: str, seeds: int = 0):
    m = _module(task)
    return (m.SequenceSection() if task == "sequence" else m.GanSection()).validate()


def _seeds(task: str, seeds: int = 0) -> tuple[int, ...]:
    """``seeds`` seeds, or the task's default (the engine task's ``default_seeds``)."""
    return tuple(range(seeds)) if seeds else tuple(_module(task).TASK.default_seeds)


def _one(job: tuple[str, int, str, str, float | None, int]) -> dict:
    task, seeds, dataset, method, param, seed = job
    m = _module(task)
    wall, cpu = time.perf_counter(), time.process_time()
    out = m.run_one(_section(task, seeds), method, param, seed, dataset=dataset)
    return {
        "dataset": dataset, "method": method, "param": param, "seed": seed, "metrics": out["metrics"],
        "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
    }  # fmt: skip


def _summarize_saved(task: str, path: str) -> None:
    """Print per-run CPU statistics and the verdict of records saved by an earlier (maybe killed) run."""
    with open(path) as f:
        text = f.read()
    records = (
        json.loads(text)["records"] if path.endswith(".json") else [json.loads(x) for x in text.splitlines()]
    )
    cpu = [r["cpu_s"] for r in records]
    print(
        f"{len(records)} runs; per run cpu mean {sum(cpu) / len(cpu):.2f} s, min {min(cpu):.2f}, max {max(cpu):.2f}"
    )
    for d in dict.fromkeys(r["dataset"] for r in records):
        c = [r["cpu_s"] for r in records if r["dataset"] == d]
        print(f"  {d}: {len(c)} runs, mean cpu {sum(c) / len(c):.2f} s")
    m = _module("sequence" if task == "all" else task)
    for line in m.summarize(records):
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=(*TASKS, "all"), default="all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default="", help="write the records here (a task name is appended for 'all')")
    ap.add_argument("--seeds", type=int, default=0, help="override the default number of seeds (0: keep)")
    ap.add_argument("--summarize", default="", help="only print the verdict of saved records (.json/.jsonl)")
    args = ap.parse_args()
    if args.summarize:
        _summarize_saved(args.task, args.summarize)
        return
    for task in TASKS if args.task == "all" else (args.task,):
        m = _module(task)
        jobs = [(task, args.seeds, *run) for run in m.default_grid(_section(task), _seeds(task, args.seeds))]
        path = args.json if args.task != "all" else args.json.replace(".json", f"_{task}.json")
        print(
            f"== {task}: {len(jobs)} runs, {args.workers} workers, load {os.getloadavg()[0]:.2f}", flush=True
        )
        t0 = time.perf_counter()
        with mp.get_context("fork").Pool(args.workers) as pool:
            records = []
            for r in pool.imap(_one, jobs):
                records.append(r)
                if path:  # one line per run as it finishes: a killed benchmark keeps what it measured
                    with open(path + "l", "a") as f:
                        f.write(json.dumps(r) + "\n")
                print(f"{r['dataset']:8s} {r['method']:18s} {r['param']!s:5s} seed {r['seed']}  "
                      f"wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s", flush=True)  # fmt: skip
        wall = time.perf_counter() - t0
        cpu = sum(r["cpu_s"] for r in records)
        print(f"{task}: grid wall {wall:.1f} s; per run cpu {cpu / len(records):.2f} s (sum {cpu:.1f} s, "
              f"idle estimate with {args.workers} workers {cpu / args.workers:.1f} s); load now "
              f"{os.getloadavg()[0]:.2f}")  # fmt: skip
        for line in m.summarize(records):
            print(line)
        if path:
            with open(path, "w") as f:
                json.dump({"wall_s": wall, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
