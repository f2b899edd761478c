"""Task ``preference``: a K-armed preference bandit trained by DPO, cDPO and rDPO under flipped labels.

The policy is a softmax over ``K`` arms, ``pi = softmax(theta)``, the reference is uniform, and the data are
``pairs`` comparisons of random distinct arms ``(i, j)``: ``i`` is preferred with the Bradley–Terry
probability ``sigma(r_i - r_j)`` of the true rewards ``r ~ N(0, reward_scale^2)``, and each label is then
flipped with probability ``e_true`` (the true flip rate, a grid axis: ``flip_rates``). For an arm, DPO's
implicit reward is ``beta (log pi - log pi_ref) = beta theta + const``, so DPO on this data is the
Bradley–Terry maximum likelihood of ``beta theta``; cDPO fits smoothed labels, rDPO debiases them for a
flip rate ``e``.

Methods (the task's registry :data:`PREFERENCE_METHODS`, chosen by the section's ``methods`` table):
``dpo``; ``cdpo`` and ``rdpo`` with parameter ``e`` in :data:`E_GRID` by default; all train ``theta`` from
0 (``pi = pi_ref``) by full-batch gradient descent on :func:`labelsmooth.preference_loss` with step
``lr / beta^2`` (the loss's curvature scales as ``beta^2``).

Measures (``METRICS``): the expected true reward ``sum_k pi_k r_k`` and the regret to the best arm;
``KL(pi || pi_ref)``; Kendall's tau between ``theta`` and ``r``; the probability of the best arm and the
true rank of the policy's favourite arm (1 = best; DPO can lock onto an arm that won its few
comparisons by noise); the mean implied margin ``beta h`` over the training pairs (TRL's
``rewards/margins``), its growth over the second half of training, and for cDPO its ratio to the
per-pair optimum ``log((1 - e)/e)`` (:func:`labelsmooth.theory.cdpo_optimal_margin` times beta).

The task (``labelsmooth study --task preference``) gives one verdict per true flip rate and claim: DPO's
margins grow without bound and lock onto noise-favoured arms; cDPO's margins approach
``log((1 - e)/e)/beta``; rDPO ranks best when ``e = e_true``; and the expected true reward against DPO's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from labelsmooth import preference_loss, theory
from labelsmooth._validation import check_int, expected
from labelsmooth.study.methods import Method
from labelsmooth.study.tasks import register
from labelsmooth.study.tasks._common import one_thread
from labelsmooth.study.tasks._preference_verdict import _rate, summarize, verdict
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
from labelsmooth.study.tasks.base import Figure, Metric, RunSpec, Verdict

__all__ = [
    "E_GRID",
    "FLIP_RATES",
    "METHODS",
    "METRICS",
    "PREFERENCE_METHODS",
    "PreferenceSection",
    "PreferenceTask",
    "kendall_tau",
    "make_data",
    "run_one",
    "summarize",
    "verdict",
]

FLIP_RATES = (0.0, 0.2, 0.4)
"""The true flip rates ``e_true`` of the default grid (the setting axis: one verdict per rate)."""

E_GRID = (0.1, 0.2, 0.4)
"""The smoothing ``e`` of cDPO and rDPO in the default grid."""

METHODS: tuple[tuple[str, float | None], ...] = (
    ("dpo", None),
    *(("cdpo", e) for e in E_GRID),
    *(("rdpo", e) for e in E_GRID),
)
"""The default (method, param) list."""

METRICS: tuple[Metric, ...] = (
    Metric("reward", "expected true reward", better="higher", cli=True, description="sum_k pi_k r_k"),
    Metric("regret", "regret", better="lower", summary=False, description="max_k r_k - expected reward"),
    Metric("kl", "KL(pi||ref)", cli=True, description="KL(pi || pi_ref); at most log K"),
    Metric(
        "kendall_tau",
        "Kendall tau",
        better="higher",
        cli=True,
        description="Kendall tau-b between theta and the true rewards",
    ),
    Metric("p_best", "P(best arm)", better="higher", description="the policy's mass on the best arm"),
    Metric("p_top", "P(favourite)", description="the policy's largest mass"),
    Metric(
        "top_rank", "rank of favourite", ".2f", "lower", description="true rank of argmax theta (1 = best)"
    ),
    Metric(
        "margin", "beta*h", cli=True, description="mean beta h over the training pairs (TRL rewards/margins)"
    ),
    Metric("margin_growth", "beta*h growth", description="margin growth over the 2nd half of training"),
    Metric(
        "margin_ratio", "beta*h / log((1-e)/e)", description="cDPO only: margin over the per-pair optimum"
    ),
    Metric("h", "h", summary=False, description="mean h = beta*h / beta over the training pairs"),
    Metric("h_opt", "cDPO optimum h*", summary=False, description="log((1-e)/e)/beta (cDPO only)"),
)
"""The preference task's metrics table."""


