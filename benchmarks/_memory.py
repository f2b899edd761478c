"""Helpers for the kernel benchmarks: one configuration per fresh process, peak RSS above the inputs.

Method (CPU; torch has no ``max_memory_allocated`` there):

1. The parent spawns ``python bench_x.py --one CONFIG`` per configuration with
   ``MALLOC_MMAP_THRESHOLD_=65536`` (every tensor-sized allocation is its own ``mmap`` and goes back to
   the OS on free, so RSS follows live memory instead of glibc's heap high-water mark) and
   ``MALLOC_ARENA_MAX=2``.
2. The child allocates and touches the inputs, runs the method once (warm-up: one-off allocations,
   kernels, compilation), drops every result, then resets the kernel's peak-RSS counter
   (``echo 5 > /proc/self/clear_refs``) and reads ``VmRSS`` as the baseline.
3. It runs one forward+backward and reads ``VmHWM`` (the peak RSS since the reset): *peak extra memory*
   is ``VmHWM - baseline``, i.e. every byte the step needed above the live inputs, the gradients it
   returns included. ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` gives the same number; it is
   printed as a cross-check.
4. Then it times ``repeats`` more steps and reports the median.

On CUDA the peak is ``torch.cuda.max_memory_allocated()`` above ``memory_allocated()`` instead.

The rest is the harness the kernel benchmarks share: their common options (:func:`bench_parser`), and
the table (:func:`run_table`: one child process per shape x dtype x method, ratios against eager and
``torch.compile`` measured in this one run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

MiB = 1 << 20


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def reset_peak() -> int:
    """Reset the peak-RSS counter; return the current RSS in bytes (the baseline)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status()["VmRSS"]


def peak() -> tuple[int, int]:
    """(VmHWM, ru_maxrss) in bytes since the last reset."""
    return _status()["VmHWM"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cuda_peak_extra(step: Callable[[], None]) -> int:
    """Bytes of CUDA memory one ``step`` allocated at its peak above what was allocated before it."""
    import torch

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    return torch.cuda.max_memory_allocated() - base


def measure(
    step: Callable[[], None], setup: Callable[[], None] | None = None, repeats: int = 3, device: str = "cpu"
) -> dict:
    """Peak extra memory of one ``step`` after a warm-up, and the median time of ``repeats`` steps.

    ``setup`` runs before every step, outside the timing and before the baseline (e.g. refill
    logits that an in-place step consumes, or clear ``.grad``). ``device="cuda"`` measures the peak
    with the CUDA allocator's counters (then ``peak_extra_maxrss`` repeats ``peak_extra``).
    """
    setup = setup or (lambda: None)
    setup()
    t0 = time.perf_counter()
    step()  # warm-up (and compilation for torch.compile)
    warm = time.perf_counter() - t0
    setup()
    if device == "cuda":
        extra = extra_maxrss = _cuda_peak_extra(step)
    else:
        base = reset_peak()
        step()
        hwm, maxrss = peak()
        extra, extra_maxrss = hwm - base, maxrss - base
    times = []
    for _ in range(repeats):
        setup()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "peak_extra": extra,
        "peak_extra_maxrss": extra_maxrss,
        "time": statistics.median(times),
        "times": times,
        "warmup_time": warm,
    }


def run_child(script: str, config: dict, timeout: float = 600) -> dict:
    """Run ``python script --one JSON`` in a fresh process with the allocator settings above."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_ARENA_MAX="2")
    proc = subprocess.run(
        [sys.executable, script, "--one", json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {config} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def bench_parser(doc: str, shapes_help: str, methods_default: list[str] | None) -> argparse.ArgumentParser:
    """The options every kernel benchmark takes; the script adds its own after them."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help="internal: run one JSON configuration")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shapes", nargs="*", default=None, help=shapes_help)
    ap.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    ap.add_argument("--methods", nargs="*", default=methods_default)
    ap.add_argument("--repeats", type=int, default=3)
    return ap


def table_row(shape: str, dtype: str, method: str, r: dict, res: dict, extra: str) -> str:
    """One table row of method ``method`` (result ``r``) against eager and compile in ``res``."""
    eager, comp = res.get("eager"), res.get("compile")
    xe = f"{r['time'] / eager['time']:.2f}" if eager else ""
    xc = f"{r['time'] / comp['time']:.2f}" if comp else ""
    me = f"{r['peak_extra'] / eager['peak_extra']:.3f}" if eager else ""
    warm = f"{r['warmup_time'] - r['time']:.1f}" if method == "compile" else f"{r['warmup_time']:.2f}"
    return (f"| {shape} | {dtype} | {method} | {r['time']:.3f} | {xe} | {xc} | {fmt_mib(r['peak_extra'])} | {me} "
            f"| {r['peak_extra'] / r['logits_bytes']:.2f} | {extra} | {warm} |")  # fmt: skip


def run_table(
    script: str,
    args: argparse.Namespace,
    shapes: list[str],
    methods: list[str],
    config: dict,
    shape_label: str,
    extra_column: str,
    row: Callable[[str, str, str, dict, dict], str],
) -> None:
    """Run every shape x dtype x method of ``script`` in its own child process and print the table.

    Each child gets ``{"shape", "dtype", "method", "device", "repeats"}`` plus ``config``. A failed child
    is reported in its row and the run goes on (e.g. compile unavailable). ``row(shape, dtype, method,
    result, results_of_this_shape_and_dtype)`` formats a row, usually :func:`table_row` with the value of
    the script's own column ``extra_column``.
    """
    import torch

    print(f"# torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    print(
        f"| shape {shape_label} | dtype | method | time (s) | x eager | x compile | peak extra | x eager mem "
        f"| peak / logits | {extra_column} | compile/warm-up (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    t_all = time.perf_counter()
    for shape in shapes:
        for dt in args.dtypes:
            res = {}
            for m in methods:
                cfg = {"shape": shape, "dtype": dt, "method": m, "device": args.device, "repeats": args.repeats,
                       **config}  # fmt: skip
                try:
                    res[m] = run_child(os.path.abspath(script), cfg)
                except Exception as e:  # report and go on (e.g. compile unavailable)
                    print(f"| {shape} | {dt} | {m} | failed: {str(e).splitlines()[-1][:80]} |||||||||")
            for m, r in res.items():
                print(row(shape, dt, m, r, res))
            sys.stdout.flush()
    print(f"# total benchmark time {time.perf_counter() - t_all:.0f} s")
