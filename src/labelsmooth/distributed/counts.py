"""The global count of target tokens, the denominator of a mean over a data-parallel batch."""

from __future__ import annotations

from typing import Any

import torch

from ..kernels.normalization import local_token_count
from ._layout import all_reduce, resolve_group


def global_num_items(
    target: torch.Tensor,
    *,
    ignore_index: int = -100,
    weight: torch.Tensor | None = None,
    group: Any = None,
) -> torch.Tensor:
    """Number of targets other than ``ignore_index``, summed over ``group`` (one SUM all-reduce).

    The strict twin of :func:`labelsmooth.kernels.global_token_count` (same count, from the same
    :func:`~labelsmooth.kernels.normalization.local_token_count`), for code that runs distributed: it
    needs an initialised process group rather than falling back to the local count.

    .. math::

        n = \\sum_{\\text{ranks}} \\sum_i [y_i \\ne \\text{ignore\\_index}]\\; w_{y_i}

    with ``w = 1`` unless class weights are given (then ``n`` is the weighted count that
    ``reduction="mean"`` divides by). Pass the result as ``num_items_in_batch=`` to every
    micro-batch's loss on every data-parallel rank: the sum over micro-batches and ranks of those
    losses is then the mean over the global batch (the fix for huggingface/transformers#46731-style
    bugs, where a mean of per-rank or per-micro-batch means weights short sequences too much). Call it
    on the *data-parallel* group with the targets of all the step's micro-batches concatenated (or
    sum the per-micro-batch counts first).

    Parameters
    ----------
    target : LongTensor of any shape
        Class indices or ``ignore_index``.
    ignore_index : int, default -100
    weight : Tensor ``(V,)``, optional
        Class weights (the full vector); the count becomes ``sum w_y``.
    group : ProcessGroup, optional
        Default: the default group.

    Returns
    -------
    Tensor
        0-d, int64 without weights, the weight's dtype with them (float32 for half weights); on
        ``target``'s device.

    Raises
    ------
    RuntimeError
        No initialised process group.
    TypeError
        A non-tensor or floating-point target, a non-float weight.

    Examples
    --------
    >>> import torch, torch.distributed as dist
    >>> from labelsmooth.distributed import global_num_items
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> int(global_num_items(torch.tensor([[3, 1, -100], [2, -100, -100]])))
    3
    >>> dist.destroy_process_group()
    """
    n = local_token_count(target, ignore_index, weight=weight).reshape(1)  # argument errors first
    group, _, _ = resolve_group(group)
    return all_reduce(n, group, "sum").reshape(())
