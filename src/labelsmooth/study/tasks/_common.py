"""Pieces every task core shares: checks of section fields and the section base classes
(:class:`TaskSection`; :class:`SeededSection` for fairness and privacy, :class:`DigitsTrainingSection` for
distill and noise), one-thread determinism, the paired-interval sentences of a verdict, and
:class:`DatasetGridTask`, the engine side of a task whose grid is datasets x methods x seeds (``gan``,
``sequence``). Only that class knows about the engine (run specs and records).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from labelsmooth._validation import check_number, check_scalar_range, expected, is_number
from labelsmooth.study.stats import Estimate, estimate, group, paired
from labelsmooth.study.tasks._fit import seed_tuple
from labelsmooth.study.tasks.base import Context, Figure, NeededRun, RunRecord, RunSpec, Task

S = TypeVar("S")


# ------------------------------------------------------------------ section checks
def check_float(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    return check_number(
        name, value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, type_what="to be a number"
    )


def check_names(
    name: str, values: Any, known: Sequence[str], *, allow_empty: bool = False
) -> tuple[str, ...]:
    """A tuple of known names, without repeats, with a "did you mean" hint for a typo."""
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise TypeError(expected(name, "to be a list of names", values))
    if not values and not allow_empty:
        raise ValueError(expected(name, "to name at least one of " + ", ".join(map(repr, known)), values))
    for v in values:
        if v not in known:
            hint = difflib.get_close_matches(str(v), list(known), n=1)
            what = (
                "to be one of "
                + ", ".join(map(repr, known))
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
            raise ValueError(expected(name, what, v))
    if len(set(values)) != len(values):
        raise ValueError(expected(name, "to hold no repeats", values))
    return tuple(values)


def section_from_mapping(cls: type[S], name: str, mapping: Mapping[str, Any]) -> S:
    """A task's section dataclass ``cls`` from a TOML-like mapping (lists become tuples), validated by its
    ``validate()``; an unknown key raises ValueError naming ``<name>.<key>`` with the closest known key."""
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            what = f"to be a key of the {name} section" + (
                f" (did you mean `{name}.{hint[0]}`?)" if hint else ""
            )
            raise ValueError(expected(f"{name}.{key}", what, key))
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs).validate()  # type: ignore[attr-defined]


class TaskSection:
    """Base of a task's config section dataclass (``[<section_name>]``): :meth:`from_mapping` builds and
    validates one, naming ``<section_name>.<key>`` in its errors. A subclass sets ``section_name`` and
    implements ``validate()`` (returning self)."""

    section_name: ClassVar[str] = ""

    @classmethod
    def from_mapping(cls: type[S], mapping: Mapping[str, Any]) -> S:
        """Build from a TOML-like mapping (lists become tuples); unknown keys are an error."""
        return section_from_mapping(cls, cls.section_name, mapping)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SeededSection(TaskSection):
    """A section that carries its own ``seeds`` (fairness, privacy): a list of ints (a count given in the
    TOML becomes ``range(count)``), checked by :meth:`check_seeds`."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", seed_tuple(self.seeds))

    def check_seeds(self) -> None:
        """ValueError naming ``<section_name>.seeds`` unless the seeds are a non-empty list of ints."""
        if not self.seeds or not all(is_number(s, integer=True) for s in self.seeds):
            what = "to be a non-empty list of ints"
            raise ValueError(expected(f"{self.section_name}.seeds", what, self.seeds))

    def check_ints(self, names: Iterable[str], lo: int) -> None:
        """TypeError/ValueError naming ``<section_name>.<name>`` unless each field is an int >= ``lo``."""
        for name in names:
            what = f"to be an int >= {lo}"
            check_number(f"{self.section_name}.{name}", getattr(self, name), lo=lo, integer=True, what=what)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DigitsTrainingSection(TaskSection):
    """The optimisation and split fields shared by the digits tasks (distill, noise), checked by
    :meth:`check_training`: Adam's ``lr`` and ``weight_decay``, ``batch_size`` (0 = full batch), and the
    validation and test fractions."""

    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    test_fraction: float = 0.2

    def check_training(self) -> None:
        """ValueError/TypeError naming ``<section_name>.<key>`` for a bad training or split field."""
        name = self.section_name
        what = "to be an int >= 0 (0 = full batch)"
        check_number(f"{name}.batch_size", self.batch_size, lo=0, integer=True, what=what)
        check_scalar_range(f"{name}.lr", self.lr, 0.0, math.inf, lo_open=True, hi_open=True)
        check_scalar_range(f"{name}.weight_decay", self.weight_decay, 0.0, math.inf, hi_open=True)
        check_scalar_range(f"{name}.val_fraction", self.val_fraction, 0.0, 0.5, lo_open=True)
        check_scalar_range(f"{name}.test_fraction", self.test_fraction, 0.0, 0.5, lo_open=True)


