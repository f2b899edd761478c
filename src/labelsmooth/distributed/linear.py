"""Vocabulary-parallel output projection + label-smoothed cross-entropy, one chunk of logits at a time.

Hidden states ``x`` (N, D) are replicated over the group; rank ``r`` holds the rows
``[start_r, start_r + V_r)`` of the projection ``W`` (V, D) and of the bias. For each chunk of tokens
``c`` the rank forms its local logits ``x_c W_r^T + b_r`` (chunk x V_r), takes their statistics, combines
them with the other ranks' (a MAX and a SUM all-reduce of O(chunk) numbers), turns the chunk in place
into the loss's gradient ``g_c`` and accumulates

.. math::

    \\nabla_{x_c} \\mathrel{+}= g_c W_r \\ (\\text{then summed over ranks}), \\qquad
    \\nabla_{W_r} \\mathrel{+}= g_c^\\top x_c, \\qquad
    \\nabla_{b_r} \\mathrel{+}= \\textstyle\\sum_{rows} g_c .
"""

from __future__ import annotations

from typing import Any

import torch

from .._numerics import compute_dtype
from .._validation import Reduction, WeightMode, check_float_tensor, check_number, expected
from ..kernels._alloc import empty
from ..kernels._saved import scale_saved_grads
from ..kernels.linear import chunk_logits, default_chunk_size
from ._args import LossOptions, check_common
from ._layout import all_reduce
from ._rows import Rows, combine, grad_block, local_stats, reduce_rows
from .cross_entropy import sharded_rows

__all__ = ["vocab_parallel_linear_cross_entropy"]


def _pass(x, W, b, p: Rows, chunk, needs, saved=None):
    """One pass over token chunks. Without ``saved``: losses, per-row ``m_safe`` and softmax factor, and
    the gradients in ``needs`` (2 all-reduces per chunk). With ``saved = (m_safe, factor)`` (backward of
    ``"none"``): the gradients only, from the forward's statistics (no collective per chunk)."""
    need_x, need_W, need_b = needs
    M, D = x.shape
    Vr = W.shape[0]
    dt, acc = x.dtype, compute_dtype(x.dtype)
    losses = torch.empty(M, dtype=acc, device=x.device)
    m_all = torch.empty(M, dtype=acc, device=x.device)
    f_all = torch.empty(M, dtype=acc, device=x.device)
    gx = torch.zeros((M, D), dtype=acc, device=x.device) if need_x else None
    gW = empty((Vr, D), W.dtype, x.device, zero=True) if need_W else None
    gb = torch.zeros(Vr, dtype=acc, device=x.device) if need_b else None
    rows = min(chunk, M)
    buf = empty((rows, Vr), dt, x.device)
    fbuf = empty((rows, Vr), acc, x.device) if acc != dt else None
    for s, e, xc, lc in chunk_logits(x, W, b, buf, chunk):
        zc = lc if fbuf is None else fbuf[: e - s].copy_(lc)
        pc = p.rows(s, e)
        if saved is None:
            st, ex = local_stats(zc, pc, inplace=True)
            row, _, _, factor = combine(st, pc)
            losses[s:e], m_all[s:e], f_all[s:e] = row, st.m_safe, factor
        else:
            ex = zc.sub_(saved[0][s:e].unsqueeze(1)).exp_()
            factor = saved[1][s:e]
        if not any(needs):
            continue
        assert ex is not None
        g = grad_block(ex, factor, pc)
        if fbuf is not None:
            lc.copy_(g)  # rounded to the input dtype once, after the target term was folded in float32
        if gx is not None:
            gx[s:e] = torch.mm(lc, W)
        if gW is not None:
            gW.addmm_(lc.t(), xc)
        if gb is not None:
            gb.add_(lc.sum(0, dtype=acc))
    if gx is not None:
        all_reduce(gx, p.layout.group, "sum")
    return losses, m_all, f_all, gx, gW, gb


