"""The Ray backend of the study engine (``backend = "ray"``, ``labelsmooth study --backend ray``).

Each run is one Ray task with the resources of the ``[ray]`` section (``cpus_per_run``,
``gpus_per_run``); the engine's scheduler (:func:`labelsmooth.study.runner._execute_all`) is the same as
for the local backend: a run is submitted only when the runs it needs are stored, and the driver — the
process that runs the study — stays the only writer of the SQLite store, storing each run as it arrives.

What travels, and how:

* the task and its context (config, datasets, ``model_fn``) are put in Ray's object store **once**
  (``ray.put``) and every run task reads them from there;
* a needed run travels **by value**: the driver loads its stored record and its artefacts (the tensors
  under ``artefacts/<run_hash>/``) and puts them in the object store once per needed run, so a run on
  another node never reads the driver's folder;
* a run's record (metrics, curves, arrays, artefacts) comes back as the task's return value; the driver
  saves the artefacts and commits the row.

Faults: a run whose worker process (or node) dies is started again by Ray up to ``max_retries`` times
(``retry_exceptions=False``: a run that *raises* is not retried; the engine stores it as failed with its
error and the study goes on). A run retried after a crash computes the same numbers (seeded, one thread).
When the driver dies, Ray ends its job (the run tasks die with it); rerunning the study resumes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import Any

from labelsmooth._validation import expected
from labelsmooth.study.config import RayConfig, available_cores
from labelsmooth.study.runner import Executor, Outcome, RunFailed, execute_run
from labelsmooth.study.tasks.base import Context, NeededRun, RunSpec, Task

INSTALL = 'pip install "labelsmooth[ray]"'
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its tracebacks
WAIT_STEP = 0.25  # seconds per ray.wait, so that signals reach the driver promptly


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"--backend ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def describe(cfg: RayConfig) -> str:
    """One line for ``--dry-run``: where the runs go and what each reserves."""
    where = {
        "": f"a local Ray instance started for the study ({available_cores()} CPUs)",
        "auto": "the Ray cluster of this node (address auto)",
    }.get(cfg.address, f"the Ray cluster at {cfg.address}")
    gpus = f", {cfg.gpus_per_run:g} GPU" if cfg.gpus_per_run else ""
    return (f"backend ray: {where}; per run {cfg.cpus_per_run:g} CPU{gpus}; a run whose worker dies is "
            f"retried up to {cfg.max_retries} times")  # fmt: skip


def check_reachable(address: str, timeout: float) -> None:
    """Raise ConnectionError naming ``address`` when nothing accepts a TCP connection there within
    ``timeout`` seconds (``"auto"`` and ``""`` are not checked)."""
    if address in ("", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(2.0, timeout)):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    expected("ray.address", f"to be a running Ray cluster, but nothing answers there within "
                             f"{timeout:g} s ({exc.strerror or exc}); start one with `ray start --head`",
                             address)
                ) from None  # fmt: skip
            time.sleep(0.2)


class RaySession:
    """Connect to Ray for one study (a context manager): reuse a session this process already opened
    (``ray.init`` in your script; left open), else join ``address``, else start a local instance sized to
    the machine — started quietly (no dashboard, no usage stats, no worker logs on the driver) and shut
    down at the end. The signal handlers in place before ``ray.init`` are restored after it, so that the
    engine's SIGINT/SIGTERM/SIGHUP handling stays the same as with the local backend."""

    def __init__(self, cfg: RayConfig) -> None:
        self.cfg = cfg
        self.owned = False
        self.ray: Any = None

    def __enter__(self) -> RaySession:
        ray = self.ray = import_ray()
        if ray.is_initialized():
            return self
        address = self.cfg.address
        check_reachable(address, self.cfg.connect_timeout)
        kept = {s: signal.getsignal(s) for s in _signals()}
        quiet = {"log_to_driver": False, "logging_level": "ERROR"}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                _start_local(ray, quiet)
        except ConnectionError as exc:
            raise ConnectionError(
                expected("ray.address", f"to be a running Ray cluster ({str(exc).splitlines()[0]})",
                         address or "auto")
            ) from None  # fmt: skip
        finally:
            for s, handler in kept.items():
                if handler is not None:
                    signal.signal(s, handler)
        self.owned = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.ray.shutdown()
            self.owned = False

    def executor(self, task: Task, ctx: Context, n_runs: int) -> RayExecutor:
        return RayExecutor(self.ray, task, ctx, self.cfg)


