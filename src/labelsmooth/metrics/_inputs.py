"""Chunked, threaded top-label passes over a metric's validated-shape ``(input, target)`` pair.

:func:`prepare_shapes` converts and checks dtypes and shapes only (the checks live in
:mod:`labelsmooth._validation`); :func:`map_top_label_chunks` then checks the values and applies a function
of the top-label ``(confidence, correct)`` chunk by chunk, so the input is read from memory once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from labelsmooth._parallel import map_blocks
from labelsmooth._validation import (
    as_tensor,
    check_bool,
    check_score_values,
    check_scores_shape,
    check_target_shape,
    check_target_values,
)
from labelsmooth.metrics.probabilities import top_label

T = TypeVar("T")

CHUNK_ROWS = 1 << 15
"""Rows per chunk in the chunked CPU paths: a chunk of input and its per-row temporaries stay in L2."""


def prepare_shapes(
    input: Any, target: Any, *, from_logits: Any, input_name: str = "input"
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Convert and check dtypes and shapes only; pair with :func:`map_top_label_chunks`."""
    from_logits = check_bool("from_logits", from_logits)
    x = check_scores_shape(input_name, as_tensor(input_name, input))
    t = check_target_shape("target", as_tensor("target", target), x.shape[0])
    return x, t.to(device=x.device, dtype=torch.long), from_logits


def map_top_label_chunks(
    fn: Callable[[torch.Tensor, torch.Tensor], T],
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    from_logits: bool,
    input_name: str = "input",
) -> list[T]:
    """Validate and apply ``fn(confidence, correct)`` to row chunks of ``(x, t)``; results in chunk order.

    On CPU the rows are cut into L2-sized chunks (:data:`CHUNK_ROWS`), so the input is read from memory
    once rather than once per pass, and the chunks are shared dynamically among ``torch.get_num_threads()``
    Python threads (at most 16), each running its (small) tensor operations single-threaded: no barrier
    per operation, which on a loaded machine costs more than the operation itself. The threads are the
    shared workers of :func:`labelsmooth._parallel.map_blocks`; the caller's intra-op thread count is
    untouched. Elsewhere (GPU, one thread, one chunk) the chunks are processed in order on the calling
    thread.
    """
    n, k = x.shape
    step = CHUNK_ROWS if x.device.type == "cpu" else max(n, 1)
    starts = range(0, n, step)

    def work(s: int) -> T:
        xc = check_score_values(input_name, x[s : s + step], from_logits=from_logits)
        tc = check_target_values("target", t[s : s + step], k)
        return fn(*top_label(xc, tc, from_logits=from_logits))

    return map_blocks(work, starts, max_workers=16)
