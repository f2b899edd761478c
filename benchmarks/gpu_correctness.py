"""Correctness of the fast paths on a GPU (or the CPU) against a float64 reference, printed as errors.

The CPU test suite checks the Triton kernel only under ``TRITON_INTERPRET=1``; this script checks the
compiled kernel on a real device: loss and gradient of ``fused_cross_entropy`` and all gradients of
``linear_cross_entropy`` against ``labelsmooth.cross_entropy`` in float64, for float32 and bfloat16, with
ignored rows, class weights, a prior, per-row smoothing; and, for bf16 confident rows, the relative error of
the target logit's gradient against PyTorch's own bf16 ``F.cross_entropy``.

    python benchmarks/gpu_correctness.py --device cuda
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

import labelsmooth as ls


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def check_fused(dev: str, backend: str) -> bool:
    ok = True
    g = torch.Generator().manual_seed(0)
    for n, v in ((1000, 32000), (257, 50257), (64, 128256)):
        z64 = torch.randn(n, v, generator=g, dtype=torch.float64) * 3
        y = torch.randint(0, v, (n,), generator=g)
        y[::7] = -100
        w = torch.rand(v, generator=g, dtype=torch.float64) + 0.5
        prior = torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), -1)
        a = torch.rand(n, generator=g, dtype=torch.float64) * 0.3
        for kw in (dict(label_smoothing=0.1), dict(weight=w, label_smoothing=a, prior=prior)):
            ref_in = z64.clone().requires_grad_(True)
            ref = ls.cross_entropy(ref_in, y, **kw)
            ref.backward()
            for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
                x = z64.to(dtype).to(dev).requires_grad_(True)
                kwd = {k: (t.to(dev, dtype) if isinstance(t, torch.Tensor) else t) for k, t in kw.items()}
                if dtype == torch.bfloat16:
                    kwd = {k: (t.float() if isinstance(t, torch.Tensor) else t) for k, t in kwd.items()}
                loss = ls.fused_cross_entropy(x, y.to(dev), backend=backend, **kwd)
                loss.backward()
                el, eg = rel(loss, ref), rel(x.grad, ref_in.grad)
                good = el < tol and eg < (tol if dtype == torch.float32 else 1e-2)
                ok &= good
                print(
                    f"fused  {n}x{v} {dtype!s:15s} {'weighted+prior+per-row a' if 'weight' in kw else 'a=0.1':25s} "
                    f"loss rel err {el:.2e}  grad rel err {eg:.2e}  {'OK' if good else 'FAIL'}"
                )
    return ok


def check_confident_bf16(dev: str, backend: str) -> bool:
    ok = True
    k, n = 32000, 64
    y = torch.arange(n) * 37 % k
    for conf in (0.9, 0.99, 0.999):
        z = torch.zeros(n, k, dtype=torch.float64)
        z[torch.arange(n), y] = math.log(conf * (k - 1) / (1 - conf))
        x = z.to(torch.bfloat16)
        ref = x.double().requires_grad_(True)
        F.cross_entropy(ref, y, label_smoothing=0.1, reduction="sum").backward()
        want = ref.grad[torch.arange(n), y]
        errs = {}
        for name, fn in (
            (
                "labelsmooth",
                lambda t: ls.fused_cross_entropy(
                    t, y.to(dev), reduction="sum", label_smoothing=0.1, backend=backend
                ),
            ),
            ("pytorch", lambda t: F.cross_entropy(t, y.to(dev), reduction="sum", label_smoothing=0.1)),
        ):
            xi = x.to(dev).requires_grad_(True)
            fn(xi).backward()
            got = xi.grad.double().cpu()[torch.arange(n), y]
            errs[name] = ((got - want).abs() / want.abs()).max().item()
        good = errs["labelsmooth"] <= errs["pytorch"] + 1e-12
        ok &= good
        print(
            f"bf16 confident rows q_y={conf}: target-grad rel err labelsmooth {errs['labelsmooth']:.2e}, "
            f"pytorch {errs['pytorch']:.2e}  {'OK' if good else 'FAIL'}"
        )
    return ok


def check_linear(dev: str) -> bool:
    ok = True
    g = torch.Generator().manual_seed(1)
    n, d, v = 600, 256, 32000
    x64 = torch.randn(n, d, generator=g, dtype=torch.float64)
    w64 = torch.randn(v, d, generator=g, dtype=torch.float64) / d**0.5
    b64 = torch.randn(v, generator=g, dtype=torch.float64) * 0.1
    y = torch.randint(0, v, (n,), generator=g)
    y[::9] = -100
    refs = [t.clone().requires_grad_(True) for t in (x64, w64, b64)]
    ref = ls.cross_entropy(refs[0] @ refs[1].T + refs[2], y, label_smoothing=0.1)
    ref.backward()
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        ins = [t.to(dev, dtype).requires_grad_(True) for t in (x64, w64, b64)]
        loss = ls.linear_cross_entropy(
            ins[0], ins[1], y.to(dev), bias=ins[2], label_smoothing=0.1, chunk_size=256
        )
        loss.backward()
        errs = [rel(loss, ref)] + [rel(t.grad, r.grad) for t, r in zip(ins, refs)]
        good = all(e < tol for e in errs)
        ok &= good
        print(
            f"linear {n}x{d}x{v} {dtype!s:15s} rel err loss {errs[0]:.2e} dx {errs[1]:.2e} dW {errs[2]:.2e} "
            f"db {errs[3]:.2e}  {'OK' if good else 'FAIL'}"
        )
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    backend = "triton" if args.device == "cuda" else "torch"
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}, backend {backend}")
    results = [
        check_fused(args.device, backend),
        check_confident_bf16(args.device, backend),
        check_linear(args.device),
    ]
    print("ALL OK" if all(results) else "SOME CHECKS FAILED")
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
