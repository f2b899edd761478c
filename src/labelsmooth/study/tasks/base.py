"""The contract between the study engine and its tasks: metrics tables, the method registry, run specs,
run records, and the :class:`Task` base class.

A task answers one question (does smoothing help a classifier? a language model? a GAN's discriminator?)
with a grid of runs. The engine (:mod:`labelsmooth.study.runner`) does everything else: validation before
anything is written, the folder lock, the SQLite store, resume, worker processes, run dependencies and
their artefacts, the report and the export. A task declares:

* ``name``, ``summary`` (one line: what it answers), ``runtime`` (its default grid's runtime);
* ``config_cls``: the dataclass of its TOML section ``[<name>]`` (defaults; unknown keys get a "did you
  mean" error; :meth:`Task.validate` checks values);
* ``metrics``: one :class:`Metric` table that serves measuring, storing, the report, the figures, the CLI
  table and ``export``;
* ``methods``: its own :class:`Method` entries (looked up before the shared :data:`METHODS` registry);
* :meth:`Task.load` (datasets, before anything is written), :meth:`Task.plan` (the :class:`RunSpec`
  list), :meth:`Task.execute` (one run -> :class:`RunRecord`), :meth:`Task.figures`, :meth:`Task.verdict`.

:class:`FunctionTask` wraps a plain ``run_one(section, method, param, seed) -> dict`` into a task.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from labelsmooth._validation import expected
from labelsmooth.study.identity import config_hash
from labelsmooth.study.methods import METHODS, Method, freeze_param, get_method, register_method

__all__ = [
    "METHODS", "Context", "Figure", "FunctionTask", "Method", "Metric", "NeededRun", "RunRecord", "RunSpec",
    "Task", "Verdict", "config_hash", "get_method", "metric_columns", "metric_table", "order_plan",
    "register_method",
]  # fmt: skip

# ---------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """One measured number of a run: how it is stored, shown and compared.

    ``key`` is the name in the run's ``metrics`` dict (and the ``export`` column); ``header`` the column
    header of the report and CLI tables; ``fmt`` a format spec (``".3f"``, ``".3g"``) or ``"%"`` for a
    fraction shown in percent; ``better`` is ``"higher"``, ``"lower"`` or None (no direction, e.g. a
    temperature); ``scaled`` means the run also stores the metric after temperature scaling, under
    :attr:`scaled_key` (``"ts_" + key``). ``summary``: a column of the report's summary table; ``cli``: a
    column of the terminal table; ``panel``: a panel of the metrics-against-parameter figure.
    """

    key: str
    header: str
    fmt: str = ".3f"
    better: Literal["higher", "lower"] | None = None
    scaled: bool = False
    summary: bool = True
    cli: bool = False
    panel: bool = False
    description: str = ""
    scaled_in: tuple[str, ...] = ()
    """The tables (``"summary"``, ``"cli"``, ``"panel"``) that also show the scaled variant (the all-runs
    table and ``export`` always do)."""

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower", None):
            raise ValueError(expected("Metric.better", "to be 'higher', 'lower' or None", self.better))

    @property
    def scaled_key(self) -> str:
        """The key of the metric after temperature scaling (``ts_<key>``)."""
        return "ts_" + self.key

    def format(self, value: Any) -> str:
        """One value as the tables show it ('' for a missing value)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float)):
            return str(value)
        if self.fmt == "%":
            return f"{value * 100:.1f}%"
        return format(value, self.fmt)

    def format_estimate(self, est: Any) -> str:
        """A mean ± 95% half-width (:class:`labelsmooth.study.stats.Estimate`) as the tables show it."""
        if math.isnan(est.mean):
            return "n/a"
        scale, spec = (100.0, ".1f") if self.fmt == "%" else (1.0, self.fmt)
        text = format(est.mean * scale, spec)
        return text if math.isnan(est.half) else f"{text} ± {format(est.half * scale, spec)}"


def metric_columns(metrics: Sequence[Metric], *, where: str = "summary") -> list[tuple[str, str]]:
    """(key, header) of the columns a table shows, scaled variants after their metric.

    ``where`` is ``"summary"``, ``"cli"`` or ``"all"`` (every stored metric: the all-runs table, export).
    """
    out: list[tuple[str, str]] = []
    for m in metrics:
        if where == "all" or getattr(m, where):
            out.append((m.key, m.header))
        if m.scaled and (where == "all" or where in m.scaled_in):
            out.append((m.scaled_key, f"{m.header} after T"))
    return out


def metric_table(metrics: Sequence[Metric]) -> dict[str, Metric]:
    """key -> Metric, scaled variants included (``ts_<key>`` maps to its metric)."""
    out: dict[str, Metric] = {}
    for m in metrics:
        out[m.key] = m
        if m.scaled:
            out[m.scaled_key] = m
    return out


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunSpec:
    """One run of a plan.

    ``axes``: the run's coordinates in the grid, JSON-ready (by convention ``method``, ``param`` and
    ``seed`` plus the task's own, e.g. ``dataset``, ``noise_rate``); stored as the run's ``axes``.
    ``config``: everything that determines the run's numbers (JSON-ready); its hash is the run's identity
    (:attr:`run_hash`), so a changed setting is a new run and an unchanged one is resumed. ``needs``: the
    hashes of runs this one depends on (their records and artefacts are handed to :meth:`Task.execute`).
    ``payload``: anything else the task wants at execution time (not stored, not hashed; picklable).
    """

    axes: Mapping[str, Any]
    config: Mapping[str, Any]
    needs: tuple[str, ...] = ()
    payload: Any = field(default=None, compare=False)

    @property
    def run_hash(self) -> str:
        return config_hash(self.config)


