"""Task ``classification``: does label smoothing help *my* classifier, with which a, and at what cost?

The grid is datasets x label noise x methods x seeds (:mod:`labelsmooth.study.grid`); one run trains and
measures a model (:mod:`labelsmooth.study.train`); the verdict (:mod:`labelsmooth.study.verdict`) compares
the validation-chosen a with hard targets, paired by seed. Its config is the sections ``data``, ``noise``,
``methods``, ``model`` and ``train`` (:mod:`labelsmooth.study.config`); its methods are the registry entries
of :mod:`labelsmooth.study.objectives`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labelsmooth._validation import expected
from labelsmooth.study import data as data_mod
from labelsmooth.study import figures
from labelsmooth.study.grid import Method, expand, run_config
from labelsmooth.study.methods import freeze_param
from labelsmooth.study.models import model_name
from labelsmooth.study.stats import group
from labelsmooth.study.store import StoredRun
from labelsmooth.study.tasks import register
from labelsmooth.study.tasks.base import Context, Figure, Metric, NeededRun, RunRecord, RunSpec, Task
from labelsmooth.study.verdict import SettingVerdict, judge, noise_phrase

HARD = ("hard", None)

METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy", better="higher", scaled=True, cli=True, panel=True,
           description="test accuracy"),
    Metric("nll", "NLL", better="lower", scaled=True, cli=True, panel=True, description="test NLL"),
    Metric("brier", "Brier", better="lower", scaled=True, summary=False, description="test Brier score"),
    Metric("ece", "ECE", better="lower", scaled=True, cli=True, panel=True, description="test ECE",
           scaled_in=("summary", "cli", "panel")),
    Metric("smece", "smECE", better="lower", scaled=True, description="test smooth ECE"),
    Metric("calibration_gap", "gap", scaled=True, cli=True, panel=True, scaled_in=("summary", "panel"),
           description="signed gap (confidence - accuracy)"),
    Metric("mean_confidence", "confidence", scaled=True, summary=False,
           description="mean top-label confidence"),
    Metric("entropy", "entropy", scaled=True, summary=False, description="mean predictive entropy"),
    Metric("temperature", "T", cli=True, description="temperature fitted on the validation split"),
    Metric("temperature_at_bound", "T at bound", summary=False,
           description="the bound the temperature was clamped to, if any"),
    Metric("train_logit_gap", "train logit gap (median)", summary=False,
           description="median training logit gap"),
    Metric("train_logit_gap_mean", "train logit gap (mean)",
           description="mean training logit gap (the statistic the logit-gap figure marks)"),
    Metric("test_logit_gap", "test logit gap", summary=False, description="median test logit gap"),
    Metric("optimal_logit_gap", "optimal gap",
           description="log(1 + K(1 - a)/a), the smoothed loss's optimum"),
    Metric("memorised", "memorised", better="lower", description="fraction of noisy training labels fitted"),
    Metric("train_accuracy", "train accuracy", summary=False,
           description="against the (noisy) training labels"),
    Metric("train_accuracy_clean", "train accuracy (clean)", summary=False),
    Metric("noise_fraction", "noise fraction", summary=False, description="training labels actually flipped"),
    Metric("val_accuracy", "val accuracy", better="higher", summary=False),
    Metric("val_nll", "val NLL", better="lower", summary=False),
    Metric("val_ece", "val ECE", better="lower", summary=False),
    Metric("diverged", "diverged", summary=False,
           description="non-finite or exploded loss, or the temperature at a bound (train.divergence)"),
    Metric("diverged_reason", "why diverged", summary=False),
    Metric("epochs_run", "epochs", summary=False),
    Metric("num_classes", "K", summary=False),
    Metric("wall_time", "wall time (s)", fmt=".2f", summary=False),
)  # fmt: skip
"""The classification metrics table: what a run stores (scaled ones also as ``ts_<key>``), in report
order."""


class Datasets(dict):
    """The loaded datasets, name -> :class:`~labelsmooth.study.data.Dataset`, and the user's model_fn
    (part of each run's hash)."""

    model_fn: Any = None


class ClassificationTask(Task):
    name = "classification"
    summary = (
        "does label smoothing help a classifier on your data, with which a, and at what cost in calibration?"
    )
    runtime = "90 runs (digits, 2 noise rates, 9 methods, 5 seeds), about 55-85 s on 2 idle cores"
    metrics = METRICS
    setting_axes = ("dataset", "noise_kind", "noise_rate")

    def section(self, cfg: Any) -> Any:
        return cfg

    def load(self, cfg: Any, *, data: Any = None, model_fn: Any = None) -> Datasets:
        if model_fn is not None and not callable(model_fn):
            raise TypeError(
                expected("model_fn", "to be callable (input_shape, num_classes) -> nn.Module", model_fn)
            )
        datasets = Datasets(load_datasets(cfg, data))
        datasets.model_fn = model_fn
        if cfg.noise.kind == "matrix":
            k = len(cfg.noise.matrix)
            for name, ds in datasets.items():
                if ds.num_classes != k:
                    raise ValueError(
                        expected("noise.matrix", f"to be {ds.num_classes} x {ds.num_classes} for {name}", k)
                    )
        if cfg.model.kind == "cnn" and model_fn is None:
            for name, ds in datasets.items():
                if not ds.is_image:
                    raise ValueError(
                        expected("model.kind", f"not 'cnn' for the non-image dataset {name!r}", "cnn")
                    )
        for ds in datasets.values():  # a class too small to split fails now, not in a worker
            data_mod.split(ds.y, cfg.data.val_fraction, cfg.data.test_fraction, seed=0, classes=ds.classes)
        return datasets

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        mname = model_name(getattr(datasets, "model_fn", None))
        return [
            RunSpec(s.to_dict(), run_config(s, cfg, datasets[s.dataset].fingerprint, mname), payload=s)
            for s in expand(cfg, datasets)
        ]

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        from labelsmooth.study.train import RunContext, execute

        rec = execute(spec.payload, RunContext(ctx.config, ctx.datasets, ctx.model_fn))
        return RunRecord(rec["metrics"], rec["curves"], rec["arrays"])

    def record(self, run: Any) -> dict[str, Any]:
        s = run.spec
        method = Method(s["method"], freeze_param(s["param"]))
        rec: dict[str, Any] = {
            "dataset": s["dataset"], "noise_kind": s["noise_kind"], "noise_rate": s["noise_rate"],
            "method": s["method"], "param": method.param, "label": method.label,
            "alpha": method.label_smoothing, "seed": s["seed"],
        }  # fmt: skip
        rec.update({k: v for k, v in run.metrics.items() if not isinstance(v, (dict, list))})
        if "diverged_reason" not in run.metrics:  # stored before divergence was defined: the same rule now
            from labelsmooth.study.train import divergence

            reason = divergence(rec)
            rec["diverged"], rec["diverged_reason"] = reason is not None, reason
        rec["run_hash"] = run.run_hash
        rec["library_version"] = run.library_version
        return rec

    def verdict(self, records: list[dict[str, Any]]) -> list[SettingVerdict]:
        return judge(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        return classification_figures(runs, records, verdicts)

    def describe(self, spec: RunSpec) -> str:
        s = spec.payload
        return f"{s.dataset:10s} {s.noise_kind}:{s.noise_rate:<5g} {s.method.label:22s} seed {s.seed:<3d}"

    def setting_header(self) -> list[str]:
        return ["dataset", "noise"]

    def setting_cells(self, key: tuple) -> list[str]:
        ds, kind, rate = key
        return [ds, noise_phrase(kind, rate)]


DataArg = Any  # None | Dataset | (X, y) | {name: (X, y) or Dataset}


def load_datasets(cfg: Any, data: DataArg = None) -> dict[str, data_mod.Dataset]:
    """The datasets of the study: the user's ``data`` when given, else those the config names."""
    if data is None:
        return {name: data_mod.load(name, cfg.data) for name in cfg.data.datasets}
    if isinstance(data, data_mod.Dataset):
        return {data.name: data}
    if isinstance(data, tuple) and len(data) == 2:
        return {"user": data_mod.from_arrays(*data, name="user")}
    if isinstance(data, Mapping):
        out = {}
        for name, value in data.items():
            if isinstance(value, data_mod.Dataset):
                out[str(name)] = value
            elif isinstance(value, tuple) and len(value) == 2:
                out[str(name)] = data_mod.from_arrays(*value, name=str(name))
            else:
                raise TypeError(
                    expected(f"data[{name!r}]", "to be an (X, y) pair or a Dataset", type(value).__name__)
                )
        if not out:
            raise ValueError(expected("data", "to hold at least one dataset", {}))
        return out
    raise TypeError(
        expected("data", "to be an (X, y) pair, a Dataset or a mapping of them", type(data).__name__)
    )


# ------------------------------------------------------------------------------------------- figures


def classification_figures(
    runs: list[StoredRun], records: list[dict], verdicts: list[SettingVerdict]
) -> list[Figure]:
    """Every figure of the report: metrics against a per dataset, then four figures per setting."""
    if not runs:
        return []
    out = [
        Figure(
            f"metrics_vs_alpha_{_slug(dataset)}",
            f"{dataset}: accuracy, NLL, ECE and the signed gap against a (a = 0: hard targets; a < 0: "
            "negative smoothing), one curve per noise level; error bars: 95% t-intervals over seeds; "
            "dashed: after temperature scaling. A panel whose means span more than a factor "
            f"{figures.LOG_RATIO:g} (a diverged method) is drawn on a log scale and says so in its title.",
            figures.metrics_vs_alpha(records, dataset),
        )
        for dataset in dict.fromkeys(r["dataset"] for r in records)
    ]
    by_hash = {r.run_hash: r for r in runs}
    for v in verdicts:
        s = _SettingRuns.of(v, records, by_hash)
        for make in (_reliability_figure, _logit_gap_figure, _projection_figure, _curves_figure):
            fig = make(s)
            if fig is not None:
                out.append(fig)
    return out


@dataclass
class _SettingRuns:
    """The runs of one setting, arranged for its figures: hard targets and the verdict's chosen a."""

    slug: str
    where: str
    by_method: dict[tuple, list[dict]]
    by_hash: dict[str, StoredRun]
    best: tuple | None
    first_seed: int | None

    @classmethod
    def of(cls, v: SettingVerdict, records: list[dict], by_hash: dict[str, StoredRun]) -> _SettingRuns:
        key = (v.dataset, v.noise_kind, v.noise_rate)
        recs = [r for r in records if (r["dataset"], r["noise_kind"], r["noise_rate"]) == key]
        return cls(
            slug=_slug(f"{v.dataset}_{v.noise_kind}_{v.noise_rate:g}"),
            where=f"{v.dataset}, {noise_phrase(v.noise_kind, v.noise_rate)}",
            by_method=group(recs, ("method", "param")),
            by_hash=by_hash,
            best=("ls", v.label_smoothing) if v.label_smoothing is not None else None,
            first_seed=min((r["seed"] for r in recs), default=None),
        )

    def runs(self, key: tuple | None) -> list[StoredRun]:
        return [self.by_hash[r["run_hash"]] for r in self.by_method.get(key, [])] if key else []

    def label(self, key: tuple | None) -> str:
        recs = self.by_method.get(key, []) if key else []
        return recs[0]["label"] if recs else ""

    def first(self, key: tuple | None) -> StoredRun | None:
        return next((r for r in self.runs(key) if r.spec["seed"] == self.first_seed), None)

    def figure(self, name: str, caption: str, render: Any, panels: list) -> Figure | None:
        """``Figure`` ``<name>_<slug>`` of ``render(panels, where)``, or None without panels."""
        return Figure(f"{name}_{self.slug}", caption, render(panels, self.where)) if panels else None

    def pair(self) -> list[tuple[str, StoredRun]]:
        """(label, first-seed run) for hard targets and the chosen a, where present."""
        out = []
        for key in (HARD, self.best):
            run = self.first(key)
            if key and run is not None:
                out.append((self.label(key), run))
        return out


def _reliability_figure(s: _SettingRuns) -> Figure | None:
    panels: list[tuple[str | None, list[dict]]] = []
    best = s.runs(s.best)
    for label, runs, key in ((s.label(HARD), s.runs(HARD), "reliability"),
                             (s.label(s.best), best, "reliability"),
                             (f"{s.label(s.best)}, after T", best, "reliability_ts")):  # fmt: skip
        bins = [r.arrays[key] for r in runs if r.arrays.get(key)]
        if bins:
            panels.append((label, bins))
    return s.figure(
        "reliability",
        f"{s.where}: reliability diagrams of hard targets, the chosen a, and the chosen a after temperature "
        "scaling (test split, bins pooled over seeds). Points below the diagonal: overconfident; above: "
        "underconfident. The ECE in the legend is that of the pooled bins (all seeds' test points in one "
        "diagram); the tables' ECE is the mean of the per-seed ECEs, usually larger, since each seed's "
        "ECE also carries its own binning noise.",
        figures.reliability_png,
        panels,
    )


def _logit_gap_figure(s: _SettingRuns) -> Figure | None:
    panels = []
    for key, recs in s.by_method.items():
        label = recs[0]["label"]
        run = s.first(key) if recs[0]["method"] in ("hard", "ls") else None
        if run is not None and run.arrays.get("gap_hist_train"):
            k = int(run.metrics.get("num_classes") or 0)
            panels.append(
                (
                    label,
                    run.arrays["gap_hist_train"],
                    recs[0]["alpha"],
                    run.metrics.get("optimal_logit_gap"),
                    k,
                )
            )
    return s.figure(
        "logit_gap",
        f"{s.where}: training logit gaps (seed {s.first_seed}); solid lines mark log(1 + K(1 - a)/a), the "
        "gap at the optimum of the smoothed loss, dashed lines the mean gap. Hard targets have no finite "
        "optimum.",
        figures.logit_gaps_png,
        panels,
    )


def _projection_figure(s: _SettingRuns) -> Figure | None:
    panels = [(label, run.arrays["projection"]) for label, run in s.pair() if run.arrays.get("projection")]
    return s.figure(
        "projection",
        f"{s.where}: penultimate-layer activations of three classes (test split, seed {s.first_seed}) "
        "projected on the plane through their last-layer templates (Müller et al., 2019). Smoothing pulls "
        "each class into a tighter cluster at equal distance from the others.",
        figures.projection_png,
        panels,
    )


def _curves_figure(s: _SettingRuns) -> Figure | None:
    panels = [(label, run.curves) for label, run in s.pair() if run.curves.get("epoch")]
    return s.figure(
        "curves",
        f"{s.where}: per-epoch validation NLL and accuracy (seed {s.first_seed}).",
        figures.curves,
        panels,
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


TASK = register(ClassificationTask())
