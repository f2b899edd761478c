"""labelsmooth.distributed: the vocabulary-parallel loss equals labelsmooth.cross_entropy on gathered logits.

Processes are started from pytest (torch.multiprocessing's forkserver, gloo on 127.0.0.1, a free port).
Starting them costs seconds on a loaded machine, so one start of three processes runs every case, the
world-2 suite on a subgroup of two and then the world-3 suite, and reports the failing cases by name. The
cases of value are here, the case of bad input (run on every rank, by the same start) is in
test_distributed_errors.py.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import traceback
import zlib
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from distributed_helpers import (
    GROUP,
    REDUCTIONS,
    SINGLE,
    _bounds,
    _ce,
    _check_shard_loss,
    _close,
    _count,
    _lin,
    _problem,
    _raises,
    _sizes,
)
from test_distributed_errors import _case_errors

from labelsmooth import cross_entropy

TIMEOUT_S = 120  # a hang (a collective that one rank skipped) fails the test instead of blocking it


# --------------------------------------------------------------------------- spawning
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    """Three processes: the world-2 suite on the subgroup of ranks 0 and 1, then the world-3 suite on the
    default group (one spawn instead of two)."""
    import time

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=3,
        timeout=datetime.timedelta(seconds=TIMEOUT_S),  # rank 2 waits while ranks 0 and 1 run the world-2 suite
    )
    singles = [dist.new_group([r]) for r in range(3)]  # every process creates every group, in one order
    pair = dist.new_group([0, 1])
    SINGLE[0] = singles[rank]
    result = {"done": 0, "failures": [], "times": {}}
    for world, group in ((2, pair), (3, None)):
        if rank >= world:
            continue
        GROUP[0] = group
        for name, case in _cases(world):
            t0 = time.perf_counter()
            try:
                case(rank, world)
                result["done"] += 1
                result["times"][f"w{world}/{name}"] = time.perf_counter() - t0
            except Exception:
                result["failures"].append(
                    f"[world {world}, rank {rank}] {name}: {traceback.format_exc(limit=4)}"
                )
    dist.barrier()
    dist.destroy_process_group()
    Path(out, f"{rank}.json").write_text(json.dumps(result))


def test_vocab_parallel_groups_of_2_and_3(tmp_path):
    import time

    # forked by a forkserver that imports torch and DTensor's modules once, not once per process (seconds
    # each); the study engine's workers share the same server (see labelsmooth.study.runner.worker_context)
    mp.set_forkserver_preload(["torch", "torch._dynamo", "torch.distributed.tensor"])  # once it runs: no-op
    ctx = mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path)), nprocs=3, join=False, start_method="forkserver"
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the 3 processes did not finish within {TIMEOUT_S} s")
    failures = []
    for r in range(3):
        res = json.loads(Path(tmp_path, f"{r}.json").read_text())
        failures += res["failures"]
        want = (len(_cases(2)) if r < 2 else 0) + len(_cases(3))
        assert res["done"] + len(res["failures"]) == want
        if os.environ.get("LS_DIST_TIMES"):
            print(r, sorted(res["times"].items(), key=lambda kv: -kv[1])[:8], sum(res["times"].values()))
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- the cases
def _variant_cases(world):
    """(name, fn) for every reduction x semantic variant x shard layout."""
    V, n = 13, 7
    out = []

    def make(variant, layout, reduction):
        def case(rank, world):
            sizes = _sizes(V, world, layout)
            s, e = _bounds(sizes, rank)
            z, y, g = _problem(zlib.crc32(f"{variant}/{layout}".encode()) % 1000, n, V)
            w = torch.rand(V, generator=g, dtype=torch.float64) + 0.1
            u = torch.softmax(torch.randn(V, generator=g, dtype=torch.float64), 0)
            urows = torch.softmax(torch.randn(n, V, generator=g, dtype=torch.float64), 1)
            a_rows = torch.rand(n, generator=g, dtype=torch.float64) * 0.5
            ref, ours = {"label_smoothing": 0.1}, {"label_smoothing": 0.1}
            if variant == "plain":
                pass
            elif variant == "no_smoothing":
                ref = ours = {}
            elif variant == "weight_full":
                ref = ours = {"label_smoothing": 0.2, "weight": w}
            elif variant == "weight_slice":
                ref, ours = {"label_smoothing": 0.2, "weight": w}, {"label_smoothing": 0.2, "weight": w[s:e]}
            elif variant == "weight_row_mode":
                ref = {"label_smoothing": 0.2, "weight": w, "weight_mode": "row"}
                ours = {"label_smoothing": 0.2, "weight": w[s:e], "weight_mode": "row"}
            elif variant == "prior_full":
                ref = ours = {"label_smoothing": 0.3, "prior": u}
            elif variant == "prior_slice_weight":
                ref = {"label_smoothing": 0.3, "prior": u, "weight": w}
                ours = {"label_smoothing": 0.3, "prior": u[s:e], "weight": w}
            elif variant == "prior_rows_slice_weight_slice":
                ref = {"label_smoothing": 0.3, "prior": urows, "weight": w}
                ours = {"label_smoothing": 0.3, "prior": urows[:, s:e], "weight": w[s:e]}
            elif variant == "per_sample":
                ref = ours = {"label_smoothing": a_rows}
            elif variant == "per_sample_prior_row_mode":
                ref = {"label_smoothing": a_rows, "prior": u, "weight": w, "weight_mode": "row"}
                ours = {"label_smoothing": a_rows, "prior": u[s:e], "weight": w, "weight_mode": "row"}
            elif variant == "negative":
                ref = ours = {"label_smoothing": -0.2, "allow_negative": True}
            elif variant == "targets_in_rank0_only":
                y = torch.where(y >= 0, y % max(1, sizes[0]), y)
            else:
                raise AssertionError(variant)
            _check_shard_loss(
                rank, world, sizes=sizes, z=z, y=y, kw_ref=ref, kw_ours=ours, reduction=reduction
            )

        return case

    variants = [
        "plain",
        "no_smoothing",
        "weight_full",
        "weight_slice",
        "weight_row_mode",
        "prior_full",
        "prior_slice_weight",
        "prior_rows_slice_weight_slice",
        "per_sample",
        "per_sample_prior_row_mode",
        "negative",
        "targets_in_rank0_only",
    ]
    for variant in variants:
        for layout in (
            ("even", "uneven", "empty") if variant in ("plain", "prior_slice_weight") else ("uneven",)
        ):
            for reduction in REDUCTIONS:
                out.append((f"{variant}/{layout}/{reduction}", make(variant, layout, reduction)))
    return out


def _case_float32_extreme(rank, world):
    sizes = _sizes(40, world, "uneven")
    s, e = _bounds(sizes, rank)
    z = torch.cat(
        [torch.tensor([[1e4, -1e4], [-1e4, 1e4], [3.0, -2.0]]), torch.linspace(-1e4, 1e4, 38).expand(3, 38)],
        1,
    )
    y = torch.tensor([1, 0, 39])
    for red in REDUCTIONS:
        z1, z2 = z[:, s:e].clone().requires_grad_(), z.double().requires_grad_()
        l1 = _ce(z1, y, label_smoothing=0.1, reduction=red)
        l2 = cross_entropy(z2, y, label_smoothing=0.1, reduction=red)
        assert torch.isfinite(l1).all()
        _close(l1.double(), l2, f"loss {red}", 1e-5, 1e-6)
        l1.sum().backward()
        l2.sum().backward()
        _close(z1.grad.double(), z2.grad[:, s:e], f"grad {red}", 1e-5, 1e-6)


def _case_float32_matches_reference(rank, world):
    """Same tolerances as the kernels' tests against labelsmooth.cross_entropy in float32."""
    sizes = _sizes(1000, world, "uneven")
    z, y, g = _problem(5, 33, 1000, dtype=torch.float32)
    w = torch.rand(1000, generator=g) + 0.1
    for red in REDUCTIONS:
        _check_shard_loss(
            rank,
            world,
            sizes=sizes,
            z=z,
            y=y,
            kw_ref={"label_smoothing": 0.1, "weight": w},
            reduction=red,
            tol=(1e-5, 1e-6),
            grad_tol=(1e-5, 1e-7),
        )