def _default_methods() -> dict[str, Any]:
    return {"dpo": True, "cdpo": list(E_GRID), "rdpo": list(E_GRID)}


@dataclass(frozen=True)
class PreferenceSection:
    """The ``[preference]`` section: bandit size, data, the true flip rates (a grid axis), training and
    methods."""

    arms: int = 20
    pairs: int = 100
    """Few comparisons per arm (10 on average): some arms win all of theirs, by luck or by flips."""
    flip_rates: tuple[float, ...] = FLIP_RATES
    """The true flip rates ``e_true`` (each in [0, 0.5)): the setting axis, one verdict per rate."""
    reward_scale: float = 2.0
    beta: float = 0.1
    steps: int = 1000
    lr: float = 10.0
    """Gradient-descent step in units of ``1 / beta^2``."""
    eval_every: int = 100
    methods: dict[str, Any] = field(default_factory=_default_methods)
    """The methods compared: ``dpo`` (true / false), ``cdpo`` and ``rdpo`` (lists of e in (0, 0.5))."""

    def validate(self) -> PreferenceSection:
        """Check every field; returns self. TypeError / ValueError with the library's template."""
        check_int("arms", self.arms, lo=2)
        check_int("pairs", self.pairs, lo=1)
        check_int("steps", self.steps, lo=2)
        check_int("eval_every", self.eval_every, lo=1)
        if not isinstance(self.flip_rates, (tuple, list)) or not self.flip_rates:
            raise TypeError(expected("flip_rates", "to be a non-empty list of rates", self.flip_rates))
        for e in self.flip_rates:
            check_flip_rate("flip_rates", e)
        if len(set(self.flip_rates)) != len(self.flip_rates):
            raise ValueError(expected("flip_rates", "to hold distinct values", list(self.flip_rates)))
        check_float("reward_scale", self.reward_scale, 0.0)
        check_float("beta", self.beta, 0.0)
        check_float("lr", self.lr, 0.0)
        method_grid("preference", self.methods, PREFERENCE_METHODS)
        return self

    def run_fields(self) -> dict[str, Any]:
        """The fields that determine one run's numbers besides its axes (its hashed config)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("methods", "flip_rates")}


def check_flip_rate(name: str, e: Any) -> None:
    check_float(name, e, 0.0, 0.5, lo_open=False)
    if e == 0.5:
        raise ValueError(expected(name, "in [0, 0.5) (at 0.5 the labels carry nothing)", 0.5))


# --- methods: the task's registry; objective(param, beta=...) -> loss(chosen, rejected, ref_c, ref_r) ---


def _dpo_objective(param: None, *, beta: float, **context: Any) -> Any:
    return lambda c, r, rc, rr: preference_loss(c, r, rc, rr, beta=beta)


def _cdpo_objective(param: float, *, beta: float, **context: Any) -> Any:
    return lambda c, r, rc, rr: preference_loss(c, r, rc, rr, beta=beta, label_smoothing=float(param))


def _rdpo_objective(param: float, *, beta: float, **context: Any) -> Any:
    e = float(param)
    return lambda c, r, rc, rr: preference_loss(c, r, rc, rr, beta=beta, label_smoothing=e, robust=True)


def _check_e(dotted: str, param: Any) -> None:
    check_float(dotted, param, 0.0, 0.5)
    if param >= 0.5:
        raise ValueError(expected(dotted, "in (0, 0.5)", param))


PREFERENCE_METHODS: dict[str, Method] = {
    "dpo": rl_method("dpo", None, _dpo_objective, "-log sigmoid(beta h) (Rafailov et al. 2023)"),
    "cdpo": rl_method("cdpo", "e", _cdpo_objective, check=_check_e, default=E_GRID,
                      description="conservative DPO: the preference label smoothed by e (Mitchell 2023)"),
    "rdpo": rl_method("rdpo", "e", _rdpo_objective, check=_check_e, default=E_GRID,
                      description="robust DPO, unbiased under flips at rate e (Chowdhury et al. 2024)"),
}  # fmt: skip
"""The preference task's methods (looked up before the shared registry)."""


