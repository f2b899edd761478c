"""Benchmark: the vocabulary-parallel loss vs gathering the full logits on every rank (CPU, gloo).

Each rank holds the logits of half the vocabulary (``N x V/2``, float32 or bf16). Methods, one fresh
group of ``--world`` processes each (memory method of ``_memory.py``: peak RSS above the live inputs, per
rank, ``MALLOC_MMAP_THRESHOLD_`` so that RSS follows live memory):

- ``gather_fused`` (the denominator): ``all_gather`` the shards, ``torch.cat`` them into the ``N x V``
  logits on every rank, ``labelsmooth.fused_cross_entropy(full, y, label_smoothing=0.1)`` + backward,
  and keep the rank's columns of the gradient, what a user without a vocab-parallel loss does;
- ``vocab_parallel``: ``labelsmooth.distributed.vocab_parallel_cross_entropy(shard, y,
  label_smoothing=0.1)`` + backward (two all-reduces of O(N) numbers, the gradient of the shard only).

Both give the same loss (checked, and printed). Times are the median of ``--repeats`` steps; the step is
synchronous over the ranks, the slowest rank's figure is reported.

Usage::

    python benchmarks/bench_distributed.py                        # N = 4096, V = 128256, float32
    python benchmarks/bench_distributed.py --n 1024 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import MiB, measure

METHODS = ["gather_fused", "vocab_parallel"]


def _rank(rank: int, cfg: dict, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from labelsmooth import fused_cross_entropy
    from labelsmooth.distributed import vocab_parallel_cross_entropy

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(cfg["threads"])
    world = cfg["world"]
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=1800),
    )
    n, V = cfg["n"], cfg["v"]
    dtype = getattr(torch, cfg["dtype"])
    sizes = [V // world] * (world - 1) + [V - (world - 1) * (V // world)]
    start = sum(sizes[:rank])
    g = torch.Generator().manual_seed(1000 + rank)  # each rank makes only its own columns
    shard = (torch.randn(n, sizes[rank], generator=g) * 2).to(dtype).requires_grad_()
    y = torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(0))
    y[::17] = -100
    losses = []

    def gather_fused():
        parts = [torch.empty(n, s, dtype=dtype) for s in sizes]
        dist.all_gather(parts, shard.detach().contiguous())
        full = torch.cat(parts, 1)
        del parts
        full.requires_grad_()
        loss = fused_cross_entropy(full, y, label_smoothing=0.1)
        loss.backward()
        shard.grad = full.grad[:, start : start + sizes[rank]].clone()  # the rank's columns
        losses.append(float(loss.detach()))

    def vocab_parallel():
        loss = vocab_parallel_cross_entropy(shard, y, label_smoothing=0.1)
        loss.backward()
        losses.append(float(loss.detach()))

    def setup():
        shard.grad = None

    step = {"gather_fused": gather_fused, "vocab_parallel": vocab_parallel}[cfg["method"]]
    res = measure(step, setup, repeats=cfg["repeats"])
    res["loss"] = losses[-1]
    dist.destroy_process_group()
    with open(os.path.join(out, f"{rank}.json"), "w") as f:
        json.dump(res, f)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cfg: dict) -> list[dict]:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(_rank, args=(cfg, _free_port(), out), nprocs=cfg["world"], start_method="spawn")
        return [json.load(open(os.path.join(out, f"{r}.json"))) for r in range(cfg["world"])]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--v", type=int, default=128256)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    # every tensor-sized allocation its own mmap, returned on free: RSS follows live memory (_memory.py)
    os.environ.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_ARENA_MAX="2")
    print(
        f"N = {args.n}, V = {args.v}, {args.dtype}, {args.world} ranks (gloo, CPU), {args.threads} thread(s) "
        f"per rank, label_smoothing = 0.1; load average {os.getloadavg()[0]:.1f}"
    )
    results = {}
    for method in METHODS:
        cfg = dict(vars(args), method=method)
        ranks = _run(cfg)
        t = max(r["time"] for r in ranks)
        mem = max(r["peak_extra"] for r in ranks)
        results[method] = (t, mem, ranks[0]["loss"])
        per_rank = ", ".join(f"{r['time']:.3f}" for r in ranks)
        print(
            f"{method:15s} time {t:8.3f} s (per rank {per_rank})   "
            f"peak extra {mem / MiB:8,.0f} MiB per rank (max over ranks)   loss {ranks[0]['loss']:.6f}"
        )
    (t0, m0, l0), (t1, m1, l1) = results["gather_fused"], results["vocab_parallel"]
    print(f"ratio vocab_parallel / gather_fused: time {t1 / t0:.2f}, peak memory {m1 / m0:.2f}")
    print(f"loss difference {abs(l1 - l0):.2e}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
