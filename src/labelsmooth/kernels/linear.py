"""Fused output projection + label-smoothed cross-entropy: the N x V logits never exist.

For hidden states ``x`` (N, D), the projection ``W`` (V, D) and a bias ``b`` (V,), the loss is
``cross_entropy(x @ W.T + b, target, ...)``. :func:`linear_cross_entropy` walks over chunks of tokens;
for each chunk ``c`` it forms ``logits_c = x_c @ W.T + b`` (chunk x V), turns it in place into the
loss's gradient ``g_c`` (the row-block pass of :mod:`labelsmooth.kernels._core`), and accumulates

.. math::

    \\nabla_{x_c} = g_c W, \\qquad \\nabla_W \\mathrel{+}= g_c^\\top x_c, \\qquad
    \\nabla_b \\mathrel{+}= \\textstyle\\sum_{rows} g_c .
"""

from __future__ import annotations

from typing import Any, Literal, overload

import torch

from .._numerics import compute_dtype
from .._validation import Backend, Reduction, check_float_tensor, check_number, expected
from ..losses.cross_entropy import CrossEntropyAux, make_aux
from ._alloc import empty
from ._core import prepare_row_params, reduce_loss
from ._dispatch import check_device, compiler_disabled, loss_grad
from ._saved import scale_saved_grads
from ._stream import new_stats

# Bytes of logits (input dtype) per token chunk when chunk_size is None, and the fewest tokens per chunk:
# every chunk streams W twice (x_c @ W.T, g_c @ W) and grad_W once (grad_W += g_c.T @ x_c), so chunks of
# fewer than ~128 tokens turn the step memory-bound (measured on 512 x 768 x 128256 fp32: 65 tokens per
# chunk 1.1-1.4x eager's time, 128 tokens 1.0x, 256 tokens 0.9x).
CHUNK_BYTES = 32 << 20
MIN_CHUNK_TOKENS = 128
# On CUDA the loss kernel runs one program per row, so a chunk needs thousands of rows to fill the GPU:
# measured on an H200, 8192 x 2048 x 32000 bf16 (benchmarks/gpu_linear_profile.py), chunks of 512 tokens
# took 1.32x eager's time, 1024 1.09x, 2048 0.98x, 8192 0.93x. 128 MB of logits keeps the extra memory
# near 0.2x of eager's while giving 2048-token chunks at V = 32000.
CUDA_CHUNK_BYTES = 128 << 20
CUDA_MIN_CHUNK_TOKENS = 1024


