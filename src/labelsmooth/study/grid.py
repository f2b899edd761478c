"""The grid of runs: datasets x noise rates x methods x seeds, and each run's identity (its hash).

A run's hash covers everything that changes its numbers (the run's axes, the data fingerprint, the model
and training settings, the number of calibration bins) and nothing that does not (workers, output folder),
so that re-running a study skips exactly the runs already stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from labelsmooth.study.config import StudyConfig

METHOD_NAMES = ("hard", "ls", "ls-prior", "negative", "confidence-penalty", "focal")


@dataclass(frozen=True)
class Method:
    """One training objective. ``param`` is a for the smoothing methods, beta for the confidence
    penalty, gamma (or "flsd-53") for the focal loss, None for hard targets."""

    name: str
    param: float | str | None = None

    @property
    def label(self) -> str:
        if self.name == "hard":
            return "hard (a=0)"
        if self.name == "ls":
            return f"ls a={self.param:g}"
        if self.name == "negative":
            return f"neg-ls a={self.param:g}"
        if self.name == "ls-prior":
            return f"ls-prior a={self.param:g}"
        if self.name == "confidence-penalty":
            return f"conf-penalty b={self.param:g}"
        if isinstance(self.param, str):
            return f"focal {self.param}"
        return f"focal g={self.param:g}"

    @property
    def alpha(self) -> float | None:
        """The position on the smoothing axis a (uniform smoothing only; hard = 0, negative < 0)."""
        if self.name == "hard":
            return 0.0
        if self.name in ("ls", "negative"):
            return float(self.param)  # type: ignore[arg-type]
        return None


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    dataset: str
    noise_kind: str
    noise_rate: float
    method: Method
    seed: int

    @property
    def setting(self) -> tuple[str, str, float]:
        """The (dataset, noise kind, noise rate) a verdict is given for."""
        return (self.dataset, self.noise_kind, self.noise_rate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "noise_kind": self.noise_kind,
            "noise_rate": self.noise_rate,
            "method": self.method.name,
            "param": self.method.param,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(
            d["dataset"], d["noise_kind"], float(d["noise_rate"]), Method(d["method"], d["param"]), d["seed"]
        )


def methods_of(cfg: StudyConfig) -> list[Method]:
    """The methods a config enables, in report order."""
    m = cfg.methods
    out: list[Method] = [Method("hard")] if m.hard else []
    out += [Method("ls", a) for a in sorted(m.label_smoothing)]
    out += [Method("ls-prior", a) for a in sorted(m.prior)]
    out += [Method("negative", a) for a in sorted(m.negative)]
    out += [Method("confidence-penalty", b) for b in sorted(m.confidence_penalty)]
    out += [Method("focal", g) for g in m.focal]
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


def config_hash(run_cfg: dict[str, Any]) -> str:
    """A short, stable hash of a run's config (canonical JSON, sorted keys)."""
    text = json.dumps(run_cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
