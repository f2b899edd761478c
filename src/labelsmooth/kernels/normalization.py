"""Global normalisation: the denominator of a mean over a batch split across micro-batches or ranks.

Gradient accumulation and data parallelism split one global batch into pieces. The mean over every token
of the global batch is ``sum_pieces sum_rows loss / N_global``; the average of per-piece means is not (it
over-weights pieces with few tokens: huggingface/transformers#46731). Pass the global count as
``num_items_in_batch`` to :func:`labelsmooth.cross_entropy`, :func:`labelsmooth.kernels.fused_cross_entropy`
or :func:`labelsmooth.kernels.linear_cross_entropy` and *sum* (do not average) the pieces' losses.
"""

from __future__ import annotations

from typing import Any

import torch

from .._validation import check_float_tensor, expected

__all__ = ["global_token_count"]


def global_token_count(
    target: torch.Tensor,
    ignore_index: int = -100,
    *,
    weight: torch.Tensor | None = None,
    group: Any = None,
) -> torch.Tensor:
    """The mean's denominator over the global batch: rows not ignored, summed over data-parallel ranks.

    .. math::

        N = \\sum_{\\text{ranks}} \\sum_i [y_i \\ne \\texttt{ignore\\_index}]
        \\quad\\text{or, with class weights } w,\\quad
        N = \\sum_{\\text{ranks}} \\sum_{i:\\, y_i \\ne \\texttt{ignore\\_index}} w_{y_i}

    The weighted form is the denominator PyTorch's ``"mean"`` uses with ``weight``; since
    ``num_items_in_batch`` replaces that denominator, pass this one to keep the weighted mean.

    When :mod:`torch.distributed` is available and initialised, the local count is all-reduced (sum)
    over ``group`` (the default process group when ``None``); otherwise it is the local count. Under
    gradient accumulation, call it on the concatenated targets of all micro-batches of the step (or sum
    the per-micro-batch counts) before the first forward.

    Parameters
    ----------
    target : LongTensor of any shape
        Class indices, ``ignore_index`` on padding.
    ignore_index : int, default -100
    weight : Tensor ``(C,)``, optional
        Class weights: the count becomes ``sum w_y`` over rows not ignored.
    group : torch.distributed.ProcessGroup, optional
        The data-parallel group to reduce over.

    Returns
    -------
    Tensor
        0-d, on ``target``'s device: int64 without weights, the weight's dtype with them (float32 for
        half weights). Not read on the host (no synchronisation beyond the all-reduce).

    Raises
    ------
    TypeError
        A non-tensor or floating ``target``, a non-float ``weight``.
    ValueError
        ``weight`` not 1-d.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import cross_entropy
    >>> from labelsmooth.kernels import global_token_count
    >>> g = torch.Generator().manual_seed(0)
    >>> z, y = torch.randn(6, 5, generator=g), torch.tensor([0, 1, -100, 3, -100, 4])
    >>> n = global_token_count(y)  # 4 tokens; on a data-parallel job, the sum over ranks
    >>> pieces = [cross_entropy(z[s], y[s], label_smoothing=0.1, num_items_in_batch=n)
    ...           for s in (slice(0, 1), slice(1, 6))]  # two micro-batches: 1 and 3 tokens
    >>> whole = cross_entropy(z, y, label_smoothing=0.1)
    >>> bool(torch.allclose(sum(pieces), whole))
    True
    """
    count = local_token_count(target, ignore_index, weight=weight)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(count, op=dist.ReduceOp.SUM, group=group)
    return count


def local_token_count(
    target: torch.Tensor, ignore_index: int = -100, *, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """This process's rows not ignored (or their summed class weights): the count that
    :func:`global_token_count` and :func:`labelsmooth.distributed.global_num_items` all-reduce.

    0-d on ``target``'s device; int64 without weights, the weight's dtype with them (float32 for half).
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(expected("target", "to hold integer class indices", target.dtype))
    valid = target != ignore_index
    if weight is None:
        return valid.sum()
    check_float_tensor("weight", weight)
    if weight.dim() != 1:
        raise ValueError(expected("weight", "of shape (C,)", weight))
    safe = torch.where(valid, target, 0).long()
    w = weight.to(target.device)
    if w.dtype in (torch.float16, torch.bfloat16):
        w = w.float()  # a half sum overflows (fp16 > 65504) or rounds (bf16 > 256)
    return torch.where(valid, w[safe], torch.zeros((), dtype=w.dtype, device=w.device)).sum()
