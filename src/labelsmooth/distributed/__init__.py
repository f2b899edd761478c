"""The label-smoothed cross-entropy with the vocabulary sharded over torch.distributed (and DTensor).

- :func:`vocab_parallel_cross_entropy`: each rank holds the logits of a slice of the classes (or the
  logits are a DTensor sharded on the class dimension); loss and gradient equal
  :func:`labelsmooth.cross_entropy` on the gathered logits, with a few all-reduces of O(N) numbers.
- :func:`vocab_parallel_linear_cross_entropy`: hidden states replicated, the output projection sharded
  by rows; one chunk of local logits at a time.
- :func:`global_num_items`: the global token count for ``num_items_in_batch=`` (data parallelism and
  gradient accumulation).

Only ``torch.distributed`` is needed. See ``docs/distributed.md``.
"""

from __future__ import annotations

from .counts import global_num_items
from .cross_entropy import vocab_parallel_cross_entropy
from .linear import vocab_parallel_linear_cross_entropy

__all__ = ["global_num_items", "vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]
