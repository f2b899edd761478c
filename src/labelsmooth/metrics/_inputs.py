"""Chunked, threaded top-label passes over a metric's validated-shape ``(input, target)`` pair.

:func:`prepare_shapes` converts and checks dtypes and shapes only (the checks live in
:mod:`labelsmooth._validation`); :func:`map_top_label_chunks` then checks the values and applies a function
of the top-label ``(confidence, correct)`` chunk by chunk, so the input is read from memory once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

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


_THREADS_LOCK = threading.Lock()
_threads_depth = 0
_threads_saved = 1


@contextlib.contextmanager
def _serial_intra_op() -> Iterator[None]:
    """Intra-op threads set to 1 for the duration, like a ``threadpoolctl`` limit.

    Re-entrant and safe when several threads call in at once: the first caller in saves the setting and
    the last one out restores it.
    """
    global _threads_depth, _threads_saved
    with _THREADS_LOCK:
        if _threads_depth == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_depth += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_depth -= 1
            if _threads_depth == 0:
                torch.set_num_threads(_threads_saved)


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
    Python threads, each running its (small) tensor operations single-threaded: no barrier per operation,
    which on a loaded machine costs more than the operation itself. While the pool runs, torch's intra-op
    thread count is 1; it is restored afterwards. Elsewhere (GPU, one thread, one chunk) the chunks are
    processed in order on the calling thread.
    """
    n, k = x.shape
    step = CHUNK_ROWS if x.device.type == "cpu" else max(n, 1)
    starts = range(0, n, step)

    def work(s: int) -> T:
        xc = check_score_values(input_name, x[s : s + step], from_logits=from_logits)
        tc = check_target_values("target", t[s : s + step], k)
        return fn(*top_label(xc, tc, from_logits=from_logits))

    workers = min(torch.get_num_threads(), len(starts), 16)
    if workers < 2:
        return [work(s) for s in starts]
    with _serial_intra_op(), ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, starts))
