"""The ``labelsmooth`` command: ``study`` (run a grid), ``report`` (redraw), ``export`` (CSV / JSON).

Every configuration error is reported as one line naming the key, before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from labelsmooth._validation import expected

_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError, RuntimeError)


def _user_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    return (*_USER_ERRORS, sqlite3.Error)


def _float_list(name: str, text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.UsageError(expected(name, "to be a comma-separated list of numbers", text)) from None
    if not values:
        raise click.UsageError(expected(name, "to list at least one number, e.g. 0.1,0.2", text))
    return values


def _alphas(text: str) -> list[float]:
    values = _float_list("--alphas", text)
    negative = [a for a in values if a < 0]
    if negative:
        raise click.UsageError(
            expected("--alphas", "in (0, 1); negative smoothing is the method methods.negative "
                     f"(--set methods.negative=[{negative[0]:g}])", negative[0])
        )  # fmt: skip
    return values


def _seeds(text: str) -> int | list[int]:
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        return int(text)
    except ValueError:
        raise click.UsageError(expected("--seeds", "to be a count (5) or a list (0,1,2)", text)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelsmooth", message="labelsmooth %(version)s")
def main() -> None:
    """Label smoothing for PyTorch: does it help your model, with which a, and at what cost?"""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--task", help="The task (default classification; `labelsmooth tasks` lists them).")
@click.option("--out", help="Output folder; re-running resumes. [default: labelsmooth-study]")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="digits, synthetic, npz, csv, images, cifar10; repeat for several. [default: digits]",
)
@click.option(
    "--data-path", help="File (npz, csv) or folder (images, cifar10) of a file dataset; needs --dataset."
)
@click.option("--label-column", help="Label column of a CSV file. [default: label]")
@click.option("--noise", help="Label-noise rates, comma-separated. [default: 0,0.3]")
@click.option(
    "--noise-kind",
    type=click.Choice(["symmetric", "pairflip", "matrix"]),
    help="Noise model. [default: symmetric]",
)
@click.option(
    "--alphas",
    help="Uniform smoothing factors a in (0, 1), comma-separated: `alphas` abbreviates the smoothing "
    "factors, `label_smoothing` in the Python API. [default: 0.05,0.1,0.2,0.3]",
)
@click.option("--seeds", help="Number of seeds or a list, e.g. 0,1,2. [default: 5]")
@click.option("--epochs", type=int, help="Training epochs per run. [default: 300]")
@click.option("--model", type=click.Choice(["logreg", "mlp", "cnn"]), help="Model family. [default: mlp]")
@click.option("--width", type=int, help="Hidden width. [default: 128]")
@click.option("--depth", type=int, help="Hidden layers (mlp). [default: 2]")
@click.option("--lr", type=float, help="Adam learning rate. [default: 0.002]")
@click.option("--batch-size", type=int, help="Minibatch size, 0 = full batch. [default: 0]")
@click.option(
    "--workers",
    type=int,
    help="Worker processes, 0 = auto (the cores, at most 8). Results do not depend on it. [default: 0]",
)
@click.option(
    "--backend", type=click.Choice(["local", "ray"]), help="Where runs execute. [default: local]"
)
@click.option("--ray-address", help='Ray cluster: "auto" or HOST:PORT. [default: start a local instance]')
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any config key, e.g. train.lr=0.001; repeat for several.",
)
@click.option("--download", is_flag=True, help="Download CIFAR-10 if it is not on disk (nothing else).")
@click.option("--dry-run", is_flag=True, help="List the grid and exit; nothing is trained or written.")
@click.option("--extend", is_flag=True, help="Add this grid's runs to a folder that holds another grid.")
@click.option("--no-report", is_flag=True, help="Store the runs but do not draw the report.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary table.")
def study(config_path, task, out, datasets, data_path, label_column, noise, noise_kind, alphas, seeds, epochs,
          model, width, depth, lr, batch_size, workers, backend, ray_address, sets, download, dry_run, extend,
          no_report, quiet) -> None:  # fmt: skip
    """Train a grid of models with and without label smoothing, store every run, write a report.

    With no options: the default study on scikit-learn's digits (90 runs; under 2 minutes on 2 idle cores).
    """
    from labelsmooth.study.config import load_config, parse_value

    overrides: dict[str, Any] = {}
    flag_map = {
        "out": out, "data.path": data_path, "data.label_column": label_column, "noise.kind": noise_kind,
        "train.epochs": epochs, "model.kind": model, "model.width": width, "model.depth": depth,
        "train.lr": lr, "train.batch_size": batch_size, "workers": workers, "task": task,
        "backend": backend, "ray.address": ray_address,
    }  # fmt: skip
    for sv in sets:  # --set first, so that explicit flags win over it
        if "=" not in sv:
            raise click.UsageError(expected("--set", "to look like KEY=VALUE", sv))
        key, value = sv.split("=", 1)
        overrides[key.strip()] = parse_value(value.strip())
    overrides.update({k: v for k, v in flag_map.items() if v is not None})
    if datasets:
        overrides["data.datasets"] = list(datasets)
    if noise is not None:
        overrides["noise.rates"] = _float_list("--noise", noise)
    if alphas is not None:
        overrides["methods.label_smoothing"] = _alphas(alphas)
    if seeds is not None:
        overrides["seeds"] = _seeds(seeds)
    if download:
        overrides["data.download"] = True
    try:
        cfg = load_config(config_path, overrides)
        if data_path is not None and cfg.task == "classification":
            _check_data_path(data_path, cfg.data.datasets)
        if dry_run:
            _dry_run(cfg)
            return
        _run_study(cfg, quiet=quiet, report=not no_report, extend=extend)
    except _user_errors() as exc:
        raise click.ClickException(one_line(exc)) from None
    except KeyboardInterrupt:  # Ctrl-C before any run started (loading data, planning)
        click.echo("\nInterrupted before any run started; nothing was trained.", err=True)
        sys.exit(130)


FILE_DATASETS = ("npz", "csv", "images", "cifar10")


def _check_data_path(path: str, datasets: tuple[str, ...]) -> None:
    """``--data-path`` is read only by the file datasets: without one of them it would be ignored."""
    if any(d in FILE_DATASETS for d in datasets):
        return
    suffix = Path(path).suffix.lower().lstrip(".")
    guess = suffix if suffix in ("npz", "csv") else "images" if Path(path).is_dir() else "csv"
    raise click.UsageError(
        f"--data-path {path} is read only by a file dataset ({', '.join(FILE_DATASETS)}), and the study's "
        f"datasets are {', '.join(datasets)}: did you mean `--dataset {guess}`?"
    )


def one_line(exc: BaseException) -> str:
    """A user error as one line: the message, or for a file-system / SQLite error the path and what to do."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return ("The study database is locked by another process (waited 30 s): wait for it to finish, "
                f"or use another folder ({exc}).")  # fmt: skip
    if isinstance(exc, sqlite3.Error):
        return (
            f"The study database could not be read or written: {exc}. Use another folder, or check the file."
        )
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}."
    return str(exc) or type(exc).__name__


