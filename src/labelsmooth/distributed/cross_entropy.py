"""Label-smoothed cross-entropy with the vocabulary sharded over a torch.distributed group (or a DTensor).

Each rank holds the logits of a contiguous slice of the classes. The loss needs, per row, the global
log-sum-exp, the target logit and the prior-weighted logit sum (:mod:`._rows`): two all-reduces of
O(N) numbers, never the logits. The smoothing uses the global vocabulary size ``V`` and the global
``sum_k u_k z_k``, which is what Megatron-LM's vocab-parallel loss gets wrong (NVIDIA/Megatron-LM#737:
it smooths with the local shard size) and what PyTorch's ``loss_parallel()`` refuses
("label_smoothing is not supported").
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import torch

from .._numerics import compute_dtype
from .._validation import Reduction, WeightMode
from ..kernels._stream import block_rows
from ._args import Common, LossOptions, check_common
from ._layout import gather_layout
from ._rows import Rows, Stats, build_rows, combine, grad_block, local_stats, reduce_rows

__all__ = ["vocab_parallel_cross_entropy"]


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Forward: local statistics per row block, two all-reduces, the loss. Backward: the local gradient."""

    @staticmethod
    def forward(ctx, z, p, reduction, out_shape):
        M, Vr = z.shape
        cdt = compute_dtype(z.dtype)
        rows = block_rows(max(Vr, 1), z.dtype)
        parts: list[Stats] = []
        for s in range(0, M, rows):
            e = min(M, s + rows)
            zb = z[s:e]
            half = zb.dtype != cdt
            st, _ = local_stats(zb.to(cdt) if half else zb, p.rows(s, e), inplace=half)
            parts.append(st)
        if parts:
            st = Stats(
                *(torch.cat([getattr(q, f) for q in parts]) for f in ("m", "logS", "zy", "zu", "m_safe"))
            )
        else:
            empty = torch.empty(0, dtype=cdt, device=z.device)
            st = Stats(empty, empty, empty, empty, empty)
        row, _, _, factor = combine(st, p)
        ctx.save_for_backward(z)
        ctx.p, ctx.reduction, ctx.m_safe, ctx.factor = p, reduction, st.m_safe, factor
        return reduce_rows(row, p, reduction, out_shape).to(z.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (z,) = ctx.saved_tensors
        M, Vr = z.shape
        cdt = compute_dtype(z.dtype)
        go = grad_output.to(cdt).reshape(-1 if ctx.reduction == "none" else ())
        p = ctx.p.scaled(go)
        grad = torch.empty_like(z)
        rows = block_rows(max(Vr, 1), z.dtype)
        for s in range(0, M, rows):
            e = min(M, s + rows)
            eb = z[s:e].to(cdt, copy=True)
            eb.sub_(ctx.m_safe[s:e].unsqueeze(1)).exp_()
            grad[s:e] = grad_block(eb, ctx.factor[s:e], p.rows(s, e))
        return grad, None, None, None


def _is_dtensor(x: Any) -> bool:
    """Without importing torch.distributed.tensor (seconds): a DTensor exists only once it is imported."""
    mod = sys.modules.get("torch.distributed.tensor")
    return mod is not None and isinstance(x, mod.DTensor)


def vocab_parallel_cross_entropy(
    logits_shard: torch.Tensor,
    target: torch.Tensor,
    *,
    group: Any = None,
    label_smoothing: float | torch.Tensor = 0.0,
    prior: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    weight_mode: WeightMode = "torch",
    allow_negative: bool = False,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Label-smoothed cross-entropy of logits whose class dimension is sharded over a process group.

    Rank ``r`` of ``group`` holds the logits of classes ``[start_r, start_r + V_r)``: the shards are
    contiguous, in rank order, of any sizes (uneven, even empty), and ``V = sum_r V_r``. The shard
    sizes come from an all-gather of a few integers per rank, so no rank needs to be told the layout;
    pass ``vocab_size=V`` to have it checked. The result, on every rank, equals
    ``labelsmooth.cross_entropy(full_logits.view(-1, V), target.view(-1), ...)`` on the gathered
    logits, and the gradient of ``logits_shard`` is the rank's columns of that loss's gradient.

    With ``lse = log sum_k exp(z_k)`` over all ``V`` classes, smoothing ``a``, prior ``u`` (uniform
    ``1/V`` unless given), class weights ``w`` (ones unless given):

    .. math::

        \\ell = (1 - a)\\,w_y(\\mathrm{lse} - z_y) + a \\sum_{k=1}^{V} u_k w_k (\\mathrm{lse} - z_k)
        \\quad (\\texttt{weight\\_mode="torch"})

        \\ell = w_y\\,[(1 - a)(\\mathrm{lse} - z_y) + a(\\mathrm{lse} - \\textstyle\\sum_k u_k z_k)]
        \\quad (\\texttt{weight\\_mode="row"})

    Communication per call: one all-gather of 15 integers per rank (layout and input checks); one
    MAX all-reduce of the ``N`` row maxima; one SUM all-reduce of ``3N`` numbers (the sum of
    exponentials, the target logit, the prior-weighted logit sum); and, only when ``weight`` or
    ``prior`` are given as slices, one more SUM all-reduce of ``w_y`` and the prior's sums (``<= 3N``).
    Backward communicates nothing. Half logits are accumulated in float32, block by block.

    Parameters
    ----------
    logits_shard : Tensor ``(N, V_r)`` or ``(..., V_r)``, or a DTensor
        This rank's logits, **class dimension last**, float16/bfloat16/float32/float64. A DTensor
        sharded on its last dimension (``Shard(-1)``, i.e. ``Shard(1)`` for 2-D logits) over one mesh
        dimension and replicated over the others is accepted as is: its mesh gives the group and the
        shard positions, and the loss is returned as a replicated DTensor.
    target : LongTensor ``logits_shard.shape[:-1]``
        Global class indices in ``[0, V)`` or ``ignore_index``; **the same on every rank** (checked
        by a checksum; a replicated DTensor is accepted).
    group : ProcessGroup, optional
        The tensor-parallel group (default: the default group). ``None`` for a DTensor.
    label_smoothing : float or Tensor ``target.shape`` (or ``(N,)`` for ``(N, ..., V_r)`` logits)
        ``a`` in [0, 1] (``(-inf, 1]`` with ``allow_negative``), or one value per row.
    prior : Tensor ``(V,)``, ``(V_r,)``, ``(M, V)`` or ``(M, V_r)``, optional
        The distribution smoothed toward; ``M = target.numel()`` for per-row priors. The full vector
        (last dimension ``V``) or this rank's slice (last dimension ``V_r``), told apart by that
        length (when ``V_r = V`` the two coincide). A full prior must sum to 1 within 1e-4, a slice
        together with the other ranks' slices; either is renormalised to sum to 1 exactly, as
        :func:`labelsmooth.cross_entropy` does.
    weight : Tensor ``(V,)`` or ``(V_r,)``, optional
        Class weights; the full vector or this rank's slice, told apart by length as for ``prior``.
    ignore_index : int, default -100
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides the sum by ``sum w_y`` over the rows not ignored (their count without
        weights), or by ``num_items_in_batch`` when given. ``"none"`` returns ``target.shape``.
    weight_mode : {"torch", "row"}, default "torch"
        As in :func:`labelsmooth.cross_entropy`.
    allow_negative : bool, default False
        Permit ``a < 0`` (negative label smoothing).
    num_items_in_batch : int, float or one-element Tensor, optional
        The denominator of ``"mean"`` instead of this call's own count: for data parallelism and
        gradient accumulation pass the number of target tokens in the *global* batch (Hugging Face's
        name), e.g. from :func:`global_num_items`; summing the losses (and gradients) of the
        micro-batches and ranks then gives the mean of the whole batch. Only with ``reduction="mean"``.
    vocab_size : int, optional
        The global ``V``; when given, the shard sizes must sum to it.

    Returns
    -------
    Tensor
        A scalar, or ``target.shape`` for ``"none"`` (0 on ignored rows), in the logits' dtype; the
        same on every rank. An all-ignored batch with ``"mean"`` gives ``nan`` (0/0), as PyTorch does.

    Raises
    ------
    RuntimeError
        No initialised process group.
    TypeError
        Non-float logits, weight or prior; non-integer target; a wrong type of ``num_items_in_batch``.
    ValueError
        On **every** rank alike (the check is collective, so no rank hangs in a collective its peers
        skipped): different row counts on different ranks; shard sizes that do not sum to
        ``vocab_size``; fewer than 2 classes in all; a target outside ``[0, V)`` on any rank, or
        different targets on different ranks; a prior or weight whose length is neither ``V`` nor the
        rank's ``V_r``; a prior that is not a distribution; smoothing out of range or of the wrong
        shape; an unknown ``reduction`` or ``weight_mode``; ``num_items_in_batch`` with another
        reduction than ``"mean"`` or not positive. Each message names the rank whose input was wrong.

    Examples
    --------
    With a one-process group the shard is the whole vocabulary; on ``T`` ranks each rank passes its
    ``logits[:, start:end]`` and gets the same number (see ``docs/distributed.md``).

    >>> import torch, torch.distributed as dist
    >>> from labelsmooth import cross_entropy
    >>> from labelsmooth.distributed import vocab_parallel_cross_entropy
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    >>> y = torch.tensor([0, 2])
    >>> round(vocab_parallel_cross_entropy(z, y, label_smoothing=0.1).item(), 4)
    0.3455
    >>> round(cross_entropy(z, y, label_smoothing=0.1).item(), 4)
    0.3455
    >>> dist.destroy_process_group()

    References
    ----------
    Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models Using Model
    Parallelism", 2019 (the vocab-parallel cross-entropy); Szegedy et al., CVPR 2016 (label smoothing).
    """
    options = LossOptions.of(locals())
    if _is_dtensor(logits_shard):
        return _dtensor_cross_entropy(logits_shard, target, group, options)
    return _cross_entropy(logits_shard, target, options, group=group, position=None)


def _cross_entropy(logits_shard, target, options: LossOptions, *, group, position) -> torch.Tensor:
    error: Exception | None = None
    args = None
    local_size, rows = 0, 0
    device = torch.device("cpu")
    try:
        from .._validation import check_float_tensor, expected

        check_float_tensor("logits_shard", logits_shard)
        device = logits_shard.device
        if logits_shard.dim() == 0:
            raise ValueError(expected("logits_shard", "to have a class dimension (last)", logits_shard))
        local_size = int(logits_shard.shape[-1])
        batch = tuple(logits_shard.shape[:-1])
        rows = int(torch.Size(batch).numel())
        args = check_common(target, batch, options)
    except (TypeError, ValueError) as exc:
        error = exc
    p = sharded_rows(
        group, device, local_size, rows, args, options, logits_shard.dtype, error, position=position
    )
    z = logits_shard.reshape(rows, local_size)
    return _VocabParallelCrossEntropy.apply(z, p, options.reduction, tuple(target.shape))


def sharded_rows(
    group: Any,
    device: torch.device,
    local_size: int,
    rows: int,
    args: Common | None,
    options: LossOptions,
    dtype: torch.dtype,
    error: Exception | None,
    *,
    position: int | None = None,
    name: str = "logits_shard",
) -> Rows:
    """Gather the layout (raising ``error``, this rank's local one, on every rank alike) and build the
    per-row constants in the compute dtype of ``dtype``; shared by both vocabulary-parallel losses."""
    layout = gather_layout(
        group,
        device,
        local_size=local_size,
        rows=rows,
        target=args.target if args is not None else None,
        ignore_index=options.ignore_index,
        prior_len=args.prior_len if args is not None else -1,
        prior_is_distribution=args.prior_is_distribution if args is not None else True,
        prior_dim=args.prior.dim() if args is not None and args.prior is not None else -1,
        weight_len=args.weight_len if args is not None else -1,
        weight_mode=options.weight_mode if args is not None else "torch",
        vocab_size=options.vocab_size,
        position=position,
        error=error,
        name=name,
    )
    assert args is not None  # a local error was raised on every rank by gather_layout
    return build_rows(
        layout,
        args.target.to(device),
        args.weight,
        args.prior,
        args.alpha,
        options.ignore_index,
        options.reduction,
        options.weight_mode,
        options.num_items_in_batch,
        compute_dtype(dtype),
        device,
    )


def _dtensor_cross_entropy(logits, target, group, options: LossOptions) -> torch.Tensor:
    from torch.distributed.tensor import DTensor, Replicate, Shard

    from .._validation import expected

    if group is not None:
        raise ValueError(
            expected("group", "to be None for DTensor logits (their device mesh gives it)", group)
        )
    mesh, placements, last = logits.device_mesh, tuple(logits.placements), logits.ndim - 1
    sharded = [i for i, pl in enumerate(placements) if isinstance(pl, Shard) and pl.dim % logits.ndim == last]
    others_replicated = all(isinstance(pl, Replicate) for i, pl in enumerate(placements) if i not in sharded)
    if len(sharded) != 1 or not others_replicated:
        raise ValueError(
            expected(
                "logits_shard",
                "to be a DTensor sharded on its last (class) dimension over one mesh dimension "
                "(Shard(-1)) and replicated over the others",
                placements,
            )
        )
    mesh_dim = sharded[0]

    def local(x: Any, name: str) -> Any:
        if not isinstance(x, DTensor):
            return x
        if all(isinstance(pl, Replicate) for pl in x.placements):
            return x.to_local()
        pls = tuple(x.placements)
        own = pls[mesh_dim]
        if name in ("prior", "weight") and isinstance(own, Shard) and own.dim % x.ndim == x.ndim - 1:
            if all(isinstance(pl, Replicate) for i, pl in enumerate(pls) if i != mesh_dim):
                return x.to_local()
        raise ValueError(
            expected(name, "to be a replicated DTensor (or sharded like the logits' classes)", pls)
        )

    names = ("prior", "weight", "label_smoothing", "num_items_in_batch")
    options = replace(options, **{name: local(getattr(options, name), name) for name in names})
    if options.vocab_size is None:
        options = replace(options, vocab_size=int(logits.shape[-1]))
    loss = _cross_entropy(
        logits.to_local(),
        local(target, "target"),
        options,
        group=mesh.get_group(mesh_dim),
        position=mesh.get_local_rank(mesh_dim),
    )
    return DTensor.from_local(loss, mesh, [Replicate()] * mesh.ndim, run_check=False)
