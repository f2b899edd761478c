"""The study engine: validate and load everything, then train the runs not yet stored, in parallel if asked,
for any task of :mod:`labelsmooth.study.tasks`.

Order of work, so that errors leave nothing half-written:

1. resolve and validate the config (its ``task`` picks the task); the task loads its datasets and plans
   its runs (missing files and bad columns fail here);
2. only then create the output folder and take its lock (``study.lock``: ``fcntl.flock``, released by the
   OS when the process dies, so a ``kill -9`` leaves no stale lock; a second study in the same folder
   refuses, naming the holder's PID);
3. check that the folder holds this study (or none): a folder holding another grid refuses unless
   ``extend`` (then the grid is the union: "N runs kept, M new"); write ``config.toml`` and the metadata;
4. skip runs already stored (resume); order the others after the runs they need; train them serially or
   in ``workers`` worker processes (never more than the cores available), which return records to the
   parent, the only writer, which saves each run's artefacts and then commits its row in one transaction;
   a run starts only when every run it needs is stored;
5. draw the report from the database.

Signals: SIGINT, SIGTERM and SIGHUP stop the study the same way: runs in flight are dropped (workers are
terminated), finished runs are kept, and :class:`StudyInterrupted` is raised (the CLI exits with 128 +
the signal number, 130 for Ctrl-C, and says that rerunning the same command resumes); one the process
ignores (``nohup``) stays ignored. Each worker watches the study's process and exits when it dies, whatever
killed it (``kill -9`` included).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from labelsmooth._validation import expected
from labelsmooth.study.config import StudyConfig, apply_overrides, available_cores, load_config, to_toml
from labelsmooth.study.results import Results
from labelsmooth.study.store import DB_NAME, Store, grid_runs, outside_grid, save_artefacts
from labelsmooth.study.tasks import get_task
from labelsmooth.study.tasks.base import Context, NeededRun, RunRecord, RunSpec, Task, order_plan

DataArg = Any  # None | Dataset | (X, y) | {name: (X, y) or Dataset}
LOCK_NAME = "study.lock"


class StudyInterrupted(KeyboardInterrupt):
    """A study stopped by SIGINT, SIGTERM or SIGHUP; ``signum`` is the signal, ``stored`` the runs stored
    by this call before it stopped."""

    def __init__(self, signum: int, stored: int = 0) -> None:
        super().__init__(signum)
        self.signum = signum
        self.stored = stored

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StudyLockedError(RuntimeError):
    """Another process holds the study folder's lock."""


class StudyMismatchError(ValueError):
    """The folder holds another study (another grid or another task)."""


# ------------------------------------------------------------------------------------------- config


def resolve_config(config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str] | None) -> StudyConfig:
    """A StudyConfig from a StudyConfig, a nested mapping, a TOML path, or None (the defaults)."""
    if config is None:
        return load_config(None)
    if isinstance(config, StudyConfig):
        return config
    if isinstance(config, Mapping):
        return apply_overrides(config, {})
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise TypeError(
        expected("config", "to be a StudyConfig, a mapping, a TOML path or None", type(config).__name__)
    )


@dataclass
class Prepared(Context):
    """A :class:`Context` with its task: everything checked and loaded, nothing written."""

    task: Task | None = None

    def plan(self) -> list[RunSpec]:
        assert self.task is not None  # set by prepare_context()
        return self.task.plan(self.config, self.datasets)


def prepare_context(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    model_fn: Any = None,
    data: DataArg = None,
) -> Prepared:
    """Everything checked and loaded, nothing written: the context every run shares."""
    cfg = resolve_config(config)
    task = get_task(cfg.task)
    datasets = task.load(cfg, data=data, model_fn=model_fn)
    return Prepared(cfg, task.section(cfg), datasets, model_fn, task)


def prepare(*args: Any, **kwargs: Any) -> Prepared:
    """Deprecated spelling of :func:`prepare_context` (kept for one release)."""
    from labelsmooth._deprecation import warn_renamed

    warn_renamed("labelsmooth.study.runner.prepare", "prepare_context")
    return prepare_context(*args, **kwargs)


def plan(ctx: Prepared) -> list[RunSpec]:
    """The runs of this context (each with its ``run_hash``), in the task's order."""
    return ctx.plan()


# ------------------------------------------------------------------------------------------- the folder lock