class _VocabParallelLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b, p, reduction, out_shape, chunk, needs):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.p, ctx.reduction, ctx.chunk, ctx.needs = p, reduction, chunk, needs
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        ctx.consumed = False
        if reduction == "none" or not any(needs):
            # "none": the gradients need the per-row grad_output first; backward recomputes the chunks
            # from the saved statistics (no collective but the final all-reduce of grad_x).
            losses, m_safe, factor, *_ = _pass(x2, W, b, p, chunk, (False, False, False))
            ctx.stats = (m_safe, factor)
            ctx.save_for_backward(x, W, b)
        else:
            losses, _, _, gx, gW, gb = _pass(x2, W, b, p, chunk, needs)
            ctx.save_for_backward(gx, gW, gb)
        return reduce_rows(losses, p, reduction, out_shape).to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        if ctx.reduction == "none":
            x, W, b = ctx.saved_tensors
            p = ctx.p.scaled(grad_output.reshape(-1).to(ctx.p.C.dtype))
            x2 = x.reshape(-1, x.shape[-1])
            *_, gx, gW, gb = _pass(x2, W, b, p, ctx.chunk, ctx.needs, saved=ctx.stats)
        else:
            name = "vocab_parallel_linear_cross_entropy"
            gx, gW, gb = scale_saved_grads(ctx, grad_output, name)
        gx = gx.to(ctx.x_dtype).view(ctx.x_shape) if gx is not None else None
        gb = gb.to(ctx.x_dtype) if gb is not None else None
        return (
            gx,
            gW,
            gb,
            None,
            None,
            None,
            None,
            None,
        )


def vocab_parallel_linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    group: Any = None,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float | torch.Tensor = 0.0,
    prior: torch.Tensor | None = None,
    weight_mode: WeightMode = "torch",
    allow_negative: bool = False,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    vocab_size: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Label-smoothed cross-entropy of ``input @ W.T + b`` with ``W``'s rows sharded over ``group``.

    Rank ``r`` passes the replicated hidden states ``input`` and its rows ``linear_weight = W[start_r :
    start_r + V_r]`` (and ``bias = b[start_r : start_r + V_r]``); shards are contiguous in rank order,
    of any sizes. The loss, the same on every rank, equals
    ``labelsmooth.cross_entropy(input @ W.T + b, target, weight, ignore_index, reduction, label_smoothing,
    prior=prior, weight_mode=weight_mode)`` for the full ``W``; the gradients are that loss's: for
    ``input`` the full gradient ``g W`` (summed over ranks by one all-reduce of ``N x D`` numbers,
    as the backward of a column-parallel projection does), for ``linear_weight`` and ``bias`` the
    rank's rows of ``g^T x`` and ``sum_rows g``. The per-row loss is that of
    :func:`vocab_parallel_cross_entropy`.

    Memory and communication: tokens are processed in chunks of ``chunk_size`` rows (default
    :func:`labelsmooth.kernels.linear.default_chunk_size` of ``V_r``); for each chunk the local logits
    (``chunk x V_r``, plus a float32 copy for half inputs) exist once, their statistics are combined by
    a MAX and a SUM all-reduce of ``chunk`` and ``3 chunk`` numbers, and the chunk becomes its
    gradient in place. So the logits are formed once (no recomputation) at the price of two small
    collectives per chunk. For ``"mean"``/``"sum"`` the gradients are computed in forward and scaled
    by ``grad_output`` in backward; for ``"none"`` backward recomputes the chunks with the per-row
    ``grad_output`` and the saved statistics (no per-chunk collective). Only the gradients of tensors
    that require grad are computed; ``input``'s is accumulated in float32 for half inputs.

    Parameters
    ----------
    input : Tensor ``(N, D)`` or ``(..., D)``
        Hidden states, the same on every rank.
    linear_weight : Tensor ``(V_r, D)``
        This rank's rows of the output projection; ``input``'s dtype and device.
    target : LongTensor ``input.shape[:-1]``
        Global class indices in ``[0, V)`` or ``ignore_index``; the same on every rank.
    bias : Tensor ``(V_r,)``, optional
        This rank's slice of the bias.
    group, weight, ignore_index, reduction, label_smoothing, prior, weight_mode, allow_negative, \
