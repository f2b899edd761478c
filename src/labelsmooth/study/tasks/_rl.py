"""Helpers shared by the reinforcement-learning tasks (:mod:`.value`, :mod:`.preference`).

A run is ``run_one(section, method, param, seed) -> {"metrics", "curves", "arrays"}``; a record is the
engine's flat record (``{"method", "param", "seed", "label", <metrics>...}``; the nested form
``{"method", "param", "seed", "metrics": {...}}`` of the task cores is accepted too), and the verdicts use
:mod:`labelsmooth.study.stats` (paired 95% t-intervals over seeds).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from labelsmooth._validation import check_bool, check_number, expected
from labelsmooth.study.methods import Method, get_method
from labelsmooth.study.stats import Estimate, estimate, paired
from labelsmooth.study.tasks.base import Context, NeededRun, RunRecord, RunSpec, Task


def check_float(name: str, value: Any, lo: float, hi: float = math.inf, *, lo_open: bool = True) -> None:
    check_number(name, value, lo=lo, hi=hi, lo_open=lo_open, finite=True)


def label(method: str, param: float | None) -> str:
    """``"mse"``, ``"dpo"`` (no parameter, or DPO's e = 0), else ``"method(param)"``."""
    return method if param is None or method == "dpo" else f"{method}({param:g})"


def rl_method(
    name: str,
    param_name: str | None,
    objective: Any,
    description: str,
    *,
    check: Any = None,
    default: tuple = (),
) -> Method:
    """A registry entry of an RL task: :class:`Method` labelled by :func:`label` (``"cdpo(0.1)"``)."""
    return Method(name, param_name, objective, label=functools.partial(label, name), check=check,
                  default=default, description=description)  # fmt: skip


def _flat(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"seed": r["seed"], **r["metrics"]} if "metrics" in r else dict(r)


def by_label(records: Sequence[Mapping[str, Any]]) -> dict[str, list[dict]]:
    """Records grouped by method label (:func:`label` of ``(method, param)``, never a stored display
    label), each flattened to ``{"seed", **metrics}`` for the stats helpers."""
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(label(r["method"], r["param"]), []).append(_flat(r))
    return out


def mean_of(rows: Sequence[dict], key: str) -> Estimate:
    return estimate(r.get(key) for r in rows)


def compare(rows_a: Sequence[dict], rows_b: Sequence[dict], key: str) -> tuple[Estimate, str]:
    """The paired difference a - b and a word for it: "lower", "higher" or "within noise"."""
    d = paired(rows_a, rows_b, key)
    if not d.significant:
        return d, "within noise"
    return d, "lower" if d.mean < 0 else "higher"


# ------------------------------------------------------------------------------------------- methods


def method_grid(task: str, methods: Any, registry: Mapping[str, Method]) -> list[tuple[str, Any]]:
    """The (method, param) list of a section's ``methods`` table (name -> list of params, or ``true`` for a
    method without one, ``false`` for none), each checked by its registry entry. Errors name
    ``<task>.methods.<name>``; an unknown name gets "did you mean"."""
    if not isinstance(methods, Mapping):
        raise TypeError(
            expected(f"{task}.methods", "to be a table name -> list of parameters", type(methods).__name__)
        )
    out: list[tuple[str, Any]] = []
    for name, value in methods.items():
        try:
            entry = get_method(str(name), registry)
        except ValueError as exc:
            raise ValueError(str(exc).replace("`method`", f"`{task}.methods`", 1)) from None
        if str(name) not in registry:  # a shared method (e.g. classification's) is not this task's
            known = ", ".join(registry)
            raise ValueError(expected(f"{task}.methods", f"to name a method of task {task!r}; known: {known}",
                                      name))  # fmt: skip
        dotted = f"{task}.methods.{name}"
        if entry.param_name is None:
            check_bool(dotted, value, what="to be true or false (the method has no parameter)")
            params: list[Any] = [None] if value else []
        else:
            if not isinstance(value, (list, tuple)):
                raise TypeError(expected(dotted, f"to be a list of {entry.param_name} values", value))
            params = list(value)
            if len(set(params)) != len(params):
                raise ValueError(expected(dotted, "to hold distinct values", params))
        for p in params:
            if entry.check is not None:
                entry.check(dotted, p)
            out.append((str(name), float(p) if p is not None else None))
    if not out:
        raise ValueError(expected(f"{task}.methods", "to select at least one method", dict(methods)))
    return out


def prefix_errors(task: str, fn: Any, *args: Any) -> Any:
    """Call ``fn(*args)``; a ValueError/TypeError naming a key (```n_train```) is re-raised naming it in
    the task's section (```value.n_train```)."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if msg.startswith("Expected `") and not msg.startswith(f"Expected `{task}."):
            msg = msg.replace("Expected `", f"Expected `{task}.", 1)
        raise type(exc)(msg) from None


# ------------------------------------------------------------------------------------------- the task
class MethodTableTask(Task):
    """The engine side of an RL task: a section with a ``methods`` table (:func:`method_grid`) and a
    ``run_fields()`` method (the hashed fields), one run per setting x seed x (method, param).

    A subclass sets ``run_one`` (``(section, method, param, seed, **setting) -> dict``), ``model_note``
    (why :meth:`load` refuses ``model_fn``) and implements :meth:`settings`; errors of the section's
    ``validate()`` name the task's section (:func:`prefix_errors`).
    """

    model_note: ClassVar[str] = ""
    run_one: ClassVar[Any]

    def validate(self, section: Any) -> None:
        prefix_errors(self.name, section.validate)

    def load(self, cfg: Any, *, data: Any = None, model_fn: Any = None) -> Any:
        super().load(cfg, data=data, model_fn=model_fn)
        if model_fn is not None:
            what = f"to be None (task {self.name!r} {self.model_note})"
            raise TypeError(expected("model_fn", what, model_fn))
        return None

    def settings(self, section: Any) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
        """``(axes, run)`` per setting: the setting's axes, and those of them in each run's hashed ``run``
        entry (an axis fixed by the section, such as value's ``data``, is hashed with the section)."""
        raise NotImplementedError

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        sec = cfg.section
        fixed = sec.run_fields()
        grid = method_grid(self.name, sec.methods, self.methods)
        return [
            RunSpec(
                {**axes, "method": m, "param": p, "seed": s},
                {"task": self.name, "section": fixed, "run": {**run, "method": m, "param": p, "seed": s}},
            )
            for axes, run in self.settings(sec)
            for s in cfg.seeds
            for m, p in grid
        ]

    def run_options(self, axes: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of ``run_one`` taken from a run's setting axes (default: none)."""
        return {}

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        a = spec.axes
        out = type(self).run_one(ctx.section, a["method"], a["param"], a["seed"], **self.run_options(a))
        return RunRecord.of(out)


# ------------------------------------------------------------------------------------------- figures


def errorbar_figure(
    panels: Sequence[tuple[str, str, Sequence[tuple[str, Estimate]]]],
    *,
    hlines: Sequence[Sequence[tuple[float, str]]] = (),
    markers: Sequence[Sequence[tuple[int, float]]] = (),
    logy: bool = False,
) -> bytes:
    """One panel per ``(title, ylabel, [(label, estimate), ...])``: the means with their 95% intervals as
    error bars. ``hlines[i]``: horizontal reference lines (value, label) of panel i; ``markers[i]``: red
    crosses (bar index, value) of panel i (e.g. a per-method optimum); ``logy``: a symmetric-log y axis.
    Returns PNG bytes."""
    from labelsmooth.study.figures import _plt, to_png

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 1.0 + 0.7 * max(len(p[2]) for p in panels))
                                                      * len(panels), 3.8), squeeze=False)  # fmt: skip
    for i, (ax, (title, ylabel, bars)) in enumerate(zip(axes[0], panels)):
        xs = list(range(len(bars)))
        means = [e.mean for _, e in bars]
        halves = [0.0 if math.isnan(e.half) else e.half for _, e in bars]
        ax.errorbar(xs, means, yerr=halves, fmt="o", capsize=4)
        for value, text in hlines[i] if i < len(hlines) else ():
            ax.axhline(value, color="grey", linestyle="--", linewidth=1)
            ax.annotate(text, (xs[-1] if xs else 0, value), fontsize=8, va="bottom", ha="right")
        mk = markers[i] if i < len(markers) else ()
        if mk:
            ax.plot([x for x, _ in mk], [v for _, v in mk], "rx", markersize=8, label="cDPO optimum")
            ax.legend(fontsize=8)
        if logy:
            ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xticks(xs)
        ax.set_xticklabels([lab for lab, _ in bars], rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)