def make_data(section: PreferenceSection, seed: int, flip_rate: float) -> dict[str, torch.Tensor]:
    """True rewards ``r`` (K,), and the labelled pairs: ``chosen``, ``rejected`` (pairs,) arm indices, plus
    ``flipped`` (whether the label was flipped, with probability ``flip_rate``). Seeded by ``seed`` only
    (not the method, not the flip rate: the same rewards and pairs at every flip rate)."""
    rng = np.random.default_rng([seed, 13])
    k, n = section.arms, section.pairs
    r = rng.normal(0.0, section.reward_scale, size=k)
    i = rng.integers(0, k, size=n)
    j = (i + rng.integers(1, k, size=n)) % k  # a distinct second arm, uniform
    i_wins = rng.random(n) < 1 / (1 + np.exp(-(r[i] - r[j])))
    flipped = rng.random(n) < flip_rate
    i_wins ^= flipped
    chosen, rejected = np.where(i_wins, i, j), np.where(i_wins, j, i)
    return {
        "rewards": torch.as_tensor(r, dtype=torch.float64),
        "chosen": torch.as_tensor(chosen),
        "rejected": torch.as_tensor(rejected),
        "flipped": torch.as_tensor(flipped),
    }


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> float:
    """Kendall's tau-b between two score vectors (ties in either count in neither concordant nor
    discordant pairs; NaN when one vector is constant).

    >>> import torch
    >>> kendall_tau(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 5.0, 4.0]))
    0.3333333333333333
    """
    da = torch.sign(a[:, None] - a[None, :])
    db = torch.sign(b[:, None] - b[None, :])
    num = float((da * db).sum())
    den = math.sqrt(float((da != 0).sum()) * float((db != 0).sum()))
    return num / den if den else math.nan


def _check_method(method: str, param: float | None) -> None:
    if method not in PREFERENCE_METHODS:
        raise ValueError(
            expected("method", "to be one of " + ", ".join(map(repr, PREFERENCE_METHODS)), method)
        )
    if method == "dpo":
        if param not in (None, 0, 0.0):
            raise ValueError(expected("param", "to be None (or 0.0) for method 'dpo'", param))
        return
    _check_e("param", param)


def run_one(
    section: PreferenceSection, method: str, param: float | None, seed: int, *, flip_rate: float
) -> dict[str, Any]:
    """Train the bandit policy with one method on the data of ``seed`` with labels flipped at the true rate
    ``flip_rate``; measure it.

    Returns ``{"metrics": {key: float | None} (keys of METRICS), "curves": {"margin": [[step, v], ...],
    "reward": [[step, v], ...]}, "arrays": {"theta": [...], "rewards": [...]}}``. Deterministic given the
    arguments (float64, one thread, seeded data; theta starts at 0).
    """
    section.validate()
    _check_method(method, param)
    check_flip_rate("flip_rate", flip_rate)
    check_int("seed", seed, lo=0)
    e = 0.0 if method == "dpo" or param is None else float(param)
    with one_thread():
        data = make_data(section, seed, flip_rate)
        r, w, l = data["rewards"], data["chosen"], data["rejected"]
        k, beta = section.arms, section.beta
        theta = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        ref = torch.full((section.pairs,), -math.log(k), dtype=torch.float64)
        step_size = section.lr / beta**2
        objective = PREFERENCE_METHODS[method].objective(param, beta=beta)

        def margin_of(t: torch.Tensor) -> float:
            return float(beta * (t[w] - t[l]).mean())

        margins: list[list[float]] = []
        rewards: list[list[float]] = []
        half = None
        for step in range(section.steps + 1):
            if step % section.eval_every == 0 or step == section.steps:
                with torch.no_grad():
                    margins.append([step, margin_of(theta)])
                    rewards.append([step, float(torch.softmax(theta, 0) @ r)])
            if step == section.steps // 2:
                half = margin_of(theta.detach())
            if step == section.steps:
                break
            logp = torch.log_softmax(theta, 0)
            loss = objective(logp[w], logp[l], ref, ref)
            (grad,) = torch.autograd.grad(loss, theta)
            with torch.no_grad():
                theta -= step_size * grad
        t = theta.detach()
        pi = torch.softmax(t, 0)
        best = int(r.argmax())
        order = torch.argsort(r, descending=True)
        rank_of = torch.empty(k, dtype=torch.long)
        rank_of[order] = torch.arange(1, k + 1)
        margin = margin_of(t)
        opt = beta * theory.cdpo_optimal_margin(e, beta) if method == "cdpo" else None
        metrics = {
            "reward": float(pi @ r),
            "regret": float(r.max() - pi @ r),
            "kl": float((pi * (torch.log_softmax(t, 0) + math.log(k))).sum()),
            "kendall_tau": kendall_tau(t, r),
            "p_best": float(pi[best]),
            "p_top": float(pi.max()),
            "top_rank": float(rank_of[int(t.argmax())]),
            "margin": margin,
            "margin_growth": margin - (half if half is not None else margin),
            "margin_ratio": margin / opt if opt else None,
            "h": margin / beta,
            "h_opt": theory.cdpo_optimal_margin(e, beta) if method == "cdpo" else None,
        }
    return {
        "metrics": metrics,
        "curves": {"margin": margins, "reward": rewards},
        "arrays": {"theta": t.tolist(), "rewards": r.tolist()},
    }


