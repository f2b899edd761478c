"""Task ``value``: regression under noisy targets by MSE, two-hot and HL-Gauss cross-entropy.

The question (Farebrother et al. 2024, *Stop Regressing*): when the regression targets are noisy — returns
are — does learning a value as a classification over fixed bins beat the squared error? The task fits
one small MLP per method on noisy targets and measures it against the *clean* targets:

- ``data="synthetic"`` (default): ``x ~ U[-1, 1]^d``, clean ``f(x) = sin(3 x_1) cos(2 x_2) + mean(x)/2``,
  noisy ``y = f(x) + s t_nu`` with Student-t noise (``nu = noise_df``, heavy-tailed for small ``nu``).
- ``data="cartpole"``: discounted Monte-Carlo returns of ``gymnasium``'s CartPole (extra
  ``labelsmooth[rl]``) under a fixed linear controller mixed with ``epsilon``-random actions, from start
  states drawn uniformly in a box; the noisy target is one rollout's return, the clean one the mean of
  ``rollouts`` returns from the same state.

Methods (the task's registry :data:`VALUE_METHODS`, chosen by the section's ``methods`` table): ``mse``;
``two_hot``; ``hl_gauss`` with parameter ``r`` = sigma / bin width, ``r`` in {0.5, 0.75, 1.5} by default
(0.75 is the paper's recommendation). The distributional methods predict the histogram mean
(:func:`labelsmooth.histogram_mean`); their predicted distribution is scored by the CRPS and the coverage of
its central 80% interval on noisy test targets. MSE regresses the targets mapped affinely from the support
to [-1, 1] (the same prior knowledge of the range the bins carry; nothing is clipped), so that no method
starts from a badly scaled output.

``run_one`` is deterministic given its arguments: the seed fixes the data, the noise and the initial
weights, the same for every method, so methods are compared paired over seeds. The task
(``labelsmooth study --task value``) checks the claim HL-Gauss <= two-hot <= MSE in RMSE with paired 95%
t-intervals over seeds. The data and the distributional measures are in
:mod:`labelsmooth.study.tasks.value_data` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import nn

from labelsmooth import Support, histogram_mean, hl_gauss_loss, two_hot_loss
from labelsmooth._validation import check_choice, check_int, expected
from labelsmooth.study.methods import Method
from labelsmooth.study.tasks import register
from labelsmooth.study.tasks._common import one_thread
from labelsmooth.study.tasks._rl import (
    MethodTableTask,
    by_label,
    check_float,
    errorbar_figure,
    label,
    mean_of,
    method_grid,
    rl_method,
)
from labelsmooth.study.tasks._value_verdict import summarize, verdict
from labelsmooth.study.tasks.base import Figure, Metric, RunSpec, Verdict
from labelsmooth.study.tasks.value_data import cartpole_env, cartpole_returns, crps_and_coverage, make_data

__all__ = [
    "METHODS",
    "METRICS",
    "VALUE_METHODS",
    "ValueSection",
    "ValueTask",
    "cartpole_returns",
    "crps_and_coverage",
    "make_data",
    "run_one",
    "summarize",
    "verdict",
]

METHODS: tuple[tuple[str, float | None], ...] = (
    ("mse", None),
    ("two_hot", None),
    ("hl_gauss", 0.5),
    ("hl_gauss", 0.75),
    ("hl_gauss", 1.5),
)
"""The default grid: (method, param); for ``hl_gauss`` the param is sigma in bin widths."""

METRICS: tuple[Metric, ...] = (
    Metric(
        "rmse",
        "RMSE vs clean",
        ".4f",
        "lower",
        cli=True,
        description="RMSE of the prediction against the clean targets",
    ),
    Metric(
        "mae", "MAE vs clean", ".4f", "lower", description="mean absolute error against the clean targets"
    ),
    Metric(
        "crps",
        "CRPS (noisy test)",
        ".4f",
        "lower",
        cli=True,
        description="CRPS of the predicted histogram on noisy test targets (None for MSE)",
    ),
    Metric(
        "coverage80",
        "80% coverage",
        ".3f",
        cli=True,
        description="fraction of noisy test targets inside the central 80% interval (0.8 when calibrated)",
    ),
    Metric("train_loss", "final train loss", ".4f", summary=False, description="the last training loss"),
)
"""The value task's metrics table (CRPS and coverage are None for MSE, which predicts no distribution)."""