def _case_bf16(rank, world):
    """bf16 logits accumulate in float32: the loss and gradient are those of cross_entropy on the bf16
    logits (which computes in float32), to bf16 rounding."""
    V = 257
    sizes = _sizes(V, world, "uneven")
    s, e = _bounds(sizes, rank)
    z, y, _ = _problem(6, 16, V, dtype=torch.bfloat16)
    for red in REDUCTIONS:
        zr = z.clone().requires_grad_()
        ref = cross_entropy(zr, y, label_smoothing=0.1, reduction=red)
        ref.float().sum().backward()
        shard = z[:, s:e].clone().requires_grad_()
        ours = _ce(shard, y, label_smoothing=0.1, reduction=red)
        assert ours.dtype == torch.bfloat16 and shard.grad is None
        ours.float().sum().backward()
        assert shard.grad.dtype == torch.bfloat16
        _close(ours.float(), ref.float(), f"loss {red}", 1.6e-2, 1e-5)
        _close(shard.grad.float(), zr.grad[:, s:e].float(), f"grad {red}", 1.6e-2, 1e-5)
        # float32 accumulation: within bf16 rounding of the float64 answer
        ref64 = cross_entropy(z.double(), y, label_smoothing=0.1, reduction=red)
        _close(ours.double(), ref64, f"loss vs float64 {red}", 8e-3, 1e-3)


