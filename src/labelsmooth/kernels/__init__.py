"""Fast paths with the semantics of :func:`labelsmooth.cross_entropy` (``weight_mode="torch"``).

- :func:`fused_cross_entropy`: logits in, loss and gradient computed in one streaming pass over row
  blocks (torch ops on the CPU, a Triton kernel for CUDA tensors); the gradient is the only N x V tensor,
  or none with ``inplace=True``.
- :func:`linear_cross_entropy`: hidden states and the output projection in; the N x V logits are never
  materialised (token chunks).
- :func:`global_token_count`: the denominator to pass as ``num_items_in_batch`` under gradient
  accumulation and data parallelism (all-reduced when ``torch.distributed`` is initialised).

Options of both kernels: ``softcap`` (final-logit soft-capping), ``z_loss`` (PaLM's z-loss),
``num_items_in_batch`` (global normalisation) and ``return_aux`` (per-row ``lse``, the z-loss part and
the token accuracy as a :class:`CrossEntropyAux`).

See ``docs/kernels.md`` for the memory model and measured figures.
"""

from __future__ import annotations

from ..losses.cross_entropy import CrossEntropyAux
from .chunked import fused_cross_entropy
from .linear import linear_cross_entropy
from .normalization import global_token_count
from .triton_ce import available as triton_available

__all__ = [
    "CrossEntropyAux",
    "fused_cross_entropy",
    "global_token_count",
    "linear_cross_entropy",
    "triton_available",
]
