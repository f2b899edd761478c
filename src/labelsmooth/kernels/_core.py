"""Per-row maths shared by every fast path (CPU row blocks, fused linear, Triton).

For a row with logits ``z`` (V classes), label ``y``, smoothing ``a``, prior ``u`` (uniform ``1/V`` by
default), class weights ``w`` (ones by default), and ``uw = u * w``, ``c = sum_k uw_k``, each kernel
only needs four numbers per row, its *statistics*:

- ``m = max_k z_k`` and ``S = sum_k exp(z_k - m)``, so that ``lse = m + log S``;
- ``z_y``, the target logit;
- ``zu = sum_k uw_k z_k`` (``mean(z)`` for the uniform prior without weights).

From them (:func:`row_terms`), with ``L = log S`` and ``r`` the reduction's scale of the row
(``1 / sum w_y`` for ``"mean"``, 1 otherwise, 0 on ignored rows):

.. math::

    \\ell = (1-a)\\,w_y\\,(L - (z_y - m)) + a\\,(c\\,L - (zu - c\\,m))

    \\partial \\ell / \\partial z_k \\cdot r = C\\,\\mathrm{softmax}(z)_k - B\\,uw_k - T\\,[k = y],\\quad
    C = r\\,((1-a) w_y + a c),\\; B = r a,\\; T = r (1-a) w_y,

with ``softmax(z)_k = exp(z_k - m) / S``.

Options. Soft-capping ``c`` replaces ``z`` by ``z' = c tanh(z / c)`` before everything above; the gradient
with respect to ``z`` is the one above (taken at ``z'``) times ``1 - tanh(z / c)^2``. The z-loss
``lambda`` adds ``lambda lse^2`` to the loss of each row not ignored and ``2 lambda lse softmax(z)`` to its
gradient, so it only moves ``C`` by ``r 2 lambda lse``.

This is ``(1-a) w_y (softmax - onehot) + a (c softmax - uw)`` (PyTorch's weighting), i.e.
``softmax(z) - p`` without weights. The terms ``L - (z_y - m)`` and ``zu - c m`` are formed from the
shifted logits so that logits of magnitude 1e4 keep their precision.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from .._validation import expected
from ..losses import prepare_cross_entropy_args
from ..losses.cross_entropy import _compute_dtype, _reduce
from . import _bf16


@dataclass
class RowParams:
    """Per-problem constants, already on the logits' device in the compute dtype.

    ``uw`` is ``None`` (uniform prior, no weights: ``uw_k = 1/V``, ``c = 1``), ``(V,)`` or ``(M, V)``;
    ``c`` is a float, a 0-d tensor or ``(M,)``. ``alpha`` is a float or ``(M,)``. ``wy`` is ``w_y`` with 0
    on ignored rows, ``valid`` marks rows not ignored, ``safe`` is the target with ignored rows set to 0,
    ``scale`` is ``r`` (0 on ignored rows) and ``denom`` the mean's denominator.
    """

    num_classes: int
    alpha: float | torch.Tensor
    uw: torch.Tensor | None
    c: float | torch.Tensor
    wy: torch.Tensor
    valid: torch.Tensor
    safe: torch.Tensor
    scale: torch.Tensor
    denom: torch.Tensor
    smooth: bool
    softcap: float | None = None
    z_loss: float = 0.0

    def rows(self, s: int, e: int) -> RowParams:
        """The parameters of rows ``s:e``."""

        uw = self.uw[s:e] if self.uw is not None and self.uw.dim() == 2 else self.uw
        c = self.c[s:e] if isinstance(self.c, torch.Tensor) and self.c.dim() == 1 else self.c
        return RowParams(
            self.num_classes,
            self.alpha[s:e] if isinstance(self.alpha, torch.Tensor) else self.alpha,
            uw,
            c,
            self.wy[s:e],
            self.valid[s:e],
            self.safe[s:e],
            self.scale[s:e],
            self.denom,
            self.smooth,
            self.softcap,
            self.z_loss,
        )

    def with_scale(self, scale: torch.Tensor) -> RowParams:
        """The same problem with another per-row scale ``r`` (kept 0 on ignored rows)."""
        p = RowParams(**self.__dict__)
        p.scale = torch.where(self.valid, scale.to(self.scale.dtype), torch.zeros_like(self.scale))
        return p


def prepare(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float | torch.Tensor,
    prior: torch.Tensor | None,
    *,
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items_in_batch: int | float | torch.Tensor | None = None,
):
    """Validate with the reference's own checks (:func:`labelsmooth.losses.prepare_cross_entropy_args`).

    Returns the validated ``CEArgs`` (logits flattened to ``(M, V)`` rows) and the :class:`RowParams`.

    Raises
    ------
    TypeError
        Probability (floating) targets: the kernels take class indices only.
    """
    args = prepare_cross_entropy_args(
        input, target, weight, ignore_index, reduction, label_smoothing, prior, "torch", False,
        softcap=softcap, z_loss=z_loss, num_items_in_batch=num_items_in_batch,
    )  # fmt: skip
    if not args.index_target:
        raise TypeError(
            expected(
                "target",
                "to hold integer class indices (for probability targets use labelsmooth.cross_entropy)",
                target.dtype,
            )
        )
    params = row_params(
        args.target,
        args.num_classes,
        args.weight,
        ignore_index,
        reduction,
        args.label_smoothing,
        args.prior,
        _compute_dtype(input.dtype),
        input.device,
        softcap=args.softcap,
        z_loss=args.z_loss,
        num_items=args.num_items,
    )
    return args, params


def row_params(
    target: torch.Tensor,
    num_classes: int,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    alpha: float | torch.Tensor,
    prior: torch.Tensor | None,
    dtype: torch.dtype,
    device: torch.device,
    *,
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items: float | torch.Tensor | None = None,
) -> RowParams:
    """Build :class:`RowParams` from validated row arguments (``target`` is ``(M,)``).

    ``num_items`` (validated: a number > 0 or a 0-d tensor) replaces ``sum w_y`` as the mean's
    denominator.
    """
    # Few tensor ops on purpose: on a GPU each is a launch (~5-10 us of host time), and this runs per call.
    target = target.to(device)
    valid = target != ignore_index
    safe = torch.where(valid, target, 0).long()
    w = weight.to(device=device, dtype=dtype) if weight is not None else None
    if w is not None:
        wy = torch.where(valid, w[safe], 0.0)
    else:
        wy = valid.to(dtype)
    if num_items is None:
        denom = wy.sum()
    elif isinstance(num_items, torch.Tensor):
        denom = num_items.to(device=device, dtype=dtype)
    else:
        denom = torch.tensor(float(num_items), dtype=dtype, device=device)
    if reduction == "mean" and num_items is not None and not isinstance(num_items, torch.Tensor):
        scale = valid.to(dtype) * (1.0 / float(num_items))
    elif reduction == "mean":
        # 1 / denom, and 0 (not inf) when denom is 0 (an all-ignored batch): its gradient is 0, its loss
        # nan (0/0).
        scale = torch.where(valid, denom.reciprocal().nan_to_num(posinf=0.0), 0.0)
    else:
        scale = wy if w is None else valid.to(dtype)
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(device=device, dtype=dtype)
        smooth = True
    else:
        smooth = alpha != 0.0
    u = prior.to(device=device, dtype=dtype) if prior is not None else None
    uw: torch.Tensor | None
    if w is None:
        uw = u
    elif u is None:
        uw = w / num_classes
    else:
        uw = u * w
    c: float | torch.Tensor = 1.0
    if uw is not None:
        c = uw.sum(-1)
        uw = uw.contiguous()
    return RowParams(num_classes, alpha, uw, c, wy, valid, safe, scale, denom, smooth, softcap, float(z_loss))


def row_terms(
    m: torch.Tensor, L: torch.Tensor, zy: torch.Tensor, zu: torch.Tensor | None, p: RowParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row loss and gradient coefficients ``(loss, C, B, T)`` from the row statistics.

    ``L = log S`` (so ``lse = m + L``); all inputs are ``(r,)`` tensors in the compute dtype (``zu`` may be
    ``None`` when ``a = 0``). The gradient is ``C softmax(z) - B uw - T e_y`` with
    ``C = r ((1-a) w_y + a c)``: a kernel holding ``exp(z - m)`` rather than the softmax uses ``C / S``.
    The loss is 0 on ignored rows. With a z-loss ``lambda``, ``lambda lse^2`` is added to the loss and
    ``r 2 lambda lse`` to ``C``.
    """
    a, wy = p.alpha, p.wy
    loss = (1 - a) * wy * (L - (zy - m))
    if p.smooth and zu is not None:
        loss = loss + a * (p.c * L - (zu - p.c * m))
    r = p.scale
    C = r * ((1 - a) * wy + a * p.c)
    if p.z_loss:
        lse = m + L
        loss = loss + p.z_loss * lse * lse
        C = C + r * (2 * p.z_loss) * lse
    loss = torch.where(p.valid, loss, torch.zeros_like(loss))
    B = r * a if isinstance(a, torch.Tensor) else r * float(a)
    T = r * (1 - a) * wy
    return loss, C, B, T


