"""Worker threads for streaming over CPU row blocks: one pool, shared by the kernels and the metrics.

Both the fused kernels (:mod:`labelsmooth.kernels`) and the binned metrics (:mod:`labelsmooth.metrics`)
cut their rows into cache-sized blocks and apply the same function to each. :func:`map_blocks` shares
the blocks dynamically among worker threads that each run torch ops single-threaded (intra-op thread
count 1, set in each worker thread only; the caller's setting is untouched). Compared with running each
block's ops with OpenMP across all cores, this removes one barrier per op: the same speed on an idle
machine, and several times faster when other processes compete for the cores.

The results come back in block order and each block is computed by the same ops whichever thread runs
it, so the output does not depend on the number of workers or on the scheduling.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")

_POOL: tuple[int, int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()
_WORKER = threading.local()


def _init_worker() -> None:
    # ATen initialises a thread's intra-op thread count lazily, at its first get_num_threads(), from the
    # process-wide value last passed to set_num_threads() by any thread. Without this first call a worker
    # whose first op ran after the caller had set, say, 2 threads would run every op with 2 OpenMP threads
    # (tests/test_parallel.py caught it: workers reported 2).
    torch.get_num_threads()
    torch.set_num_threads(1)
    _WORKER.active = True


def worker_pool() -> ThreadPoolExecutor:
    """The process's pool of ``torch.get_num_threads()`` single-threaded workers.

    Created on first use; re-created after a fork and when the caller's thread count changes.
    """
    global _POOL
    n = max(1, torch.get_num_threads())
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != n:
            if _POOL is not None and _POOL[0] == os.getpid():
                _POOL[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(n, thread_name_prefix="labelsmooth", initializer=_init_worker)
            _POOL = (os.getpid(), n, pool)
        return _POOL[2]


def map_blocks(
    fn: Callable[[int], T], starts: Sequence[int], *, parallel: bool = True, max_workers: int | None = None
) -> list[T]:
    """``[fn(s) for s in starts]``, with the blocks shared among worker threads; results in order.

    ``min(torch.get_num_threads(), len(starts), max_workers)`` workers of :func:`worker_pool` each take
    the next block not yet started until none is left (dynamic hand-out: a slow block does not hold up
    the others). With fewer than two workers, with ``parallel=False`` (e.g. CUDA tensors, whose ops are
    asynchronous launches), or when called from a worker thread itself (no nested pools), the blocks run
    in order on the calling thread.

    An exception raised by ``fn`` stops the hand-out of further blocks; once the running ones finish,
    the exception of the earliest failed block is raised in the caller.
    """
    workers = min(torch.get_num_threads(), len(starts), max_workers or len(starts))
    if not parallel or workers < 2 or getattr(_WORKER, "active", False):
        return [fn(s) for s in starts]
    results: list[T | None] = [None] * len(starts)
    errors: dict[int, BaseException] = {}
    lock = threading.Lock()
    next_index = iter(range(len(starts)))

    def drain() -> None:
        while True:
            with lock:
                if errors:
                    return
                i = next(next_index, None)
            if i is None:
                return
            try:
                results[i] = fn(starts[i])
            except BaseException as exc:  # re-raised in the caller below
                with lock:
                    errors[i] = exc
                return

    pool = worker_pool()
    for f in [pool.submit(drain) for _ in range(workers)]:
        f.result()
    if errors:
        raise errors[min(errors)]
    return results  # type: ignore[return-value]
