"""Run a study: validate and load everything, then train the runs not yet stored, in parallel if asked.

Order of work, so that errors leave nothing half-written:

1. resolve and validate the config; load every dataset (missing files and bad columns fail here);
2. only then create the output folder, write ``config.toml`` and open the database;
3. skip runs already stored (resume); train the others serially or in ``workers`` spawned processes,
   which return records to the parent, the only writer, which commits each run in its own transaction;
4. draw the report from the database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from labelsmooth._validation import expected
from labelsmooth.study import data as data_mod
from labelsmooth.study.config import StudyConfig, apply_overrides, load_config, to_toml
from labelsmooth.study.grid import RunSpec, expand
from labelsmooth.study.models import ModelFn
from labelsmooth.study.results import Results, flatten
from labelsmooth.study.store import Store, grid_runs
from labelsmooth.study.train import RunContext, execute

DataArg = Any  # None | Dataset | (X, y) | {name: (X, y) or Dataset}


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


def load_datasets(cfg: StudyConfig, data: DataArg = None) -> dict[str, data_mod.Dataset]:
    """The datasets of the study: the user's ``data`` when given, else those the config names."""
    if data is None:
        return {name: data_mod.load(name, cfg.data) for name in cfg.data.datasets}
    if isinstance(data, data_mod.Dataset):
        return {data.name: data}
    if isinstance(data, tuple) and len(data) == 2:
        return {"user": data_mod.from_arrays(*data, name="user")}
    if isinstance(data, Mapping):
        out = {}
        for name, value in data.items():
            if isinstance(value, data_mod.Dataset):
                out[str(name)] = value
            elif isinstance(value, tuple) and len(value) == 2:
                out[str(name)] = data_mod.from_arrays(*value, name=str(name))
            else:
                raise TypeError(
                    expected(f"data[{name!r}]", "to be an (X, y) pair or a Dataset", type(value).__name__)
                )
        if not out:
            raise ValueError(expected("data", "to hold at least one dataset", {}))
        return out
    raise TypeError(
        expected("data", "to be an (X, y) pair, a Dataset or a mapping of them", type(data).__name__)
    )


def prepare(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    model_fn: ModelFn | None = None,
    data: DataArg = None,
) -> RunContext:
    """Everything checked and loaded, nothing written: the context every run shares."""
    cfg = resolve_config(config)
    if model_fn is not None and not callable(model_fn):
        raise TypeError(
            expected("model_fn", "to be callable (input_shape, num_classes) -> nn.Module", model_fn)
        )
    datasets = load_datasets(cfg, data)
    if cfg.noise.kind == "matrix":
        k = len(cfg.noise.matrix)
        for name, ds in datasets.items():
            if ds.num_classes != k:
                raise ValueError(
                    expected("noise.matrix", f"to be {ds.num_classes} x {ds.num_classes} for {name}", k)
                )
    if cfg.model.kind == "cnn" and model_fn is None:
        for name, ds in datasets.items():
            if not ds.is_image:
                raise ValueError(
                    expected("model.kind", f"not 'cnn' for the non-image dataset {name!r}", "cnn")
                )
    for ds in datasets.values():  # a class too small to split fails now, not in a worker
        data_mod.split(ds.y, cfg.data.val_fraction, cfg.data.test_fraction, seed=0)
    return RunContext(cfg, datasets, model_fn)


def plan(ctx: RunContext) -> list[tuple[RunSpec, str]]:
    """The grid of this context, with each run's hash."""
    return [(s, ctx.run_hash(s)) for s in expand(ctx.config, ctx.datasets)]


# ------------------------------------------------------------------ worker processes
_WORKER_CTX: RunContext | None = None


def _init_worker(ctx: RunContext) -> None:
    global _WORKER_CTX
    import torch

    torch.set_num_threads(1)
    _WORKER_CTX = ctx


def _work(spec: RunSpec) -> dict[str, Any]:
    assert _WORKER_CTX is not None  # set by the pool initializer, never user input
    return execute(spec, _WORKER_CTX)