# Rows shorter than this take exp(z - m) / sum as three ops instead of torch.softmax (measured on the dev
# machine, 2^20 float32 elements: softmax 19 ms at V = 8, 1.6 ms at V = 16; the three ops 2.8 and 1.8 ms).
SOFTMAX_MIN_CLASSES = 16


def block_loss_grad(
    zb: torch.Tensor,
    out: torch.Tensor,
    p: RowParams,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    tb: torch.Tensor | None = None,
) -> torch.Tensor:
    """One row block: per-row losses, and the scaled gradient written into ``out``.

    The statistics that need the logits (``m``, ``z_y``, ``zu``) come first, then ATen's vectorised
    softmax writes ``softmax(z)`` into ``out`` (one ``exp`` per element; 2x faster on the CPU than
    ``exp(z - m)`` as a separate op), the row sum ``s`` and maximum of that softmax give
    ``log S = log(s / max_k softmax(z)_k)`` (the softmax at the row's maximum is ``exp(0) / S``) and the
    exact normalisation, and two in-place passes turn the softmax into the gradient.

    With soft-capping, ``t = tanh(z / c)`` goes into ``tb`` first and ``out`` receives ``z' = c t``, on
    which everything above runs; the gradient is finally multiplied by ``1 - t^2``.

    Parameters
    ----------
    zb : Tensor (r, V)
        Logits of the block, in the compute dtype.
    out : Tensor (r, V)
        Same dtype; receives ``r_i * dloss_i/dz``. May be ``zb`` itself (in place).
    p : RowParams
        The parameters of these rows (:meth:`RowParams.rows`).
    stats : (Tensor (r,), Tensor (r,) bool), optional
        Receive each row's ``lse`` (of the capped logits) and whether its target logit is the row maximum.
    tb : Tensor (r, V), optional
        Scratch of the compute dtype, not aliasing ``zb`` or ``out``; required with soft-capping.

    Returns
    -------
    Tensor (r,)
        Per-row losses (0 on ignored rows), unscaled.
    """
    if p.softcap is not None:
        if tb is None:  # pragma: no cover - internal
            raise RuntimeError("block_loss_grad: soft-capping needs a scratch block")
        torch.div(zb, p.softcap, out=tb)
        tb.tanh_()
        torch.mul(tb, p.softcap, out=out)  # out may alias zb: the raw logits are no longer needed
        zb = out
    m = zb.amax(1)
    zu = None
    if p.smooth:  # statistics that need the original logits come first (out may alias zb)
        if p.uw is None:
            zu = zb.mean(1)
        elif p.uw.dim() == 1:
            zu = zb @ p.uw
        else:
            zu = (zb.unsqueeze(1) @ p.uw.unsqueeze(2)).view(-1)
    zy = zb.gather(1, p.safe.unsqueeze(1)).squeeze(1)
    if zb.shape[1] >= SOFTMAX_MIN_CLASSES:
        torch.softmax(zb, 1, out=out)
    else:  # ATen's softmax does not vectorise rows shorter than a SIMD register: 5-7x slower there
        torch.sub(zb, m.unsqueeze(1), out=out)
        out.exp_()
        out.div_(out.sum(1, keepdim=True))
    # ATen sums exp(z - m) in one running vector per row, relative error up to ~1e-5 at V = 32000: enough
    # to lose the bits of a confident target's gradient (p_y - (1-a) cancels). The cascade sum of the
    # softmax, s = S_exact / S_aten, corrects both the normalisation (C / s) and log S.
    s = out.sum(1)
    L = (s / out.amax(1)).log()
    if stats is not None:
        stats[0].copy_(m + L)
        stats[1].copy_(zy == m)
    loss, C, B, T = row_terms(m, L, zy, zu, p)
    out.mul_((C / s).unsqueeze(1))
    if p.smooth:
        if p.uw is None:
            out.sub_((B * (1.0 / p.num_classes)).unsqueeze(1))
        else:
            uw = p.uw.unsqueeze(0) if p.uw.dim() == 1 else p.uw
            out.addcmul_(uw, B.unsqueeze(1), value=-1)
    # The target's -(1-a) w_y term is folded in the compute dtype, before any rounding to half.
    out.scatter_add_(1, p.safe.unsqueeze(1), -T.unsqueeze(1))
    if p.softcap is not None and tb is not None:
        tb.mul_(tb)
        out.addcmul_(out, tb, value=-1)  # d z' / d z = 1 - tanh(z / c)^2
    return loss


