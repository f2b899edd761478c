"""Helpers for the vocabulary-parallel cases of test_distributed_spawn.py and test_distributed_errors.py:
the group the cases run on, the losses bound to it, shard layouts, problems, a float64 comparison and an
error check. Importable from the test files of this folder (pytest puts a test file's folder on sys.path)
and from the processes they spawn (which inherit the parent's sys.path).
"""

from __future__ import annotations

import torch

from labelsmooth import cross_entropy
from labelsmooth.distributed import (
    global_num_items,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)

REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- helpers for the cases
GROUP: list = [None]  # the group the cases run on: a 2-rank subgroup, then the default group of 3
SINGLE: list = [None]  # a group of this process alone (a data-parallel rank's own "tensor-parallel" group)


def _ce(*args, **kw):
    kw.setdefault("group", GROUP[0])
    return vocab_parallel_cross_entropy(*args, **kw)


def _lin(*args, **kw):
    kw.setdefault("group", GROUP[0])
    return vocab_parallel_linear_cross_entropy(*args, **kw)


def _count(*args, **kw):
    kw.setdefault("group", GROUP[0])
    return global_num_items(*args, **kw)


def _sizes(V: int, world: int, kind: str) -> list[int]:
    """Shard sizes: "even" (the remainder on the last rank), "uneven" (V = 13 over 2: [10, 3]; over 3:
    [6, 1, 6]) or "empty" (rank 1 holds no class)."""
    if kind == "even":
        return [V // world] * (world - 1) + [V - (world - 1) * (V // world)]
    if kind == "uneven":
        return [V - V // 4, V // 4] if world == 2 else [V // 2, 1, V - V // 2 - 1]
    if kind == "empty":
        return [V, 0] if world == 2 else [V // 2, 0, V - V // 2]
    raise AssertionError(kind)


def _bounds(sizes: list[int], rank: int) -> tuple[int, int]:
    s = sum(sizes[:rank])
    return s, s + sizes[rank]


def _problem(seed: int, n: int, V: int, dtype=torch.float64, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, V, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, V, (n,), generator=g)
    y[1] = -100
    return z, y, g


def _close(a, b, what, rtol=1e-10, atol=1e-12):
    """torch.testing.assert_close's rule (|a - b| <= atol + rtol |b|, nan == nan, same dtype and shape),
    without its import of torch.distributed.tensor (seconds) once a process group exists."""
    a, b = a.detach(), b.detach()
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
    )
    a64, b64 = a.double(), b.double()
    ok = torch.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(ok.all()):
        i = int((~ok).reshape(-1).nonzero()[0])
        worst = float((a64 - b64).abs().nan_to_num(nan=float("inf")).max())
        raise AssertionError(
            f"{what}: {int((~ok).sum())} of {ok.numel()} elements differ (max |diff| {worst:.3g}; first at flat "
            f"index {i}: {a64.reshape(-1)[i].item()!r} vs {b64.reshape(-1)[i].item()!r}; rtol={rtol}, atol={atol})"
        )


def _check_shard_loss(
    rank, world, *, sizes, z, y, kw_ref, kw_ours=None, reduction, tol=(1e-10, 1e-12), grad_tol=None
):
    """Loss and gradient of the shard against labelsmooth.cross_entropy on the full logits; the shard's
    keyword arguments ``kw_ours`` are ``kw_ref`` unless given."""
    s, e = _bounds(sizes, rank)
    zr = z.clone().requires_grad_()
    ref = cross_entropy(zr, y, reduction=reduction, **kw_ref)
    go = (
        torch.linspace(0.5, 1.5, ref.numel(), dtype=ref.dtype).reshape(ref.shape)
        if reduction == "none"
        else None
    )
    (ref * go).sum().backward() if go is not None else ref.backward()
    shard = z[:, s:e].clone().requires_grad_()
    ours = _ce(shard, y, reduction=reduction, **(kw_ref if kw_ours is None else kw_ours))
    (ours * go).sum().backward() if go is not None else ours.backward()
    rtol, atol = tol
    _close(ours, ref, "loss", rtol, atol)
    gr, ga = grad_tol or tol
    _close(shard.grad, zr.grad[:, s:e], "grad", gr, ga)


def _raises(exc, match, fn):
    try:
        fn()
    except exc as err:
        assert match in str(err), f"{match!r} not in {str(err)!r}"
        return str(err)
    raise AssertionError(f"{exc.__name__} not raised (wanted {match!r})")
