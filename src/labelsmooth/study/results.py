"""The results table: a list of flat records (one dict per run), convertible to pandas when it is installed.

pandas is not a dependency of labelsmooth; ``Results.to_pandas()`` imports it on demand, and
``pandas.DataFrame(results)`` works just as well.
"""

from __future__ import annotations

from typing import Any

from labelsmooth.study.store import StoredRun


def flatten(run: StoredRun) -> dict[str, Any]:
    """One stored run as a flat record (its task's :meth:`~labelsmooth.study.tasks.Task.record`): the
    axes, the method's label, every scalar metric, then its identity."""
    from labelsmooth.study.tasks import get_task

    return get_task(run.task).record(run)


class Results(list):
    """A list of per-run records (dicts) with a few conveniences. ``folder`` is where the study lives."""

    def __init__(self, records: list[dict[str, Any]] = (), folder: str | None = None) -> None:  # type: ignore[assignment]
        super().__init__(records)
        self.folder = folder
        self.hidden = (
            0  # stored runs outside the study's grid, not in this table (load_results(all_runs=True))
        )
        self.failed: list[dict[str, Any]] = []  # runs stored as failed: their axes, run_hash and error

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for rec in self:
            cols += [k for k in rec if k not in cols]
        return cols

    def where(self, **equal: Any) -> Results:
        """The records whose fields equal the given values: ``results.where(method="ls", noise_rate=0.3)``."""
        return Results([r for r in self if all(r.get(k) == v for k, v in equal.items())], self.folder)

    def column(self, name: str) -> list[Any]:
        return [r.get(name) for r in self]

    def to_pandas(self):  # -> pandas.DataFrame
        """The table as a ``pandas.DataFrame`` (needs pandas, which labelsmooth does not install)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Results.to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(list(self), columns=self.columns)
