"""The study's configuration: frozen dataclasses, TOML loading, and every check in one place.

Why one place: a study validates its whole configuration (and loads its data) before it creates the
output folder, so that a typo never leaves a half-written folder behind. Every error names the key,
in the library's one template (``Expected `train.epochs` >= 1, got 0.``).

Layering: defaults <- TOML file (``--config``) <- explicit flags / ``--set key=value``. The resolved
configuration is saved with the results (``config.toml`` and the database's ``meta`` table).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelsmooth._validation import check_bool, check_number, check_scalar_range, expected, is_number
from labelsmooth.study.objectives import CLASSIFICATION_METHODS, FOCAL_SCHEDULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DATASETS = ("digits", "synthetic", "npz", "csv", "images", "cifar10")
NOISE_KINDS = ("symmetric", "pairflip", "matrix")
MODEL_KINDS = ("logreg", "mlp", "cnn")
BACKENDS = ("local", "ray")
__all__ = [
    "BACKENDS", "FOCAL_SCHEDULES", "DataConfig", "MethodsConfig", "ModelConfig", "NoiseConfig", "RayConfig",
    "StudyConfig", "TrainConfig", "apply_overrides", "from_mapping", "load_config", "parse_value", "to_toml",
    "validate",
]  # fmt: skip


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how it is split. ``datasets`` is one axis of the grid."""

    datasets: tuple[str, ...] = ("digits",)
    path: str = ""  # file or folder for npz / csv / images / cifar10
    label_column: str = "label"  # csv only
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    separation: float = 3.0  # synthetic: distance between class means, in noise standard deviations
    n_samples: int = 1500  # synthetic
    n_features: int = 16  # synthetic
    n_classes: int = 10  # synthetic
    max_samples: int = 0  # 0 = all; otherwise a seeded, stratified subsample (large user data)
    download: bool = False  # cifar10 only


@dataclass(frozen=True)
class NoiseConfig:
    """Label noise on the training split only. ``rates`` is one axis of the grid.

    symmetric: a label flips with probability r to one of the K-1 other classes, uniformly.
    pairflip: a label flips with probability r to the next class, (y + 1) mod K.
    matrix: rows of ``(1 - r) I + r M`` with the user's K x K row-stochastic ``matrix`` M (rate 1 = M itself).
    """

    kind: str = "symmetric"
    rates: tuple[float, ...] = (0.0, 0.3)
    matrix: tuple[tuple[float, ...], ...] = ()


def _methods_config() -> type:
    """``MethodsConfig``, generated from the classification method registry: ``hard`` (a switch), then one
    tuple of parameters per method with a ``config_key`` (``label_smoothing``, ``prior``, ``negative``,
    ``confidence_penalty``, ``focal``), defaulting to the entry's ``default``."""
    fields: list[Any] = [("hard", bool, field(default=True))]
    fields += [
        (m.config_key, tuple, field(default=tuple(m.default))) for m in CLASSIFICATION_METHODS if m.config_key
    ]
    doc = "The training methods compared. Each list is expanded into one method per value.\n\n" + "\n".join(
        f"{m.config_key or m.name}: {m.description}" for m in CLASSIFICATION_METHODS
    )
    cls = dataclasses.make_dataclass("MethodsConfig", fields, frozen=True, namespace={"__doc__": doc})
    cls.__module__ = __name__
    return cls


MethodsConfig: Any = _methods_config()


@dataclass(frozen=True)
class ModelConfig:
    """The model trained in every run (ignored when the API is given a ``model_fn``)."""

    kind: str = "mlp"
    width: int = 128  # hidden width (mlp), penultimate width (cnn)
    depth: int = 2  # hidden layers (mlp)
    channels: int = 16  # first conv layer's channels (cnn)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam, full-batch by default, no weight decay so nothing masks smoothing's effect."""

    epochs: int = 300
    lr: float = 0.002
    batch_size: int = 0  # 0 = full batch; otherwise seeded minibatches
    weight_decay: float = 0.0
    eval_every: int = 10  # epochs between points of the stored curves