def _dry_run(cfg) -> None:
    from labelsmooth.study.runner import describe_backend, plan, prepare_context
    from labelsmooth.study.store import DB_NAME, Store

    ctx = prepare_context(cfg)
    grid = plan(ctx)
    done: set[str] = set()
    other = ""
    if (Path(cfg.out) / DB_NAME).is_file():
        with Store.open(cfg.out, create=False, readonly=True) as store:
            done = store.done_hashes()
            held = set(store.grid() or done)
        if done and held != {s.run_hash for s in grid}:
            other = (f"Note: {cfg.out} holds another study ({len(done)} runs stored); `study` refuses it "
                     "without --extend.")  # fmt: skip
    todo = len({s.run_hash for s in grid} - done)
    each = f" ({cfg.train.epochs} epochs each)" if cfg.task == "classification" else f" (task {cfg.task})"
    click.echo(f"{len(grid)} runs{each}, {todo} to train, in {cfg.out}; {describe_backend(cfg, todo)}:")
    assert ctx.task is not None  # set by prepare_context()
    for i, spec in enumerate(grid, 1):
        h = spec.run_hash
        status = "stored" if h in done else "todo"
        click.echo(f"{i:4d}  {ctx.task.describe(spec)} {h}  {status}")
    if other:
        click.echo(other)


