"""The study's tasks: ``TASKS`` (name -> :class:`~labelsmooth.study.tasks.base.Task`), :func:`get_task`,
:func:`register`.

A built-in task is one module of this package that calls :func:`register` at import, plus its name in
:data:`BUILTIN` (imported here, in this order, which is also the order of ``labelsmooth tasks``).
"""

from __future__ import annotations

import difflib
import importlib

from labelsmooth._validation import expected
from labelsmooth.study.tasks.base import (
    METHODS,
    Context,
    Figure,
    FunctionTask,
    Method,
    Metric,
    NeededRun,
    RunRecord,
    RunSpec,
    Task,
    Verdict,
    get_method,
    register_method,
)

__all__ = [
    "BUILTIN", "METHODS", "TASKS", "Context", "Figure", "FunctionTask", "Method", "Metric", "NeededRun",
    "RunRecord", "RunSpec", "Task", "Verdict", "get_method", "get_task", "register", "register_method",
]  # fmt: skip

TASKS: dict[str, Task] = {}
"""Every registered task, by name."""

BUILTIN: tuple[str, ...] = (
    "classification", "sequence", "gan", "value", "preference", "fairness", "privacy", "distill", "noise",
)  # fmt: skip
"""The built-in task modules of this package (each registers its task when imported)."""


def register(task: Task, *, replace: bool = False) -> Task:
    """Add a task to :data:`TASKS`; returns it. Its name must be a new identifier (unless ``replace``)."""
    if not isinstance(task, Task):
        raise TypeError(expected("task", "to be a labelsmooth.study.tasks.Task", type(task).__name__))
    if not task.name or not task.name.replace("_", "").isalnum():
        raise ValueError(expected("task.name", "to be a non-empty identifier", task.name))
    if task.name in TASKS and TASKS[task.name] is not task and not replace:
        raise ValueError(expected("task.name", "to be a name not yet registered", task.name))
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name raises ValueError with the closest known one."""
    if not isinstance(name, str):
        raise TypeError(expected("task", "to be a task name", name))
    if name in TASKS:
        return TASKS[name]
    hint = difflib.get_close_matches(name, list(TASKS), n=1)
    what = "to be a known task" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    raise ValueError(expected("task", what + "; known: " + ", ".join(TASKS), name))


for _module in BUILTIN:
    importlib.import_module(f"labelsmooth.study.tasks.{_module}")
