"""The grid of runs: datasets x noise rates x methods x seeds, and each run's identity (its hash).

A run's hash covers everything that changes its numbers (the run's axes, the data fingerprint, the model
and training settings, the number of calibration bins) and nothing that does not (workers, output folder),
so that re-running a study skips exactly the runs already stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from labelsmooth._deprecation import warn_renamed
from labelsmooth.study.config import StudyConfig
from labelsmooth.study.identity import config_hash
from labelsmooth.study.methods import Method as MethodEntry
from labelsmooth.study.methods import get_method
from labelsmooth.study.objectives import CLASSIFICATION_METHODS


@dataclass(frozen=True)
class Method:
    """One method of the grid with its parameter: a registry entry's name (:mod:`labelsmooth.study.methods`)
    and ``param`` (a for the smoothing methods, beta for the confidence penalty, gamma or "flsd-53" for
    the focal loss, None for hard targets)."""

    name: str
    param: float | str | None = None

    @property
    def entry(self) -> MethodEntry:
        return get_method(self.name)

    @property
    def label(self) -> str:
        return self.entry.label_of(self.param)

    @property
    def label_smoothing(self) -> float | None:
        """The position on the smoothing axis (the factor a, stored in the records as ``alpha``; uniform
        smoothing only; hard = 0, negative < 0)."""
        return self.entry.label_smoothing(self.param)

    @property
    def alpha(self) -> float | None:
        """Deprecated spelling of :attr:`label_smoothing` (one release)."""
        warn_renamed("grid.Method.alpha", "grid.Method.label_smoothing")
        return self.label_smoothing


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    dataset: str
    noise_kind: str
    noise_rate: float
    method: Method
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "noise_kind": self.noise_kind,
            "noise_rate": self.noise_rate,
            "method": self.method.name,
            "param": self.method.param,
            "seed": self.seed,
        }


def methods_of(cfg: StudyConfig) -> list[Method]:
    """The methods a config enables, in registry order (hard targets first); the parameters of the
    smoothing methods and the confidence penalty sorted, focal's as given."""
    m = cfg.methods
    out: list[Method] = [Method("hard")] if m.hard else []
    for entry in CLASSIFICATION_METHODS:
        if entry.config_key is None:
            continue
        values = getattr(m, entry.config_key)
        if entry.name != "focal" and entry.coerce is None:  # tables and pairs: as given
            values = sorted(values)
        out += [Method(entry.name, v) for v in values]
    return out


def expand(cfg: StudyConfig, datasets: Iterable[str] | None = None) -> list[RunSpec]:
    """Every run of the study, in a fixed order (datasets, noise, seeds, methods). ``datasets`` names the
    loaded datasets when they are not the config's (the user's own data)."""
    methods = methods_of(cfg)
    return [
        RunSpec(ds, cfg.noise.kind, rate, method, seed)
        for ds in (cfg.data.datasets if datasets is None else datasets)
        for rate in sorted(cfg.noise.rates)
        for seed in cfg.seeds
        for method in methods
    ]


def run_config(spec: RunSpec, cfg: StudyConfig, fingerprint: str, model_name: str | None) -> dict[str, Any]:
    """Everything that determines a run's numbers, as a JSON-ready dict (stored with the row)."""
    data = asdict(cfg.data)
    for key in ("datasets", "download"):
        data.pop(key)
    return {
        "run": spec.to_dict(),
        "data": data,
        "data_fingerprint": fingerprint,
        "noise_matrix": [list(r) for r in cfg.noise.matrix],
        "model": model_name or asdict(cfg.model),
        "train": asdict(cfg.train),
        "n_bins": cfg.n_bins,
    }


__all__ = ["Method", "RunSpec", "config_hash", "expand", "methods_of", "run_config"]
