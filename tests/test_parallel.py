"""The shared block streamer (labelsmooth._parallel): order, worker counts, errors, nesting."""

from __future__ import annotations

import threading

import pytest
import torch

from labelsmooth import _parallel


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_results_come_back_in_block_order(two_threads):
    got = _parallel.map_blocks(lambda s: s * s, range(0, 50, 5))
    assert got == [s * s for s in range(0, 50, 5)]
    assert torch.get_num_threads() == 2  # the caller's setting is untouched


def test_blocks_run_on_single_threaded_workers(two_threads):
    seen = _parallel.map_blocks(
        lambda s: (threading.current_thread().name, torch.get_num_threads()), range(8)
    )
    assert {name.split("_")[0] for name, _ in seen} == {"labelsmooth"}
    assert {n for _, n in seen} == {1}


def test_max_workers_and_serial_cases_run_inline(two_threads):
    main = threading.current_thread().name
    for kw in ({"max_workers": 1}, {"parallel": False}):
        names = _parallel.map_blocks(lambda s: threading.current_thread().name, range(4), **kw)
        assert names == [main] * 4
    assert _parallel.map_blocks(lambda s: threading.current_thread().name, [0]) == [main]  # one block
    torch.set_num_threads(1)
    assert _parallel.map_blocks(lambda s: threading.current_thread().name, range(4)) == [main] * 4


def test_nested_calls_run_inline_on_the_worker(two_threads):
    def outer(s):
        inner = _parallel.map_blocks(lambda t: threading.current_thread().name, range(3))
        return len(set(inner)), inner[0] == threading.current_thread().name

    assert _parallel.map_blocks(outer, range(4)) == [(1, True)] * 4


def test_the_earliest_failed_block_raises_in_the_caller(two_threads):
    def fn(s):
        if s in (3, 6):
            raise ValueError(f"block {s}")
        return s

    with pytest.raises(ValueError, match="block 3"):
        _parallel.map_blocks(fn, range(8))
    assert _parallel.map_blocks(fn, [0, 1, 2]) == [0, 1, 2]  # the pool still works afterwards
