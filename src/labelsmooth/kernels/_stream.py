"""Streaming over row blocks of the logits: per-row losses, and the gradient written block by block.

Each block runs the C row kernel (:mod:`labelsmooth.kernels._native`: float32 and bfloat16 CPU tensors) or
:func:`labelsmooth.kernels._core.block_loss_grad` (the per-row maths as ATen ops); on the CPU the blocks are
shared among single-threaded worker threads (:func:`labelsmooth._parallel.map_blocks`).
"""

from __future__ import annotations

import threading

import torch

from .._numerics import compute_dtype
from .._parallel import map_blocks
from . import _native
from ._core import RowParams, block_loss_grad

# Bytes of compute-dtype logits per row block (and, for half inputs, of each worker's float32 buffer).
# On the 2-core dev machine (AMD EPYC, 1 MB L2 per core, 32 MB L3) 2-8 MB blocks were fastest; the passes
# are bound by exp on two cores rather than by memory bandwidth. See docs/kernels.md.
BLOCK_BYTES = 4 << 20


def block_rows(num_classes: int, dtype: torch.dtype, block_bytes: int | None = None) -> int:
    """Rows per block so that a block of compute-dtype logits takes about ``block_bytes``."""
    item = torch.empty((), dtype=compute_dtype(dtype)).element_size()
    return max(1, (block_bytes or BLOCK_BYTES) // (item * max(1, num_classes)))


def stream_loss_grad(
    z: torch.Tensor,
    grad: torch.Tensor | None,
    p: RowParams,
    block_bytes: int | None = None,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Stream over row blocks of ``z`` (M, V): per-row losses (M,), gradient written into ``grad``.

    ``grad`` has the dtype of ``z`` and may be ``z`` itself (in place), or ``None`` for the loss only
    (then nothing of size M x V is written). Half inputs, and ``grad=None``, go through one float32 block
    buffer per worker, reused for every block; with soft-capping each worker also keeps a second block
    buffer (``tanh(z / c)``). The only (M, V) tensor touched is ``grad``. ``stats`` = ``(lse, correct)``,
    (M,) tensors of the compute dtype and bool, receive the per-row statistics of :func:`block_loss_grad`.
    On the CPU with more than one block and more than one thread, blocks run on worker threads
    (:func:`labelsmooth._parallel.map_blocks`); otherwise inline. The result does not depend on the block
    size or on the workers.
    """
    M, V = z.shape
    cdt = compute_dtype(z.dtype)
    rows = block_rows(V, z.dtype, block_bytes)
    losses = torch.empty(M, dtype=cdt, device=z.device)
    local = threading.local()
    unit = z.stride(-1) == 1 and (grad is None or grad.stride(-1) == 1)
    native = _native.coefficients(p) if unit and _native.wanted(z, p) else None  # the C row kernel

    def scratch(name: str) -> torch.Tensor:
        buf = getattr(local, name, None)
        if buf is None:
            buf = torch.empty((min(rows, M), V), dtype=cdt, device=z.device)
            setattr(local, name, buf)
        return buf

    def eager(s: int, e: int) -> None:
        pb = p.rows(s, e)
        st = (stats[0][s:e], stats[1][s:e]) if stats is not None else None
        tb = scratch("tb")[: e - s] if p.softcap is not None else None
        if cdt == z.dtype and grad is not None:
            losses[s:e] = block_loss_grad(z[s:e], grad[s:e], pb, st, tb)
            return
        b = scratch("buf")[: e - s]
        if cdt == z.dtype:
            losses[s:e] = block_loss_grad(z[s:e], b, pb, st, tb)
            return
        b.copy_(z[s:e])
        losses[s:e] = block_loss_grad(b, b, pb, st, tb)
        if grad is not None:
            grad[s:e].copy_(b)

    def work(s: int, e: int) -> None:
        with torch.no_grad():
            if native is None:
                eager(s, e)
                return
            # Rows holding inf or nan are left by the C kernel to the eager pass, in runs of consecutive rows.
            left = _native.run_rows(z, grad, native, s, e, losses, stats).tolist()
            i = 0
            while i < len(left):
                j = i
                while j + 1 < len(left) and left[j + 1] == left[j] + 1:
                    j += 1
                eager(left[i], left[j] + 1)
                i = j + 1

    map_blocks(lambda s: work(s, min(M, s + rows)), range(0, M, rows), parallel=z.device.type == "cpu")
    return losses


def new_stats(M: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty ``(lse, correct)`` per-row buffers for :func:`stream_loss_grad` (compute dtype, bool)."""
    lse = torch.empty(M, dtype=compute_dtype(dtype), device=device)
    return lse, torch.empty(M, dtype=torch.bool, device=device)