def check_grid(name: str, values: Any, lo: float, hi: float, *, hi_open: bool = False) -> tuple[float, ...]:
    """A tuple of distinct numbers in [lo, hi] (or [lo, hi)): one grid axis of a method's parameter."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list)):
        raise TypeError(expected(name, "to be a list of numbers", values))
    out = tuple(check_float(f"{name}[{i}]", v, lo, hi, hi_open=hi_open) for i, v in enumerate(values))
    if len(set(out)) != len(out):
        raise ValueError(expected(name, "to hold no repeats", values))
    return out


# ------------------------------------------------------------------ determinism and timing
@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread (bit-identical results across processes), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ verdict helpers
def flatten(records: Iterable[dict]) -> list[dict]:
    """Records as flat dicts ``{"method", "param", "seed", ..., **metrics}`` (a ``metrics`` key is opened)."""
    out = []
    for r in records:
        flat = {k: v for k, v in r.items() if k != "metrics"}
        flat.update(r.get("metrics", {}))
        out.append(flat)
    return out


def by_method(records: Sequence[dict]) -> dict[tuple[str, Any], list[dict]]:
    """Flat records grouped by (method, param), in first-seen order."""
    return {(k[0], k[1]): v for k, v in group(records, ("method", "param")).items()}


def by_dataset(records: Sequence[dict]) -> list[tuple[Any, list[dict], dict[tuple[str, Any], list[dict]]]]:
    """``(dataset, its records, its records by (method, param))`` per dataset, in first-seen order."""
    out = []
    for ds in dict.fromkeys(r.get("dataset") for r in records):
        recs = [r for r in records if r.get("dataset") == ds]
        out.append((ds, recs, by_method(recs)))
    return out


def baseline(groups: Mapping[tuple[str, Any], list[dict]], method: str) -> list[dict] | None:
    """The baseline's records, found by method name whatever its stored parameter (None or 0)."""
    return next((rs for (m, _), rs in groups.items() if m == method), None)


def diff(a: Sequence[dict], b: Sequence[dict], key: str) -> Estimate:
    """Paired difference ``a - b`` over shared seeds (:func:`labelsmooth.study.stats.paired`)."""
    return paired(a, b, key)


def spread(records: Sequence[dict], key: str) -> str:
    """ "mean ± half (min .. max over n seeds)" of one metric."""
    vals = [float(r[key]) for r in records if r.get(key) is not None and math.isfinite(float(r[key]))]
    if not vals:
        return "n/a"
    e = estimate(vals)
    return f"{e.fmt()} (min {min(vals):.3g}, max {max(vals):.3g}, {len(vals)} seeds)"


def degenerate(e: Estimate) -> bool:
    """The paired differences had zero spread (the same value on every seed, n >= 2): the t-interval has
    width 0 and says nothing about the noise (a discrete metric such as modes covered does this)."""
    return e.n >= 2 and not math.isnan(e.half) and e.half == 0.0


