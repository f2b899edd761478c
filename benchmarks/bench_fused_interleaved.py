"""Time ratios of the fused CE step against torch.compile and copy_, interleaved in one process.

``bench_fused_ce.py`` runs every method in its own process (for the memory figures), so on a shared,
loaded machine two methods see different loads. This script builds every method once in one process and
then runs them round-robin (one step of each, ``--rounds`` times): every method sees the same load
pattern, and the minimum (the least-disturbed step) and the median of each are compared, as well as the
process's CPU time per step (``time.process_time``, all threads), which a loaded machine inflates less
than wall time. Memory is not measured here.

Methods: ``copy`` (``dst.copy_(z)``, the bandwidth yardstick), ``compile`` (``torch.compile`` of
``F.cross_entropy(label_smoothing=0.1)``, forward + backward), ``fused``, ``fused_inplace`` (logits
refilled outside the timing) and ``fused_opts`` (``softcap=30, z_loss=1e-4``); ``fused_eager`` and
``fused_inplace_eager`` are ``fused`` / ``fused_inplace`` with ``LABELSMOOTH_NATIVE=0`` around the call
(bfloat16 blocks take the eager float32-buffer ATen pass instead of the C row kernel of
``kernels/_native.py``), ``fused_native`` is ``fused`` with ``LABELSMOOTH_NATIVE=1`` (float32 blocks too
take the C kernel).

Usage::

    python benchmarks/bench_fused_interleaved.py --shapes 4096x32000 1024x128256 --dtype bfloat16
    python benchmarks/bench_fused_interleaved.py --block-bytes 2097152   # another CPU row-block size
    python benchmarks/bench_fused_interleaved.py --alt-block-bytes 2097152  # adds fused_alt, fused_inplace_alt
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _shape(shape: str, args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    from labelsmooth.kernels.chunked import _apply

    dtype = getattr(torch, args.dtype)
    bb = args.block_bytes
    n, v = (int(s) for s in shape.split("x"))
    torch.manual_seed(0)
    src = (torch.randn(n, v) * 2).to(dtype)
    y = torch.randint(0, v, (n,))
    y[::17] = -100
    z = src.clone().requires_grad_()
    work = src.clone().requires_grad_()
    dst = torch.empty_like(src)
    compiled = torch.compile(lambda t: F.cross_entropy(t, y, label_smoothing=0.1))

    def refill():
        work.grad = None
        with torch.no_grad():
            work.copy_(src)

    steps = {
        "copy": (None, lambda: dst.copy_(src)),
        "compile": (None, lambda: compiled(z).backward()),
        "fused": (None, lambda: _apply(z, y, None, -100, "mean", 0.1, None, False, "torch", bb).backward()),
        "fused_inplace": (
            refill,
            lambda: _apply(work, y, None, -100, "mean", 0.1, None, True, "torch", bb).backward(),
        ),
        "fused_opts": (
            None,
            lambda: _apply(
                z, y, None, -100, "mean", 0.1, None, False, "torch", bb, softcap=30.0, z_loss=1e-4
            ).backward(),
        ),
    }

    def with_native(value, step):
        def run():
            old = os.environ.get("LABELSMOOTH_NATIVE")
            os.environ["LABELSMOOTH_NATIVE"] = value
            try:
                step()
            finally:
                if old is None:
                    del os.environ["LABELSMOOTH_NATIVE"]
                else:
                    os.environ["LABELSMOOTH_NATIVE"] = old

        return run

    steps["fused_eager"] = (None, with_native("0", steps["fused"][1]))
    steps["fused_inplace_eager"] = (refill, with_native("0", steps["fused_inplace"][1]))
    steps["fused_native"] = (None, with_native("1", steps["fused"][1]))
    if args.alt_block_bytes:
        alt = args.alt_block_bytes
        steps["fused_alt"] = (
            None,
            lambda: _apply(z, y, None, -100, "mean", 0.1, None, False, "torch", alt).backward(),
        )
        steps["fused_inplace_alt"] = (
            refill,
            lambda: _apply(work, y, None, -100, "mean", 0.1, None, True, "torch", alt).backward(),
        )
    methods = list(args.methods) + (["fused_alt", "fused_inplace_alt"] if args.alt_block_bytes else [])
    steps = {m: steps[m] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in steps}
    cpu: dict[str, list[float]] = {m: [] for m in steps}
    for setup, step in steps.values():  # warm-up (and compilation)
        if setup:
            setup()
        z.grad = None
        step()
    for _ in range(args.rounds):
        for m, (setup, step) in steps.items():
            if setup:
                setup()
            z.grad = None
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            times[m].append(time.perf_counter() - t0)
            cpu[m].append(time.process_time() - c0)
    best = {m: min(t) for m, t in times.items()}
    cbest = {m: min(t) for m, t in cpu.items()}
    med = {m: statistics.median(t) for m, t in times.items()}
    print(f"\n{shape} {args.dtype}: {args.rounds} rounds")
    print(
        "| method | min (s) | median (s) | min x compile | median x compile | bandwidth (t_copy/t, min) "
        "| CPU time min (s) | CPU x compile |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m in steps:
        xc = f"{best[m] / best['compile']:.2f}" if "compile" in best else ""
        xcm = f"{med[m] / med['compile']:.2f}" if "compile" in med else ""
        bw = f"{best['copy'] / best[m]:.2f}" if "copy" in best else ""
        cx = f"{cbest[m] / cbest['compile']:.2f}" if "compile" in cbest else ""
        print(f"| {m} | {best[m]:.4f} | {med[m]:.4f} | {xc} | {xcm} | {bw} | {cbest[m]:.4f} | {cx} |")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", default=["4096x32000", "1024x128256"])
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--block-bytes", type=int, default=None)
    ap.add_argument(
        "--alt-block-bytes", type=int, default=None, help="also time fused paths with this block size"
    )
    ap.add_argument(
        "--methods", nargs="*", default=["copy", "compile", "fused", "fused_inplace", "fused_opts"]
    )
    args = ap.parse_args()
    bb = args.block_bytes
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, {args.dtype}, block_bytes {bb}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    for shape in args.shapes:
        _shape(shape, args)


if __name__ == "__main__":
    main()