@dataclass(frozen=True)
class RayConfig:
    """The Ray backend (``backend = "ray"``; section ``[ray]``, shared by every task). Never part of a
    run's hash: the stored numbers do not depend on it.

    ``address``: "" starts a local Ray instance sized to the machine (shut down when the study ends);
    ``"auto"`` joins the running cluster of this node (``ray start --head``); ``"HOST:PORT"`` joins the
    cluster whose head listens there. ``cpus_per_run`` / ``gpus_per_run``: the resources Ray reserves for
    each run (each run still trains on one thread, so its numbers never depend on them). ``max_retries``:
    how many times a run whose worker process or node died is started again (a run that raises is not
    retried: it is stored as failed). ``connect_timeout``: seconds to wait for ``address`` to answer.
    """

    address: str = ""
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 3
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: the grid datasets x noise rates x methods x seeds, and how to run it."""

    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    methods: Any = field(default_factory=MethodsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    workers: int = 0  # 0 = auto: min(cpu count, 8); results do not depend on it
    n_bins: int = 15
    out: str = "labelsmooth-study"
    task: str = "classification"  # the task of the study (labelsmooth.study.tasks.TASKS)
    backend: str = "local"  # where runs execute: local (this machine's processes) or ray (a Ray cluster)
    ray: RayConfig = field(default_factory=RayConfig)  # the ray backend's settings, section [ray]
    section: Any = None  # the task's own section [<task>] (None for classification: data ... train)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/TOML-ready mapping (tuples become lists): the top-level keys, then the task's
        sections (classification: data, noise, methods, model, train; any other task: ``[<task>]``)."""
        d: dict[str, Any] = {key: getattr(self, key) for key in _TOP_KEYS}
        d["ray"] = dataclasses.asdict(self.ray)
        if self.task == "classification":
            d.update({name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS})
        elif self.section is not None:
            d[self.task] = dataclasses.asdict(self.section)
        return json.loads(json.dumps(d))

    def replace(self, **changes: Any) -> StudyConfig:
        """A copy with dotted keys changed, validated: ``cfg.replace(**{"train.epochs": 5})``."""
        return apply_overrides(self, changes)

    def resolved_workers(self, n_runs: int | None = None) -> int:
        """The number of worker processes actually used: ``workers`` (0 = auto: min(cores, 8)), capped at
        the cores this process may use (:func:`available_cores`) and at the number of runs."""
        w = min(self.workers or 8, available_cores())
        return max(1, min(w, n_runs)) if n_runs else max(1, w)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity set where the OS has one, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "methods": MethodsConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}
_TOP_KEYS = ("task", "seeds", "workers", "n_bins", "out", "backend")
_SHARED_SECTIONS: dict[str, type] = {"ray": RayConfig}
"""Sections every task reads (the backend's settings)."""


def _unknown(section: str, key: str, known: list[str]) -> ValueError:
    """The error for an unknown key, naming it in full (``train.epoch``) with the closest known key."""
    prefix = "" if section == "config" else f"{section}."
    hint = difflib.get_close_matches(key, known, n=1)
    what = "to be a known config key" + (f" (did you mean `{prefix}{hint[0]}`?)" if hint else "")
    what += "; known: " + ", ".join(known)
    return ValueError(expected(prefix + key, what, key))


