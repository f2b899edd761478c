"""Single-thread cost of each op of the CPU block pass, in ns per element (bf16 and float32 blocks).

The fused CPU path is a chain of ATen ops per row block (``kernels/_core.py::block_loss_grad``); its time
is about the sum of these per-op costs. Every op runs ``--repeats`` times, interleaved with the others, and
the minimum is reported, which a loaded machine disturbs less than a whole step. ``--blocks`` also times
the whole bf16 block pass (upcast copy, block_loss_grad, downcast copy) for several rows-per-block.

Usage::

    python benchmarks/micro_block_ops.py
    python benchmarks/micro_block_ops.py --blocks --classes 32000 128256
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))


def _ops(r: int, v: int, repeats: int) -> None:
    import torch

    zb = (torch.randn(r, v) * 2).bfloat16()
    b = torch.empty(r, v)
    g = torch.empty(r, v, dtype=torch.bfloat16)
    col, colb = torch.rand(r, 1), torch.rand(r, 1).bfloat16()
    ops = {
        "copy bf16 -> float32": lambda: b.copy_(zb),
        "copy float32 -> bf16": lambda: g.copy_(b),
        "amax float32": lambda: b.amax(1),
        "amax bf16": lambda: zb.amax(1),
        "mean float32": lambda: b.mean(1),
        "mean bf16 (dtype=float32)": lambda: zb.mean(1, dtype=torch.float32),
        "sum float32": lambda: b.sum(1),
        "softmax float32 (out=self)": lambda: torch.softmax(b, 1, out=b),
        "softmax bf16 -> bf16": lambda: torch.softmax(zb, 1, out=g),
        "mul_ column float32": lambda: b.mul_(col),
        "mul_ column bf16": lambda: g.mul_(colb),
        "sub_ column float32": lambda: b.sub_(col),
        "sub bf16 - col -> float32": lambda: torch.sub(zb, col, out=b),
        "mul float32 * col -> bf16": lambda: torch.mul(b, col, out=g),
        "tanh_ float32 (softcap)": lambda: b.tanh_(),
    }
    best = {k: float("inf") for k in ops}
    for _ in range(repeats):
        for k, f in ops.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    print(f"{r} x {v} block, 1 thread, minimum of {repeats}")
    for k, t in best.items():
        print(f"  {k:30s} {t / (r * v) * 1e9:6.3f} ns/element")


def _blocks(v: int, repeats: int) -> None:
    import torch

    from labelsmooth.kernels import _core

    n = max(32, (16 << 20) // (4 * v))
    z = (torch.randn(n, v) * 2).bfloat16()
    y = torch.randint(0, v, (n,))
    _, p = _core.prepare_row_params(z, y, None, -100, "mean", 0.1, None)
    g = torch.empty_like(z)
    cfgs = [rows for rows in (2, 4, 8, 16, 32) if rows <= n]
    bufs = {rows: torch.empty(rows, v) for rows in cfgs}

    def run(rows: int) -> None:
        buf = bufs[rows]
        for s in range(0, n, rows):
            e = min(n, s + rows)
            blk = buf[: e - s]
            blk.copy_(z[s:e])
            _core.block_loss_grad(blk, blk, p.rows(s, e))
            g[s:e].copy_(blk)

    times: dict[int, list[float]] = {rows: [] for rows in cfgs}
    for _ in range(repeats):
        for rows in cfgs:
            t0 = time.perf_counter()
            run(rows)
            times[rows].append(time.perf_counter() - t0)
    print(f"whole bf16 block pass, {n} x {v}, 1 thread, {repeats} interleaved rounds")
    for rows, t in times.items():
        t.sort()
        print(f"  {rows:3d} rows ({rows * v * 4 / 2**20:5.1f} MiB float32 buffer): min {t[0] / (n * v) * 1e9:6.2f}"
              f"  median {t[len(t) // 2] / (n * v) * 1e9:6.2f} ns/element")  # fmt: skip


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--classes", type=int, nargs="*", default=[32000])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument(
        "--blocks", action="store_true", help="also time the whole bf16 block pass per block size"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    for v in args.classes:
        _ops(args.rows, v, args.repeats)
        if args.blocks:
            _blocks(v, max(5, args.repeats // 2))


if __name__ == "__main__":
    main()
