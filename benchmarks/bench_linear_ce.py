"""Benchmark: fused linear + label-smoothed cross-entropy vs ``x @ W.T`` then PyTorch's loss.

Each configuration runs in a fresh process (memory method in ``_memory.py``); ratios are measured in
this one run. Methods (forward + backward, gradients of ``x`` and ``W``):

- ``eager``: ``F.cross_entropy(x @ W.T, y, label_smoothing=0.1)`` (the denominator);
- ``compile``: ``torch.compile`` of the same (compile time excluded, reported apart);
- ``fused``: ``labelsmooth.kernels.linear_cross_entropy(x, W, y, label_smoothing=0.1)`` (default
  ``chunk_size``: about 32 MB of logits, at least 128 tokens);
- ``eager_opts`` / ``compile_opts`` / ``fused_opts``: with soft-capping (``c = 30``) and the z-loss
  (``lambda = 1e-4``), eager PyTorch doing the same ops (``bench_fused_ce.eager_with_options``) against
  ``linear_cross_entropy(..., softcap=30.0, z_loss=1e-4)``; their ratios are against ``eager_opts`` /
  ``compile_opts`` (``--options`` adds them);
- ``liger``: Liger Kernel's ``LigerFusedLinearCrossEntropyLoss(label_smoothing=0.1)`` (CUDA only; pass
  ``--methods eager fused liger``).

The peak extra memory includes the gradients returned (``x.grad`` N x D, ``W.grad`` V x D), which every
method must produce; they are printed apart as the floor.

Usage::

    python benchmarks/bench_linear_ce.py
    python benchmarks/bench_linear_ce.py --shapes 2048x512x32000 --dtypes float32
    python benchmarks/bench_linear_ce.py --device cuda --methods eager compile fused liger
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import bench_parser, fmt_mib, measure, run_table, table_row
from bench_fused_ce import OPTION_METHODS, SOFTCAP, Z_LOSS, eager_with_options

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

    if method == "eager_opts":
        fn = lambda a, w: eager_with_options(a @ w.t(), y)  # noqa: E731
    elif method == "compile_opts":
        fn = torch.compile(lambda a, w: eager_with_options(a @ w.t(), y))
    elif method == "fused_opts":
        fn = lambda a, w: linear_cross_entropy(  # noqa: E731
            a, w, y, label_smoothing=0.1, chunk_size=cfg.get("chunk"), softcap=SOFTCAP, z_loss=Z_LOSS
        )
    elif method == "eager":
        fn = eager
    elif method == "compile":
        fn = torch.compile(eager)
    elif method == "fused":
        fn = lambda a, w: linear_cross_entropy(a, w, y, label_smoothing=0.1, chunk_size=cfg.get("chunk"))  # noqa: E731
    elif method == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss(label_smoothing=0.1)
        fn = lambda a, w: liger(w, a, y)  # noqa: E731  (Liger takes the weight first)
    else:
        raise SystemExit(f"unknown method {method}")

    def setup():
        x.grad = None
        W.grad = None

    def step():
        fn(x, W).backward()
        sync()

    res = measure(step, setup, cfg["repeats"], dev)
    res["logits_bytes"] = n * v * x.element_size()
    res["grads_bytes"] = (x.numel() + W.numel()) * x.element_size()
    return res


def _row(shape: str, dt: str, m: str, r: dict, res: dict) -> str:
    if m in OPTION_METHODS:  # against eager PyTorch (and compile) doing the same options
        res = dict(res, eager=res.get("eager_opts"), compile=res.get("compile_opts"))
    return table_row(shape, dt, m, r, res, fmt_mib(r["grads_bytes"]))


def main() -> None:
    ap = bench_parser(__doc__, "NxDxV, e.g. 2048x512x32000", METHODS)
    ap.add_argument("--chunk", type=int, default=None, help="chunk_size of the fused path (default: auto)")
    ap.add_argument("--options", action="store_true", help="add the softcap + z-loss rows (OPTION_METHODS)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return
    shapes = args.shapes or (GPU_SHAPES if args.device == "cuda" else CPU_SHAPES)
    methods = list(args.methods) + ([m for m in OPTION_METHODS if m not in args.methods] if args.options else [])
    run_table(__file__, args, shapes, methods, {"chunk": args.chunk}, "N x D x V", "grads (floor)", _row)


if __name__ == "__main__":
    main()