class FolderLock:
    """An exclusive OS lock on ``folder/study.lock`` (``fcntl.flock``; the OS drops it when the process
    dies). The file holds the holder's PID. Where ``fcntl`` does not exist (Windows) no lock is taken."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fh: Any = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise StudyLockedError(
                f"{self.path.parent} is in use by another labelsmooth study (PID {pid}); wait for it to "
                "finish, or use another --out."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------------------------- worker processes
_WORKER: tuple[Task, Context] | None = None


def _watch_parent(alive: Connection) -> None:
    """Exit this worker as soon as the study's process is gone: ``alive`` is the read end of a pipe whose
    write end only that process holds, so it reads as closed once the process has died, however it died
    (``kill -9`` included; also while it is a zombie, and whatever process the worker's parent is)."""
    alive.poll(None)  # nothing is ever sent: it returns at end of file
    os._exit(1)


def _init_worker(task: Task, ctx: Context, alive: Connection) -> None:
    global _WORKER
    import torch

    # the parent handles Ctrl-C and a closed terminal (both reach the whole process group) and terminates
    # its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(alive,), daemon=True, name="labelsmooth-watchdog").start()
    torch.set_num_threads(1)
    _WORKER = (task, ctx)


def _work(spec: RunSpec, needs: dict[str, NeededRun]) -> dict[str, Any]:
    assert _WORKER is not None  # set by the pool initializer, never user input
    return execute_run(_WORKER[0], spec, _WORKER[1], needs)


def execute_run(task: Task, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> dict[str, Any]:
    """Run one spec and return the record the store takes (artefacts included, not yet saved)."""
    start = time.perf_counter()
    rec = RunRecord.of(task.execute(spec, ctx, needs))
    metrics = dict(rec.metrics)
    metrics.setdefault("wall_time", time.perf_counter() - start)
    return {
        "run_hash": spec.run_hash, "task": task.name, "spec": dict(spec.axes), "config": dict(spec.config),
        "needs": list(spec.needs), "metrics": metrics, "curves": rec.curves, "arrays": rec.arrays,
        "artefacts": rec.artefacts,
    }  # fmt: skip


def _needed(store: Store, spec: RunSpec, cache: dict[str, NeededRun]) -> dict[str, NeededRun]:
    if not spec.needs:
        return {}
    if any(h not in cache for h in spec.needs):
        for r in store.runs():
            if r.status == "done":
                cache.setdefault(
                    r.run_hash, NeededRun(r.run_hash, r.spec, r.metrics, r.curves, r.arrays, r.artefact_dir)
                )
    return {h: cache[h] for h in spec.needs}


# ------------------------------------------------------------------------------------------- executors


class RunFailed(Exception):
    """A run that raised, as text: ``line`` (``"ValueError: ..."``) and the ``traceback`` (an executor
    whose errors come from elsewhere, e.g. Ray, hands these to the scheduler)."""

    def __init__(self, line: str, traceback: str = "") -> None:
        super().__init__(line)
        self.line = line
        self.traceback = traceback or line


Outcome = tuple[RunSpec, "dict[str, Any] | BaseException"]
"""What an executor hands back for one run: its record, or the exception it raised."""


class Executor:
    """Where runs execute; the scheduler (:func:`_execute_all`) decides what runs when. ``slots``: how
    many runs it takes at a time; :meth:`submit` starts one; :meth:`wait` blocks until at least one
    finishes and returns their outcomes; :meth:`close` ends it (``abort``: drop the runs in flight)."""

    slots: int = 1

    def __init__(self) -> None:
        self.in_flight = 0

    def submit(self, spec: RunSpec, needs: dict[str, NeededRun]) -> None:
        raise NotImplementedError

    def wait(self) -> list[Outcome]:
        raise NotImplementedError

    def close(self, *, abort: bool) -> None:
        """Release the executor (``abort``: the study was interrupted or failed)."""


class SerialExecutor(Executor):
    """Runs in this process, one at a time, on one thread (the caller's thread count is restored)."""

    def __init__(self, task: Task, ctx: Context) -> None:
        import torch

        super().__init__()
        self.task, self.ctx = task, ctx
        self.queue: list[tuple[RunSpec, dict[str, NeededRun]]] = []
        self.threads = torch.get_num_threads()  # runs train on one thread; give the caller its threads back

    def submit(self, spec: RunSpec, needs: dict[str, NeededRun]) -> None:
        self.queue.append((spec, needs))
        self.in_flight += 1

    def wait(self) -> list[Outcome]:
        import torch

        spec, needs = self.queue.pop(0)
        self.in_flight -= 1
        torch.set_num_threads(1)
        try:
            return [(spec, execute_run(self.task, spec, self.ctx, needs))]
        except Exception as exc:  # a failed run; KeyboardInterrupt and StudyInterrupted stop the study
            return [(spec, exc)]

    def close(self, *, abort: bool) -> None:
        import torch

        torch.set_num_threads(self.threads)


WORKER_PRELOAD = ("torch", "torch._dynamo")
"""What the forkserver imports once, so that each worker starts with it: torch, and ``torch._dynamo``,
which torch.optim imports when a process creates its first optimizer (together ~4 s of CPU per process
that every worker would otherwise pay again). Not labelsmooth itself: a worker imports it from the
caller's ``sys.path``, so it runs the caller's copy."""


def worker_context() -> BaseContext:
    """The multiprocessing context of the worker processes: ``forkserver`` where the platform has it (a
    server started once per process, with :data:`WORKER_PRELOAD` imported, forks each worker; a worker
    still imports the caller's ``__main__`` and gets its ``sys.path`` and working directory, as a spawned
    one, but the environment variables the server started with), else ``spawn``. Neither forks the
    caller's threads. The numbers do not depend on it."""
    if "forkserver" not in get_all_start_methods():  # pragma: no cover - Windows
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))  # no effect once this process's server runs
    return ctx


