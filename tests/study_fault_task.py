"""A study task registered only by the tests of the backends: runs that succeed, sleep, raise, or whose
worker process dies.

Methods (``toy_fault.methods``):

* ``ok``: returns numbers that depend only on the seed;
* ``slow``: the same after sleeping ``sleep`` seconds (a driver can be killed while runs are in flight);
* ``raise``: raises ValueError every time (a deterministic failure);
* ``crash_once``: on its first attempt writes its process id to ``<marker_dir>/<seed>.pid`` and waits to
  be killed (the test kills that PID); a later attempt, finding the file, returns its numbers;
* ``crash_always``: kills its own process on every attempt.

Every attempt appends a line ``<method> <seed>`` to ``<marker_dir>/calls.log``, so a test can count how
often each run was executed. Module-level, so that spawned and Ray workers import it.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from labelsmooth.study.tasks import FunctionTask, Method, Metric, register


@dataclass(frozen=True)
class FaultSection:
    marker_dir: str = ""
    sleep: float = 0.0
    crash_wait: float = 60.0  # how long crash_once waits to be killed before giving up (a test failure)
    methods: dict = field(default_factory=lambda: {"ok": True})


def _no_objective(param, **context):
    return None


def run_one(section, method, param, seed):
    marker = Path(section.marker_dir)
    if section.marker_dir:
        with open(marker / "calls.log", "a", encoding="utf-8") as fh:
            fh.write(f"{method} {seed}\n")
    if method == "raise":
        raise ValueError(f"deterministic failure of seed {seed}")
    if method == "crash_always":
        os.kill(os.getpid(), signal.SIGKILL)
    if method == "crash_once":
        pid_file = marker / f"{seed}.pid"
        if not pid_file.exists():
            pid_file.write_text(str(os.getpid()), encoding="utf-8")
            time.sleep(section.crash_wait)  # the test kills this process meanwhile
            raise RuntimeError("crash_once was not killed")
    if method == "slow":
        time.sleep(section.sleep)
    value = (seed + 1) / 7.0
    return {"metrics": {"score": value, "square": value * value}, "curves": {"trace": [value, 2 * value]}}


_METHODS = {
    name: Method(name, None, _no_objective, label=lambda p, n=name: n)
    for name in ("ok", "slow", "raise", "crash_once", "crash_always")
}

FAULT = register(
    FunctionTask("toy_fault", run_one, FaultSection,
                 [Metric("score", "score", better="higher", cli=True), Metric("square", "square")],
                 summary="runs that succeed, sleep, raise or crash (tests only)", methods=_METHODS),
    replace=True,
)  # fmt: skip
