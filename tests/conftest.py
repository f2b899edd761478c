"""Suite-wide settings: one intra-op thread, and the scheduling of a parallel run (``pytest -n N``).

Under ``--dist loadgroup`` (pyproject's addopts) pytest-xdist sends the tests of one ``xdist_group`` to one
worker. Here:

* a test that uses a module-scoped fixture of its own module (a study trained once for the module, a
  built site) joins the group of that module, so a parallel run builds the fixture once, not once per
  worker that happens to run one of its tests;
* the groups and modules that take longest (the Ray backend's, waiting on its workers; the science study;
  the built site; the signal tests; the Triton interpreter's child; the examples) are moved to the front
  of the collection, so that pytest-xdist hands them out first and the
  other worker's tests fill the time they spend waiting, instead of one of them starting last and ending
  the run alone (a longest-first schedule);
* pytest >= 9 keeps a node's id in ``Node._id`` (a structured ``NodeId``), so the ``@group`` suffix that
  pytest-xdist 3.8 writes to ``item._nodeid`` is lost and every group would be split across workers; the
  suffix is written where this pytest reads it.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """The tests use small tensors, for which intra-op threads cost more than they give (and stall badly on
    a loaded 2-core machine); tests that need threads set them themselves. Not in pytest-xdist's controller
    (``-n N``), which runs no test: it would import torch (a second of CPU) for nothing."""
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_intra_op_thread() -> None:
    """Each test starts on one intra-op thread, whatever a test before it in this process set: a test that
    raises the count and does not restore it would leave every later test of its worker spinning threads
    that only contend with the other worker (CPU time several times the work, measured on 2 cores)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# xdist groups, then modules of single tests, longest first (wall seconds in a full run on 2 cores,
# 2026-12-01: ray ~60-90 s, mostly waiting on its workers; the science study's fixture ~16-30 s; the site
# build of the browser tests ~15 s; four study processes stopped by signals ~7 s each; the Triton
# interpreter's child ~13 s, then torch.compile's smoke test, which joins its group to import triton while
# the child's read of its 500 MB library is still in the page cache (run elsewhere, on a machine whose cache
# is trimmed, it read 381 MiB and waited 9 s on the disk); the examples ~8 s, which, collected in their
# place, were the last tests of the run, alone on one core for 6 s).
LONGEST_FIRST = ("ray", "tests/study/test_study_science.py", "tests/test_browser.py",
                 "tests/study/test_study_signals.py", "triton", "tests/test_examples.py")  # fmt: skip


def _group(item: pytest.Item) -> str | None:
    """The item's xdist group: its ``xdist_group`` mark, else its module's path when it uses a fixture
    that its module defines with ``scope="module"``."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    info = getattr(item, "_fixtureinfo", None)
    module = item.getparent(pytest.Module)
    if info is None or module is None:
        return None
    for defs in info.name2fixturedefs.values():
        if defs and defs[-1].scope == "module" and defs[-1].baseid == module.nodeid:
            return module.nodeid
    return None


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    if hasattr(item, "_id"):  # pytest >= 9: a structured NodeId, parsed back from the string
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None]:
    groups = {}
    for item in items:
        name = _group(item)
        if name is not None:
            groups[item] = name
            if item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(name))
    first = {name: rank for rank, name in enumerate(LONGEST_FIRST)}
    def rank(item: pytest.Item) -> int:
        return first.get(groups.get(item) or item.nodeid.split("::")[0], len(first))

    items.sort(key=rank)  # stable: the rest keep their order
    result = yield  # pytest-xdist's worker hook suffixes the ids here (or tries to)
    if config.getoption("loadgroup", False):  # set on xdist workers under --dist loadgroup
        for item, name in groups.items():
            if not item.nodeid.rfind("@") > item.nodeid.rfind("]"):  # no suffix yet, as xdist splits ids
                _set_nodeid(item, f"{item.nodeid}@{name}")
    return result