def _default_methods() -> dict[str, Any]:
    return {"mse": True, "two_hot": True, "hl_gauss": [0.5, 0.75, 1.5]}


@dataclass(frozen=True)
class ValueSection:
    """The ``[value]`` section of a study: data, model, training and methods of the value-regression task."""

    data: Literal["synthetic", "cartpole"] = "synthetic"
    n_train: int = 2000
    n_test: int = 2000
    dim: int = 2
    noise_df: float = 2.0
    """Student-t degrees of freedom of the synthetic noise (heavy-tailed: variance infinite for <= 2)."""
    noise_scale: float = 0.5
    v_min: float = -3.0
    v_max: float = 3.0
    """Support of the synthetic task (CartPole's is [0, 1/(1 - gamma)])."""
    bins: int = 48
    hidden: int = 64
    steps: int = 400
    lr: float = 3e-3
    eval_every: int = 40
    # CartPole (data="cartpole")
    gamma: float = 0.95
    horizon: int = 100
    epsilon: float = 0.3
    rollouts: int = 64
    """Rollouts averaged per test state for the clean return."""
    methods: dict[str, Any] = field(default_factory=_default_methods)
    """The methods compared: ``mse`` and ``two_hot`` (true / false), ``hl_gauss`` (a list of sigma / bin
    width ratios)."""

    def validate(self) -> ValueSection:
        """Check every field; returns self. TypeError / ValueError with the library's template."""
        check_choice("data", self.data, ("synthetic", "cartpole"))
        for name, lo in (("n_train", 1), ("n_test", 1), ("dim", 2), ("bins", 2), ("hidden", 1)):
            check_int(name, getattr(self, name), lo=lo)
        for name, lo in (("steps", 1), ("eval_every", 1), ("horizon", 1), ("rollouts", 1)):
            check_int(name, getattr(self, name), lo=lo)
        check_float("noise_df", self.noise_df, 0.0)
        check_float("noise_scale", self.noise_scale, 0.0, lo_open=False)
        check_float("lr", self.lr, 0.0)
        check_float("gamma", self.gamma, 0.0, 1.0)
        if self.gamma == 1.0:
            raise ValueError(expected("gamma", "in (0, 1)", self.gamma))
        check_float("epsilon", self.epsilon, 0.0, 1.0, lo_open=False)
        check_float("v_min", self.v_min, -math.inf)
        check_float("v_max", self.v_max, -math.inf)
        if not self.v_max > self.v_min:
            raise ValueError(expected("v_max", f"> v_min = {self.v_min!r}", self.v_max))
        method_grid("value", self.methods, VALUE_METHODS)
        return self

    def support(self) -> Support:
        if self.data == "cartpole":
            return Support.uniform(0.0, 1.0 / (1.0 - self.gamma), self.bins)
        return Support.uniform(self.v_min, self.v_max, self.bins)

    def run_fields(self) -> dict[str, Any]:
        """The fields that determine one run's numbers (the run's hashed config): those of its data kind,
        without ``methods`` (adding a method leaves the other runs' hashes alone)."""
        skip = {"methods"} | (_CARTPOLE_ONLY if self.data == "synthetic" else _SYNTHETIC_ONLY)
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


_CARTPOLE_ONLY = {"gamma", "horizon", "epsilon", "rollouts"}
_SYNTHETIC_ONLY = {"dim", "noise_df", "noise_scale", "v_min", "v_max"}