@dataclass
class RunRecord:
    """What one run returns: ``metrics`` (key -> float | None; the task's metrics table names them),
    ``curves`` (name -> list, e.g. per-epoch losses), ``arrays`` (JSON-ready, for the figures), and
    ``artefacts`` (name -> tensor or ndarray: saved under ``artefacts/<run_hash>/`` beside the database,
    handed to dependent runs, never stored in SQLite)."""

    metrics: dict[str, Any]
    curves: dict[str, list] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    artefacts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: RunRecord | Mapping[str, Any]) -> RunRecord:
        """A record from a RunRecord or a dict with those keys (``metrics`` required)."""
        if isinstance(value, RunRecord):
            return value
        if not isinstance(value, Mapping) or "metrics" not in value:
            raise TypeError(
                expected(
                    "execute()", "to return a RunRecord or a dict with a 'metrics' key", type(value).__name__
                )
            )
        unknown = set(value) - {"metrics", "curves", "arrays", "artefacts"}
        if unknown:
            raise ValueError(
                expected("run record", "to hold only metrics, curves, arrays, artefacts", sorted(unknown))
            )
        return cls(dict(value["metrics"]), dict(value.get("curves") or {}), dict(value.get("arrays") or {}),
                   dict(value.get("artefacts") or {}))  # fmt: skip


@dataclass
class NeededRun:
    """A stored run handed to a run that needs it: its axes, metrics, curves, arrays, and its artefacts
    (loaded from ``artefacts/<run_hash>/`` on first access)."""

    run_hash: str
    axes: dict[str, Any]
    metrics: dict[str, Any]
    curves: dict[str, list]
    arrays: dict[str, Any]
    artefact_dir: Path | None = None
    _artefacts: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def artefacts(self) -> dict[str, Any]:
        if self._artefacts is None:
            from labelsmooth.study.store import load_artefacts

            self._artefacts = load_artefacts(self.artefact_dir) if self.artefact_dir else {}
        return self._artefacts


@dataclass
class Context:
    """What :meth:`Task.execute` gets besides its spec: the resolved config, the task's config section,
    the loaded datasets, and the user's model_fn (None for the built-ins)."""

    config: Any
    section: Any
    datasets: Any
    model_fn: Any = None


@dataclass
class Figure:
    """A report figure: a file name (no extension), a caption (also the image's alt text), PNG bytes."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Verdict:
    """One claim checked: a title (the setting), an outcome word, and the sentences that justify it."""

    title: str
    outcome: str
    sentences: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


# ---------------------------------------------------------------------------------------------- tasks


class Task:
    """The base class of a study task (see the module docstring). Subclass it, set the class attributes,
    implement :meth:`load`, :meth:`plan` and :meth:`execute`; :meth:`figures`, :meth:`verdict` and
    :meth:`validate` have working defaults."""

    name: str = ""
    summary: str = ""
    runtime: str = ""
    config_cls: type | None = None
    metrics: tuple[Metric, ...] = ()
    methods: Mapping[str, Method] = MappingProxyType({})
    setting_axes: tuple[str, ...] = ()
    """Axes that define a setting (one verdict and one block of the summary table per setting)."""
    report_note: str = "Intervals are 95% Student-t intervals over seeds."
    """The report's note on how its numbers are computed."""

    def setting_header(self) -> list[str]:
        """The header cells of a setting in the summary tables (default: the setting axes)."""
        return list(self.setting_axes)

    def setting_cells(self, key: tuple) -> list[str]:
        """The cells of one setting (the values of :attr:`setting_axes`) in the summary tables."""
        return [str(v) for v in key]

    # -- config
    def section(self, cfg: Any) -> Any:
        """This task's config section of a resolved StudyConfig."""
        return cfg.section

    def validate(self, section: Any) -> None:
        """Check the values of the task's section; raise ValueError naming the key (default: nothing)."""

    # -- work
    def load(self, cfg: Any, *, data: Any = None, model_fn: Any = None) -> Any:
        """Load (and check) the task's datasets; done before anything is written. Default: None."""
        if data is not None:
            raise TypeError(
                expected("data", f"to be None (task {self.name!r} brings its own data)", type(data).__name__)
            )
        return None

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        raise NotImplementedError

    def execute(
        self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]
    ) -> RunRecord | Mapping[str, Any]:
        raise NotImplementedError

    # -- reading back
    def method(self, name: str) -> Method:
        return get_method(name, self.methods)

    def label(self, axes: Mapping[str, Any]) -> str:
        """The display label of a run (its method and parameter)."""
        if "method" not in axes:
            return ""
        try:
            return self.method(axes["method"]).label_of(axes.get("param"))
        except ValueError:
            return str(axes["method"])

    def record(self, run: Any) -> dict[str, Any]:
        """One stored run as a flat record: its axes, its label, its scalar metrics, its hash."""
        rec: dict[str, Any] = dict(run.spec)
        if "param" in rec:  # lists and tables read back from JSON, made hashable for grouping
            rec["param"] = freeze_param(rec["param"])
        rec["label"] = self.label(rec)
        rec.update({k: v for k, v in run.metrics.items() if not isinstance(v, (dict, list))})
        rec["run_hash"] = run.run_hash
        rec["library_version"] = run.library_version
        return rec

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        """The report's figures (default: none)."""
        return []

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        """The claims checked, one :class:`Verdict` (or an object with ``title``, ``outcome``, ``text``)
        per setting (default: none)."""
        return []

    def describe(self, spec: RunSpec) -> str:
        """One line for ``--dry-run``."""
        return "  ".join(f"{k}={v}" for k, v in spec.axes.items())


