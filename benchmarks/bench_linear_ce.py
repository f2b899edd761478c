"""Benchmark: fused linear + label-smoothed cross-entropy vs ``x @ W.T`` then PyTorch's loss.

Each configuration runs in a fresh process (memory method in ``_memory.py``); ratios are measured in
this one run. Methods (forward + backward, gradients of ``x`` and ``W``):

- ``eager``: ``F.cross_entropy(x @ W.T, y, label_smoothing=0.1)`` (the denominator);
- ``compile``: ``torch.compile`` of the same (compile time excluded, reported apart);
- ``fused``: ``labelsmooth.kernels.linear_cross_entropy(x, W, y, label_smoothing=0.1)`` (default
  ``chunk_size``: about 32 MB of logits, at least 128 tokens).

The peak extra memory includes the gradients returned (``x.grad`` N x D, ``W.grad`` V x D), which every
method must produce; they are printed apart as the floor.

Usage::

    python benchmarks/bench_linear_ce.py
    python benchmarks/bench_linear_ce.py --shapes 2048x512x32000 --dtypes float32
    python benchmarks/bench_linear_ce.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import fmt_mib, measure, run_child

CPU_SHAPES = ["2048x512x32000", "512x768x128256"]
GPU_SHAPES = ["8192x2048x32000", "8192x4096x128256"]
METHODS = ["eager", "compile", "fused"]


def _one(cfg: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from labelsmooth.kernels import linear_cross_entropy

    torch.manual_seed(0)
    n, d, v = (int(s) for s in cfg["shape"].split("x"))
    dtype = getattr(torch, cfg["dtype"])
    dev = cfg["device"]
    x = (torch.randn(n, d, device=dev) / d**0.5).to(dtype).requires_grad_()
    W = torch.randn(v, d, device=dev).to(dtype).requires_grad_()
    y = torch.randint(0, v, (n,), device=dev)
    y[::17] = -100
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    method = cfg["method"]

    def eager(a, w):
        return F.cross_entropy(a @ w.t(), y, label_smoothing=0.1)

    if method == "eager":
        fn = eager
    elif method == "compile":
        fn = torch.compile(eager)
    elif method == "fused":
        fn = lambda a, w: linear_cross_entropy(a, w, y, label_smoothing=0.1, chunk_size=cfg.get("chunk"))  # noqa: E731
    else:
        raise SystemExit(f"unknown method {method}")

    def setup():
        x.grad = None
        W.grad = None

    def step():
        fn(x, W).backward()
        sync()

    if dev == "cuda":
        from bench_fused_ce import _measure_cuda

        res = _measure_cuda(step, setup, cfg["repeats"])
    else:
        res = measure(step, setup, cfg["repeats"])
    res["logits_bytes"] = n * v * x.element_size()
    res["grads_bytes"] = (x.numel() + W.numel()) * x.element_size()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help="internal: run one JSON configuration")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shapes", nargs="*", default=None, help="NxDxV, e.g. 2048x512x32000")
    ap.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None, help="chunk_size of the fused path (default: auto)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return

    import torch

    shapes = args.shapes or (GPU_SHAPES if args.device == "cuda" else CPU_SHAPES)
    print(f"# torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    print(
        "| shape N x D x V | dtype | method | time (s) | x eager | x compile | peak extra | x eager mem "
        "| peak / logits | grads (floor) | compile/warm-up (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    t_all = time.perf_counter()
    for shape in shapes:
        for dt in args.dtypes:
            res = {}
            for m in args.methods:
                cfg = {"shape": shape, "dtype": dt, "method": m, "device": args.device, "repeats": args.repeats,
                       "chunk": args.chunk}  # fmt: skip
                try:
                    res[m] = run_child(os.path.abspath(__file__), cfg)
                except Exception as e:
                    print(f"| {shape} | {dt} | {m} | failed: {str(e).splitlines()[-1][:80]} |||||||||")
            eager, comp = res.get("eager"), res.get("compile")
            for m, r in res.items():
                xe = f"{r['time'] / eager['time']:.2f}" if eager else ""
                xc = f"{r['time'] / comp['time']:.2f}" if comp else ""
                me = f"{r['peak_extra'] / eager['peak_extra']:.3f}" if eager else ""
                warm = f"{r['warmup_time'] - r['time']:.1f}" if m == "compile" else f"{r['warmup_time']:.2f}"
                print(f"| {shape} | {dt} | {m} | {r['time']:.3f} | {xe} | {xc} | {fmt_mib(r['peak_extra'])} | {me} "
                      f"| {r['peak_extra'] / r['logits_bytes']:.2f} | {fmt_mib(r['grads_bytes'])} | {warm} |")  # fmt: skip
            sys.stdout.flush()
    print(f"# total benchmark time {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
