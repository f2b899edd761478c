"""Pick the kernel for logits: Triton for CUDA tensors when importable, torch row blocks otherwise."""

from __future__ import annotations

import torch

from ._core import RowParams, stream_loss_grad


def use_triton(z: torch.Tensor, backend: str) -> bool:
    """``backend="auto"`` means Triton exactly when ``z.is_cuda`` and Triton imports."""
    if backend == "triton":
        return True
    if backend == "torch":
        return False
    if not z.is_cuda:
        return False
    from . import triton_ce

    return triton_ce.available()


def loss_grad(
    z: torch.Tensor,
    grad: torch.Tensor | None,
    p: RowParams,
    backend: str = "auto",
    block_bytes: int | None = None,
) -> torch.Tensor:
    """Per-row losses of ``z`` (M, V); the scaled gradient goes into ``grad`` (``z``; None: loss only)."""
    if use_triton(z, backend):
        from . import triton_ce

        return triton_ce.loss_grad(z, grad, p)
    return stream_loss_grad(z, grad, p, block_bytes)
