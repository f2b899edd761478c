"""Numerical plumbing shared by the losses, the kernels and the distributed losses (internal).

- :func:`compute_dtype`: the dtype a loss accumulates in (float32 for half inputs);
- :func:`class_last_rows`: logits or probability targets moved to ``(M, C)`` rows, classes last;
- :func:`apply_reduction`: ``"none"`` / ``"sum"`` / ``"mean"`` of per-row losses with a given denominator.
"""

from __future__ import annotations

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half inputs are accumulated in float32; float32 and float64 keep their precision.

    >>> compute_dtype(torch.bfloat16), compute_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return torch.float32 if dtype in HALF_DTYPES else dtype


def class_last_rows(x: torch.Tensor, batched: bool, extra: int) -> torch.Tensor:
    """Move the class dim (1 for batched input) last and flatten the rest: ``(M, C)`` rows.

    ``batched`` says whether ``x`` has a batch dimension (``(N, C, d1, ...)`` rather than ``(C,)``) and
    ``extra`` is the number of spatial dims ``d1, ...``. A view when no dim moves, a copy otherwise.

    >>> class_last_rows(torch.zeros(2, 3, 4), True, 1).shape
    torch.Size([8, 3])
    """
    if not batched:
        return x.reshape(1, -1)
    if extra == 0:
        return x
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def apply_reduction(
    loss: torch.Tensor, denom: torch.Tensor, reduction: str, out_shape: tuple[int, ...]
) -> torch.Tensor:
    """Per-row ``loss`` (M,) reshaped to ``out_shape`` (``"none"``), summed, or summed over ``denom``.

    ``"mean"`` divides by ``denom`` as given (the weight sum over rows not ignored, or a global count), so
    an all-ignored batch gives ``nan`` (0/0), as PyTorch does.

    >>> apply_reduction(torch.tensor([1.0, 2.0, 0.0]), torch.tensor(2.0), "mean", (3,))
    tensor(1.5000)
    """
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / denom