def _run_study(cfg, *, quiet: bool, report: bool, extend: bool) -> None:
    import signal

    from labelsmooth.study.runner import StudyInterrupted, run
    from labelsmooth.study.store import DB_NAME
    from labelsmooth.study.tasks import get_task

    start = time.perf_counter()
    trained: list[dict[str, Any]] = []
    try:
        results = run(cfg, progress=not quiet, report=report, extend=extend, on_run=trained.append,
                      log=lambda msg: click.echo(f"labelsmooth: {msg}", err=True))  # fmt: skip
    except StudyInterrupted as exc:
        name = signal.Signals(exc.signum).name
        click.echo(
            f"\nInterrupted ({name}): {exc.stored} runs stored in this session, runs in flight dropped. "
            "Rerun the same command to resume (stored runs are skipped). "
            f"Database: {Path(cfg.out) / DB_NAME}",
            err=True,
        )
        sys.exit(exc.exit_code)
    elapsed = time.perf_counter() - start
    if quiet:
        click.echo(str(Path(cfg.out) / ("report.html" if report else DB_NAME)))
        _failed_exit(results)
        return
    task = get_task(cfg.task)
    click.echo(summary_table(results, task))
    click.echo("")
    for v in task.verdict(list(results)):
        click.echo(f"* {v.title}: {v.sentences[-1] if v.sentences else v.outcome}")
    click.echo(f"\n{done_line(len(results), len(trained), elapsed)} Database: {Path(cfg.out) / DB_NAME}")
    if report:
        click.echo(f"Report: {Path(cfg.out) / 'report.html'}")
    _failed_exit(results)


def _failed_exit(results) -> None:
    """After a study whose runs failed: name them on stderr and exit with status 1."""
    if not results.failed:
        return
    click.echo(f"labelsmooth: {len(results.failed)} runs failed (stored with their error; rerunning the "
               "same command retries them):", err=True)  # fmt: skip
    for f in results.failed:
        click.echo(f"  {f['run_hash']}  {f['error']}", err=True)
    sys.exit(1)


def done_line(total: int, trained: int, seconds: float) -> str:
    """The closing line: how many runs this session trained and how many were already stored.

    >>> done_line(90, 12, 3.46)
    '90 runs: 12 trained in 3.5 s, 78 already stored.'
    >>> done_line(90, 90, 75.0)
    '90 runs: 90 trained in 75.0 s.'
    """
    stored = total - trained
    return f"{total} runs: {trained} trained in {seconds:.1f} s" + (
        f", {stored} already stored." if stored else "."
    )


def summary_table(records: list[dict], task=None) -> str:
    """A fixed-width terminal table: mean ± 95% t-interval per setting and method, of the metrics of the
    task's table marked ``cli``."""
    from labelsmooth.study.report import summary_header, summary_rows

    header = summary_header(task, where="cli", records=records)
    rows = [[c.replace(" label noise", "") for c in row] for row in summary_rows(records, task, where="cli")]
    seeds = header.index("seeds")  # the terminal table leaves the seed count out
    header = header[:seeds] + header[seeds + 1 :]
    rows = [r[:seeds] + r[seeds + 1 :] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


@main.command()
def tasks() -> None:
    """List the study's tasks: what each answers, and its default runtime."""
    from labelsmooth.study.tasks import TASKS

    width = max(len(name) for name in TASKS)
    for name, task in TASKS.items():
        click.echo(f"{name:{width}s}  {task.summary}" + (f" [{task.runtime}]" if task.runtime else ""))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Folder for the report (default RUN_DIR; e.g. for a read-only study).")  # fmt: skip
def report(run_dir: str, output: str | None) -> None:
    """Redraw report.html and report.md of RUN_DIR from its database (which it only reads)."""
    from labelsmooth.study.report import write_report

    try:
        path = write_report(run_dir, output=output)
    except _user_errors() as exc:
        raise click.ClickException(one_line(exc)) from None
    click.echo(str(path))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
@click.option("--all", "all_runs", is_flag=True, help="Also the stored runs outside the study's grid.")
def export(run_dir: str, fmt: str, output: str | None, all_runs: bool) -> None:
    """Write the table of all runs of RUN_DIR (one row per run) as CSV or JSON."""
    from labelsmooth.study.runner import load_results

    try:
        results = load_results(run_dir, all_runs=all_runs)
    except _user_errors() as exc:
        raise click.ClickException(one_line(exc)) from None
    if results.hidden:
        click.echo(f"labelsmooth: {results.hidden} stored runs are outside this study's grid (an earlier "
                   "config) and not exported; --all exports them too.", err=True)  # fmt: skip
    if fmt == "json":
        text = json.dumps(list(results), indent=1, sort_keys=False) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=results.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(results)
        text = buf.getvalue()
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(
                f"Cannot write {output} ({exc.strerror}): create its folder first, or choose another -o."
            ) from None
    else:
        sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover
    main()