# --- the engine task ---


class PreferenceTask(MethodTableTask):
    """``labelsmooth study --task preference``: the section ``[preference]`` (:class:`PreferenceSection`),
    one run per true flip rate x (method, param) x seed, a verdict per flip rate and claim, and figures."""

    name = "preference"
    summary = (
        "under preference flips at rate e_true, do DPO's margins run away, do cDPO's approach "
        "log((1-e)/e)/beta, and does rDPO rank best at e = e_true?"
    )
    runtime = (
        "105 runs (3 flip rates, 7 methods, 5 seeds); measured 15-24 s wall on 2 idle cores (38 s CPU)"
    )
    config_cls = PreferenceSection
    metrics = METRICS
    methods: Mapping[str, Method] = MappingProxyType(PREFERENCE_METHODS)
    setting_axes = ("e_true",)
    report_note = (
        "Intervals are 95% Student-t intervals over seeds; methods are compared paired by seed (the "
        "seed fixes the true rewards, the compared pairs and the flips). beta*h is the mean implied "
        "margin over the training pairs; cDPO's per-pair optimum is beta*h = log((1-e)/e)."
    )
    model_note = "has no model"
    run_one = run_one

    def setting_header(self) -> list[str]:
        return ["e_true"]

    def setting_cells(self, key: tuple) -> list[str]:
        return [f"{key[0]:g}"]

    def settings(self, section: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [({"e_true": float(e)}, {"e_true": float(e)}) for e in section.flip_rates]

    def run_options(self, axes: Mapping[str, Any]) -> dict[str, Any]:
        return {"flip_rate": axes["e_true"]}

    def describe(self, spec: RunSpec) -> str:
        a = spec.axes
        return f"e_true={a['e_true']:<4g} {label(a['method'], a['param']):10s} seed {a['seed']:<3d}"

    def verdict(self, records: list[dict[str, Any]]) -> list[Verdict]:
        return verdict(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        if not records:
            return []
        rates = list(dict.fromkeys(r["e_true"] for r in records))
        per_rate = {e: by_label([r for r in records if r["e_true"] == e]) for e in rates}
        margin_panels, markers = [], []
        for e in rates:
            rows = per_rate[e]
            margin_panels.append(
                (_rate(e), "mean h on the training pairs", [(n, mean_of(rs, "h")) for n, rs in rows.items()])
            )
            markers.append(
                [
                    (i, mean_of(rs, "h_opt").mean)
                    for i, (n, rs) in enumerate(rows.items())
                    if n.startswith("cdpo(")
                ]
            )
        reward = [
            (_rate(e), "expected true reward", [(n, mean_of(rs, "reward")) for n, rs in per_rate[e].items()])
            for e in rates
        ]
        tau = [
            (
                _rate(e),
                "Kendall tau vs true rewards",
                [(n, mean_of(rs, "kendall_tau")) for n, rs in per_rate[e].items()],
            )
            for e in rates
        ]
        return [
            Figure(
                "margins",
                "Learned margins h (mean over the training pairs; symmetric-log scale) per method "
                "and true flip rate, means with 95% t-intervals over seeds; red crosses: the cDPO optimum "
                "log((1-e)/e)/beta of an isolated pair.",
                errorbar_figure(margin_panels, markers=markers, logy=True),
            ),
            Figure(
                "reward",
                "Expected true reward of the policy per method and true flip rate (means with 95% "
                "t-intervals over seeds; the verdict's comparisons are paired, with narrower intervals).",
                errorbar_figure(reward),
            ),
            Figure(
                "kendall_tau",
                "Kendall tau between the learned theta and the true rewards per method and "
                "true flip rate (means with 95% t-intervals over seeds).",
                errorbar_figure(tau),
            ),
        ]


TASK = register(PreferenceTask())