def _execute_all(ctx: RunContext, todo: list[RunSpec], workers: int) -> Iterator[dict[str, Any]]:
    """Yield the record of each run as it finishes (serially, or from spawned worker processes)."""
    if workers <= 1:
        import torch

        threads = torch.get_num_threads()  # execute() trains on one thread; give the caller its threads back
        try:
            for spec in todo:
                yield execute(spec, ctx)
        finally:
            torch.set_num_threads(threads)
        return
    mp = get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=mp, initializer=_init_worker, initargs=(ctx,)
    ) as pool:
        pending = {pool.submit(_work, spec) for spec in todo}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def run(
    config: StudyConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    model_fn: ModelFn | None = None,
    data: DataArg = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
    report: bool = True,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> Results:
    """Run a label-smoothing study and return its results table (one record per run of the grid).

    Parameters
    ----------
    config : StudyConfig, mapping, TOML path, or None
        The grid and training settings (:class:`StudyConfig`; None = the default study).
    model_fn : callable ``(input_shape, num_classes) -> nn.Module``, optional
        Your model. Following the protocol of :mod:`labelsmooth.study.models` (``.features(x)`` and
        ``.head``) enables the penultimate-layer projection. With ``workers > 1`` it must be picklable (a
        module-level function). Its qualified name is part of each run's hash.
    data : (X, y), Dataset, or {name: (X, y)}, optional
        Your data instead of the config's datasets. X is (N, D) or (N, C, H, W); y any labels.
    out : folder, optional
        Where the database and report go (default ``config.out``). Re-running resumes.
    workers : int, optional
        Worker processes (default ``config.workers``; 0 = auto). Results do not depend on it.
    progress : bool
        Show a progress bar on stderr (only when stderr is a terminal).
    report : bool
        Write ``report.html`` and ``report.md`` when done.
    on_run : callable, optional
        Called with each run's record after it is stored.

    Returns
    -------
    Results
        A list of dicts; ``results.to_pandas()`` when pandas is installed.

    Examples
    --------
    >>> import labelsmooth.study as st  # doctest: +SKIP
    >>> res = st.run({"seeds": 2, "train": {"epochs": 50}}, out="runs/quick")  # doctest: +SKIP
    >>> res.to_pandas().groupby(["noise_rate", "label"])["accuracy"].mean()  # doctest: +SKIP
    """
    ctx = prepare(config, model_fn=model_fn, data=data)
    cfg = ctx.config
    if out is not None:
        cfg = cfg.replace(out=str(out))
        ctx.config = cfg
    if workers is not None:
        cfg = cfg.replace(workers=workers)
        ctx.config = cfg
    grid = plan(ctx)
    folder = Path(cfg.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
    with Store.open(folder) as store:
        store.save_config(cfg.to_dict())
        with store.conn:
            store.set_meta("grid", ",".join(h for _, h in grid))
            store.set_meta("datasets", ",".join(ctx.datasets))
        done = store.done_hashes()
        todo, seen = [], set()
        for spec, h in grid:
            if h not in done and h not in seen:
                todo.append(spec)
                seen.add(h)
        n_workers = cfg.resolved_workers(len(todo))
        bar = _progress(len(todo), enabled=progress)
        try:
            for record in _execute_all(ctx, todo, n_workers):
                store.add_run(record)
                bar.update(1)
                if on_run is not None:
                    on_run(record)
        finally:
            bar.close()
    if report:
        from labelsmooth.study.report import write_report

        write_report(folder)
    return load_results(folder)


def _progress(total: int, *, enabled: bool):
    """A tqdm bar on stderr, only for a terminal; a no-op object otherwise."""
    if enabled and total and sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)
        except ImportError:  # pragma: no cover - tqdm is in the study extra
            pass

    class _Null:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Null()


def load_results(folder: str | os.PathLike[str]) -> Results:
    """The results table of a stored study (the runs of its latest grid)."""
    with Store.open(Path(folder), create=False) as store:
        return Results([flatten(r) for r in grid_runs(store)], str(folder))
