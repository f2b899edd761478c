"""Fast paths with the semantics of :func:`labelsmooth.cross_entropy` (``weight_mode="torch"``).

- :func:`fused_cross_entropy`: logits in, loss and gradient computed in one streaming pass over row
  blocks (torch ops on the CPU, a Triton kernel for CUDA tensors); the gradient is the only N x V tensor,
  or none with ``inplace=True``.
- :func:`linear_cross_entropy`: hidden states and the output projection in; the N x V logits are never
  materialised (token chunks).

See ``docs/kernels.md`` for the memory model and measured figures.
"""

from __future__ import annotations

from .chunked import fused_cross_entropy
from .linear import linear_cross_entropy
from .triton_ce import available as triton_available

__all__ = ["fused_cross_entropy", "linear_cross_entropy", "triton_available"]
