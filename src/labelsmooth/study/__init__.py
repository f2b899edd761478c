"""``labelsmooth.study``: does label smoothing help *my* model, with which a, and at what cost?

A study trains a grid (datasets x label noise x methods x seeds), measures every run with
:mod:`labelsmooth.metrics`, stores it in SQLite, and writes a report with figures and a verdict.

>>> from labelsmooth.study import StudyConfig, load_config, run  # doctest: +SKIP
>>> results = run(load_config("study.toml"), out="runs/mine")  # doctest: +SKIP

See ``docs/study.md``.
"""

from __future__ import annotations

from labelsmooth.study.config import StudyConfig, load_config
from labelsmooth.study.data import Dataset
from labelsmooth.study.results import Results
from labelsmooth.study.runner import load_results, run

__all__ = ["Dataset", "Results", "StudyConfig", "load_config", "load_results", "run", "write_report"]


def write_report(folder):
    """Redraw ``report.html`` / ``report.md`` of a study folder from its database; returns the HTML path."""
    from labelsmooth.study.report import write_report as _write

    return _write(folder)