# Huge pages for large CPU buffers (the N x V gradient, the linear path's grad_W and logits chunk): a fresh
# allocation is mapped on first touch, and with 4 KiB pages those faults cost the fused step as much as its
# arithmetic (500 MB: 0.13 s of faults against ~0.1 s of compute on the 2-core dev machine; 2 MiB pages:
# 0.04 s). ``madvise(MADV_HUGEPAGE)`` asks for 2 MiB pages on that range only; it is what PyTorch's own
# ``THP_MEM_ALLOC_ENABLE=1`` does for every allocation. It needs Linux with transparent huge pages in
# "madvise" or "always" mode, and is a no-op elsewhere. ``LABELSMOOTH_HUGEPAGES=0`` turns it off.
HUGE_PAGE_MIN_BYTES = 32 << 20
_MADVISE = None


def _madvise_fn():
    global _MADVISE
    if _MADVISE is None:
        fn = None
        if sys.platform.startswith("linux") and hasattr(mmap, "MADV_HUGEPAGE"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _MADVISE = fn or False
    return _MADVISE


def empty(shape, dtype: torch.dtype, device: torch.device, zero: bool = False) -> torch.Tensor:
    """``torch.empty`` (``torch.zeros`` with ``zero=True``), with 2 MiB pages asked for on large CPU buffers.

    The advice covers the whole pages inside the tensor's own bytes, before anything touches them; it
    changes how the range is mapped, never its contents, and a failed ``madvise`` is ignored.
    """
    out = torch.empty(shape, dtype=dtype, device=device)
    nbytes = out.numel() * out.element_size()
    if (
        out.device.type == "cpu"
        and nbytes >= HUGE_PAGE_MIN_BYTES
        and os.environ.get("LABELSMOOTH_HUGEPAGES", "1") != "0"
    ):
        madvise = _madvise_fn()
        if madvise:
            page = mmap.PAGESIZE
            start = -(-out.data_ptr() // page) * page
            end = (out.data_ptr() + nbytes) // page * page
            if end > start:
                madvise(start, end - start, mmap.MADV_HUGEPAGE)
    if zero:
        out.zero_()
    return out


# Bytes of compute-dtype logits per row block (and, for half inputs, of each worker's float32 buffer).
# On the 2-core dev machine (AMD EPYC, 1 MB L2 per core, 32 MB L3) 2-8 MB blocks were fastest; the passes
# are bound by exp on two cores rather than by memory bandwidth. See docs/kernels.md.
BLOCK_BYTES = 4 << 20


def block_rows(num_classes: int, dtype: torch.dtype, block_bytes: int | None = None) -> int:
    """Rows per block so that a block of compute-dtype logits takes about ``block_bytes``."""
    item = torch.empty((), dtype=_compute_dtype(dtype)).element_size()
    return max(1, (block_bytes or BLOCK_BYTES) // (item * max(1, num_classes)))


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """Worker threads for CPU row blocks, each running torch ops single-threaded.

    Blocks are handed out dynamically to ``torch.get_num_threads()`` workers whose intra-op thread count
    is 1 (set in each worker thread only; the caller's setting is untouched). Compared with running
    each block's ops with OpenMP across all cores, this removes one barrier per op: the same speed on an
    idle machine, and several times faster when other processes compete for the cores. Re-created after
    a fork and when the caller's thread count changes.
    """
    global _POOL
    n = max(1, torch.get_num_threads())
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != n:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)
        pool = ThreadPoolExecutor(
            max_workers=n, initializer=torch.set_num_threads, initargs=(1,), thread_name_prefix="labelsmooth"
        )
        _POOL = (os.getpid(), n, pool)
    return _POOL[2]


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
    (:func:`_pool`); otherwise inline. The result does not depend on the block size or on the workers.
    """
    M, V = z.shape
    cdt = _compute_dtype(z.dtype)
    rows = block_rows(V, z.dtype, block_bytes)
    losses = torch.empty(M, dtype=cdt, device=z.device)
    local = threading.local()
    half = _bf16.coefficients(p) if _bf16.wanted(z, p) else None  # compiled half blocks (kernels/_bf16.py)

    def scratch(name: str) -> torch.Tensor:
        buf = getattr(local, name, None)
        if buf is None:
            buf = torch.empty((min(rows, M), V), dtype=cdt, device=z.device)
            setattr(local, name, buf)
        return buf

    def work(s: int, e: int) -> None:
        with torch.no_grad():
            pb = p.rows(s, e)
            st = (stats[0][s:e], stats[1][s:e]) if stats is not None else None
            if half is not None and e - s >= 2:
                out = _bf16.run_block(z[s:e], grad[s:e] if grad is not None else None, half, s, e)
                if out is not None:
                    losses[s:e] = out[0]
                    if st is not None:
                        st[0].copy_(out[1])
                        st[1].copy_(out[2])
                    return
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

    starts = range(0, M, rows)
    inline = len(starts) < 2 or torch.get_num_threads() < 2
    if z.device.type != "cpu" or (inline and half is None):  # compiled blocks run single-threaded workers
        for s in starts:
            work(s, min(M, s + rows))
    else:
        futures = [_pool().submit(work, s, min(M, s + rows)) for s in starts]
        for f in futures:
            f.result()
    return losses


def new_stats(M: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty ``(lse, correct)`` per-row buffers for :func:`stream_loss_grad` (compute dtype, bool)."""
    lse = torch.empty(M, dtype=_compute_dtype(dtype), device=device)
    return lse, torch.empty(M, dtype=torch.bool, device=device)


def reduce_loss(losses: torch.Tensor, p: RowParams, reduction: str, out_shape, dtype) -> torch.Tensor:
    """Apply the reduction to per-row losses (the reference's own reduction) and cast to the input dtype."""
    return _reduce(losses, p.denom, reduction, out_shape).to(dtype)
