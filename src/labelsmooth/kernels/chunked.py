"""Fused label-smoothed cross-entropy on logits: loss and gradient in one streaming pass.

PyTorch's ``F.cross_entropy(label_smoothing=a)`` keeps an N x V log-softmax for backward and builds
several N x V temporaries there. :func:`fused_cross_entropy` computes the loss *and* the gradient in
forward, one block of rows at a time (the block's temporaries stay in cache), and saves only the
gradient, which is the one N x V tensor it creates; with ``inplace=True`` it writes the gradient into
the logits' storage and creates none.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import torch

from .._validation import BACKENDS, Backend, Reduction, check_bool, check_choice
from ..losses.cross_entropy import CrossEntropyAux, make_aux
from . import _dispatch
from ._alloc import empty
from ._core import prepare_row_params, reduce_loss
from ._dispatch import compiler_disabled
from ._stream import new_stats


class _FusedCrossEntropy(torch.autograd.Function):
    """Forward computes loss and gradient; backward scales the saved gradient by ``grad_output``."""

    @staticmethod
    def forward(ctx, input, call, kernel, aux):
        """``call`` = (positional arguments after ``input``, options) of :func:`prepare_row_params`;
        ``kernel`` = (inplace, backend, block_bytes, need_grad)."""
        inplace, backend, block_bytes, need_grad = kernel
        args, params = prepare_row_params(input, *call[0], **call[1])
        reduction = args.reduction
        rows = args.logits
        if not rows.is_contiguous():
            rows = rows.contiguous()
        aliased = rows.data_ptr() == input.data_ptr() and rows.numel() == input.numel()
        spatial = input.dim() > 2
        stats = new_stats(rows.shape[0], rows.dtype, rows.device) if aux is not None else None
        if aux is not None:
            aux.extend([stats, params, args.out_shape])
        if not need_grad:  # loss only: block-sized scratch, the logits untouched
            losses = _dispatch.loss_grad(rows, None, params, backend, block_bytes, stats)
            return reduce_loss(losses, params, reduction, args.out_shape, input.dtype)
        grad_rows = rows if inplace else empty(rows.shape, rows.dtype, rows.device)
        losses = _dispatch.loss_grad(rows, grad_rows, params, backend, block_bytes, stats)
        if input.dim() == 1:
            grad = grad_rows.view(input.shape)
        elif spatial:
            grad = grad_rows.view(input.shape[0], *input.shape[2:], input.shape[1]).movedim(-1, 1)
        else:
            grad = grad_rows
        if inplace and not aliased:
            input.copy_(grad)  # the logits' storage receives the gradient, as documented
            grad = input
        ctx.save_for_backward(grad)
        ctx.reduction = reduction
        ctx.consumed = False
        return reduce_loss(losses, params, reduction, args.out_shape, input.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        if ctx.consumed:
            raise RuntimeError(
                "fused_cross_entropy's saved gradient was already scaled in place by an earlier backward "
                "(grad_output != 1); it cannot run backward twice. Use labelsmooth.cross_entropy for "
                "retain_graph / repeated backward with grad_output != 1."
            )
        (grad,) = ctx.saved_tensors
        go = grad_output.to(grad.dtype)
        if ctx.reduction == "none" and go.dim() > 0:
            go = go.unsqueeze(1)
        if not bool((go == 1).all()):
            grad.mul_(go)
            ctx.consumed = True
        return grad.detach(), None, None, None


# The overloads state only how ``return_aux`` picks the result's type; the implementation's signature
# below is the one signature of the parameters (checked at run time, shown by help() and the docs).
@overload
def fused_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[False] = False, **kwargs: Any
) -> torch.Tensor: ...


@overload
def fused_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[True], **kwargs: Any
) -> tuple[torch.Tensor, CrossEntropyAux]: ...


@compiler_disabled  # type: ignore[misc]  # wider overloads: see above
def fused_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float | torch.Tensor = 0.0,
    *,
    prior: torch.Tensor | None = None,
    inplace: bool = False,
    backend: Backend = "auto",
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    return_aux: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CrossEntropyAux]:
    """Label-smoothed cross-entropy whose forward also computes the gradient, streaming over rows.

    Same value and gradient as :func:`labelsmooth.cross_entropy` (``weight_mode="torch"``), which equals
    :func:`torch.nn.functional.cross_entropy` for the uniform prior. For a row with logits ``z``
    (``V`` classes), label ``y``, smoothing ``a``, prior ``u`` (uniform ``1/V`` unless given), class
    weights ``w`` (ones unless given) and ``lse = log sum_k exp(z_k)``:

    .. math::

        \\ell = (1-a)\\,w_y\\,(\\mathrm{lse} - z_y) + a \\sum_k u_k w_k\\,(\\mathrm{lse} - z_k)

        \\frac{\\partial \\ell}{\\partial z} = (1-a)\\,w_y\\,(\\mathrm{softmax}(z) - e_y)
            + a\\,\\Big(\\big(\\textstyle\\sum_k u_k w_k\\big)\\,\\mathrm{softmax}(z) - u \\odot w\\Big)

    which is ``softmax(z) - p`` with ``p = (1-a) e_y + a u`` when ``w = 1``. ``"mean"`` divides the sum
    over rows not ignored by ``sum w_y`` over those rows (an all-ignored batch gives ``nan``, as in
    PyTorch, and a zero gradient); ``"sum"`` sums; ``"none"`` returns per-row losses, 0 on ignored rows.

    The forward pass walks over blocks of rows (about 4 MB of float32 logits each, handed to one
    single-threaded worker per core on the CPU). Per block it computes the row max, ``z_y`` and
    ``sum_k u_k w_k z_k``, writes ``softmax(z)`` straight into the gradient's rows, and turns it into the
    gradient in place. Only the gradient (the input's dtype, already scaled for ``"mean"``) is saved
    for backward, which multiplies it by ``grad_output`` (per row for ``"none"``) in place. Half inputs
    are computed in float32 per block and the target's ``-(1-a) w_y`` is folded in float32 before
    rounding, so confident rows keep their bits. On the CPU, float32 and bfloat16 blocks go through a C row
    kernel (two passes per row, one ``exp`` per logit; built with the C compiler at the first call, about
    half a second, and cached on disk), float16 and float64 blocks through ATen ops (float16 via a float32
    buffer); ``LABELSMOOTH_NATIVE=0`` in the environment sends every block to the ATen pass. Without a C
    compiler a ``RuntimeWarning`` says so once and the ATen pass is used (see
    docs/kernels.md, "The C row kernel"). On Linux the gradient
    buffer (when 32 MiB or more) is mapped with 2 MiB pages (``LABELSMOOTH_HUGEPAGES=0`` turns that off; see
    docs/kernels.md).
    CUDA tensors use a Triton kernel (one launch, one program per row) when Triton is importable.

    Parameters
    ----------
    input : Tensor ``(N, V)``, ``(V,)`` or ``(N, V, d1, ...)``
        Logits, float16/bfloat16/float32/float64. ``(N, V)`` (contiguous) is the fast, copy-free layout;
        ``(N, V, d1, ...)`` is accepted with PyTorch's meaning (class dim 1) but costs a copy to move
        the classes last. For language models pass ``logits.view(-1, V)`` and ``target.view(-1)``.
    target : LongTensor ``(N,)``, ``()`` or ``(N, d1, ...)``
        Class indices in ``[0, V)`` or ``ignore_index``. (Probability targets: use
        :func:`labelsmooth.cross_entropy`.)
    weight : Tensor ``(V,)``, optional
        Class weights ``w`` (PyTorch's weighting of both terms).
    ignore_index : int, default -100
        Rows with this label add nothing to the loss, the gradient or the mean's denominator.
    reduction : {"mean", "sum", "none"}, default "mean"
    label_smoothing : float or Tensor ``(N,)``, default 0.0
        ``a`` in [0, 1], or one value per sample.
    prior : Tensor ``(V,)`` or ``(N, V)``, optional
        The distribution ``u`` smoothed toward.
    inplace : bool, default False
        Write the gradient into ``input``'s storage: the logits are *consumed* (overwritten by the
        gradient during this call) and no N x V tensor is allocated. Use it only when nothing else
        reads the logits afterwards (e.g. logits straight out of the output projection).
    backend : {"auto", "torch", "triton"}, default "auto"
        ``"auto"`` picks Triton for CUDA tensors when it is importable and the torch row-block loop
        otherwise; ``"triton"`` forces the Triton kernel (CUDA tensors; CPU tensors only under
        ``TRITON_INTERPRET=1``).
    softcap : float, optional
        Final-logit soft-capping ``c > 0`` (Gemma 2/3): the loss is computed on ``c * tanh(z / c)``,
        inside the streaming pass, and the gradient includes the factor ``1 - tanh(z / c)^2``.
    z_loss : float, default 0.0
        PaLM's z-loss weight ``lambda >= 0``: ``lambda * lse^2`` is added to each row not ignored
        (``lse`` of the capped logits; not class-weighted) and reduced with the loss.
    num_items_in_batch : int, float or 1-element Tensor, optional
        ``reduction="mean"`` only: the denominator of the mean instead of the local ``sum w_y`` over
        rows not ignored (it replaces the weight sum when ``weight`` is given), e.g. the token count of
        the global batch under gradient accumulation or data parallelism
        (:func:`labelsmooth.kernels.global_token_count`).
    return_aux : bool, default False
        Also return a :class:`labelsmooth.losses.CrossEntropyAux` (per-row ``lse``, the ``z_loss`` part,
        the token ``accuracy``), computed in the same pass.

    Returns
    -------
    Tensor
        Scalar, or ``target.shape`` for ``"none"``; the input's dtype. With ``return_aux=True``,
        ``(loss, aux)``.

    Notes
    -----
    When no gradient is needed (``torch.no_grad()``, or ``input`` does not require grad) only the loss
    is computed, in block-sized scratch memory, and ``input`` is left untouched even with
    ``inplace=True``. Otherwise the gradient is computed in forward, so the call costs the full
    forward+backward time even if no backward follows. Backward may run once with
    ``grad_output != 1`` (the saved gradient is scaled in place); a second backward then raises.
    No gradient flows to ``weight``, ``prior`` or ``label_smoothing``. Double backward is not
    supported.

    Raises
    ------
    TypeError
        Non-float logits, weight or prior; probability (floating) targets; non-bool ``inplace``.
    ValueError
        Everything :func:`labelsmooth.cross_entropy` rejects (shapes, labels out of range, smoothing
        outside [0, 1], a prior that is not a distribution, unknown reduction, ``softcap <= 0``,
        ``z_loss < 0``, a bad ``num_items_in_batch``), an unknown ``backend``, ``backend="triton"``
        with CPU tensors (outside ``TRITON_INTERPRET=1``), and bfloat16 or float32 CPU logits while
        ``LABELSMOOTH_NATIVE`` is set to anything but ``auto``, ``0`` or ``1``.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth.kernels import fused_cross_entropy
    >>> z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], requires_grad=True)
    >>> y = torch.tensor([0, 2])
    >>> loss = fused_cross_entropy(z, y, label_smoothing=0.1)
    >>> round(loss.item(), 4)
    0.3455
    >>> loss.backward()
    >>> z.grad
    tensor([[-0.0739,  0.0710,  0.0029],
            [ 0.0080,  0.0106, -0.0186]])
    >>> loss, aux = fused_cross_entropy(z, y, label_smoothing=0.1, softcap=2.0, z_loss=1e-4, return_aux=True)
    >>> round(loss.item(), 4), [round(v, 4) for v in aux.lse.tolist()], aux.accuracy.item()
    (0.4581, [1.8894, 2.1327], 1.0)
    """
    check_bool("inplace", inplace)
    check_choice("backend", backend, BACKENDS)
    if isinstance(input, torch.Tensor):
        _dispatch.check_device(backend, input)
    return _apply(
        input, target, weight, ignore_index, reduction, label_smoothing, prior, inplace, backend,
        softcap=softcap, z_loss=z_loss, num_items_in_batch=num_items_in_batch, return_aux=return_aux,
    )  # fmt: skip


def _apply(
    input,
    target,
    weight,
    ignore_index,
    reduction,
    label_smoothing,
    prior,
    inplace,
    backend,
    block_bytes=None,
    *,
    softcap=None,
    z_loss=0.0,
    num_items_in_batch=None,
    return_aux=False,
):
    need_grad = torch.is_grad_enabled() and isinstance(input, torch.Tensor) and input.requires_grad
    aux: list | None = [] if return_aux else None
    call = (
        (target, weight, ignore_index, reduction, label_smoothing, prior),
        {"softcap": softcap, "z_loss": z_loss, "num_items_in_batch": num_items_in_batch},
    )
    loss = _FusedCrossEntropy.apply(input, call, (inplace, backend, block_bytes, need_grad), aux)
    if aux is None:
        return loss
    (lse, correct), p, out_shape = aux
    return loss, make_aux(lse, correct, p.valid, p.denom, p.z_loss, reduction, out_shape)
