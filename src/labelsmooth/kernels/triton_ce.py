"""Triton kernel for the fused label-smoothed cross-entropy on logits (GPU path).

One kernel, one program per row, two passes over the row's V classes in blocks of ``BLOCK``:

1. online max and sum-exp (``m``, ``S = sum_k exp(z_k - m)``, rescaled whenever the running max grows),
   the smoothing sum ``zu = sum_k u_k w_k z_k`` and the target logit ``z_y``, all in float32; then the
   row's loss and gradient coefficients ``C, B, T`` in registers;
2. (when a gradient is asked for) ``g_k = (C / S) exp(z_k - m) - B uw_k - T [k = y]`` in float32, then
   one rounding to the output dtype; the output may be the logits themselves (in place).

Options, as in ``_core``: soft-capping replaces each loaded logit by ``c tanh(z / c)`` in both passes
(``tanh(u) = 1 - 2 / (exp(2u) + 1)``, which the interpreter runs too) and multiplies the gradient by
``1 - tanh^2``; the z-loss adds ``lambda lse^2`` to the loss and ``r 2 lambda lse`` to ``C``; the
per-row ``lse`` and "target logit is the maximum" flags are stored when asked for.

The row-term formulas in the kernel are those of :func:`labelsmooth.kernels._core.row_terms` (the CPU
path's, and the documented maths), written out again in Triton so that the whole step is one launch; the
tests compare this kernel with the float64 reference for every variant (weights, priors, per-row
smoothing, ignored rows). The second pass re-reads a row the first pass has just read, which is then
usually still in L2, so the logits come from memory about once and the gradient is written once.

Triton is imported, and the kernel is defined, on first use: importing this module is free, and
``TRITON_INTERPRET=1`` (which makes the kernel run on CPU tensors, for CI) is honoured if it is set
before that first use.
"""

from __future__ import annotations

import functools

import torch

from .._numerics import compute_dtype
from ._core import RowParams

# Classes per loop iteration on the GPU and warps per program. Small shapes (tests, the interpreter) use
# next_pow2(V). See _launch for the choice.
DEFAULT_BLOCK = 8192
DEFAULT_WARPS = 16


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
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def ce_kernel(
        z_ptr,
        z_stride,
        g_ptr,
        g_stride,
        y_ptr,
        valid_ptr,
        wy_ptr,
        r_ptr,
        a_ptr,
        a_stride,
        a_val,
        c_ptr,
        c_stride,
        c_val,
        uw_ptr,
        uw_stride,
        loss_ptr,
        lse_ptr,
        hit_ptr,
        V,
        inv_V,
        cap,
        inv_cap,
        z_loss,
        SMOOTH: tl.constexpr,
        SOFTCAP: tl.constexpr,
        WRITE_STATS: tl.constexpr,
        HAS_UW: tl.constexpr,
        A_FROM_PTR: tl.constexpr,
        C_FROM_PTR: tl.constexpr,
        WRITE_GRAD: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        z_row = z_ptr + row * z_stride
        y = tl.load(y_ptr + row)
        # pass 1: row statistics
        m = float("-inf")
        s = 0.0
        zu = 0.0
        for start in range(0, V, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < V
            x = tl.load(z_row + offs, mask=mask, other=float("-inf")).to(tl.float32)
            if SOFTCAP:
                x = tl.where(mask, cap * (1.0 - 2.0 / (tl.exp(2.0 * inv_cap * x) + 1.0)), float("-inf"))
            m_new = tl.maximum(m, tl.max(x, 0))
            # While every logit so far is -inf, m_new is -inf and exp(-inf - -inf) would be nan: shift by 0.
            shift = tl.where(m_new == float("-inf"), 0.0, m_new)
            s = s * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), 0)
            m = m_new
            if SMOOTH:
                xz = tl.where(mask, x, 0.0)
                if HAS_UW:
                    uw = tl.load(uw_ptr + row * uw_stride + offs, mask=mask, other=0.0).to(tl.float32)
                    zu += tl.sum(uw * xz, 0)
                else:
                    zu += tl.sum(xz, 0)
        zy = tl.load(z_row + y).to(tl.float32)
        if SOFTCAP:
            zy = cap * (1.0 - 2.0 / (tl.exp(2.0 * inv_cap * zy) + 1.0))
        # the row's loss and coefficients: _core.row_terms, in registers
        valid = tl.load(valid_ptr + row) != 0
        wy = tl.load(wy_ptr + row)
        r = tl.load(r_ptr + row)
        if A_FROM_PTR:
            a = tl.load(a_ptr + row * a_stride).to(tl.float32)
        else:
            a = a_val
        L = tl.log(s)
        loss = (1 - a) * wy * (L - (zy - m))
        c = 1.0
        if SMOOTH:
            if HAS_UW:
                if C_FROM_PTR:
                    c = tl.load(c_ptr + row * c_stride).to(tl.float32)
                else:
                    c = c_val
            else:
                zu = zu * inv_V
            loss += a * (c * L - (zu - c * m))
        lse = m + L
        Cz = r * ((1 - a) * wy + a * c)
        if z_loss != 0.0:
            loss += z_loss * lse * lse
            Cz += r * 2.0 * z_loss * lse
        tl.store(loss_ptr + row, tl.where(valid, loss, 0.0))
        if WRITE_STATS:
            tl.store(lse_ptr + row, lse)
            tl.store(hit_ptr + row, (zy >= m).to(tl.uint8))
        if WRITE_GRAD:
            # pass 2: g = (C / S) exp(z - m) - B uw - T [k = y]
            A = Cz / s
            B = r * a
            T = r * (1 - a) * wy
            g_row = g_ptr + row * g_stride
            for start in range(0, V, BLOCK):
                offs = start + tl.arange(0, BLOCK)
                mask = offs < V
                x = tl.load(z_row + offs, mask=mask, other=0.0).to(tl.float32)
                if SOFTCAP:
                    # tanh(u) = 1 - 2 / (exp(2u) + 1): exp overflowing to inf gives 1, to 0 gives -1
                    t = 1.0 - 2.0 / (tl.exp(2.0 * inv_cap * x) + 1.0)
                    x = cap * t
                g = A * tl.exp(x - m)
                if SMOOTH:
                    if HAS_UW:
                        uw = tl.load(uw_ptr + row * uw_stride + offs, mask=mask, other=0.0).to(tl.float32)
                        g = g - B * uw
                    else:
                        g = g - B * inv_V
                # -(1 - a) w_y folded in float32, before the one rounding to the output dtype.
                g = tl.where(offs == y, g - T, g)
                if SOFTCAP:
                    g = g * (1.0 - t * t)
                tl.store(g_row + offs, g.to(g_ptr.dtype.element_ty), mask=mask)

    return ce_kernel


