"""Benchmark: fused label-smoothed cross-entropy on logits vs PyTorch eager and torch.compile.

Every configuration (shape x dtype x method) runs in a fresh process (see ``_memory.py`` for the memory
method); the parent prints ratios measured in this one run. Methods:

- ``eager``: ``F.cross_entropy(z, y, label_smoothing=0.1)`` forward + backward (the denominator);
- ``compile``: ``torch.compile`` of the same (compile time excluded, reported apart);
- ``fused``: ``labelsmooth.kernels.fused_cross_entropy(z, y, label_smoothing=0.1)`` + backward;
- ``fused_inplace``: the same with ``inplace=True`` (the logits are refilled before each step,
  outside the timing);
- ``liger``: Liger Kernel's ``LigerCrossEntropyLoss`` (CUDA only, if importable);
- ``eager_opts`` / ``compile_opts`` / ``fused_opts``: the same three with final-logit soft-capping
  (``c = 30``, Gemma's value) and PaLM's z-loss (``lambda = 1e-4``): eager PyTorch computes
  ``c * tanh(z / c)``, the loss and ``lambda * mean(logsumexp^2)`` as separate ops; ``fused_opts`` passes
  ``softcap=30.0, z_loss=1e-4``. Their ``x eager`` / ``x compile`` columns are against ``eager_opts`` /
  ``compile_opts`` (not in the default method list: ``--methods ... eager_opts compile_opts fused_opts``
  or ``--options``);
- ``fused_eager`` / ``fused_native`` (not in the default list): ``fused`` with ``LABELSMOOTH_NATIVE=0``
  (every block takes the eager ATen pass; bfloat16 blocks through a float32 buffer) or ``=1`` (every
  bfloat16 and float32 block takes the C row kernel of ``kernels/_native.py``) in its process. ``fused``
  itself runs the default (``auto``: the C kernel for bfloat16, the eager pass for float32);
- ``copy``: ``dst.copy_(z)`` of the logits' size, the memory-bandwidth yardstick. The fused step must
  read the logits and write the gradient, the same bytes as one copy, so ``t_copy / t_method`` is the
  fraction of the bandwidth limit reached.

Usage::

    python benchmarks/bench_fused_ce.py                      # CPU, all shapes, fp32 and bf16
    python benchmarks/bench_fused_ce.py --dtypes float32 --shapes 4096x32000
    python benchmarks/bench_fused_ce.py --device cuda        # GPU (Triton path, Liger if installed)
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import bench_parser, measure, run_table, table_row

CPU_SHAPES = ["4096x32000", "1024x128256", "512x256000"]
GPU_SHAPES = ["8192x32000", "8192x128256", "4096x256000"]
METHODS = ["copy", "eager", "compile", "fused", "fused_inplace"]
OPTION_METHODS = ["eager_opts", "compile_opts", "fused_opts"]
SOFTCAP, Z_LOSS = 30.0, 1e-4


def eager_with_options(t, y, ignore_index=-100):
    """What a training script writes without labelsmooth: soft-cap, smoothed CE, z-loss, all eager."""
    import torch
    import torch.nn.functional as F

    capped = SOFTCAP * torch.tanh(t / SOFTCAP)
    lse = torch.logsumexp(capped.float(), -1)
    valid = y != ignore_index
    z = (lse.square() * valid).sum() / valid.sum()
    return F.cross_entropy(capped, y, label_smoothing=0.1) + Z_LOSS * z


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
    if method in ("fused_eager", "fused_native"):  # the two CPU block passes, in one run
        from labelsmooth.kernels import _native

        os.environ[_native.ENV] = "0" if method == "fused_eager" else "1"
        method = "fused"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    z = src
    setup = None
    if method == "copy":
        dst = torch.empty_like(src)
        dst.copy_(src)

        def step():
            dst.copy_(src)
            sync()
    elif method in ("eager", "compile", "fused", "liger", *OPTION_METHODS):
        z = src.requires_grad_()
        if method == "eager_opts":
            fn = lambda t: eager_with_options(t, y)  # noqa: E731
        elif method == "compile_opts":
            fn = torch.compile(lambda t: eager_with_options(t, y))
        elif method == "fused_opts":
            fn = lambda t: _apply(t, y, None, -100, "mean", 0.1, None, False, "auto", bb,  # noqa: E731
                                  softcap=SOFTCAP, z_loss=Z_LOSS)  # fmt: skip
        elif method == "eager":
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

    res = measure(step, setup, cfg["repeats"], dev)
    res["logits_bytes"] = src.numel() * src.element_size()
    return res


def _row(shape: str, dt: str, m: str, r: dict, res: dict) -> str:
    if m == "copy":
        return f"| {shape} | {dt} | copy_ | {r['time']:.4f} | | | | | | 1.00 | |"
    copy = res.get("copy")
    if m in OPTION_METHODS:  # against eager PyTorch (and compile) doing the same options
        res = dict(res, eager=res.get("eager_opts"), compile=res.get("compile_opts"))
    return table_row(shape, dt, m, r, res, f"{copy['time'] / r['time']:.2f}" if copy else "")


def main() -> None:
    ap = bench_parser(__doc__, "NxV, e.g. 4096x32000", None)
    ap.add_argument("--block-bytes", type=int, default=None, help="row-block size of the fused CPU path")
    ap.add_argument("--options", action="store_true", help="add the softcap + z-loss rows (OPTION_METHODS)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return
    shapes = args.shapes or (GPU_SHAPES if args.device == "cuda" else CPU_SHAPES)
    methods = args.methods or (METHODS + (["liger"] if args.device == "cuda" and _has_liger() else []))
    if args.options:
        methods = methods + [m for m in OPTION_METHODS if m not in methods]
    config = {"block_bytes": args.block_bytes}
    run_table(__file__, args, shapes, methods, config, "N x V", "bandwidth (t_copy/t)", _row)


def _has_liger() -> bool:
    try:
        import liger_kernel  # noqa: F401
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
