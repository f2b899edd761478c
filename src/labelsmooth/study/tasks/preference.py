"""Task core ``preference``: a K-armed preference bandit trained by DPO, cDPO and rDPO under flipped labels.

The policy is a softmax over ``K`` arms, ``pi = softmax(theta)``, the reference is uniform, and the data are
``pairs`` comparisons of random distinct arms ``(i, j)``: ``i`` is preferred with the Bradley–Terry
probability ``sigma(r_i - r_j)`` of the true rewards ``r ~ N(0, reward_scale^2)``, and each label is then
flipped with probability ``flip_rate`` (the true noise rate ``e_true``). For an arm, DPO's implicit reward is
``beta (log pi - log pi_ref) = beta theta + const``, so DPO on this data is the Bradley–Terry maximum
likelihood of ``beta theta``; cDPO fits smoothed labels, rDPO debiases them for a flip rate ``e``.

Methods (``METHODS``): ``("dpo", 0.0)``, ``("cdpo", e)`` and ``("rdpo", e)`` for ``e`` in
:data:`E_GRID`; all train ``theta`` from 0 (``pi = pi_ref``) by full-batch gradient descent on
:func:`labelsmooth.preference_loss` with step ``lr / beta^2`` (the loss's curvature scales as ``beta^2``).

Measures (``METRICS``): the expected true reward ``sum_k pi_k r_k`` and the regret to the best arm;
``KL(pi || pi_ref)``; Kendall's tau between ``theta`` and ``r``; the probability of the best arm and the
true rank of the policy's favourite arm (1 = best; DPO can lock onto an arm that won its few
comparisons by noise); the mean implied margin ``beta h`` over the training pairs (TRL's
``rewards/margins``), its growth over the second half of training, and for cDPO its ratio to the
per-pair optimum ``log((1 - e)/e)`` (:func:`labelsmooth.theory.cdpo_optimal_margin` times beta).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from labelsmooth import preference_loss, theory
from labelsmooth._validation import check_choice, expected
from labelsmooth.study.tasks._rl import (
    Metric,
    by_label,
    check_float,
    check_int,
    compare,
    mean_of,
    single_thread,
)

__all__ = [
    "E_GRID",
    "FLIP_RATES",
    "METHODS",
    "METRICS",
    "PreferenceSection",
    "kendall_tau",
    "make_data",
    "run_one",
    "summarize",
]

FLIP_RATES = (0.0, 0.2, 0.4)
"""The true flip rates ``e_true`` of the default grid: one section per rate."""

E_GRID = (0.1, 0.2, 0.4)
"""The smoothing ``e`` of cDPO and rDPO in the default grid."""

METHODS: tuple[tuple[str, float], ...] = (
    ("dpo", 0.0),
    *(("cdpo", e) for e in E_GRID),
    *(("rdpo", e) for e in E_GRID),
)

METRICS: tuple[Metric, ...] = (
    ("reward", "expected true reward", ".3f", "higher", False),
    ("regret", "regret to the best arm", ".3f", "lower", False),
    ("kl", "KL(pi || pi_ref)", ".3f", None, False),
    ("kendall_tau", "Kendall tau vs true rewards", ".3f", "higher", False),
    ("p_best", "P(best arm)", ".3f", "higher", False),
    ("p_top", "P(favourite arm)", ".3f", None, False),
    ("top_rank", "true rank of the favourite arm", ".2f", "lower", False),
    ("margin", "mean beta*h on training pairs", ".3f", None, False),
    ("margin_growth", "margin growth, 2nd half", ".3f", None, False),
    ("margin_ratio", "margin / log((1-e)/e) (cDPO)", ".3f", None, False),
)
"""(key, header, format, better, after temperature scaling)."""

METHOD_NAMES = ("dpo", "cdpo", "rdpo")


@dataclass(frozen=True)
class PreferenceSection:
    """The ``[preference]`` section: bandit size, data, true flip rate and training."""

    arms: int = 20
    pairs: int = 100
    """Few comparisons per arm (10 on average): some arms win all of theirs, by luck or by flips."""
    flip_rate: float = 0.2
    """The true probability ``e_true`` that a preference label is flipped, in [0, 0.5)."""
    reward_scale: float = 2.0
    beta: float = 0.1
    steps: int = 1000
    lr: float = 10.0
    """Gradient-descent step in units of ``1 / beta^2``."""
    eval_every: int = 100

    def validate(self) -> PreferenceSection:
        """Check every field; returns self. TypeError / ValueError with the library's template."""
        check_int("arms", self.arms, 2)
        check_int("pairs", self.pairs, 1)
        check_int("steps", self.steps, 2)
        check_int("eval_every", self.eval_every, 1)
        check_float("flip_rate", self.flip_rate, 0.0, 0.5, lo_open=False)
        if self.flip_rate == 0.5:
            raise ValueError(expected("flip_rate", "in [0, 0.5) (at 0.5 the labels carry nothing)", 0.5))
        check_float("reward_scale", self.reward_scale, 0.0)
        check_float("beta", self.beta, 0.0)
        check_float("lr", self.lr, 0.0)
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferenceSection:
        """From a TOML table; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        for key in d:
            if key not in names:
                what = "to be one of " + ", ".join(sorted(names))
                raise ValueError(expected("preference section key", what, key))
        return cls(**d).validate()


def make_data(section: PreferenceSection, seed: int) -> dict[str, torch.Tensor]:
    """True rewards ``r`` (K,), and the labelled pairs: ``chosen``, ``rejected`` (pairs,) arm indices, plus
    ``flipped`` (whether the label was flipped). Seeded by ``seed`` only (not the method)."""
    rng = np.random.default_rng([seed, 13])
    k, n = section.arms, section.pairs
    r = rng.normal(0.0, section.reward_scale, size=k)
    i = rng.integers(0, k, size=n)
    j = (i + rng.integers(1, k, size=n)) % k  # a distinct second arm, uniform
    i_wins = rng.random(n) < 1 / (1 + np.exp(-(r[i] - r[j])))
    flipped = rng.random(n) < section.flip_rate
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


def _check_method(method: str, param: float) -> None:
    check_choice("method", method, METHOD_NAMES)
    if method == "dpo":
        if param != 0:
            raise ValueError(expected("param", "to be 0.0 for method 'dpo'", param))
        return
    check_float("param", param, 0.0, 0.5)
    if param >= 0.5:
        raise ValueError(expected("param", "in (0, 0.5)", param))


def run_one(section: PreferenceSection, method: str, param: float, seed: int) -> dict[str, Any]:
    """Train the bandit policy with one method on the data of ``seed``; measure it.

    Returns ``{"metrics": {key: float | None} (keys of METRICS), "curves": {"margin": [[step, v], ...],
    "reward": [[step, v], ...]}, "arrays": {"theta": [...], "rewards": [...]}}``. Deterministic given the
    arguments (float64, one thread, seeded data; theta starts at 0).
    """
    section.validate()
    _check_method(method, param)
    check_int("seed", seed, 0)
    e = float(param)
    with single_thread():
        data = make_data(section, seed)
        r, w, l = data["rewards"], data["chosen"], data["rejected"]
        k, beta = section.arms, section.beta
        theta = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        ref = torch.full((section.pairs,), -math.log(k), dtype=torch.float64)
        step_size = section.lr / beta**2

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
            loss = preference_loss(
                logp[w], logp[l], ref, ref, beta=beta, label_smoothing=e, robust=method == "rdpo"
            )
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
        }
    return {
        "metrics": metrics,
        "curves": {"margin": margins, "reward": rewards},
        "arrays": {"theta": t.tolist(), "rewards": r.tolist()},
    }


def summarize(records: list[dict], section: PreferenceSection | None = None) -> list[str]:
    """The verdict in words for one true flip rate (``section.flip_rate``, else unknown): the three claims,
    judged by means and paired 95% t-intervals over seeds."""
    rows = by_label(records)
    e_true = section.flip_rate if section is not None else None
    lines = [f"True flip rate {e_true:g}:" if e_true is not None else "Unknown true flip rate:"]
    for name, rs in rows.items():
        lines.append(
            f"{name}: reward {mean_of(rs, 'reward').fmt()}, tau {mean_of(rs, 'kendall_tau').fmt()}, "
            f"KL {mean_of(rs, 'kl').fmt(digits=2)}, margin {mean_of(rs, 'margin').fmt(digits=2)} "
            f"(growth {mean_of(rs, 'margin_growth').fmt(digits=2)}), P(best) {mean_of(rs, 'p_best').fmt()}, "
            f"favourite's true rank {mean_of(rs, 'top_rank').fmt(digits=1)}."
        )
    if "dpo" in rows:
        g = mean_of(rows["dpo"], "margin_growth")
        grows = g.significant and g.mean > 0
        dpo = rows["dpo"]
        wrong = [x for x in dpo if x["top_rank"] != 1]
        locked = sum(1 for x in wrong if x["p_top"] > 0.5)
        lines.append(
            f"DPO's margins {'keep growing' if grows else 'do not grow significantly'} in the second half "
            f"of training ({g.fmt(digits=3)}); its favourite arm is not the best in {len(wrong)} of "
            f"{len(dpo)} seeds, holding more than half the mass in {locked} of them "
            f"(P(favourite) {mean_of(dpo, 'p_top').fmt()}, P(best) {mean_of(dpo, 'p_best').fmt()})."
        )
    if "dpo" in rows:
        diffs = [(n, *compare(rs, rows["dpo"], "reward")) for n, rs in rows.items() if n != "dpo"]
        words = "; ".join(f"{n} {d.fmt()} ({w})" for n, d, w in diffs)
        lines.append(f"Expected true reward minus DPO's, paired: {words}.")
    for name, rs in rows.items():
        if name.startswith("cdpo("):
            ratio = mean_of(rs, "margin_ratio")
            lines.append(
                f"{name}: mean margin / log((1-e)/e) = {ratio.fmt()}, growth "
                f"{mean_of(rs, 'margin_growth').fmt(digits=3)} (the optimum of one isolated pair is 1)."
            )
    robust = {n: rs for n, rs in rows.items() if n.startswith("rdpo(")}
    if "dpo" in rows:
        robust = {"dpo": rows["dpo"], **robust}  # rDPO at e = 0 is DPO
    if e_true is not None and len(robust) > 1:
        best = max(robust, key=lambda n: mean_of(robust[n], "kendall_tau").mean)
        match = "rdpo" if e_true > 0 else "dpo"
        target = f"rdpo({e_true:g})" if e_true > 0 else "dpo"
        if target in robust:
            others = [n for n in robust if n != target]
            diffs = [(n, *compare(robust[target], robust[n], "kendall_tau")) for n in others]
            words = "; ".join(f"vs {n} {d.fmt()} ({w})" for n, d, w in diffs)
            verdict = "holds" if best == target else f"does not hold (best: {best})"
            lines.append(
                f"Claim {match} ranks best at e = e_true = {e_true:g}: {verdict}; tau of {target} {words}."
            )
    return lines
