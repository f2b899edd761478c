"""``labelsmooth.study``: does label smoothing help *my* model, with which a, and at what cost?

A study trains a grid (datasets x label noise x methods x seeds), measures every run with
:mod:`labelsmooth.metrics`, stores it in SQLite, and writes a report with figures and a verdict. It is an
engine for many tasks (:mod:`labelsmooth.study.tasks`; classification is the default), picked by the
config key ``task``.

>>> from labelsmooth.study import StudyConfig, load_config, run  # doctest: +SKIP
>>> results = run(load_config("study.toml"), out="runs/mine")  # doctest: +SKIP

See ``docs/study.md``.
"""

from __future__ import annotations

from labelsmooth.study.config import StudyConfig, load_config
from labelsmooth.study.data import Dataset
from labelsmooth.study.results import Results
from labelsmooth.study.runner import StudyInterrupted, StudyLockedError, StudyMismatchError, load_results, run
from labelsmooth.study.tasks import TASKS, get_task, register

__all__ = [
    "TASKS", "Dataset", "Results", "StudyConfig", "StudyInterrupted", "StudyLockedError",
    "StudyMismatchError", "get_task", "load_config", "load_results", "register", "run", "write_report",
]  # fmt: skip


def write_report(folder, output=None):
    """Redraw ``report.html`` / ``report.md`` of a study folder from its database (read-only) into
    ``output`` (default: the folder); returns the HTML path."""
    from labelsmooth.study.report import write_report as _write

    return _write(folder, output)