def default_chunk_size(num_classes: int, dtype: torch.dtype, device_type: str = "cpu") -> int:
    """Tokens per chunk: ``max(128, 32 MB // (V * itemsize))``; on CUDA ``max(1024, 128 MB // ...)``.

    >>> default_chunk_size(32000, torch.float32), default_chunk_size(128256, torch.bfloat16)
    (262, 130)
    >>> default_chunk_size(128256, torch.float32)  # 128 tokens: 63 MiB of logits
    128
    >>> default_chunk_size(32000, torch.bfloat16, "cuda"), default_chunk_size(128256, torch.bfloat16, "cuda")
    (2097, 1024)
    """
    item = torch.empty((), dtype=dtype).element_size()
    cuda = device_type == "cuda"
    chunk_bytes = CUDA_CHUNK_BYTES if cuda else CHUNK_BYTES
    minimum = CUDA_MIN_CHUNK_TOKENS if cuda else MIN_CHUNK_TOKENS
    return max(minimum, chunk_bytes // (item * max(1, num_classes)))


def chunk_logits(x, W, b, buf, chunk):
    """For each chunk of ``chunk`` tokens: ``(s, e, x[s:e], logits)`` with ``logits = x[s:e] @ W.T + b``
    written into ``buf[: e - s]`` (one matmul, no other allocation). Shared with the vocabulary-parallel
    twin (:mod:`labelsmooth.distributed.linear`), whose ``W`` holds one rank's rows."""
    M = x.shape[0]
    Wt = W.t()
    for s in range(0, M, chunk):
        e = min(M, s + chunk)
        xc, lc = x[s:e], buf[: e - s]
        if b is None:
            torch.mm(xc, Wt, out=lc)
        else:
            torch.addmm(b, xc, Wt, out=lc)
        yield s, e, xc, lc


def _linear_pass(x, W, b, p, chunk, need_x, need_W, need_b, backend="auto", stats=None):
    """One pass over token chunks: per-row losses and the gradients asked for, scaled by ``p.scale``.

    ``stats`` = ``(lse, correct)`` (M,) buffers receive the per-row statistics (see ``_core``).
    """
    M, D = x.shape
    V = W.shape[0]
    dt = x.dtype
    acc = compute_dtype(dt)
    losses = torch.empty(M, dtype=acc, device=x.device)
    gx = empty(x.shape, x.dtype, x.device) if need_x else None
    # grad_W accumulates in W's dtype: for half inputs a float32 accumulator plus the final cast would
    # take 3x the size of W.grad (each chunk's product is still summed in float32 inside the matmul).
    # the first chunk's product initialises grad_W (no zero fill: 0.14 s for 128256 x 768 fp32 on the CPU)
    gW = empty((V, D), W.dtype, x.device, zero=M == 0) if need_W else None
    gb = torch.zeros(V, dtype=acc, device=x.device) if need_b else None
    buf = empty((min(chunk, M), V), dt, x.device)
    for s, e, xc, lc in chunk_logits(x, W, b, buf, chunk):
        st = (stats[0][s:e], stats[1][s:e]) if stats is not None else None
        losses[s:e] = loss_grad(lc, lc, p.rows(s, e), backend, stats=st)  # lc now holds the gradient
        if need_x:
            torch.mm(lc, W, out=gx[s:e])
        if need_W:
            if s == 0:
                torch.mm(lc.t(), xc, out=gW)
            else:
                gW.addmm_(lc.t(), xc)
        if need_b:
            gb.add_(lc.sum(0, dtype=acc))
    if gb is not None:
        gb = gb.to(b.dtype)
    return losses, gx, gW, gb


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b, target, p, reduction, out_shape, chunk, needs, backend, stats):
        need_x, need_W, need_b = needs
        x2 = x.reshape(-1, x.shape[-1])
        ctx.reduction, ctx.chunk, ctx.needs, ctx.x_shape, ctx.backend = (
            reduction,
            chunk,
            needs,
            x.shape,
            backend,
        )
        ctx.consumed = False
        if reduction == "none" or not any(needs):
            # "none": the per-row grad_output is needed before the g^T x products, so backward
            # recomputes the chunks with it; only x, W, b (already live) are kept.
            losses = _linear_pass(x2, W, b, p, chunk, False, False, False, backend, stats)[0]
            ctx.p = p
            ctx.save_for_backward(x, W, b)
        else:
            losses, gx, gW, gb = _linear_pass(x2, W, b, p, chunk, need_x, need_W, need_b, backend, stats)
            ctx.save_for_backward(gx, gW, gb)
        return reduce_loss(losses, p, reduction, out_shape, x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        need_x, need_W, need_b = ctx.needs
        if ctx.reduction == "none":
            x, W, b = ctx.saved_tensors
            p = ctx.p.with_scale(grad_output.reshape(-1).to(ctx.p.scale.dtype))
            x2 = x.reshape(-1, x.shape[-1])
            _, gx, gW, gb = _linear_pass(x2, W, b, p, ctx.chunk, need_x, need_W, need_b, ctx.backend)
        else:
            gx, gW, gb = scale_saved_grads(ctx, grad_output, "linear_cross_entropy")
        if gx is not None:
            gx = gx.view(ctx.x_shape)
        return gx, gW, gb, None, None, None, None, None, None, None, None


# The overloads state only how ``return_aux`` picks the result's type; the implementation's signature
# below is the one signature of the parameters (checked at run time, shown by help() and the docs).
@overload
def linear_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[False] = False, **kwargs: Any
) -> torch.Tensor: ...


@overload
def linear_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[True], **kwargs: Any
) -> tuple[torch.Tensor, CrossEntropyAux]: ...