# --- methods: the task's registry; objective(param, support=...) -> loss(output, y) ---


def _mse_objective(param: None, *, support: Support, **context: Any) -> Any:
    mid, half = (support.lo + support.hi) / 2, (support.hi - support.lo) / 2
    # on the support's scale: the same prior knowledge of the range the bins have
    return lambda out, y: nn.functional.mse_loss(out[:, 0], (y - mid) / half)


def _two_hot_objective(param: None, *, support: Support, **context: Any) -> Any:
    return lambda out, y: two_hot_loss(out, y, support)


def _hl_gauss_objective(param: float, *, support: Support, **context: Any) -> Any:
    sigma = float(param) * support.width
    return lambda out, y: hl_gauss_loss(out, y, support, sigma)


def _check_ratio(dotted: str, param: Any) -> None:
    check_float(dotted, param, 0.0)


VALUE_METHODS: dict[str, Method] = {
    "mse": rl_method("mse", None, _mse_objective,
                     "squared error on the targets mapped from the support to [-1, 1]"),
    "two_hot": rl_method("two_hot", None, _two_hot_objective,
                         "cross-entropy against the two-hot histogram (MuZero, DreamerV3)"),
    "hl_gauss": rl_method("hl_gauss", "sigma / bin width", _hl_gauss_objective, check=_check_ratio,
                          default=(0.5, 0.75, 1.5),
                          description="cross-entropy against the HL-Gauss histogram (Imani and White 2018)"),
}  # fmt: skip
"""The value task's methods (looked up before the shared registry)."""


# --- one run ---


def _check_method(method: str, param: float | None) -> None:
    check_choice("method", method, tuple(VALUE_METHODS))
    if method == "hl_gauss":
        check_float("param", param, 0.0)
    elif param is not None:
        raise ValueError(expected("param", f"to be None for method {method!r}", param))


