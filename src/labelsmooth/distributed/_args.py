"""Local argument checks shared by the vocabulary-parallel losses (run before the layout is gathered)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from .._validation import (
    check_bool,
    check_choice,
    check_distribution,
    check_float_tensor,
    check_num_classes,
    check_number,
    check_reduction,
    check_smoothing,
    expected,
)
from ..losses.cross_entropy import WEIGHT_MODES
from ._rows import check_prior_slice


@dataclass(frozen=True)
class LossOptions:
    """The arguments of a vocabulary-parallel loss besides its tensors (logits or hidden states and the
    projection) and its group: one list for :func:`vocab_parallel_cross_entropy` and
    :func:`vocab_parallel_linear_cross_entropy`, unchecked (:func:`check_common` checks them)."""

    label_smoothing: Any
    prior: Any
    weight: Any
    ignore_index: Any
    reduction: Any
    weight_mode: Any
    allow_negative: Any
    num_items_in_batch: Any
    vocab_size: Any

    @classmethod
    def of(cls, arguments: dict[str, Any]) -> LossOptions:
        """The options among an entry point's arguments (its ``locals()`` on entry)."""
        return cls(**{f.name: arguments[f.name] for f in fields(cls)})


@dataclass
class Common:
    """Validated local arguments: ``target`` flattened to ``(M,)``, smoothing a float or ``(M,)``,
    ``prior`` ``None``, ``(P,)`` or ``(M, P)``, and the facts the layout gather needs."""

    target: torch.Tensor
    alpha: float | torch.Tensor
    prior: torch.Tensor | None
    weight: torch.Tensor | None
    prior_len: int
    prior_is_distribution: bool
    weight_len: int


def check_num_items(num_items_in_batch: Any, reduction: str) -> None:
    if num_items_in_batch is None:
        return
    if reduction != "mean":
        raise ValueError(
            expected(
                "num_items_in_batch",
                'only with reduction="mean" (it replaces the mean\'s denominator)',
                num_items_in_batch,
            )
        )
    if isinstance(num_items_in_batch, torch.Tensor):
        if num_items_in_batch.numel() != 1 or num_items_in_batch.dtype == torch.bool:
            raise ValueError(
                expected("num_items_in_batch", "to be a number or a one-element tensor", num_items_in_batch)
            )
        return
    check_number("num_items_in_batch", num_items_in_batch, lo=0, lo_open=True, finite=True,
                 type_what="to be a number or a one-element tensor")  # fmt: skip


def check_common(
    target: Any,
    batch_shape: tuple[int, ...],
    options: LossOptions,
) -> Common:
    """Everything that one rank can check alone. ``batch_shape`` is the shape ``target`` must have."""
    label_smoothing, prior, weight = options.label_smoothing, options.prior, options.weight
    reduction, weight_mode, allow_negative = options.reduction, options.weight_mode, options.allow_negative
    num_items_in_batch, vocab_size = options.num_items_in_batch, options.vocab_size
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(expected("target", "to hold integer class indices", target.dtype))
    if tuple(target.shape) != batch_shape:
        raise ValueError(expected("target", f"of shape {batch_shape}", target))
    check_reduction(reduction)
    check_choice("weight_mode", weight_mode, WEIGHT_MODES)
    check_bool("allow_negative", allow_negative)
    check_num_items(num_items_in_batch, reduction)
    if vocab_size is not None:
        check_num_classes(vocab_size, "vocab_size")
    M = target.numel()
    a = label_smoothing
    if isinstance(a, torch.Tensor) and a.dim() >= 1:
        if tuple(a.shape) == batch_shape and len(batch_shape) >= 1:
            a = a.reshape(M)
        elif len(batch_shape) >= 2 and tuple(a.shape) == batch_shape[:1]:
            a = a.reshape(-1, *([1] * (len(batch_shape) - 1))).expand(batch_shape).reshape(M)
    a = check_smoothing(a, n=M, allow_negative=allow_negative)

    prior_len, prior_ok = -1, True
    if prior is not None:
        check_float_tensor("prior", prior)
        if prior.dim() == 2 and prior.shape[0] != M:
            raise ValueError(expected("prior", f"of shape (P,) or ({M}, P), one row per target", prior))
        if prior.dim() not in (1, 2):
            raise ValueError(expected("prior", "of shape (P,) or (M, P)", prior))
        check_prior_slice(prior)
        prior_len = prior.shape[-1]
        try:  # needed only if it is the full vector (known after the gather)
            check_distribution("prior", prior)
        except ValueError:
            prior_ok = False
    weight_len = -1
    if weight is not None:
        check_float_tensor("weight", weight)
        if weight.dim() != 1:
            raise ValueError(expected("weight", "of shape (V,) or (V_r,) (the rank's slice)", weight))
        weight_len = weight.shape[0]
    return Common(target.reshape(M), a, prior, weight, prior_len, prior_ok, weight_len)