def _start_tracker_ignoring_hangup() -> None:
    """Start multiprocessing's resource tracker with SIGHUP ignored (a disposition it keeps across
    ``exec``), unless it already runs.

    A closed terminal sends SIGHUP to the whole foreground process group. This process handles it (it stops
    the study) and the workers ignore it (:func:`_init_worker`); a resource tracker that died of it before
    this process would be relaunched by it and then print a warning and a ``KeyError`` traceback per
    semaphore it never saw. The tracker still exits when this process does (its pipe closes). The
    forkserver is left alone: it outlives the study and every process it forks later would inherit the
    ignored signal; killed by a hangup, it is started again quietly when needed. SIGHUP is ignored in this
    process for the few milliseconds the start takes, and only the main thread may change a disposition
    (elsewhere nothing changes)."""
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return
    from multiprocessing import resource_tracker

    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, old)


class PoolExecutor(Executor):
    """Runs in ``workers`` processes (:func:`worker_context`) that watch their parent (see the module
    docstring)."""

    def __init__(self, task: Task, ctx: Context, workers: int) -> None:
        super().__init__()
        self.slots = 1 << 30  # the pool queues what its processes cannot take yet
        mp_context = worker_context()
        _start_tracker_ignoring_hangup()
        # the workers' watchdog reads the first end; the second, this process's only, closes when it dies
        self._pipe = mp_context.Pipe(duplex=False)
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=mp_context, initializer=_init_worker,
            initargs=(task, ctx, self._pipe[0]),
        )  # fmt: skip
        self.futures: dict[Future, RunSpec] = {}

    def submit(self, spec: RunSpec, needs: dict[str, NeededRun]) -> None:
        self.futures[self.pool.submit(_work, spec, needs)] = spec
        self.in_flight += 1

    def wait(self) -> list[Outcome]:
        done, _ = wait(self.futures, return_when=FIRST_COMPLETED)
        out: list[Outcome] = []
        for fut in done:
            spec = self.futures.pop(fut)
            self.in_flight -= 1
            exc = fut.exception()
            if isinstance(exc, BrokenProcessPool):  # a worker process died: the pool is gone, stop
                raise exc
            out.append((spec, exc if exc is not None else fut.result()))
        return out

    def _close_pipe(self) -> None:
        for end in self._pipe:
            end.close()

    def close(self, *, abort: bool) -> None:
        if not abort:
            self.pool.shutdown(wait=True)
            self._close_pipe()
            return
        procs = list(getattr(self.pool, "_processes", {}).values())  # no public API lists them
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5)
        self.pool.shutdown(wait=True)
        self._close_pipe()