def _case_spatial_and_per_sample(rank, world):
    """(B, T, V_r) logits, class last; per-sample smoothing of shape (B,) and of shape (B, T)."""
    V, B, T = 11, 3, 4
    sizes = _sizes(V, world, "uneven")
    s, e = _bounds(sizes, rank)
    g = torch.Generator().manual_seed(9)
    z = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (B, T), generator=g)
    y[0, 1] = -100
    aB = torch.rand(B, generator=g, dtype=torch.float64)
    for a, a_rows in (
        (aB, aB.repeat_interleave(T)),
        (aB.unsqueeze(1).expand(B, T).clone(), aB.repeat_interleave(T)),
    ):
        zr = z.clone().requires_grad_()
        ref = cross_entropy(zr.reshape(-1, V), y.reshape(-1), label_smoothing=a_rows, reduction="none")
        ref.sum().backward()
        shard = z[..., s:e].clone().requires_grad_()
        ours = _ce(shard, y, label_smoothing=a, reduction="none")
        assert ours.shape == (B, T)
        ours.sum().backward()
        _close(ours.reshape(-1), ref, "loss")
        _close(shard.grad, zr.grad[..., s:e], "grad")


def _case_ignored(rank, world):
    V = 9
    sizes = _sizes(V, world, "even")
    s, e = _bounds(sizes, rank)
    z = torch.randn(4, V, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.full((4,), -100)
    shard = z[:, s:e].clone().requires_grad_()
    loss = _ce(shard, y, label_smoothing=0.1)
    assert torch.isnan(loss)  # 0/0, as PyTorch
    loss.backward()
    assert bool((shard.grad == 0).all())
    assert _ce(z[:, s:e], y, reduction="sum", label_smoothing=0.1).item() == 0.0
    # an empty batch: no rows at all
    empty = _ce(torch.empty(0, e - s, dtype=torch.float64), torch.empty(0, dtype=torch.long), reduction="sum")
    assert empty.item() == 0.0
    # custom ignore_index
    y2 = torch.tensor([3, 7, 0, 2])
    _check_shard_loss(
        rank,
        world,
        sizes=sizes,
        z=z,
        y=y2,
        kw_ref={"ignore_index": 7, "label_smoothing": 0.1},
        reduction="mean",
    )


def _case_num_items_accumulation(rank, world):
    """Micro-batches with num_items_in_batch = the big batch's count sum to the big batch's mean."""
    V, n = 12, 12
    sizes = _sizes(V, world, "uneven")
    s, e = _bounds(sizes, rank)
    z, y, _ = _problem(11, n, V)
    y[5] = y[6] = -100
    kw = {"label_smoothing": 0.1}
    big = z[:, s:e].clone().requires_grad_()
    ref = _ce(big, y, **kw)
    ref.backward()
    _close(ref, cross_entropy(z, y, **kw), "big batch vs cross_entropy")
    count = int((y != -100).sum())
    acc = z[:, s:e].clone().requires_grad_()
    total = torch.zeros((), dtype=torch.float64)
    for lo, hi in ((0, 3), (3, 8), (8, 12)):  # unequal micro-batches with unequal numbers of ignored rows
        total = total + _ce(acc[lo:hi], y[lo:hi], num_items_in_batch=count, **kw)
    total.backward()
    _close(total, ref, "accumulated loss")
    _close(acc.grad, big.grad, "accumulated grad")
    # the naive mean of micro-batch means differs (the bug num_items_in_batch fixes)
    naive = sum(_ce(z[lo:hi, s:e], y[lo:hi], **kw) for lo, hi in ((0, 3), (3, 8), (8, 12))) / 3
    assert abs(float(naive.detach() - ref.detach())) > 1e-3
    # a tensor count works the same
    t = _ce(z[:3, s:e], y[:3], num_items_in_batch=torch.tensor(count), **kw)
    _close(t, _ce(z[:3, s:e], y[:3], reduction="sum", **kw) / count, "tensor count")


def _case_data_parallel(rank, world):
    """Data parallel (each rank its own rows, full vocabulary, a one-rank TP group) + global_num_items."""
    V, n = 10, 5 * world
    z, y, _ = _problem(12, n, V)
    y[::4] = -100
    mine = slice(rank * 5, rank * 5 + 5)
    num = _count(y[mine])  # the default group is the data-parallel group here
    assert int(num) == int((y != -100).sum())
    zr = z[mine].clone().requires_grad_()
    loss = _ce(zr, y[mine], group=SINGLE[0], label_smoothing=0.1, num_items_in_batch=num)
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total, group=GROUP[0])
    zf = z.clone().requires_grad_()
    ref = cross_entropy(zf, y, label_smoothing=0.1)
    ref.backward()
    _close(total, ref, "sum over data-parallel ranks")
    _close(zr.grad, zf.grad[mine], "per-rank grad")
    w = torch.linspace(0.5, 2.0, V, dtype=torch.float64)
    numw = _count(y[mine], weight=w)
    _close(numw, w[y[y != -100]].sum(), "weighted count")