def sign_test_p(n: int) -> float:
    """Two-sided sign-test p-value when all ``n`` paired differences share one sign: ``2 * 0.5**n``.

    The honest test of a zero-spread difference: it needs n >= 6 seeds to get below 0.05 (n = 3: 0.25).
    """
    return min(1.0, 2.0 * 0.5**n)


def _degenerate_detectable(e: Estimate) -> bool:
    return e.mean != 0.0 and sign_test_p(e.n) < 0.05


def direction(e: Estimate, *, up: str, down: str, none: str = "no detectable difference") -> str:
    """A word for a paired difference: ``up``/``down`` when its 95% interval excludes 0, else ``none``.

    A zero-spread interval (:func:`degenerate`) is never taken at face value: it counts only when a sign
    test over its seeds is below 0.05, and the phrase says that the interval is degenerate.
    """
    if e.n < 2 or math.isnan(e.half):
        return "not enough seeds to tell" if e.n < 2 else none
    if degenerate(e):
        if e.mean == 0.0:
            return f"no difference on any of {e.n} seeds"
        word = (up if e.mean > 0 else down) if _degenerate_detectable(e) else none
        return (
            f"{word}: the same difference on all {e.n} seeds, a degenerate zero-width interval; "
            f"sign test p = {sign_test_p(e.n):.3g}"
        )
    if not e.significant:
        return none
    return up if e.mean > 0 else down


def claim_status(e: Estimate, expected_sign: int) -> str:
    """ "reproduced" when the interval excludes 0 on the expected side, "contradicted" on the other,
    "not detectable" when it contains 0, "not enough seeds" below two. A zero-spread interval
    (:func:`degenerate`) is judged by a sign test instead (not detectable below 6 seeds)."""
    if e.n < 2 or math.isnan(e.half):
        return "not enough seeds"
    if degenerate(e):
        if not _degenerate_detectable(e):
            return "not detectable"
    elif not e.significant:
        return "not detectable"
    return "reproduced" if (e.mean > 0) == (expected_sign > 0) else "contradicted"


def interval_note(e: Estimate) -> str:
    """'' or a short note for a degenerate interval, to follow a formatted estimate."""
    if degenerate(e) and e.mean == 0.0:
        return f" (the same value on all {e.n} seeds)"
    if degenerate(e):
        return f" (zero spread over {e.n} seeds: a degenerate interval, sign test p = {sign_test_p(e.n):.3g})"
    return ""


# ------------------------------------------------------------------ tasks with a per-dataset grid
def slug(text: Any) -> str:
    """``text`` with every character but letters and digits replaced by ``_`` (a figure's file name)."""
    return "".join(c if c.isalnum() else "_" for c in str(text))


def dataset_grid(
    datasets: Iterable[str], methods: Iterable[tuple[str, Iterable[float | None]]], seeds: Iterable[int]
) -> list[tuple[str, str, float | None, int]]:
    """Every run of a per-dataset grid as ``(dataset, method, param, seed)``: datasets outermost, then each
    method at each of its parameters (``methods``: ``(name, params)`` in report order), seeds innermost."""
    runs = [(m, p) for m, params in methods for p in params]
    seeds = tuple(seeds)
    return [(d, m, p, s) for d in datasets for m, p in runs for s in seeds]


def check_method_param(method: str, param: Any, methods: Sequence[str], baseline: str) -> bool:
    """Whether ``method`` takes a parameter (every one but ``baseline`` does); ValueError for a method not
    in ``methods``, or a parameter that is None where one is needed."""
    if method not in methods:
        raise ValueError(expected("method", "to be one of " + ", ".join(map(repr, methods)), method))
    if method == baseline:
        return False
    if param is None:
        raise ValueError(expected("param", f"to be a number for method {method!r}", param))
    return True