def failed_record(task: Task, spec: RunSpec, error: BaseException | str) -> dict[str, Any]:
    """The record the store takes for a run that failed (status ``failed``; metrics ``error`` and
    ``traceback``)."""
    if isinstance(error, RunFailed):
        line, text = error.line, error.traceback
    elif isinstance(error, BaseException):
        line = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    else:
        line = text = error
    return {
        "run_hash": spec.run_hash, "task": task.name, "spec": dict(spec.axes), "config": dict(spec.config),
        "needs": list(spec.needs), "metrics": {"error": line, "traceback": text}, "curves": {}, "arrays": {},
        "status": "failed",
    }  # fmt: skip


def _execute_all(
    task: Task, executor: Executor, todo: list[RunSpec], store: Store
) -> Generator[dict[str, Any], None, None]:
    """The scheduler of every backend: yield the record of each run as it finishes (a failed run's record
    has status ``failed``); a run is submitted only when the runs it needs are stored (the caller stores
    each record before asking for the next), and a run whose need failed is recorded as failed unrun."""
    cache: dict[str, NeededRun] = {}
    waiting = list(todo)
    planned = {s.run_hash for s in todo}
    failed: set[str] = set()
    finished = False
    try:
        while waiting or executor.in_flight:
            for s in list(waiting):  # in plan order, so a failure propagates down a chain in one pass
                bad = next((n for n in s.needs if n in failed), None)
                if bad is not None:
                    waiting.remove(s)
                    failed.add(s.run_hash)
                    yield failed_record(task, s, f"not run: it needs run {bad}, which failed")
            done_now = store.done_hashes()
            ready = [s for s in waiting if all(n in done_now or n not in planned for n in s.needs)]
            for s in ready[: max(0, executor.slots - executor.in_flight)]:
                waiting.remove(s)
                executor.submit(s, _needed(store, s, cache))
            if not executor.in_flight:
                if waiting:  # pragma: no cover - order_plan() rules this out
                    raise RuntimeError("runs wait for needs that nothing produces")
                break
            for spec, outcome in executor.wait():
                if isinstance(outcome, BaseException):
                    failed.add(spec.run_hash)
                    yield failed_record(task, spec, outcome)
                else:
                    yield outcome
        finished = True
    finally:
        executor.close(abort=not finished)