num_items_in_batch, vocab_size
        As in :func:`vocab_parallel_cross_entropy` (``weight`` and ``prior``: full or the rank's slice).
    chunk_size : int, optional
        Tokens per chunk.

    Returns
    -------
    Tensor
        Scalar, or ``target.shape`` for ``"none"``; ``input``'s dtype; the same on every rank.

    Raises
    ------
    RuntimeError
        No initialised process group; a second backward after one with ``grad_output != 1``.
    TypeError
        Non-float ``input``/``linear_weight``/``bias``, mismatched dtypes, and the type errors of
        :func:`vocab_parallel_cross_entropy`.
    ValueError
        Shape mismatches (``linear_weight`` not ``(V_r, D)``, ``bias`` not ``(V_r,)``), a non-positive
        ``chunk_size``, and everything :func:`vocab_parallel_cross_entropy` rejects; on every rank.

    Examples
    --------
    >>> import torch, torch.distributed as dist
    >>> from labelsmooth import cross_entropy
    >>> from labelsmooth.distributed import vocab_parallel_linear_cross_entropy
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> g = torch.Generator().manual_seed(0)
    >>> x, W = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    >>> y = torch.tensor([0, 6, 2, -100, 3])
    >>> round(vocab_parallel_linear_cross_entropy(x, W, y, label_smoothing=0.1, chunk_size=2).item(), 4)
    3.1311
    >>> round(cross_entropy(x @ W.T, y, label_smoothing=0.1).item(), 4)
    3.1311
    >>> dist.destroy_process_group()
    """
    options = LossOptions.of(locals())
    error: Exception | None = None
    args = None
    local_size, rows = 0, 0
    device = torch.device("cpu")
    try:
        check_float_tensor("input", input)
        check_float_tensor("linear_weight", linear_weight)
        device = input.device
        if input.dim() == 0:
            raise ValueError(expected("input", "to have shape (N, D) or (..., D)", input))
        D = input.shape[-1]
        if linear_weight.dim() != 2 or linear_weight.shape[1] != D:
            raise ValueError(
                expected("linear_weight", f"of shape (V_r, {D}) (this rank's rows)", linear_weight)
            )
        if linear_weight.dtype != input.dtype:
            raise TypeError(
                expected("linear_weight", f"to have the input's dtype {input.dtype}", linear_weight.dtype)
            )
        local_size = int(linear_weight.shape[0])
        if bias is not None:
            check_float_tensor("bias", bias)
            if tuple(bias.shape) != (local_size,):
                raise ValueError(
                    expected("bias", f"of shape ({local_size},) like linear_weight's rows", bias)
                )
            if bias.dtype != input.dtype:
                raise TypeError(expected("bias", f"to have the input's dtype {input.dtype}", bias.dtype))
        if chunk_size is not None:
            check_number("chunk_size", chunk_size, lo=1, integer=True, what="to be a positive int")
        batch = tuple(input.shape[:-1])
        rows = int(torch.Size(batch).numel())
        args = check_common(target, batch, options)
    except (TypeError, ValueError) as exc:
        error = exc
    p = sharded_rows(group, device, local_size, rows, args, options, input.dtype, error, name="linear_weight")
    chunk = chunk_size or default_chunk_size(max(local_size, 1), input.dtype, device.type)
    grad_on = torch.is_grad_enabled()
    needs = (
        grad_on and input.requires_grad,
        grad_on and linear_weight.requires_grad,
        grad_on and bias is not None and bias.requires_grad,
    )
    return _VocabParallelLinearCrossEntropy.apply(
        input, linear_weight, bias, p, reduction, tuple(target.shape), chunk, needs
    )