class FunctionTask(Task):
    """A task from a plain function ``run_one(section, method: str, param, seed) -> {"metrics": ...,
    "curves": ..., "arrays": ...}``: the grid is methods x params x seeds, read from the section's
    ``methods`` (a mapping method name -> list of params, or ``true`` for one run without a parameter; or
    a list of names and ``[name, param]`` pairs) and
    ``seeds`` (an int count or a list) fields. Everything else (store, resume, workers, report, export,
    the verdict when ``verdict`` is given) comes from the engine."""

    def __init__(
        self,
        name: str,
        run_one: Callable[[Any, str, Any, int], Mapping[str, Any]],
        config_cls: type,
        metrics: Sequence[Metric],
        *,
        summary: str,
        runtime: str = "",
        methods: Mapping[str, Method] | None = None,
        validate: Callable[[Any], None] | None = None,
        verdict: Callable[[list[dict[str, Any]]], list[Any]] | None = None,
    ) -> None:
        self.name, self.run_one, self.config_cls = name, run_one, config_cls
        self.metrics, self.summary, self.runtime = tuple(metrics), summary, runtime
        self.methods = dict(methods or {})
        self._validate, self._verdict = validate, verdict

    def validate(self, section: Any) -> None:
        grid = _function_grid(self.name, section)
        for method, _ in grid:
            try:
                self.method(method)
            except ValueError as exc:
                raise ValueError(str(exc).replace("`method`", f"`{self.name}.methods`", 1)) from None
        if self._validate is not None:
            self._validate(section)

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        section = self.section(cfg)
        seeds = section.seeds if hasattr(section, "seeds") else cfg.seeds
        seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
        base = dataclasses.asdict(section)
        return [
            RunSpec({"method": m, "param": p, "seed": s},
                    {"task": self.name, "section": base, "run": {"method": m, "param": p, "seed": s}})
            for s in seeds
            for m, p in _function_grid(self.name, section)
        ]  # fmt: skip

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        a = spec.axes
        return RunRecord.of(self.run_one(ctx.section, a["method"], a["param"], a["seed"]))

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        return self._verdict(records) if self._verdict is not None else []


def _function_grid(task: str, section: Any) -> list[tuple[str, Any]]:
    methods = getattr(section, "methods", None)
    if isinstance(methods, Mapping):  # name -> params; true: one run without a parameter; false: none
        out = []
        for m, ps in methods.items():
            params = (
                [None] if ps is True else [] if ps is False else ps if isinstance(ps, (list, tuple)) else [ps]
            )
            out += [(str(m), p) for p in params]
        return out
    if isinstance(methods, (list, tuple)):
        out = []
        for item in methods:
            if isinstance(item, str):
                out.append((item, None))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((str(item[0]), item[1]))
            else:
                raise TypeError(expected(f"{task}.methods", "to hold names or [name, param] pairs", item))
        return out
    raise TypeError(
        expected(f"{task}.methods", "to be a mapping name -> params or a list", type(methods).__name__)
    )


def order_plan(specs: Iterable[RunSpec], stored: set[str]) -> list[RunSpec]:
    """The specs with every run after the runs it needs (stable otherwise). A need that is neither planned
    nor stored, or a cycle, raises ValueError."""
    specs = list(specs)
    by_hash: dict[str, RunSpec] = {}
    for s in specs:
        by_hash.setdefault(s.run_hash, s)
    out: list[RunSpec] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = placed

    def visit(s: RunSpec, path: tuple[str, ...]) -> None:
        h = s.run_hash
        if state.get(h) == 2:
            return
        if state.get(h) == 1:
            raise ValueError(expected("needs", "to have no cycle", " -> ".join((*path, h))))
        state[h] = 1
        for need in s.needs:
            if need in by_hash:
                visit(by_hash[need], (*path, h))
            elif need not in stored:
                raise ValueError(expected("needs", f"to name runs of the plan (run {h})", need))
        state[h] = 2
        out.append(s)

    for s in specs:
        visit(s, ())
    return out
