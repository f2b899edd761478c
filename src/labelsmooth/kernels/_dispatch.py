"""Pick the kernel for logits: Triton for CUDA tensors when importable, torch row blocks otherwise."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeVar

import torch

from ._core import RowParams
from ._stream import stream_loss_grad

F = TypeVar("F", bound=Callable[..., object])


def compiler_disabled(fn: F) -> F:
    """``torch.compiler.disable(fn)``, applied at the first call rather than at import.

    ``torch.compiler.disable`` imports ``torch._dynamo`` (and Triton with it), about 2 s, which
    ``import labelsmooth`` should not pay. Called inside a ``torch.compile``d function, ``fn`` still runs
    eagerly behind a graph break.
    """
    disabled: list[Callable[..., object]] = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not disabled:
            disabled.append(torch.compiler.disable(fn))
        return disabled[0](*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _interpreting() -> bool:
    """``TRITON_INTERPRET`` is set: Triton runs its kernels on CPU tensors (the tests' mode)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def check_device(backend: str, t: torch.Tensor) -> None:
    """``backend="triton"`` needs CUDA tensors (CPU tensors only under ``TRITON_INTERPRET=1``).

    Raises a one-line ValueError instead of the Triton driver's ``RuntimeError: 0 active drivers``.
    """
    if backend == "triton" and t.device.type != "cuda" and not _interpreting():
        raise ValueError(
            f'Expected `input` on a CUDA device with backend="triton" (the Triton kernel runs on CUDA '
            f'tensors; use backend="auto" or "torch" on the {t.device.type.upper()}), got a tensor on '
            f"{t.device}."
        )


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
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-row losses of ``z`` (M, V); the scaled gradient goes into ``grad`` (``z``; None: loss only).

    ``stats`` = ``(lse, correct)`` (M,) buffers receive the per-row log-sum-exp and target-is-max flags.
    """
    if use_triton(z, backend):
        from . import triton_ce

        return triton_ce.loss_grad(z, grad, p, stats=stats)
    return stream_loss_grad(z, grad, p, block_bytes, stats)
