"""Where one ``fused_cross_entropy`` step spends its time on a GPU, outside the Triton kernel.

For bf16 logits of one shape (default 8192 x 32000, label smoothing 0.1, 1/17 of the rows ignored), in one
process: CUDA-event times (median of 10) of the whole forward+backward, of the kernel alone, and of the
host-side phases (validation and row parameters, ``prepare``; the kernel call; the reduction), each
measured with the GPU synchronised before and after so that the host time is what is printed; then a
``torch.profiler`` table of one step (host and device time per op, sorted by host time) and the number of
device synchronisations it makes.

    python benchmarks/gpu_profile_step.py
    python benchmarks/gpu_profile_step.py --shape 8192x128256
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _cuda import timed

from labelsmooth.kernels import fused_cross_entropy, triton_ce
from labelsmooth.kernels._core import prepare_row_params, reduce_loss


def host_us(fn, reps: int = 50) -> float:
    """Median host microseconds of ``fn`` with the device idle before and after each call."""
    fn()
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        out.append((t1 - t0) * 1e6)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="8192x32000")
    args = ap.parse_args()
    n, v = (int(s) for s in args.shape.split("x"))
    torch.manual_seed(0)
    src = (torch.randn(n, v, device="cuda") * 2).to(torch.bfloat16)
    y = torch.randint(0, v, (n,), device="cuda")
    y[::17] = -100
    z = src.clone().requires_grad_()

    def step() -> None:
        z.grad = None
        fused_cross_entropy(z, y, label_smoothing=0.1).backward()

    _, p = prepare_row_params(src, y, None, -100, "mean", 0.1, None)
    grad = torch.empty_like(src)
    losses = triton_ce.loss_grad(src, grad, p)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.shape} bf16")
    print(f"step fwd+bwd (device)      {timed(step):8.3f} ms")
    print(f"kernel alone (device)      {timed(lambda: triton_ce.loss_grad(src, grad, p)):8.3f} ms")
    print(f"step (host, device idle)   {host_us(step):8.1f} us")
    print(
        f"prepare (host)             {host_us(lambda: prepare_row_params(src, y, None, -100, 'mean', 0.1, None)):8.1f} us"
    )
    print(f"kernel call (host)         {host_us(lambda: triton_ce.loss_grad(src, grad, p)):8.1f} us")
    print(
        f"reduce (host)              {host_us(lambda: reduce_loss(losses, p, 'mean', (n,), src.dtype)):8.1f} us"
    )
    step()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    syncs = [e for e in prof.events() if "Synchronize" in e.name or e.name == "aten::_local_scalar_dense"]
    print(f"synchronising events in one step: {len(syncs)} ({sorted({e.name for e in syncs})})")


if __name__ == "__main__":
    main()