def _case_dtensor(rank, world):
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor, init_device_mesh

    mesh = init_device_mesh("cpu", (world,))
    V = 13  # not divisible by 2 or 3: DTensor's uneven chunks
    z, y, g = _problem(13, 6, V)
    u = torch.softmax(torch.randn(V, generator=g, dtype=torch.float64), 0)
    for placement in (Shard(1), Shard(-1)):
        for red in REDUCTIONS:
            dz = distribute_tensor(z.clone(), mesh, [placement]).requires_grad_()
            loss = _ce(dz, y, label_smoothing=0.1, prior=u, reduction=red)
            assert isinstance(loss, DTensor) and all(isinstance(p, Replicate) for p in loss.placements)
            zr = z.clone().requires_grad_()
            ref = cross_entropy(zr, y, label_smoothing=0.1, prior=u, reduction=red)
            _close(loss.full_tensor(), ref, f"dtensor loss {red}")
            loss.sum().backward()
            ref.sum().backward()
            _close(dz.grad.full_tensor(), zr.grad, f"dtensor grad {red}")
    # a prior given as a DTensor sharded like the classes, a replicated DTensor target
    dz = distribute_tensor(z.clone(), mesh, [Shard(1)])
    du = distribute_tensor(u, mesh, [Shard(0)])
    dy = distribute_tensor(y, mesh, [Replicate()])
    _close(
        _ce(dz, dy, label_smoothing=0.1, prior=du).full_tensor(),
        cross_entropy(z, y, label_smoothing=0.1, prior=u),
        "dtensor prior",
    )
    # torch's own loss_parallel refuses label smoothing: the gap this fills
    from torch.distributed.tensor.parallel import loss_parallel

    # (torch 2.13 documents "Currently not supported" and fails inside masked_fill_; older releases raise
    # "label_smoothing is not supported"). Should a release support it, it must agree with ours.
    try:
        with loss_parallel():
            theirs = torch.nn.functional.cross_entropy(dz, dy, label_smoothing=0.1)
    except (ValueError, RuntimeError):
        pass
    else:  # pragma: no cover - depends on the torch release
        _close(theirs.full_tensor(), cross_entropy(z, y, label_smoothing=0.1), "loss_parallel")
    _raises(ValueError, "sharded on its last", lambda: _ce(distribute_tensor(z, mesh, [Replicate()]), y))
    ys = distribute_tensor(y, mesh, [Shard(0)])
    _raises(ValueError, "`target` to be a replicated DTensor", lambda: _ce(dz, ys))
    _raises(ValueError, "None for DTensor", lambda: _ce(dz, y, group=dist.group.WORLD))