class DatasetGridTask(Task):
    """The engine side of a task whose grid is datasets x methods x seeds of one ``run_one``.

    A subclass sets ``run_one`` (``(section, method, param, seed, *, dataset, **run_options) -> dict``),
    ``default_grid`` (``(section, seeds) -> [(dataset, method, param, seed), ...]``), ``method_label``,
    ``grid_keys`` (the section's fields that are grid axes, left out of each run's hashed section),
    ``data_note`` and ``model_note`` (why :meth:`load` refuses ``data`` and ``model_fn``) and
    ``describe_widths``; it implements :meth:`dataset_figures` and may override :meth:`load_datasets`,
    :meth:`run_config` and :meth:`run_options`. The section validates itself (``section.validate()``).
    """

    setting_axes = ("dataset",)
    grid_keys: ClassVar[tuple[str, ...]] = ()
    data_note: ClassVar[str] = ""
    model_note: ClassVar[str] = ""
    describe_widths: ClassVar[tuple[int, int]] = (8, 24)
    run_one: ClassVar[Callable[..., dict]]
    default_grid: ClassVar[Callable[..., list[tuple[str, str, float | None, int]]]]
    method_label: ClassVar[Callable[[str, float | None], str]]

    def validate(self, section: Any) -> None:
        section.validate()

    def load(self, cfg: Any, *, data: Any = None, model_fn: Any = None) -> Any:
        if data is not None:
            raise TypeError(expected("data", f"to be None (task {self.name!r} {self.data_note})", data))
        if model_fn is not None:
            raise TypeError(
                expected("model_fn", f"to be None (task {self.name!r} {self.model_note})", model_fn)
            )
        return self.load_datasets(cfg)

    def load_datasets(self, cfg: Any) -> Any:
        """What :meth:`plan` gets as ``datasets`` (default: None, the task makes its data in each run)."""
        return None

    def run_config(self, cfg: Any, datasets: Any, dataset: str) -> dict[str, Any]:
        """Entries of a run's hashed config besides the task, the section and the run (default: none)."""
        return {}

    def run_options(self, ctx: Context) -> dict[str, Any]:
        """Keyword arguments of ``run_one`` besides the dataset (default: none)."""
        return {}

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        sec = cfg.section
        base = {k: v for k, v in dataclasses.asdict(sec).items() if k not in self.grid_keys}
        return [
            RunSpec({"dataset": d, "method": m, "param": p, "seed": s},
                    {"task": self.name, "section": base, **self.run_config(cfg, datasets, d),
                     "run": {"dataset": d, "method": m, "param": p, "seed": s}})
            for d, m, p, s in type(self).default_grid(sec, cfg.seeds)
        ]  # fmt: skip

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        a = spec.axes
        out = type(self).run_one(
            ctx.section, a["method"], a["param"], a["seed"], dataset=a["dataset"], **self.run_options(ctx)
        )
        return RunRecord.of(out)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        by_hash = {r.run_hash: r for r in runs}
        out: list[Figure] = []
        for ds, recs, groups in by_dataset(records):
            out += self.dataset_figures(ds, recs, groups, by_hash)
        return out

    def dataset_figures(
        self, dataset: Any, records: list[dict], groups: dict[tuple[str, Any], list[dict]], by_hash: dict
    ) -> list[Figure]:
        """The figures of one dataset: its records, grouped by (method, param), and the stored runs."""
        raise NotImplementedError

    def labelled(self, groups: Mapping[tuple[str, Any], list[dict]]) -> list[tuple[str, list[dict]]]:
        """``(method label, records)`` per method of ``groups``."""
        return [(type(self).method_label(m, p), rs) for (m, p), rs in groups.items()]

    def describe(self, spec: RunSpec) -> str:
        a, (wd, wm) = spec.axes, self.describe_widths
        label = type(self).method_label(a["method"], a["param"])
        return f"{a['dataset']:{wd}s} {label:{wm}s} seed {a['seed']:<3d}"