def _launch(num_classes: int, block: int | None) -> tuple[int, int]:
    """``(BLOCK, num_warps)``: ``min(8192, next_pow2(V))`` classes per iteration, 16 warps from 4096 up."""
    import triton

    BLOCK = int(block) if block is not None else min(DEFAULT_BLOCK, triton.next_power_of_2(num_classes))
    warps = DEFAULT_WARPS if BLOCK >= 4096 else max(1, min(DEFAULT_WARPS, BLOCK // 256))
    return BLOCK, warps


def _scalar_or_rows(t: float | torch.Tensor, M: int) -> tuple[torch.Tensor | None, int, float]:
    """A per-row value as kernel arguments ``(pointer, stride, value)`` without a launch or a host sync.

    A Python float goes by value (pointer None); a 0-d tensor by pointer with stride 0; ``(M,)`` with
    stride 1.
    """
    if not isinstance(t, torch.Tensor):
        return None, 0, float(t)
    if t.dim() == 0:
        return t.reshape(1), 0, 0.0
    if t.dim() == 1 and t.shape[0] == M:
        return t.contiguous(), 1, 0.0
    raise ValueError(f"per-row value of shape {tuple(t.shape)} for {M} rows")  # pragma: no cover - internal


def loss_grad(
    z: torch.Tensor,
    grad: torch.Tensor | None,
    p: RowParams,
    block: int | None = None,
    num_warps: int | None = None,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-row losses of ``z`` (M, V) and the scaled gradient written into ``grad`` (may alias ``z``).

    ``grad=None`` runs the first pass only (the loss, no M x V write). ``block`` and ``num_warps``
    override the launch configuration (:func:`_launch`; used by the benchmarks' sweep). ``stats`` =
    ``(lse, correct)``, float32 and bool (M,) tensors, receive the per-row statistics.

    float64 logits are sent to the torch row-block path (the kernel computes in float32).
    """
    if z.dtype == torch.float64:
        from ._stream import stream_loss_grad

        return stream_loss_grad(z, grad, p, stats=stats)
    if not available():
        raise RuntimeError("backend='triton' needs Triton, which could not be imported (pip install triton).")
    kernel = _kernel()
    M, V = z.shape
    loss = torch.empty(M, dtype=torch.float32, device=z.device)  # the kernel writes every row
    if M == 0:
        return loss.to(compute_dtype(z.dtype))
    z = z if z.stride(1) == 1 else z.contiguous()
    # Per-call host work is kept to views and the launch: no tensor op here is a kernel launch or a sync.
    has_uw = p.uw is not None
    uw = p.uw if p.uw is not None else loss  # any pointer; unused without HAS_UW
    uw_stride = V if p.uw is not None and p.uw.dim() == 2 else 0
    a_ptr, a_stride, a_val = _scalar_or_rows(p.alpha, M)
    c_ptr, c_stride, c_val = _scalar_or_rows(p.c, M)
    BLOCK, warps = _launch(V, block)
    g = grad if grad is not None else z  # any pointer; unused without WRITE_GRAD
    lse_out, hit_out = (stats[0], stats[1].view(torch.uint8)) if stats is not None else (loss, loss)
    cap = float(p.softcap) if p.softcap is not None else 1.0
    kernel[(M,)](
        z, z.stride(0), g, g.stride(0), p.safe.contiguous(), p.valid.contiguous().view(torch.uint8),
        p.wy.contiguous(), p.scale.contiguous(),
        loss if a_ptr is None else a_ptr, a_stride, a_val, loss if c_ptr is None else c_ptr, c_stride, c_val,
        uw, uw_stride, loss, lse_out, hit_out, V, 1.0 / V, cap, 1.0 / cap, float(p.z_loss),
        SMOOTH=bool(p.smooth), SOFTCAP=p.softcap is not None, WRITE_STATS=stats is not None, HAS_UW=has_uw,
        A_FROM_PTR=a_ptr is not None, C_FROM_PTR=c_ptr is not None,
        WRITE_GRAD=grad is not None, BLOCK=BLOCK, num_warps=num_warps or warps,
    )  # fmt: skip
    return loss