def from_mapping(mapping: Mapping[str, Any]) -> StudyConfig:
    """Build and validate a config from a nested mapping (the TOML layout).

    The top-level key ``task`` (default ``"classification"``) picks the task; classification reads the
    sections data, noise, methods, model, train; any other task reads its own section ``[<task>]``. A
    section of another task is an error naming it.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(expected("config", "to be a mapping", type(mapping).__name__))
    from labelsmooth.study.tasks import TASKS, get_task

    task_name = mapping.get("task", "classification")
    if not isinstance(task_name, str):
        raise TypeError(expected("task", "to be a task name (a string)", task_name))
    task = get_task(task_name)
    kwargs: dict[str, Any] = {"task": task_name}
    own = list(SECTIONS) if task_name == "classification" else ([task_name] if task.config_cls else [])
    known_top = own + list(_SHARED_SECTIONS) + list(_TOP_KEYS)
    for key, value in mapping.items():
        if key == "task":
            continue
        if key in _SHARED_SECTIONS:
            kwargs[key] = parse_section(key, _SHARED_SECTIONS[key], value)
        elif key in own:
            cls = SECTIONS[key] if task_name == "classification" else task.config_cls
            assert cls is not None  # own holds task_name only when the task has a section
            section = parse_section(key, cls, value)
            if task_name == "classification":
                kwargs[key] = section
            else:
                kwargs["section"] = section
        elif key in _TOP_KEYS:
            kwargs[key] = _coerce(key, StudyConfig, key, value)
        elif key in SECTIONS or key in TASKS:
            owner = "classification" if key in SECTIONS else key
            raise ValueError(
                expected(key, f"to be a section of task {task_name!r} (it belongs to task {owner!r}; "
                         f"set task = {owner!r} to use it)", key)
            )  # fmt: skip
        else:
            raise _unknown("config", key, known_top)
    if task_name != "classification" and "section" not in kwargs and task.config_cls is not None:
        kwargs["section"] = task.config_cls()
    task_seeds = getattr(task, "default_seeds", None)  # a task's own default seed count
    if "seeds" not in kwargs and task_seeds:
        kwargs["seeds"] = tuple(task_seeds)
    cfg = StudyConfig(**kwargs)
    validate(cfg)
    if task_name != "classification":
        task.validate(cfg.section)
    return cfg


def parse_section(name: str, cls: type, value: Any) -> Any:
    """One TOML section as an instance of its dataclass: unknown keys get a "did you mean" error naming
    ``name.key``; values are coerced (lists -> tuples) and type-checked against the defaults."""
    if not isinstance(value, Mapping):
        raise TypeError(expected(name, "to be a table of keys", value))
    names = [f.name for f in dataclasses.fields(cls)]
    for sub in value:
        if sub not in names:
            raise _unknown(name, sub, names)
    return cls(**{k: _coerce(f"{name}.{k}", cls, k, v) for k, v in value.items()})


def _coerce(dotted: str, cls: type, name: str, value: Any) -> Any:
    """Normalise a raw value (lists -> tuples, seed counts -> seed lists) and check its type."""
    default = next(f for f in dataclasses.fields(cls) if f.name == name)
    ref = (
        default.default if default.default is not dataclasses.MISSING else default.default_factory()  # type: ignore[misc,operator]
    )
    if dotted == "seeds":
        if is_number(value, integer=True):
            count = check_number("seeds", value, lo=1, integer=True, what=">= 1 (a count) or a list of ints")
            return tuple(range(count))
        return _tuple_of(dotted, value, (int,))
    if dotted == "noise.matrix":
        if not isinstance(value, (list, tuple)):
            raise TypeError(expected(dotted, "to be a list of rows", value))
        return tuple(_tuple_of(dotted, row, (int, float), to_float=True) for row in value)
    if dotted == "methods.focal":
        return _tuple_of(dotted, value, (int, float, str))
    coerce = next((m.coerce for m in CLASSIFICATION_METHODS if f"methods.{m.config_key}" == dotted), None)
    if coerce is not None:  # a method whose parameters are lists or tables (classwise, negative_schedule)
        if not isinstance(value, (list, tuple)):
            raise TypeError(expected(dotted, "to be a list", value))
        return tuple(coerce(dotted, v) for v in value)
    if isinstance(ref, tuple):
        if isinstance(value, str) or is_number(value):
            value = [value]
        kinds: tuple[type, ...] = (str,) if dotted == "data.datasets" else (int, float)
        if ref and all(isinstance(x, str) for x in ref):
            kinds = (str,)
        elif ref and any(isinstance(x, str) for x in ref):
            kinds = (int, float, str)
        return _tuple_of(dotted, value, kinds, to_float=kinds == (int, float))
    if isinstance(ref, bool):
        return check_bool(dotted, value, what="to be true or false")
    if isinstance(ref, int):
        return check_number(dotted, value, integer=True)
    if isinstance(ref, float):
        return check_number(dotted, value, type_what="to be a number")
    if isinstance(ref, str):
        if not isinstance(value, str):
            raise TypeError(expected(dotted, "to be a string", value))
        return value
    return value  # pragma: no cover


def _tuple_of(dotted: str, value: Any, kinds: tuple[type, ...], *, to_float: bool = False) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise TypeError(expected(dotted, "to be a list", value))
    out = []
    for item in value:
        if not isinstance(item, kinds) or not (isinstance(item, str) or is_number(item)):
            names = " or ".join(k.__name__ for k in kinds)
            raise TypeError(expected(dotted, f"to hold only {names} values", item))
        out.append(float(item) if to_float and not isinstance(item, str) else item)  # type: ignore[arg-type]
    return tuple(out)


def _check_unique(dotted: str, values: tuple) -> None:
    if len(set(values)) != len(values):
        raise ValueError(expected(dotted, "to hold distinct values", list(values)))


def validate(cfg: StudyConfig) -> StudyConfig:
    """Check every value of a config; raise naming the first offending key. Returns ``cfg``."""

    rng = check_scalar_range

    def at_least(dotted: str, v: int, lo: int):
        if v < lo:
            raise ValueError(expected(dotted, f">= {lo}", v))

    d, n, m, mo, t = cfg.data, cfg.noise, cfg.methods, cfg.model, cfg.train
    if not d.datasets:
        raise ValueError(expected("data.datasets", "to name at least one dataset", []))
    _check_unique("data.datasets", d.datasets)
    for name in d.datasets:
        if name not in DATASETS:
            raise ValueError(expected("data.datasets", "to hold only " + ", ".join(DATASETS), name))
        if name in ("npz", "csv", "images", "cifar10") and not d.path:
            raise ValueError(expected("data.path", f"to name a file or folder for dataset {name!r}", ""))
    if sum(name in ("npz", "csv", "images", "cifar10") for name in d.datasets) > 1:
        raise ValueError(
            expected("data.datasets", "to use at most one file dataset (one data.path)", d.datasets)
        )
    rng("data.val_fraction", d.val_fraction, 0, 1, lo_open=True, hi_open=True)
    rng("data.test_fraction", d.test_fraction, 0, 1, lo_open=True, hi_open=True)
    if d.val_fraction + d.test_fraction >= 0.9:
        raise ValueError(
            expected("data.val_fraction", "+ data.test_fraction < 0.9", d.val_fraction + d.test_fraction)
        )
    rng("data.separation", d.separation, 0, math.inf, lo_open=False, hi_open=True)
    at_least("data.n_samples", d.n_samples, 20)
    at_least("data.n_features", d.n_features, 1)
    at_least("data.n_classes", d.n_classes, 2)
    if d.max_samples != 0:
        at_least("data.max_samples", d.max_samples, 20)

    if n.kind not in NOISE_KINDS:
        raise ValueError(expected("noise.kind", "to be one of " + ", ".join(NOISE_KINDS), n.kind))
    if not n.rates:
        raise ValueError(expected("noise.rates", "to hold at least one rate", []))
    _check_unique("noise.rates", n.rates)
    for r in n.rates:
        rng("noise.rates", r, 0, 1, hi_open=n.kind != "matrix")
    if n.kind == "matrix":
        _check_matrix(n.matrix)
    elif n.matrix:
        raise ValueError(expected("noise.matrix", 'to be empty unless noise.kind = "matrix"', "a matrix"))

    for entry in CLASSIFICATION_METHODS:
        if entry.config_key is None:
            continue
        values = getattr(m, entry.config_key)
        for v in values:
            if entry.check is not None:
                entry.check(f"methods.{entry.config_key}", v)
        _check_unique(f"methods.{entry.config_key}", values)
    if not (m.hard or any(getattr(m, e.config_key) for e in CLASSIFICATION_METHODS if e.config_key)):
        raise ValueError(expected("methods", "to enable at least one method", "none"))

    if mo.kind not in MODEL_KINDS:
        raise ValueError(expected("model.kind", "to be one of " + ", ".join(MODEL_KINDS), mo.kind))
    at_least("model.width", mo.width, 1)
    at_least("model.depth", mo.depth, 1)
    at_least("model.channels", mo.channels, 1)

    at_least("train.epochs", t.epochs, 1)
    rng("train.lr", t.lr, 0, 10, lo_open=True)
    at_least("train.batch_size", t.batch_size, 0)
    rng("train.weight_decay", t.weight_decay, 0, 1)
    at_least("train.eval_every", t.eval_every, 1)

    if not cfg.seeds:
        raise ValueError(expected("seeds", "to hold at least one seed", []))
    _check_unique("seeds", cfg.seeds)
    for s in cfg.seeds:
        if s < 0:
            raise ValueError(expected("seeds", "to hold non-negative ints", s))
    at_least("workers", cfg.workers, 0)
    at_least("n_bins", cfg.n_bins, 2)
    if not cfg.out:
        raise ValueError(expected("out", "to be a folder path", cfg.out))
    _validate_backend(cfg)
    return cfg


def _validate_backend(cfg: StudyConfig) -> None:
    if cfg.backend not in BACKENDS:
        raise ValueError(expected("backend", "to be one of " + ", ".join(BACKENDS), cfg.backend))
    r = cfg.ray
    if r.address not in ("", "auto"):
        host, _, port = r.address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            what = '"" (a local instance), "auto" or "HOST:PORT"'
            raise ValueError(expected("ray.address", what, r.address))
    if not (r.cpus_per_run > 0 and math.isfinite(r.cpus_per_run)):
        raise ValueError(expected("ray.cpus_per_run", "> 0", r.cpus_per_run))
    if not (r.gpus_per_run >= 0 and math.isfinite(r.gpus_per_run)):
        raise ValueError(expected("ray.gpus_per_run", ">= 0", r.gpus_per_run))
    if r.max_retries < 0:
        raise ValueError(expected("ray.max_retries", ">= 0", r.max_retries))
    if not (r.connect_timeout > 0 and math.isfinite(r.connect_timeout)):
        raise ValueError(expected("ray.connect_timeout", "> 0 (seconds)", r.connect_timeout))


def _check_matrix(matrix: tuple[tuple[float, ...], ...]) -> None:
    k = len(matrix)
    if k < 2 or any(len(row) != k for row in matrix):
        raise ValueError(
            expected("noise.matrix", "to be a square K x K list of rows, K >= 2", _shape(matrix))
        )
    for i, row in enumerate(matrix):
        if any(v < 0 or math.isnan(v) for v in row):
            raise ValueError(expected("noise.matrix", "to hold non-negative entries", list(row)))
        if abs(sum(row) - 1.0) > 1e-6:
            raise ValueError(expected(f"noise.matrix[{i}]", "to sum to 1 (rows are distributions)", sum(row)))


def _shape(matrix: Any) -> str:
    return f"{len(matrix)} rows of lengths {sorted({len(r) for r in matrix})}"


def _merge(base: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) > 2 or not all(parts):
        raise ValueError(expected("key", "to be `name` or `section.name`", dotted))
    if len(parts) == 2:
        section, key = parts
        from labelsmooth.study.tasks import TASKS

        if section not in SECTIONS and section not in TASKS and section not in _SHARED_SECTIONS:
            known = list(SECTIONS) + list(TASKS) + list(_SHARED_SECTIONS) + list(_TOP_KEYS)
            raise _unknown("config", section, known)
        sub = base.setdefault(section, {})
        if not isinstance(sub, dict):
            raise TypeError(expected(section, "to be a table of keys", sub))
        sub[key] = value
    else:
        base[parts[0]] = value


def apply_overrides(cfg: StudyConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> StudyConfig:
    """Apply dotted-key overrides (``{"train.epochs": 5}``) on top of a config and validate the result."""
    base = _as_mapping(cfg)
    for key, value in overrides.items():
        _merge(base, key, value)
    return from_mapping(base)


def _as_mapping(cfg: StudyConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, StudyConfig):
        return cfg.to_dict()
    return json.loads(json.dumps(cfg))


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> StudyConfig:
    """Read a TOML config (or the defaults when ``path`` is None), apply ``overrides`` and validate.

    Raises ValueError naming the key for unknown keys and out-of-range values, FileNotFoundError for a
    missing file.
    """
    base: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(expected("config", "to be an existing TOML file", str(p)))
        try:
            base = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{p} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); save the "
                "config as UTF-8."
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(expected("config", f"to be valid TOML ({exc})", str(p))) from None
    return apply_overrides(base, overrides or {})


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` right-hand side with TOML's rules (``5``, ``0.1``, ``[0, 0.3]``,
    ``"mlp"``);
    a bare word that is not TOML is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def to_toml(cfg: StudyConfig) -> str:
    """Render a config as TOML (the file written next to the results; ``--config`` reads it back)."""
    d = cfg.to_dict()
    lines = ["# labelsmooth study: resolved configuration", ""]
    for key in _TOP_KEYS:
        lines.append(f"{key} = {_toml_value(d[key])}")
    for section in [k for k in d if k not in _TOP_KEYS]:
        lines += ["", f"[{section}]"]
        for key, value in d[section].items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(expected("value", "to be TOML-representable", v))  # pragma: no cover