def _case_linear(rank, world):
    V, D, n = 23, 5, 9
    sizes = _sizes(V, world, "uneven")
    s, e = _bounds(sizes, rank)
    g = torch.Generator().manual_seed(14)
    x = torch.randn(n, D, generator=g, dtype=torch.float64)
    W = torch.randn(V, D, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (n,), generator=g)
    y[2] = -100
    u = torch.softmax(torch.randn(V, generator=g, dtype=torch.float64), 0)
    w = torch.rand(V, generator=g, dtype=torch.float64) + 0.1
    for red in REDUCTIONS:
        for kw_ref, kw_ours in (
            ({"label_smoothing": 0.1}, {"label_smoothing": 0.1}),
            (
                {"label_smoothing": 0.2, "prior": u, "weight": w},
                {"label_smoothing": 0.2, "prior": u[s:e], "weight": w[s:e]},
            ),
        ):
            xr, Wr, br = (t.clone().requires_grad_() for t in (x, W, b))
            ref = cross_entropy(xr @ Wr.T + br, y, reduction=red, **kw_ref)
            go = (
                torch.linspace(0.5, 1.5, n, dtype=torch.float64)
                if red == "none"
                else torch.tensor(2.0, dtype=torch.float64)
            )
            (ref * go).sum().backward()
            xo, Wo, bo = (
                x.clone().requires_grad_(),
                W[s:e].clone().requires_grad_(),
                b[s:e].clone().requires_grad_(),
            )
            ours = _lin(xo, Wo, y, bo, reduction=red, chunk_size=4, **kw_ours)
            (ours * go).sum().backward()
            _close(ours, ref, f"linear loss {red}")
            _close(xo.grad, xr.grad, f"linear grad x {red}")
            _close(Wo.grad, Wr.grad[s:e], f"linear grad W {red}")
            _close(bo.grad, br.grad[s:e], f"linear grad b {red}")
    # no bias, bf16 (float32 accumulation), default chunk size
    xb, Wb = x.bfloat16().requires_grad_(), W[s:e].bfloat16().requires_grad_()
    ours = _lin(xb, Wb, y, label_smoothing=0.1)
    ours.float().backward()
    xr, Wr = x.bfloat16().requires_grad_(), W.bfloat16().requires_grad_()
    ref = cross_entropy(xr @ Wr.T, y, label_smoothing=0.1)
    ref.float().backward()
    _close(ours.float(), ref.float(), "bf16 linear loss", 1.6e-2, 1e-5)
    _close(xb.grad.float(), xr.grad.float(), "bf16 linear grad x", 3e-2, 2e-3)
    _close(Wb.grad.float(), Wr.grad[s:e].float(), "bf16 linear grad W", 3e-2, 2e-3)
    # only W requires grad; no grad at all
    Wo = W[s:e].clone().requires_grad_()
    _lin(x, Wo, y, label_smoothing=0.1).backward()
    assert Wo.grad is not None
    with torch.no_grad():
        _close(
            _lin(x, W[s:e], y, label_smoothing=0.1), cross_entropy(x @ W.T, y, label_smoothing=0.1), "no_grad"
        )


def _cases(world):
    cases = _variant_cases(world)
    cases += [
        ("float32_extreme_logits", _case_float32_extreme),
        ("float32_matches_reference", _case_float32_matches_reference),
        ("bf16", _case_bf16),
        ("spatial_and_per_sample", _case_spatial_and_per_sample),
        ("ignored_and_empty", _case_ignored),
        ("num_items_accumulation", _case_num_items_accumulation),
        ("data_parallel_global_num_items", _case_data_parallel),
        ("linear", _case_linear),
        ("errors", _case_errors),
    ]
    if world == 3:  # importing torch.distributed.tensor costs seconds: once, on the uneven 13 = 5 + 5 + 3
        cases.append(("dtensor", _case_dtensor))
    return cases
