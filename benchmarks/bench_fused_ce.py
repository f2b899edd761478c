"""Benchmark: fused label-smoothed cross-entropy on logits vs PyTorch eager and torch.compile.

Every configuration (shape x dtype x method) runs in a fresh process (see ``_memory.py`` for the memory
method); the parent prints ratios measured in this one run. Methods:

- ``eager``: ``F.cross_entropy(z, y, label_smoothing=0.1)`` forward + backward (the denominator);
- ``compile``: ``torch.compile`` of the same (compile time excluded, reported apart);
- ``fused``: ``labelsmooth.kernels.fused_cross_entropy(z, y, label_smoothing=0.1)`` + backward;
- ``fused_inplace``: the same with ``inplace=True`` (the logits are refilled before each step,
  outside the timing);
- ``liger``: Liger Kernel's ``LigerCrossEntropyLoss`` (CUDA only, if importable);
- ``copy``: ``dst.copy_(z)`` of the logits' size, the memory-bandwidth yardstick. The fused step must
  read the logits and write the gradient, the same bytes as one copy, so ``t_copy / t_method`` is the
  fraction of the bandwidth limit reached.

Usage::

    python benchmarks/bench_fused_ce.py                      # CPU, all shapes, fp32 and bf16
    python benchmarks/bench_fused_ce.py --dtypes float32 --shapes 4096x32000
    python benchmarks/bench_fused_ce.py --device cuda        # GPU (Triton path, Liger if installed)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import fmt_mib, measure, run_child

CPU_SHAPES = ["4096x32000", "1024x128256", "512x256000"]
GPU_SHAPES = ["8192x32000", "8192x128256", "4096x256000"]
METHODS = ["copy", "eager", "compile", "fused", "fused_inplace"]


def _one(cfg: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from labelsmooth.kernels.chunked import _apply

    torch.manual_seed(0)
    n, v = (int(s) for s in cfg["shape"].split("x"))
    dtype = getattr(torch, cfg["dtype"])
    dev = cfg["device"]
    src = (torch.randn(n, v, device=dev) * 2).to(dtype)
    y = torch.randint(0, v, (n,), device=dev)
    y[::17] = -100
    method, bb = cfg["method"], cfg.get("block_bytes")
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    z = src
    setup = None
    if method == "copy":
        dst = torch.empty_like(src)
        dst.copy_(src)

        def step():
            dst.copy_(src)
            sync()
    elif method in ("eager", "compile", "fused", "liger"):
        z = src.requires_grad_()
        if method == "eager":
            fn = lambda t: F.cross_entropy(t, y, label_smoothing=0.1)  # noqa: E731
        elif method == "compile":
            fn = torch.compile(lambda t: F.cross_entropy(t, y, label_smoothing=0.1))
        elif method == "fused":
            fn = lambda t: _apply(t, y, None, -100, "mean", 0.1, None, False, "auto", bb)  # noqa: E731
        else:
            from liger_kernel.transformers import LigerCrossEntropyLoss

            fn = LigerCrossEntropyLoss(label_smoothing=0.1)
            fn = (lambda f: lambda t: f(t, y))(fn)

        def setup():
            z.grad = None

        def step():
            fn(z).backward()
            sync()
    elif method == "fused_inplace":
        z = src.clone().requires_grad_()

        def setup():
            z.grad = None
            with torch.no_grad():
                z.copy_(src)
            sync()

        def step():
            _apply(z, y, None, -100, "mean", 0.1, None, True, "auto", bb).backward()
            sync()
    else:
        raise SystemExit(f"unknown method {method}")

    if dev == "cuda":
        res = _measure_cuda(step, setup, cfg["repeats"])
    else:
        res = measure(step, setup, cfg["repeats"])
    res["logits_bytes"] = src.numel() * src.element_size()
    return res


def _measure_cuda(step, setup, repeats):
    import statistics

    import torch

    setup = setup or (lambda: None)
    setup()
    t0 = time.perf_counter()
    step()
    warm = time.perf_counter() - t0
    setup()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    peak = torch.cuda.max_memory_allocated() - base
    times = []
    for _ in range(repeats):
        setup()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"peak_extra": peak, "peak_extra_maxrss": peak, "time": statistics.median(times), "times": times,
            "warmup_time": warm}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help="internal: run one JSON configuration")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shapes", nargs="*", default=None, help="NxV, e.g. 4096x32000")
    ap.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block-bytes", type=int, default=None, help="row-block size of the fused CPU path")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return

    import torch

    shapes = args.shapes or (GPU_SHAPES if args.device == "cuda" else CPU_SHAPES)
    methods = args.methods or (METHODS + (["liger"] if args.device == "cuda" and _has_liger() else []))
    print(f"# torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    print(
        "| shape N x V | dtype | method | time (s) | x eager | x compile | peak extra | x eager mem "
        "| peak / logits | bandwidth (t_copy/t) | compile/warm-up (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    t_all = time.perf_counter()
    for shape in shapes:
        for dt in args.dtypes:
            res = {}
            for m in methods:
                cfg = {"shape": shape, "dtype": dt, "method": m, "device": args.device, "repeats": args.repeats,
                       "block_bytes": args.block_bytes}  # fmt: skip
                try:
                    res[m] = run_child(os.path.abspath(__file__), cfg)
                except Exception as e:  # report and go on (e.g. compile unavailable)
                    print(f"| {shape} | {dt} | {m} | failed: {str(e).splitlines()[-1][:80]} |||||||||")
            eager, comp, copy = res.get("eager"), res.get("compile"), res.get("copy")
            for m, r in res.items():
                if m == "copy":
                    print(f"| {shape} | {dt} | copy_ | {r['time']:.4f} | | | | | | 1.00 | |")
                    continue
                xe = f"{r['time'] / eager['time']:.2f}" if eager else ""
                xc = f"{r['time'] / comp['time']:.2f}" if comp else ""
                me = f"{r['peak_extra'] / eager['peak_extra']:.3f}" if eager else ""
                bw = f"{copy['time'] / r['time']:.2f}" if copy else ""
                warm = f"{r['warmup_time'] - r['time']:.1f}" if m == "compile" else f"{r['warmup_time']:.2f}"
                print(f"| {shape} | {dt} | {m} | {r['time']:.3f} | {xe} | {xc} | {fmt_mib(r['peak_extra'])} | {me} "
                      f"| {r['peak_extra'] / r['logits_bytes']:.2f} | {bw} | {warm} |")  # fmt: skip
            sys.stdout.flush()
    print(f"# total benchmark time {time.perf_counter() - t_all:.0f} s")


def _has_liger() -> bool:
    try:
        import liger_kernel  # noqa: F401
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