LOCAL_START_ATTEMPTS = 2


def _start_local(ray: Any, quiet: dict[str, Any]) -> None:
    """Start a local instance; a second attempt when the first times out (on a loaded machine Ray's
    raylet may miss its own start-up deadline waiting for its agent processes)."""
    for attempt in range(LOCAL_START_ATTEMPTS):
        try:
            ray.init(num_cpus=available_cores(), include_dashboard=False, **quiet)
            return
        except Exception as exc:
            ray.shutdown()
            if attempt == LOCAL_START_ATTEMPTS - 1:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise RuntimeError(f"could not start a local Ray instance: {first}") from None


def _signals() -> list[int]:
    return [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]


def _ray_run(task_ctx: tuple[Task, Context], spec: RunSpec, hashes: list[str], *needs: NeededRun) -> Any:
    """One run inside a Ray worker, on one thread, like a local worker process."""
    import torch

    torch.set_num_threads(1)
    task, ctx = task_ctx
    return execute_run(task, spec, ctx, dict(zip(hashes, needs)))


class RayExecutor(Executor):
    """Runs as Ray tasks (see the module docstring)."""

    def __init__(self, ray: Any, task: Task, ctx: Context, cfg: RayConfig) -> None:
        super().__init__()
        self.ray = ray
        self.slots = 1 << 30  # Ray queues the runs the cluster cannot take yet
        self.max_retries = cfg.max_retries
        self.shared = ray.put((task, ctx))
        self.remote = ray.remote(_ray_run).options(
            num_cpus=cfg.cpus_per_run, num_gpus=cfg.gpus_per_run, max_retries=cfg.max_retries,
            retry_exceptions=False, name="labelsmooth-run",
        )  # fmt: skip
        self.refs: dict[Any, RunSpec] = {}
        self.need_refs: dict[str, Any] = {}

    def _need(self, need: NeededRun) -> Any:
        """A needed run in the object store, by value (its artefacts loaded), put once."""
        ref = self.need_refs.get(need.run_hash)
        if ref is None:
            value = NeededRun(need.run_hash, need.axes, need.metrics, need.curves, need.arrays, None,
                              _artefacts=need.artefacts)  # fmt: skip
            ref = self.need_refs[need.run_hash] = self.ray.put(value)
        return ref

    def submit(self, spec: RunSpec, needs: dict[str, NeededRun]) -> None:
        hashes = list(needs)
        ref = self.remote.remote(self.shared, spec, hashes, *(self._need(needs[h]) for h in hashes))
        self.refs[ref] = spec
        self.in_flight += 1

    def wait(self) -> list[Outcome]:
        ray = self.ray
        ready: list[Any] = []
        while not ready:
            ready, _ = ray.wait(list(self.refs), num_returns=1, timeout=WAIT_STEP)
        out: list[Outcome] = []
        for ref in ready:
            spec = self.refs.pop(ref)
            self.in_flight -= 1
            try:
                out.append((spec, ray.get(ref)))
            except ray.exceptions.RayTaskError as exc:  # the run raised: not retried
                cause = getattr(exc, "cause", None)
                text = _ANSI.sub("", getattr(exc, "traceback_str", "") or str(exc))
                last = (text.strip().splitlines() or [type(exc).__name__])[-1]
                line = f"{type(cause).__name__}: {cause}" if cause is not None else last
                out.append((spec, RunFailed(line.strip().splitlines()[0], text)))
            except ray.exceptions.RayError as exc:  # its worker or node died more than max_retries times
                text = _ANSI.sub("", str(exc))
                first = (text.strip().splitlines() or [""])[0]
                line = f"{type(exc).__name__} (after {self.max_retries} retries): {first}"
                out.append((spec, RunFailed(line, text)))
        return out

    def close(self, *, abort: bool) -> None:
        if abort:
            for ref in self.refs:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # pragma: no cover - already finished or gone
                    pass
        self.refs.clear()
        self.need_refs.clear()


__all__ = ["INSTALL", "RayExecutor", "RaySession", "check_reachable", "describe", "import_ray"]
