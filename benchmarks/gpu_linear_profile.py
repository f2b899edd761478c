"""Where the fused linear path spends its time on a GPU: chunk size, backend, and the parts of one pass.

Times (CUDA events, median of 10 after 3 warm-ups), in one process, for N x D x V = 8192 x 2048 x 32000 bf16:
eager ``F.cross_entropy(x @ W.T)`` forward+backward; ``linear_cross_entropy`` with several ``chunk_size``
values and both backends; and, for one chunk size, the three matmuls of the chunk loop alone and the
loss/gradient kernel alone, so the overhead of each part can be read off.

    python benchmarks/gpu_linear_profile.py
"""

from __future__ import annotations

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _cuda import timed

from labelsmooth.kernels import linear_cross_entropy
from labelsmooth.kernels._core import prepare_row_params
from labelsmooth.kernels._dispatch import loss_grad


def main() -> None:
    n, d, v, dt = 8192, 2048, 32000, torch.bfloat16
    torch.manual_seed(0)
    x = (torch.randn(n, d, device="cuda") / d**0.5).to(dt).requires_grad_()
    W = torch.randn(v, d, device="cuda").to(dt).requires_grad_()
    y = torch.randint(0, v, (n,), device="cuda")

    def run(f):
        def step():
            x.grad = W.grad = None
            f().backward()

        return step

    base = timed(run(lambda: F.cross_entropy(x @ W.t(), y, label_smoothing=0.1)))
    print(f"{torch.cuda.get_device_name()}  N x D x V = {n} x {d} x {v} bf16")
    print(f"eager                         {base:8.3f} ms  1.00x")
    for backend in ("triton", "torch"):
        for chunk in (256, 512, 1024, 2048, 4096, 8192):
            t = timed(
                run(
                    lambda c=chunk, be=backend: linear_cross_entropy(
                        x, W, y, label_smoothing=0.1, chunk_size=c, backend=be
                    )
                )
            )
            print(f"fused {backend:6s} chunk {chunk:5d}     {t:8.3f} ms  {t / base:.2f}x")
    chunk = 512
    buf = torch.empty(chunk, v, device="cuda", dtype=dt)
    gW = torch.zeros(v, d, device="cuda", dtype=dt)
    gx = torch.empty(n, d, device="cuda", dtype=dt)
    xd, Wd = x.detach(), W.detach()

    def matmuls():
        for s in range(0, n, chunk):
            torch.mm(xd[s : s + chunk], Wd.t(), out=buf)
            torch.mm(buf, Wd, out=gx[s : s + chunk])
            gW.addmm_(buf.t(), xd[s : s + chunk])

    _, p = prepare_row_params(buf, y[:chunk], None, -100, "mean", 0.1, None)
    t_mm = timed(matmuls)
    t_ce = timed(lambda: [loss_grad(buf, buf, p, "triton") for _ in range(n // chunk)])
    print(f"chunk 512: 3 matmuls alone    {t_mm:8.3f} ms  {t_mm / base:.2f}x")
    print(f"chunk 512: CE kernel alone    {t_ce:8.3f} ms  {t_ce / base:.2f}x  ({n // chunk} launches)")


if __name__ == "__main__":
    main()
