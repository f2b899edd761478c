"""Launch configurations of the Triton logits kernel on a GPU, against eager PyTorch and Liger Kernel.

For each shape (bf16 logits, label smoothing 0.1, 1/17 of the rows ignored) this times, in one process
with CUDA events (median of 10 after 3 warm-ups): a ``copy_`` of the logits (the bandwidth yardstick),
PyTorch eager ``F.cross_entropy`` forward+backward, Liger Kernel's ``LigerCrossEntropyLoss`` if it
imports (it writes the gradient into the logits), ``fused_cross_entropy`` forward+backward (new gradient
tensor, and ``inplace=True``; default launch), and ``labelsmooth.kernels.triton_ce.loss_grad`` alone (the
kernel: loss rows + gradient, to a new tensor and in place) for every ``(BLOCK, num_warps)`` in the grid;
the row marked ``*`` is the default launch (``triton_ce._launch``). The logits are refilled before each
step, outside the timing.

    python benchmarks/gpu_triton_sweep.py
    python benchmarks/gpu_triton_sweep.py --shapes 8192x32000 --blocks 4096 8192 --warps 8 16
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _cuda import timed

from labelsmooth.kernels import fused_cross_entropy, triton_ce
from labelsmooth.kernels._core import prepare_row_params


def sweep_shape(shape: str, blocks: list[int], warps_grid: list[int], liger_cls) -> None:
    """Print the timings of one N x V shape."""
    n, v = (int(s) for s in shape.split("x"))
    torch.manual_seed(0)
    src = (torch.randn(n, v, device="cuda") * 2).to(torch.bfloat16)
    y = torch.randint(0, v, (n,), device="cuda")
    y[::17] = -100
    z = src.clone()
    dst = torch.empty_like(src)
    t_copy = timed(lambda: dst.copy_(src))
    zr = src.clone().requires_grad_()

    def refill() -> None:
        zr.grad = None
        with torch.no_grad():
            zr.copy_(src)

    t_eager = timed(lambda: F.cross_entropy(zr, y, label_smoothing=0.1).backward(), refill)
    print(f"\n{shape} bf16   copy_ {t_copy:.3f} ms   eager fwd+bwd {t_eager:.3f} ms (1.00x)")

    def line(name: str, t: float) -> None:
        print(f"  {name:32s} {t:8.3f} ms  {t / t_eager:5.2f}x eager  bw {t_copy / t:.2f}")

    if liger_cls is not None:
        liger = liger_cls(label_smoothing=0.1)
        line("liger fwd+bwd (in place)", timed(lambda: liger(zr, y).backward(), refill))
    line(
        "fused_cross_entropy fwd+bwd",
        timed(lambda: fused_cross_entropy(zr, y, label_smoothing=0.1).backward(), refill),
    )
    line(
        "fused_cross_entropy inplace",
        timed(lambda: fused_cross_entropy(zr, y, label_smoothing=0.1, inplace=True).backward(), refill),
    )
    _, p = prepare_row_params(src, y, None, -100, "mean", 0.1, None)
    grad = torch.empty_like(src)
    default = triton_ce._launch(v, None)
    print("  kernel alone: BLOCK warps   new-grad ms  (x eager, bw)   in-place ms  (x eager, bw)")
    for block in blocks:
        for warps in warps_grid:
            if block < 32 * warps:
                continue
            t_new = timed(lambda b=block, w=warps: triton_ce.loss_grad(z, grad, p, b, w))
            t_in = timed(lambda b=block, w=warps: triton_ce.loss_grad(z, z, p, b, w), lambda: z.copy_(src))
            mark = "*" if (block, warps) == default else " "
            print(
                f"  {mark} {block:6d} {warps:5d}   {t_new:8.3f} ({t_new / t_eager:4.2f}x, {t_copy / t_new:4.2f})"
                f"   {t_in:8.3f} ({t_in / t_eager:4.2f}x, {t_copy / t_in:4.2f})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", default=["8192x32000", "8192x128256", "4096x256000"])
    ap.add_argument("--blocks", nargs="*", type=int, default=[2048, 4096, 8192, 16384])
    ap.add_argument("--warps", nargs="*", type=int, default=[4, 8, 16, 32])
    args = ap.parse_args()
    try:
        from liger_kernel.transformers import LigerCrossEntropyLoss
    except Exception:
        LigerCrossEntropyLoss = None
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    for shape in args.shapes:
        sweep_shape(shape, args.blocks, args.warps, LigerCrossEntropyLoss)


if __name__ == "__main__":
    main()
