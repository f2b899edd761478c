"""Tiny study grids shared by the study tests (seconds, not minutes)."""

from __future__ import annotations

import multiprocessing.process
import os
import signal
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny(**sections) -> dict:
    """A 2-noise x 3-method x 2-seed grid on digits, 12 epochs of a narrow MLP: ~0.15 s per run."""
    cfg = {
        "seeds": 2,
        "workers": 1,
        "noise": {"rates": [0.0, 0.3]},
        "methods": {"label_smoothing": [0.1], "prior": [], "negative": [], "confidence_penalty": [],
                    "focal": [2.0]},
        "model": {"width": 32, "depth": 1},
        "train": {"epochs": 12, "eval_every": 4},
    }  # fmt: skip
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m labelsmooth`` in a subprocess: this checkout's src on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


PYTHON = sys.executable

VOLATILE = {"wall_time", "run_hash", "library_version"}
"""Result fields that differ between two runs of the same spec."""


def stored_numbers(results, axes: tuple[str, ...]) -> dict:
    """Each result keyed by its values of ``axes``, without the :data:`VOLATILE` fields: equal for two
    studies that computed the same numbers."""
    return {tuple(r.get(a) for a in axes): {k: v for k, v in r.items() if k not in VOLATILE} for r in results}


def assert_numbers_agree_across_cpus(new: dict, old: dict, rel: float) -> None:
    """``new`` and ``old`` (two :func:`stored_numbers` maps) hold the same runs, equal fields but for floats,
    and floats within ``rel`` of each other.

    For numbers stored on another machine. float32 training is bit-for-bit repeatable on one machine (the
    resume and Ray tests check that exactly), but not across CPUs: MKL and ATen pick other kernels for
    another instruction set (AVX2, AVX-512) or vendor, which round differently, and the differences grow
    over the epochs. Measured between the machine that wrote the fixtures and an AMD EPYC with AVX-512:
    at most 9e-6 relative on the tiny grid (12 epochs); up to 5% on the default study's runs (300
    epochs), see docs/study.md, 'The same study on another CPU'.
    """
    assert new.keys() == old.keys()
    for axes, record in new.items():
        assert record.keys() == old[axes].keys(), axes
        for key, value in record.items():
            want = old[axes][key]
            if isinstance(value, float) and isinstance(want, float):
                assert value == pytest.approx(want, rel=rel, abs=1e-6), (axes, key)
            else:
                assert value == want, (axes, key)


def assert_figures_are_not_clipped(folder: Path) -> int:
    """Every PNG under ``folder/figures`` has a uniform outermost frame of pixels, the colour of its corner
    (the figure's background): nothing was drawn across the canvas's edge, so no label, legend or title
    was cut off there. ``to_png`` keeps the canvas only when the figure's tight box fits in it, so this
    catches what that box does not hold (an artist left out of the layout) and a change to ``to_png``
    that drops its fallback. Returns the number of figures."""
    import numpy as np
    from PIL import Image

    pngs = sorted((folder / "figures").glob("*.png"))
    assert pngs, folder
    for png in pngs:
        a = np.asarray(Image.open(png).convert("RGB"))
        frame = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        assert (frame == a[0, 0]).all(), f"{png.name}: drawn up to the edge of the canvas (clipped)"
    return len(pngs)


def task_record(dataset: str, method: str, param, seed: int, **metrics) -> dict:
    """A hand-made record of a per-dataset task (gan, sequence) in the nested form its verdict reads."""
    return {"dataset": dataset, "method": method, "param": param, "seed": seed, "metrics": metrics}


def _exec(code: str) -> None:
    exec(compile(code, "<start_python>", "exec"), {"__name__": "__main__"})


def start_python(code: str, env: dict[str, str] | None = None) -> multiprocessing.process.BaseProcess:
    """Run ``code`` as ``__main__`` in a new process, started: a process of its own (kill it with
    ``os.kill(p.pid, signal.SIGKILL)``; ``p.exitcode`` is then -9), forked by the forkserver of the study
    engine's workers (:func:`labelsmooth.study.runner.worker_context`), so with torch already imported: a
    fraction of a second where ``python -c`` spends seconds importing torch. Tests of the command line
    itself (its exit code, its output) run ``python -m labelsmooth`` instead.

    The process gets the environment the forkserver started with, or ``env`` if given: pass
    ``dict(os.environ)`` when the code needs what was set since (``ray.init`` sets ``RAY_AUTH_MODE``).
    ``env`` is applied after torch was imported (by the forkserver), so variables that torch reads when it
    is imported (``OMP_NUM_THREADS``, ``CUDA_VISIBLE_DEVICES``, ...) have no effect there."""
    from labelsmooth.study.runner import worker_context

    if env is not None:
        code = f"import os\nos.environ.clear()\nos.environ.update({dict(env)!r})\n" + code
    proc = worker_context().Process(target=_exec, args=(code,))
    proc.start()
    return proc


def run_python(code: str, folder: Path, timeout: float = 300.0) -> tuple[int | None, str, str]:
    """Run ``code`` in a new process (:func:`start_python`) with its standard output and error written to
    files in ``folder``; wait for it (SIGKILL after ``timeout`` seconds) and return its exit code, output and
    error. For checks that need a fresh ``sys.modules`` (what importing labelsmooth imports) without paying
    for a fresh interpreter: the process starts with only torch (and ``torch._dynamo``) imported."""
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    redirect = (
        "import os\n"
        f"for _fd, _path in ((1, {str(out)!r}), (2, {str(err)!r})):\n"
        "    os.dup2(os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), _fd)\n"
    )
    proc = start_python(redirect + code)
    proc.join(timeout)
    if proc.exitcode is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended meanwhile
            pass
        proc.join(30)
    return proc.exitcode, _text(out), _text(err)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def sigkill_once_a_run_is_stored(
    code: str, out: Path, timeout: float = 120.0, at_least: int = 1, env: dict[str, str] | None = None
) -> set[str]:
    """Run ``code`` (a study writing to ``out``) in a new process (:func:`start_python`, with ``env``),
    SIGKILL it as soon as its store holds ``at_least`` finished runs (or after ``timeout`` seconds), and
    return the hashes of the runs it stored. Fails if the process ended first (it finished, or failed)."""
    from labelsmooth.study.store import DB_NAME, Store

    proc = start_python(code, env)
    stored: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(stored) < at_least:
            assert proc.exitcode is None, f"the study process ended (exit {proc.exitcode}) before it was killed"
            time.sleep(0.05)
            if (out / DB_NAME).is_file():
                try:
                    with Store.open(out, create=False, readonly=True) as store:
                        stored = store.done_hashes()
                except Exception:  # the writer is creating the schema
                    continue
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL, proc.exitcode
    with Store.open(out, create=False, readonly=True) as store:
        return store.done_hashes()


def assert_resume_trains_only_the_missing_runs(cfg: dict, out: Path, stored: set[str], total: int, **run_kw):
    """Rerun the study ``cfg`` in ``out``, where a killed process left the runs ``stored``: the grid of
    ``total`` runs is complete and only the missing runs were trained. Returns the results."""
    from labelsmooth.study import run

    trained: list = []
    res = run(cfg, out=out, on_run=trained.append, report=False, **run_kw)
    assert len(res) == total and len(trained) == total - len(stored)
    assert not {r["run_hash"] for r in trained} & stored
    return res