@compiler_disabled  # type: ignore[misc]  # wider overloads: see above
def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float | torch.Tensor = 0.0,
    *,
    prior: torch.Tensor | None = None,
    chunk_size: int | None = None,
    backend: Backend = "auto",
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    return_aux: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CrossEntropyAux]:
    """Label-smoothed cross-entropy of ``input @ linear_weight.T + bias`` without the N x V logits.

    Equals ``labelsmooth.cross_entropy(input @ linear_weight.T + bias, target, weight, ignore_index,
    reduction, label_smoothing, prior=prior)`` in value and in the gradients of ``input``,
    ``linear_weight`` and ``bias``. Per row, with ``z = W x + b``, ``lse = log sum_k exp(z_k)``, class
    weights ``w`` and prior ``u`` (uniform ``1/V`` by default):

    .. math::

        \\ell = (1-a)\\,w_y\\,(\\mathrm{lse} - z_y) + a \\sum_k u_k w_k\\,(\\mathrm{lse} - z_k), \\qquad
        g = \\partial\\ell/\\partial z,\\quad
        \\nabla_x = g W,\\ \\nabla_W = \\textstyle\\sum_{rows} g x^\\top,\\ \\nabla_b = \\sum_{rows} g .

    Memory model: tokens are processed in chunks of ``chunk_size`` rows; a chunk's logits (``chunk_size
    x V`` in the input's dtype) are turned into their gradient in place, multiplied into the gradients
    of ``x`` (N x D), ``W`` (V x D, in W's dtype) and ``b`` (float32 until the end), and dropped. Peak
    extra memory is about one chunk of logits plus those gradients, against several N x V tensors for
    the unfused computation. For ``"mean"``/``"sum"`` the gradients are computed in forward and scaled
    by ``grad_output`` in backward; for ``"none"`` backward recomputes the chunks with the per-row
    ``grad_output`` (one more pass of matmuls). Only the gradients of the tensors that require grad are
    computed.

    Parameters
    ----------
    input : Tensor ``(N, D)`` or ``(..., D)``
        Hidden states (float16/bfloat16/float32/float64).
    linear_weight : Tensor ``(V, D)``
        The output projection, same dtype and device as ``input``.
    target : LongTensor ``(N,)`` or ``input.shape[:-1]``
        Class indices in ``[0, V)`` or ``ignore_index``.
    bias : Tensor ``(V,)``, optional
    weight : Tensor ``(V,)``, optional
        Class weights (PyTorch's weighting).
    ignore_index : int, default -100
    reduction : {"mean", "sum", "none"}, default "mean"
    label_smoothing : float or Tensor ``(N,)`` (or ``target.shape``), default 0.0
    prior : Tensor ``(V,)`` or ``(N, V)``, optional
    chunk_size : int, optional
        Tokens per chunk. Default: as many as keep a chunk's logits near 32 MB, but at least 128
        (``max(128, 32 MiB // (V * itemsize))``: 262 tokens for V = 32000 in float32, 128 tokens =
        63 MiB for V = 128256 in float32), since smaller chunks re-read ``W`` too often. On CUDA, near
        128 MB but at least 1024 tokens, because the loss kernel needs thousands of rows to fill the GPU
        (:func:`default_chunk_size`).
    backend : {"auto", "torch", "triton"}
        Kernel for each chunk's loss and gradient (see :func:`fused_cross_entropy`).
    softcap : float, optional
        Final-logit soft-capping ``c > 0`` (Gemma 2/3's ``final_logit_softcapping``): the loss of
        ``c * tanh(z / c)`` with ``z = W x + b``; the capped logits never exist either.
    z_loss : float, default 0.0
        PaLM's z-loss weight ``lambda >= 0`` (``lambda * lse^2`` per row not ignored).
    num_items_in_batch : int, float or 1-element Tensor, optional
        ``reduction="mean"`` only: the mean's denominator instead of the local ``sum w_y`` (see
        :func:`fused_cross_entropy`; Hugging Face ``Trainer`` passes it under gradient accumulation).
    return_aux : bool, default False
        Also return a :class:`labelsmooth.losses.CrossEntropyAux` (per-row ``lse``, the ``z_loss`` part,
        the token ``accuracy``), from the same pass.

    Returns
    -------
    Tensor
        Scalar, or ``target.shape`` for ``"none"``; the input's dtype. With ``return_aux=True``,
        ``(loss, aux)``.

    Raises
    ------
    TypeError
        Non-float ``input``/``linear_weight``/``bias``, mismatched dtypes, probability targets.
    ValueError
        Shape mismatches, a non-positive ``chunk_size``, everything :func:`labelsmooth.cross_entropy`
        rejects (``softcap <= 0``, ``z_loss < 0`` included), and ``backend="triton"`` with CPU tensors
        (outside ``TRITON_INTERPRET=1``).

    Examples
    --------
    >>> import torch
    >>> from labelsmooth.kernels import linear_cross_entropy
    >>> from labelsmooth.losses import cross_entropy
    >>> g = torch.Generator().manual_seed(0)
    >>> x, W = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    >>> y = torch.tensor([0, 6, 2, -100, 3])
    >>> round(linear_cross_entropy(x, W, y, label_smoothing=0.1, chunk_size=2).item(), 4)
    3.1311
    >>> round(cross_entropy(x @ W.T, y, label_smoothing=0.1).item(), 4)
    3.1311
    """
    check_float_tensor("input", input)
    check_float_tensor("linear_weight", linear_weight)
    if input.dim() == 0:
        raise ValueError(expected("input", "to have shape (N, D) or (..., D)", input))
    if linear_weight.dim() != 2 or linear_weight.shape[1] != input.shape[-1]:
        raise ValueError(expected("linear_weight", f"of shape (V, {input.shape[-1]})", linear_weight))
    if linear_weight.dtype != input.dtype:
        raise TypeError(
            expected("linear_weight", f"to have the input's dtype {input.dtype}", linear_weight.dtype)
        )
    V = linear_weight.shape[0]
    if bias is not None:
        check_float_tensor("bias", bias)
        if tuple(bias.shape) != (V,):
            raise ValueError(expected("bias", f"of shape ({V},)", bias))
        if bias.dtype != input.dtype:
            raise TypeError(expected("bias", f"to have the input's dtype {input.dtype}", bias.dtype))
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError(expected("target", f"of shape {tuple(input.shape[:-1])}", target))
    if chunk_size is not None:
        check_number("chunk_size", chunk_size, lo=1, integer=True, what="to be a positive int")
    from .._validation import check_choice
    from .chunked import BACKENDS

    check_choice("backend", backend, BACKENDS)
    check_device(backend, input)
    M = target.numel()
    rows_target = target.reshape(M)
    if isinstance(label_smoothing, torch.Tensor) and label_smoothing.dim() > 1:
        if tuple(label_smoothing.shape) == tuple(target.shape):
            label_smoothing = label_smoothing.reshape(M)
    # The reference's validation, on a zero-stride stand-in for the (M, V) logits (allocates nothing).
    fake = torch.empty((), dtype=input.dtype, device=input.device).expand(M, V)
    _, p = prepare_row_params(
        fake, rows_target, weight, ignore_index, reduction, label_smoothing, prior,
        softcap=softcap, z_loss=z_loss, num_items_in_batch=num_items_in_batch,
    )  # fmt: skip
    chunk = chunk_size or default_chunk_size(V, input.dtype, input.device.type)
    grad_on = torch.is_grad_enabled()
    needs = (
        grad_on and input.requires_grad,
        grad_on and linear_weight.requires_grad,
        grad_on and bias is not None and bias.requires_grad,
    )
    stats = new_stats(M, input.dtype, input.device) if return_aux else None
    loss = _LinearCrossEntropy.apply(
        input, linear_weight, bias, target, p, reduction, tuple(target.shape), chunk, needs, backend, stats
    )
    if stats is None:
        return loss
    return loss, make_aux(stats[0], stats[1], p.valid, p.denom, p.z_loss, reduction, tuple(target.shape))