class _Signals:
    """SIGTERM and SIGHUP raise :class:`StudyInterrupted` in the main thread, like Ctrl-C (SIGINT). A signal
    this process ignores stays ignored: ``nohup labelsmooth study &`` survives a closed terminal, and a
    background job whose shell ignores SIGINT is not stopped by Ctrl-C."""

    def __init__(self) -> None:
        self.old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return self

        def raise_interrupt(signum: int, frame: Any) -> None:
            raise StudyInterrupted(signum)

        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                self.old[sig] = signal.signal(sig, raise_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


# ------------------------------------------------------------------------------------------- run


def _stderr(message: str) -> None:
    print(f"labelsmooth: {message}", file=sys.stderr, flush=True)


def run(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    model_fn: Any = None,
    data: DataArg = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
    report: bool = True,
    extend: bool = False,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Results:
    """Run a study (of the config's ``task``, default classification) and return its results table (one
    record per run of the grid).

    Parameters
    ----------
    config : StudyConfig, mapping, TOML path, or None
        The task, the grid and the training settings (:class:`StudyConfig`; None = the default study).
    model_fn : callable ``(input_shape, num_classes) -> nn.Module``, optional
        Your model (classification). Following the protocol of :mod:`labelsmooth.study.models`
        (``.features(x)`` and ``.head``) enables the penultimate-layer projection. With ``workers > 1`` it
        must be picklable (a module-level function). Its qualified name is part of each run's hash.
    data : (X, y), Dataset, or {name: (X, y)}, optional
        Your data instead of the config's datasets (classification). X is (N, D) or (N, C, H, W).
    out : folder, optional
        Where the database and report go (default ``config.out``). Re-running resumes.
    workers : int, optional
        Worker processes (default ``config.workers``; 0 = auto), capped at the cores available (with a
        message). Results do not depend on it. The backend (``config.backend``: ``local`` or ``ray``,
        with the ``[ray]`` section) does not change the numbers either.
    progress : bool
        Show progress on stderr: a bar on a terminal, else one line per finished run.
    report : bool
        Write ``report.html`` and ``report.md`` when done.
    extend : bool
        Allow a folder that holds another grid of the same task: the study becomes the union of both
        grids (stored runs are kept). Without it such a folder is refused (:class:`StudyMismatchError`).
    on_run : callable, optional
        Called with each run's record after it is stored.
    log : callable, optional
        Receives the study's messages (capped workers, extended grid); default: printed on stderr.

    Returns
    -------
    Results
        A list of dicts; ``results.to_pandas()`` when pandas is installed.

    Raises
    ------
    StudyLockedError
        Another study is running in the folder.
    StudyMismatchError
        The folder holds another study and ``extend`` is False.
    StudyInterrupted
        SIGINT, SIGTERM or SIGHUP: finished runs are stored, runs in flight dropped.
    ImportError, ConnectionError
        ``backend = "ray"`` without Ray installed, or with a ``ray.address`` where no cluster answers
        (before anything is written).

    A run that raises does not stop the study: it is stored as failed with its error (a message is
    logged; ``results.failed`` lists them), the runs that need it are stored as failed unrun, and the
    other runs go on. Rerunning the study retries the failed runs.

    Examples
    --------
    >>> import labelsmooth.study as st  # doctest: +SKIP
    >>> res = st.run({"seeds": 2, "train": {"epochs": 50}}, out="runs/quick")  # doctest: +SKIP
    >>> res.to_pandas().groupby(["noise_rate", "label"])["accuracy"].mean()  # doctest: +SKIP
    """
    say = log or _stderr
    ctx = prepare_context(config, model_fn=model_fn, data=data)
    cfg = ctx.config
    changes: dict[str, Any] = {}
    if out is not None:
        changes["out"] = str(out)
    if workers is not None:
        changes["workers"] = workers
    if changes:
        cfg = cfg.replace(**changes)
        ctx.config = cfg
    task = ctx.task
    assert task is not None  # set by prepare_context()
    specs = ctx.plan()
    folder = Path(cfg.out)
    # the backend first (ray: connected or started), so that an unreachable cluster writes nothing
    with _backend(cfg, say) as executor_for, FolderLock(_writable_folder(folder)), _Signals():
        with Store.open(folder, option="--out") as store:
            grid = _check_study(store, task.name, [s.run_hash for s in specs], folder, extend=extend, say=say)
            (folder / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
            store.save_config(cfg.to_dict())
            with store.conn:
                store.set_meta("task", task.name)
                store.set_meta("grid", ",".join(grid))
                configs = json.loads(store.get_meta("configs") or "[]")
                if not configs or configs[-1] != cfg.to_dict():
                    configs.append(cfg.to_dict())
                store.set_meta("configs", json.dumps(configs, sort_keys=True))
                if task.name == "classification":
                    store.set_meta("datasets", ",".join(ctx.datasets))
            done = store.done_hashes()
            todo = order_plan(_unique(s for s in specs if s.run_hash not in done), done)
            bar = _progress(len(todo), enabled=progress)
            stored = 0
            records = _execute_all(task, executor_for(task, ctx, len(todo)), todo, store)
            try:
                for record in records:
                    save_artefacts(folder, record["run_hash"], record.pop("artefacts", None) or {})
                    store.add_run(record)
                    stored += 1
                    bar.update(1)
                    if record.get("status") == "failed":
                        say(f"run {record['run_hash']} failed: {record['metrics']['error']}")
                    elif on_run is not None:
                        on_run(record)
            except StudyInterrupted as exc:
                exc.stored = stored
                raise
            except KeyboardInterrupt:
                raise StudyInterrupted(signal.SIGINT, stored) from None
            finally:
                records.close()  # stops the workers now when interrupted (the generator's finally)
                bar.close()
        if report:
            from labelsmooth.study.report import write_report

            write_report(folder)
    return load_results(folder)


def _writable_folder(folder: Path) -> Path:
    """Create the output folder (and return it), or say in one line why it cannot be used."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(expected("--out", "to be a folder", f"{folder} (a file)"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"Cannot create the output folder {folder} ({exc.strerror}); choose another --out."
        ) from None
    if not os.access(folder, os.W_OK):
        raise PermissionError(
            f"Cannot write into {folder}: the folder is read-only. Choose another --out (`labelsmooth report "
            f"{folder} -o OTHER_DIR` redraws a finished study's report elsewhere)."
        )
    return folder


@contextmanager
def _backend(
    cfg: StudyConfig, say: Callable[[str], None]
) -> Iterator[Callable[[Task, Context, int], Executor]]:
    """The study's backend, open for the study: a function ``(task, ctx, n_runs) -> Executor``."""
    if cfg.backend == "ray":
        from labelsmooth.study.ray_backend import RaySession

        with RaySession(cfg.ray) as session:
            yield session.executor
        return

    def local(task: Task, ctx: Context, n_runs: int) -> Executor:
        n_workers = cfg.resolved_workers(n_runs)
        if cfg.workers > available_cores() and n_runs > 1:
            say(f"--workers {cfg.workers} is more than the {available_cores()} cores available; "
                f"using {n_workers} worker processes.")  # fmt: skip
        return SerialExecutor(task, ctx) if n_workers <= 1 else PoolExecutor(task, ctx, n_workers)

    yield local


def describe_backend(cfg: StudyConfig, n_runs: int) -> str:
    """One line for ``--dry-run``: the backend and the resources of each run."""
    if cfg.backend == "ray":
        from labelsmooth.study.ray_backend import describe

        return describe(cfg.ray)
    n = cfg.resolved_workers(n_runs)
    where = "this process" if n <= 1 else f"{n} worker processes"
    return f"backend local: {where}; per run 1 CPU (one thread)"


def _unique(specs: Any) -> list[RunSpec]:
    out, seen = [], set()
    for s in specs:
        if s.run_hash not in seen:
            seen.add(s.run_hash)
            out.append(s)
    return out


def _check_study(
    store: Store, task: str, hashes: list[str], folder: Path, *, extend: bool, say: Callable[[str], None]
) -> list[str]:
    """The grid to record: this plan's, or (``extend``) the union with the folder's. A folder holding
    another study with stored runs is refused."""
    new = list(dict.fromkeys(hashes))
    old = store.grid()
    stored = store.done_hashes()
    if old is None:
        old = sorted(stored)
    if not stored or set(old) == set(new):
        return new
    held = store.task()
    if held != task:
        raise StudyMismatchError(
            f"{folder} holds a study of task {held!r} ({len(stored)} runs); "
            f"use another --out for task {task!r}."
        )
    if not extend:
        raise StudyMismatchError(
            f"{folder} holds another study ({len(stored)} runs stored, a different grid); use another --out, "
            "or --extend to add this grid's runs to it."
        )
    union = old + [h for h in new if h not in set(old)]
    kept = len(stored & set(union))
    say(f"extending the study in {folder}: {kept} runs kept, {len(set(new) - stored)} new.")
    return union


class _Lines:
    """Progress for a stderr that is not a terminal (CI, nohup, a pipe): one line per finished run."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.start
        print(
            f"labelsmooth: {self.done}/{self.total} runs done ({elapsed:.1f} s)", file=sys.stderr, flush=True
        )

    def close(self) -> None: ...


def _progress(total: int, *, enabled: bool):
    """A tqdm bar on stderr for a terminal, a line per finished run otherwise; a no-op object when not
    ``enabled``."""
    if enabled and total and not sys.stderr.isatty():
        return _Lines(total)
    if enabled and total:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)
        except ImportError:  # pragma: no cover - tqdm is in the study extra
            return _Lines(total)

    class _Null:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Null()


def study_task(store: Store) -> Task:
    """The task of a stored study (a task not registered in this process raises ValueError)."""
    return get_task(store.task())


def load_results(folder: str | os.PathLike[str], *, all_runs: bool = False) -> Results:
    """The results table of a stored study: the runs of its grid (``all_runs``: every stored run, those
    outside the grid last). Opens the database read-only. ``results.hidden`` counts the stored runs left
    out; ``results.failed`` lists the runs stored as failed (their axes, ``run_hash`` and ``error``)."""
    with Store.open(Path(folder), create=False, readonly=True) as store:
        task = study_task(store)
        runs = grid_runs(store)
        extra = outside_grid(store)
        if all_runs:
            runs = runs + extra
        res = Results([task.record(r) for r in runs], str(folder))
        res.hidden = 0 if all_runs else len(extra)
        res.failed = [{**r.spec, "run_hash": r.run_hash, "error": r.error} for r in store.failed_runs()]
        return res


__all__ = [
    "DB_NAME", "FolderLock", "Prepared", "StudyInterrupted", "StudyLockedError", "StudyMismatchError",
    "execute_run", "load_results", "plan", "prepare", "prepare_context", "resolve_config", "run",
]  # fmt: skip
