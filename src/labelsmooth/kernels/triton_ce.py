"""Triton kernels for the fused label-smoothed cross-entropy on logits (GPU path).

Two kernels, one program per row, each looping over the V classes in blocks of ``BLOCK``:

1. ``stats``: online max and sum-exp (``m``, ``S = sum_k exp(z_k - m)``, rescaled whenever the running
   max grows), the smoothing sum ``zu = sum_k u_k w_k z_k`` and the target logit ``z_y``, all in float32.
2. ``grad``: ``g_k = A exp(z_k - m) - B uw_k - T [k = y]`` in float32, then one rounding to the output
   dtype; the output may be the logits themselves (in place).

Between them the per-row loss and coefficients ``A, B, T`` come from
:func:`labelsmooth.kernels._core.row_terms`, the same function the CPU path uses, so the maths lives
in one place. Reads of the logits: 2 passes; writes: 1 pass.

Triton is imported, and the kernels are defined, on first use: importing this module is free, and
``TRITON_INTERPRET=1`` (which makes the kernels run on CPU tensors, for CI) is honoured if it is set
before that first use.
"""

from __future__ import annotations

import functools

import torch

from ..losses.cross_entropy import _compute_dtype
from ._core import RowParams, row_terms

# Classes per loop iteration on the GPU. Small shapes (tests, the interpreter) use next_pow2(V).
DEFAULT_BLOCK = 4096


@functools.cache
def available() -> bool:
    """True when Triton can be imported."""
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception:
        return False
    return True


@functools.cache
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def stats_kernel(
        z_ptr,
        z_stride,
        y_ptr,
        uw_ptr,
        uw_stride,
        m_ptr,
        s_ptr,
        zy_ptr,
        zu_ptr,
        V,
        inv_V,
        SMOOTH: tl.constexpr,
        HAS_UW: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        z_row = z_ptr + row * z_stride
        m = float("-inf")
        s = 0.0
        zu = 0.0
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < V
            x = tl.load(z_row + offs, mask=mask, other=float("-inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, 0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), 0)
            m = m_new
            if SMOOTH:
                xz = tl.where(mask, x, 0.0)
                if HAS_UW:
                    uw = tl.load(uw_ptr + row * uw_stride + offs, mask=mask, other=0.0).to(tl.float32)
                    zu += tl.sum(uw * xz, 0)
                else:
                    zu += tl.sum(xz, 0)
        y = tl.load(y_ptr + row)
        zy = tl.load(z_row + y).to(tl.float32)
        if not HAS_UW:
            zu = zu * inv_V
        tl.store(m_ptr + row, m)
        tl.store(s_ptr + row, s)
        tl.store(zy_ptr + row, zy)
        tl.store(zu_ptr + row, zu)

    @triton.jit
    def grad_kernel(
        z_ptr,
        z_stride,
        g_ptr,
        g_stride,
        y_ptr,
        m_ptr,
        a_ptr,
        b_ptr,
        t_ptr,
        uw_ptr,
        uw_stride,
        V,
        inv_V,
        SMOOTH: tl.constexpr,
        HAS_UW: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        z_row = z_ptr + row * z_stride
        g_row = g_ptr + row * g_stride
        y = tl.load(y_ptr + row)
        m = tl.load(m_ptr + row)
        A = tl.load(a_ptr + row)
        B = tl.load(b_ptr + row)
        T = tl.load(t_ptr + row)
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < V
            x = tl.load(z_row + offs, mask=mask, other=0.0).to(tl.float32)
            g = A * tl.exp(x - m)
            if SMOOTH:
                if HAS_UW:
                    uw = tl.load(uw_ptr + row * uw_stride + offs, mask=mask, other=0.0).to(tl.float32)
                    g = g - B * uw
                else:
                    g = g - B * inv_V
            # -(1 - a) w_y folded in float32, before the one rounding to the output dtype.
            g = tl.where(offs == y, g - T, g)
            tl.store(g_row + offs, g.to(g_ptr.dtype.element_ty), mask=mask)

    return stats_kernel, grad_kernel


def _block(num_classes: int, block: int | None) -> int:
    import triton

    if block is not None:
        return int(block)
    return min(DEFAULT_BLOCK, triton.next_power_of_2(num_classes))


def loss_grad(
    z: torch.Tensor, grad: torch.Tensor | None, p: RowParams, block: int | None = None
) -> torch.Tensor:
    """Per-row losses of ``z`` (M, V) and the scaled gradient written into ``grad`` (may alias ``z``).

    ``grad=None`` runs the statistics kernel only (the loss, no M x V write).

    float64 logits are sent to the torch row-block path (the kernels compute in float32).
    """
    if z.dtype == torch.float64:
        from ._core import stream_loss_grad

        return stream_loss_grad(z, grad, p)
    if not available():
        raise RuntimeError("backend='triton' needs Triton, which could not be imported (pip install triton).")
    stats_kernel, grad_kernel = _kernels()
    M, V = z.shape
    if M == 0:
        return torch.zeros(0, dtype=_compute_dtype(z.dtype), device=z.device)
    z = z if z.stride(1) == 1 else z.contiguous()
    m, S, zy, zu = (torch.empty(M, dtype=torch.float32, device=z.device) for _ in range(4))
    has_uw = p.uw is not None
    uw = p.uw if p.uw is not None else m  # any pointer; unused without HAS_UW
    uw_stride = V if p.uw is not None and p.uw.dim() == 2 else 0
    BLOCK = _block(V, block)
    safe = p.safe.contiguous()
    stats_kernel[(M,)](
        z, z.stride(0), safe, uw, uw_stride, m, S, zy, zu, V, 1.0 / V,
        SMOOTH=bool(p.smooth), HAS_UW=has_uw, BLOCK=BLOCK,
    )  # fmt: skip
    loss, A, B, T = row_terms(m, S, zy, zu if p.smooth else None, p)
    if grad is None:
        return loss
    A, B, T = (t.to(torch.float32).expand(M).contiguous() for t in (A, B, T))
    grad_kernel[(M,)](
        z, z.stride(0), grad, grad.stride(0), safe, m, A, B, T, uw, uw_stride, V, 1.0 / V,
        SMOOTH=bool(p.smooth), HAS_UW=has_uw, BLOCK=BLOCK,
    )  # fmt: skip
    return loss