def run_one(section: ValueSection, method: str, param: float | None, seed: int) -> dict[str, Any]:
    """Train one model on the noisy targets and measure it against the clean ones.

    Returns ``{"metrics": {key: float | None} (keys of METRICS), "curves": {"test_rmse": [[step, v], ...]},
    "arrays": {"pred": [...], "clean": [...]}}`` (the first 256 test points). Deterministic given the
    arguments (one thread, seeded numpy and torch generators).
    """
    section.validate()
    _check_method(method, param)
    check_int("seed", seed, lo=0)
    with one_thread():
        data = make_data(section, seed)
        support = section.support()
        torch.manual_seed(seed)
        out_dim = 1 if method == "mse" else support.bins
        d_in = data["x_train"].shape[1]
        model = nn.Sequential(
            nn.Linear(d_in, section.hidden),
            nn.SiLU(),
            nn.Linear(section.hidden, section.hidden),
            nn.SiLU(),
            nn.Linear(section.hidden, out_dim),
        )
        objective = VALUE_METHODS[method].objective(param, support=support)
        mid, half = (support.lo + support.hi) / 2, (support.hi - support.lo) / 2

        def predict(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            with torch.no_grad():
                out = model(x)
            if method == "mse":
                return out[:, 0] * half + mid, None
            return histogram_mean(out, support, from_logits=True), torch.softmax(out, -1)

        opt = torch.optim.Adam(model.parameters(), lr=section.lr)
        curve: list[list[float]] = []
        loss = torch.tensor(math.nan)
        for step in range(section.steps):
            opt.zero_grad()
            loss = objective(model(data["x_train"]), data["y_train"])
            loss.backward()
            opt.step()
            if (step + 1) % section.eval_every == 0 or step + 1 == section.steps:
                pred, _ = predict(data["x_test"])
                curve.append([step + 1, float((pred - data["clean_test"]).pow(2).mean().sqrt())])
        pred, probs = predict(data["x_test"])
        err = pred - data["clean_test"]
        crps = coverage = None
        if probs is not None:
            crps, coverage = crps_and_coverage(probs, data["y_test"], support)
        metrics = {
            "rmse": float(err.pow(2).mean().sqrt()),
            "mae": float(err.abs().mean()),
            "crps": crps,
            "coverage80": coverage,
            "train_loss": float(loss.detach()),
        }
    return {
        "metrics": metrics,
        "curves": {"test_rmse": curve},
        "arrays": {"pred": pred[:256].tolist(), "clean": data["clean_test"][:256].tolist()},
    }


# --- the engine task ---


def _data_title(data: str) -> str:
    if data == "cartpole":
        return "value, CartPole returns (clean: mean of many rollouts)"
    return "value, synthetic data, Student-t target noise"


class ValueTask(MethodTableTask):
    """``labelsmooth study --task value``: the section ``[value]`` (:class:`ValueSection`), one run per
    (method, param) x seed, the verdict on HL-Gauss <= two-hot <= MSE and the RMSE figure."""

    name = "value"
    summary = (
        "under noisy regression targets, is HL-Gauss <= two-hot <= MSE in RMSE against the clean "
        "targets (Farebrother et al. 2024)?"
    )
    runtime = (
        "25 runs (5 methods, 5 seeds); measured 16-24 s wall on 2 idle cores (51 s CPU)"
    )
    config_cls = ValueSection
    metrics = METRICS
    methods: Mapping[str, Method] = MappingProxyType(VALUE_METHODS)
    setting_axes = ("data",)
    report_note = (
        "Intervals are 95% Student-t intervals over seeds; methods are compared paired by seed (the "
        "seed fixes the data, the target noise and the initial weights). RMSE and MAE are against "
        "the clean targets; CRPS and coverage against noisy test targets."
    )
    model_note = "builds its own MLP"
    run_one = run_one

    def load(self, cfg: Any, *, data: Any = None, model_fn: Any = None) -> None:
        super().load(cfg, data=data, model_fn=model_fn)
        if cfg.section.data == "cartpole":  # before anything is written, not in a worker
            cartpole_env()

    def settings(self, section: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [({"data": section.data}, {})]

    def describe(self, spec: RunSpec) -> str:
        a = spec.axes
        return f"{a['data']:10s} {label(a['method'], a['param']):16s} seed {a['seed']:<3d}"

    def verdict(self, records: list[dict[str, Any]]) -> list[Verdict]:
        out: list[Verdict] = []
        for data in dict.fromkeys(r.get("data", "synthetic") for r in records):
            recs = [r for r in records if r.get("data", "synthetic") == data]
            out += verdict(recs, _data_title(data))
        return out

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        out = []
        for data in dict.fromkeys(r.get("data", "synthetic") for r in records):
            rows = by_label([r for r in records if r.get("data", "synthetic") == data])
            panels = [
                (
                    "RMSE against the clean targets (lower is better)",
                    "RMSE",
                    [(n, mean_of(rs, "rmse")) for n, rs in rows.items()],
                )
            ]
            dist = {n: rs for n, rs in rows.items() if not math.isnan(mean_of(rs, "coverage80").mean)}
            hlines: list[list[tuple[float, str]]] = [[]]
            if dist:
                panels.append(
                    (
                        "coverage of the central 80% interval (noisy test targets)",
                        "coverage",
                        [(n, mean_of(rs, "coverage80")) for n, rs in dist.items()],
                    )
                )
                hlines.append([(0.8, "calibrated")])
            out.append(
                Figure(
                    f"rmse_{data}",
                    f"{_data_title(data)}: RMSE of each method against the clean targets and the coverage "
                    "of the predicted histograms' central 80% interval; means with 95% t-intervals over "
                    "seeds (the verdict's claims use paired differences, whose intervals are narrower).",
                    errorbar_figure(panels, hlines=hlines),
                )
            )
        return out


TASK = register(ValueTask())
