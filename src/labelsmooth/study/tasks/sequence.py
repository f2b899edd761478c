"""Task ``sequence``: what label smoothing does to a language model's perplexity, accuracy and calibration.

Published direction (the claims :func:`claims` checks):

* Vaswani et al. 2017 (Table 3): smoothing 0.1 *hurts perplexity* (4.67 -> 4.92) but improves accuracy and
  BLEU (25.3 -> 25.8).
* Müller, Kornblith and Hinton 2019: next-token ECE falls with smoothing 0.1 (0.056 -> 0.019); temperature
  scaling calibrates the hard model too, but cannot give it smoothing's accuracy (it never changes argmax).

Two datasets: ``stdlib`` (a byte-level language model of the standard library's own source, fixed
interleaved splits) and ``reverse`` (a synthetic sequence-to-sequence task with noisy training answers,
scored on the answer tokens only; exact match by greedy decoding). Model: a small causal Transformer
(:class:`~labelsmooth.study.tasks.sequence_data.CausalTransformer`) trained with
:func:`labelsmooth.linear_cross_entropy` on the final hidden states and the output projection, padding
as ``ignore_index``. The confidence penalty needs the entropy of the prediction, so for that method alone
the logits are built (``hidden @ head.weight.T``) and :func:`labelsmooth.confidence_penalty` is applied.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from labelsmooth._deprecation import warn_renamed
from labelsmooth._validation import check_int, expected
from labelsmooth.calibration import TemperatureScaler
from labelsmooth.kernels import linear_cross_entropy
from labelsmooth.losses import confidence_penalty
from labelsmooth.metrics import (
    accuracy,
    expected_calibration_error,
    negative_log_likelihood,
    smooth_calibration_error,
)
from labelsmooth.study import measure
from labelsmooth.study.methods import Method
from labelsmooth.study.stats import estimate
from labelsmooth.study.tasks import register
from labelsmooth.study.tasks._common import (
    DatasetGridTask,
    TaskSection,
    baseline,
    by_dataset,
    check_float,
    check_grid,
    check_method_param,
    check_names,
    claim_status,
    dataset_grid,
    degenerate,
    diff,
    direction,
    flatten,
    one_thread,
    slug,
    spread,
)
from labelsmooth.study.tasks.base import Context, Figure, Metric, Verdict
from labelsmooth.study.tasks.sequence_data import (
    IGNORE,
    CausalTransformer,
    TokenData,
    greedy_exact_match,
    language_model_data,
    reverse_data,
)

__all__ = [
    "DATASETS",
    "METHODS",
    "METRICS",
    "SUMMARY",
    "SequenceSection",
    "build_data",
    "build_model",
    "claims",
    "default_grid",
    "run_one",
    "summarize",
]

RUNTIME = "24 runs (stdlib, reverse; 4 methods; 3 seeds), measured 88-125 s wall on 2 idle cores"
SUMMARY = (
    "What label smoothing does to a small language model's perplexity, accuracy and calibration "
    "(Vaswani et al. 2017; Müller et al. 2019)."
)
DATASETS = ("stdlib", "reverse")
METHODS = ("hard", "smoothing", "confidence_penalty")

METRICS: tuple[Metric, ...] = (
    Metric("nll", "token NLL", ".4f", "lower", scaled=True, cli=True, scaled_in=("summary",),
           description="mean next-token NLL on the test split (nats)"),
    Metric("perplexity", "perplexity", ".3f", "lower", scaled=True, cli=True, panel=True,
           scaled_in=("summary",), description="exp(token NLL)"),
    Metric("accuracy", "token acc.", "%", "higher", cli=True, panel=True,
           description="next-token (answer-token) accuracy"),
    Metric("exact_match", "exact match", "%", "higher", cli=True,
           description="sequences answered exactly by greedy decoding (reverse only)"),
    Metric("ece", "ECE", ".4f", "lower", scaled=True, cli=True, panel=True,
           scaled_in=("summary", "cli", "panel"), description="top-label token ECE (n_bins equal bins)"),
    Metric("smece", "smECE", ".4f", "lower", scaled=True, scaled_in=("summary",),
           description="smooth ECE of the top-label token confidence"),
    Metric("temperature", "T", ".3f", cli=True, description="temperature fitted on the validation split"),
    Metric("train_loss", "train loss", ".4f", summary=False, description="the last training-loss point"),
)  # fmt: skip
"""The sequence task's metrics table. ``scaled`` metrics are also stored after temperature scaling (fitted
on the validation split) as ``ts_<key>`` (``ts_nll``, ``ts_perplexity``, ``ts_ece``, ``ts_smece``): the
engine's scaled mechanism. Accuracy and exact match are not scaled (temperature never changes the argmax)."""


@dataclass(frozen=True)
class SequenceSection(TaskSection):
    """The ``[sequence]`` config section. Every field has a default; :meth:`validate` names bad keys.

    Grid: ``datasets`` x methods (``hard``; ``smoothing`` at each ``label_smoothing``; ``confidence_penalty``
    at each ``penalty``) x the study's ``seeds`` (default 3 for this task). The number of calibration bins
    is the study's top-level ``n_bins``.
    """

    section_name = "sequence"

    datasets: tuple[str, ...] = DATASETS
    label_smoothing: tuple[float, ...] = (0.1, 0.2)
    penalty: tuple[float, ...] = (0.1,)
    # model and optimisation
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    # stdlib language model
    context: int = 64
    corpus_bytes: int = 200_000
    eval_tokens: int = 8192
    # reverse seq2seq
    vocab: int = 10
    min_len: int = 3
    max_len: int = 8
    n_train: int = 1000
    n_eval: int = 400
    target_noise: float = 0.1

    def validate(self) -> SequenceSection:
        """Check every field; raise ``ValueError``/``TypeError`` naming ``sequence.<key>`` and the value."""
        check_names("sequence.datasets", self.datasets, DATASETS)
        check_grid("sequence.label_smoothing", self.label_smoothing, 0.0, 1.0, hi_open=True)
        check_grid("sequence.penalty", self.penalty, 0.0, math.inf)
        for key in ("d_model", "n_layers", "n_heads", "steps", "batch_size", "n_train", "n_eval"):
            check_int(f"sequence.{key}", getattr(self, key), lo=1)
        if self.d_model % self.n_heads:
            raise ValueError(
                expected("sequence.d_model", f"divisible by sequence.n_heads = {self.n_heads}", self.d_model)
            )
        check_float("sequence.lr", self.lr, 0.0, math.inf, lo_open=True)
        check_int("sequence.context", self.context, lo=1)
        check_int("sequence.corpus_bytes", self.corpus_bytes, lo=20 * self.context + 10_240)
        check_int("sequence.eval_tokens", self.eval_tokens, lo=self.context)
        check_int("sequence.vocab", self.vocab, lo=2)
        check_int("sequence.min_len", self.min_len, lo=1)
        check_int("sequence.max_len", self.max_len, lo=self.min_len)
        check_float("sequence.target_noise", self.target_noise, 0.0, 1.0)
        return self


def default_grid(
    section: SequenceSection, seeds: Sequence[int] = (0, 1, 2)
) -> list[tuple[str, str, float | None, int]]:
    """Every run of the grid as ``(dataset, method, param, seed)``; ``param`` is None for ``hard``."""
    methods = (("hard", (None,)), ("smoothing", section.label_smoothing),
               ("confidence_penalty", section.penalty))  # fmt: skip
    return dataset_grid(section.datasets, methods, seeds)


def method_label(method: str, param: float | None) -> str:
    """Display label, e.g. ``smoothing (a=0.1)``; lookups use (method, param), never this string."""
    if method == "hard":
        return "hard"
    return f"{method.replace('_', ' ')} ({'a' if method == 'smoothing' else 'beta'}={param:g})"


# ------------------------------------------------------------------ methods (the task's registry)
def _smoothed_ce(
    hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, *, label_smoothing: float
) -> torch.Tensor:
    """``linear_cross_entropy`` on the final hidden states and the output projection (no N x V logits)."""
    return linear_cross_entropy(hidden, weight, target, ignore_index=IGNORE, label_smoothing=label_smoothing)


def _penalised_ce(
    hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, *, beta: float
) -> torch.Tensor:
    """CE - beta H(q): needs the entropy of the prediction, so the logits are built for this method."""
    return confidence_penalty(hidden @ weight.T, target, beta=beta, ignore_index=IGNORE)


def _hard_objective(param: Any = None, **context: Any) -> Callable[..., torch.Tensor]:
    return functools.partial(_smoothed_ce, label_smoothing=0.0)


def _smoothing_objective(param: float, **context: Any) -> Callable[..., torch.Tensor]:
    return functools.partial(_smoothed_ce, label_smoothing=float(param))


def _penalty_objective(param: float, **context: Any) -> Callable[..., torch.Tensor]:
    return functools.partial(_penalised_ce, beta=float(param))


def _alpha_smoothing(param: float) -> float:
    return float(param)


def _check_smoothing(dotted: str, param: Any) -> None:
    check_float(dotted, param, 0.0, 1.0, hi_open=True)


def _check_penalty(dotted: str, param: Any) -> None:
    check_float(dotted, param, 0.0, math.inf)


SEQUENCE_METHODS: dict[str, Method] = {
    "hard": Method("hard", None, _hard_objective, label=functools.partial(method_label, "hard"),
                   description="one-hot next-token targets (linear_cross_entropy)"),
    "smoothing": Method("smoothing", "a", _smoothing_objective,
                        label=functools.partial(method_label, "smoothing"),
                        label_smoothing=_alpha_smoothing, config_key="label_smoothing", default=(0.1, 0.2),
                        check=_check_smoothing,
                        description="linear_cross_entropy with label_smoothing = a"),
    "confidence_penalty": Method("confidence_penalty", "beta", _penalty_objective,
                                 label=functools.partial(method_label, "confidence_penalty"),
                                 config_key="penalty", default=(0.1,), check=_check_penalty,
                                 description="CE - beta H(q) (Pereyra et al. 2017) on the built logits"),
}  # fmt: skip
"""The task's method registry (looked up before the shared one): ``objective(param)`` returns the training
loss ``(hidden (N, d), weight (V, d), target (N,)) -> scalar``; padding is ``ignore_index = -100``."""


def build_data(section: SequenceSection, dataset: str, seed: int) -> TokenData:
    """The dataset's token data (the stdlib corpus ignores ``seed``; reverse's training noise uses it)."""
    if dataset == "stdlib":
        return language_model_data(section.corpus_bytes, section.context, section.eval_tokens)
    if dataset == "reverse":
        return reverse_data(
            section.vocab, section.min_len, section.max_len, section.n_train, section.n_eval,
            section.target_noise, seed,
        )  # fmt: skip
    raise ValueError(expected("dataset", "to be one of " + ", ".join(map(repr, DATASETS)), dataset))


def build_model(section: SequenceSection, data: TokenData) -> CausalTransformer:
    return CausalTransformer(
        data.vocab_size, data.context, section.d_model, section.n_layers, section.n_heads
    )


def _check_method(method: str, param: float | None) -> float:
    if not check_method_param(method, param, METHODS, "hard"):
        return 0.0
    hi = 1.0 if method == "smoothing" else math.inf
    return check_float("param", param, 0.0, hi, hi_open=method == "smoothing")


def _loss(
    model: CausalTransformer, x: torch.Tensor, y: torch.Tensor, method: str, param: float
) -> torch.Tensor:
    h = model.hidden(x).reshape(-1, model.head.weight.shape[1])
    return SEQUENCE_METHODS[method].objective(param)(h, model.head.weight, y.reshape(-1))


def _batch(
    data: TokenData, section: SequenceSection, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    if data.train_stream is not None:
        T = data.context
        starts = torch.randint(0, data.train_stream.numel() - T - 1, (section.batch_size,), generator=g)
        offsets = starts[:, None] + torch.arange(T + 1)
        w = data.train_stream[offsets]
        return w[:, :-1], w[:, 1:]
    assert data.train_inputs is not None and data.train_targets is not None
    idx = torch.randint(0, data.train_inputs.shape[0], (section.batch_size,), generator=g)
    return data.train_inputs[idx], data.train_targets[idx]


@torch.no_grad()
def _scored_logits(
    model: CausalTransformer, split: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N, V)`` (float64) and targets ``(N,)`` of every scored token of a held-out split."""
    x, y = split
    zs, ys = [], []
    for i in range(0, x.shape[0], 64):
        z = model(x[i : i + 64])
        keep = y[i : i + 64] != IGNORE
        zs.append(z[keep])
        ys.append(y[i : i + 64][keep])
    return torch.cat(zs).double(), torch.cat(ys)


def run_one(
    section: SequenceSection,
    method: str,
    param: float | None,
    seed: int,
    *,
    dataset: str | None = None,
    n_bins: int = 15,
) -> dict:
    """Train one model of the grid and measure it on the test split.

    ``dataset`` defaults to the section's first dataset. Returns ``{"metrics": {key: float | None} (the
    keys of METRICS), "curves": {"train_loss": [...]}, "arrays": {"reliability", "reliability_ts":
    per-bin lists, "fingerprint": str}}``. Deterministic given its inputs: seeded generators, one thread.
    """
    dataset = section.datasets[0] if dataset is None else dataset
    value = _check_method(method, param)
    with one_thread():
        data = build_data(section, dataset, seed)
        torch.manual_seed(seed)
        model = build_model(section, data)
        opt = torch.optim.Adam(model.parameters(), lr=section.lr)
        g = torch.Generator().manual_seed(seed)
        curve: list[float] = []
        running = 0.0
        every = max(1, section.steps // 30)
        model.train()
        for step in range(section.steps):
            lr = section.lr * min(1.0, (step + 1) / max(1, section.steps // 10))
            lr *= 0.5 * (1 + math.cos(math.pi * step / section.steps))
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = _batch(data, section, g)
            loss = _loss(model, x, y, method, value)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            running += float(loss.detach())
            if (step + 1) % every == 0 or step + 1 == section.steps:
                curve.append(running / (every if (step + 1) % every == 0 else (step + 1) % every))
                running = 0.0
        model.eval()
        zv, yv = _scored_logits(model, data.val)
        zt, yt = _scored_logits(model, data.test)
        with warnings.catch_warnings():  # a clamped temperature is recorded in `temperature`
            warnings.simplefilter("ignore")
            scaler = TemperatureScaler().fit(zv, yv)
        zs = scaler.transform(zt)
        nll, ts_nll = (
            negative_log_likelihood(zt, yt, from_logits=True),
            negative_log_likelihood(zs, yt, from_logits=True),
        )
        metrics: dict[str, float | None] = {
            "nll": nll,
            "perplexity": math.exp(nll),
            "accuracy": accuracy(zt, yt, from_logits=True),
            "exact_match": greedy_exact_match(model, data) if data.test_sources else None,
            "ece": expected_calibration_error(zt, yt, n_bins=n_bins, from_logits=True),
            "smece": smooth_calibration_error(zt, yt, from_logits=True),
            "temperature": float(scaler.temperature_),
            "ts_nll": ts_nll,
            "ts_perplexity": math.exp(ts_nll),
            "ts_ece": expected_calibration_error(zs, yt, n_bins=n_bins, from_logits=True),
            "ts_smece": smooth_calibration_error(zs, yt, from_logits=True),
            "train_loss": curve[-1],
        }
        arrays = {
            "reliability": measure.reliability_bins(zt, yt, n_bins),
            "reliability_ts": measure.reliability_bins(zs, yt, n_bins),
            "fingerprint": data.fingerprint,
        }
    return {
        "metrics": {k: (None if v is None else float(v)) for k, v in metrics.items()},
        "curves": {"train_loss": curve},
        "arrays": arrays,
    }


# ------------------------------------------------------------------ verdict
def claims(
    records: list[dict], *, label_smoothing: float = 0.1, claim_alpha: float | None = None
) -> list[dict[str, Any]]:
    """The published claims checked on a grid's records, one dict per (dataset, claim).

    ``records``: dicts with ``dataset`` (optional), ``method``, ``param``, ``seed`` and the metrics (flat
    or under ``metrics``). Each claim compares smoothing at ``label_smoothing`` (or the nearest grid value;
    ``claim_alpha`` is its deprecated spelling, one release) with ``hard`` by a paired difference over
    seeds: ``{"dataset", "claim", "source", "key", "alpha" (the factor compared),
    "estimate": Estimate, "status": "reproduced" | "contradicted" | "not detectable" | "not enough seeds"}``.
    """
    if claim_alpha is not None:
        warn_renamed("claims(claim_alpha=...)", "claims(label_smoothing=...)")
        label_smoothing = claim_alpha
    out = []
    for ds, _, groups in by_dataset(flatten(records)):
        hard = baseline(groups, "hard")
        alphas = sorted(p for m, p in groups if m == "smoothing")
        if not hard or not alphas:
            continue
        a = min(alphas, key=lambda v: abs(v - label_smoothing))
        ls = groups[("smoothing", a)]
        acc_key = "exact_match" if any(r.get("exact_match") is not None for r in ls) else "accuracy"
        for claim, source, key, sign in (
            ("smoothing raises perplexity", "Vaswani et al. 2017, Table 3 (4.67 -> 4.92)", "perplexity", +1),
            ("smoothing raises token accuracy", "Vaswani et al. 2017 (BLEU 25.3 -> 25.8)", "accuracy", +1),
            ("smoothing lowers next-token ECE", "Müller et al. 2019 (0.056 -> 0.019)", "ece", -1),
            ("temperature scaling does not recover smoothing's accuracy gain",
             "Müller et al. 2019", acc_key, +1),
        ):  # fmt: skip
            e = diff(ls, hard, key)
            out.append({"dataset": ds, "claim": claim, "source": source, "key": key, "alpha": a,
                        "estimate": e, "status": claim_status(e, sign)})  # fmt: skip
    return out


def summarize(records: list[dict]) -> list[str]:
    """The verdict in words, one paragraph per dataset: each method against ``hard`` (paired 95% intervals
    over seeds), then the published claims with their status. Reports what was measured, nothing tuned."""
    lines: list[str] = []
    for ds, recs, groups in by_dataset(flatten(records)):
        hard = baseline(groups, "hard")
        if not hard:
            lines.append(f"{ds}: no hard-target runs, nothing to compare with.")
            continue
        lines.append(
            f"{ds}: hard targets reach perplexity {spread(hard, 'perplexity')}, token accuracy "
            f"{spread(hard, 'accuracy')}, ECE {spread(hard, 'ece')} (after temperature scaling "
            f"{spread(hard, 'ts_ece')}, T = {spread(hard, 'temperature')})."
        )
        for (m, p), rs in groups.items():
            if m == "hard":
                continue
            dp, da, de, dt = (diff(rs, hard, k) for k in ("perplexity", "accuracy", "ece", "ts_ece"))
            s = (
                f"  {method_label(m, p)} vs hard: perplexity {dp.fmt(digits=3)} "
                f"({direction(dp, up='worse', down='better')}), token accuracy {da.fmt(100, 2)} points "
                f"({direction(da, up='better', down='worse')}), ECE {de.fmt(digits=4)} "
                f"({direction(de, up='worse', down='better')}); "
                f"after temperature scaling ECE {dt.fmt(digits=4)} "
                f"({direction(dt, up='worse', down='better')})"
            )
            if any(r.get("exact_match") is not None for r in rs):
                dx = diff(rs, hard, "exact_match")
                s += f", exact match {dx.fmt(100, 1)} points ({direction(dx, up='better', down='worse')})"
            lines.append(s + ".")
        for c in claims(recs):
            lines.append(
                f"  Claim '{c['claim']}' ({c['source']}), a = {c['alpha']:g}: {c['status']} "
                f"(difference in {c['key']} {c['estimate'].fmt(digits=4)}, n = {c['estimate'].n})."
            )
    return lines


# ------------------------------------------------------------------ the engine task
_GRID_KEYS = ("datasets", "label_smoothing", "penalty")


def _ece_explanation(hard: list[dict]) -> str:
    """Why ECE went the way it did: the hard model's own calibration (its fitted temperature)."""
    t = estimate(r.get("temperature") for r in hard)
    if math.isnan(t.mean):
        return ""
    if t.mean <= 1.05:
        state = "underconfident" if t.mean < 0.95 else "close to calibrated"
        return (
            f" The hard-target models here are not overconfident (fitted T = {t.fmt(digits=2)}, "
            f"{state}; T > 1 would mean overconfident), so smoothing, which lowers confidence, moves them "
            "further from calibration; Müller et al.'s hard baseline was an overconfident large translation "
            "model."
        )
    return f" The hard-target models are overconfident here (fitted T = {t.fmt(digits=2)} > 1)."


def verdict(
    records: list[dict], *, label_smoothing: float = 0.1, claim_alpha: float | None = None
) -> list[Verdict]:
    """One :class:`Verdict` per dataset: what smoothing did to perplexity, accuracy and calibration
    against hard targets (paired 95% t-intervals over seeds), each against the published direction.

    ``outcome`` lists the three directions measured at the claim's a (e.g. ``"perplexity up, accuracy
    within noise, ECE up"``); ``numbers`` holds the claims (:func:`claims` at ``label_smoothing``;
    ``claim_alpha`` is its deprecated spelling, one release)."""
    if claim_alpha is not None:
        warn_renamed("verdict(claim_alpha=...)", "verdict(label_smoothing=...)")
        label_smoothing = claim_alpha
    out: list[Verdict] = []
    for ds, recs, groups in by_dataset(flatten(records)):
        hard = baseline(groups, "hard")
        if not hard:
            out.append(Verdict(str(ds), "no baseline", ["No hard-target runs: nothing to compare with."]))
            continue
        n = len({r["seed"] for r in hard})
        s = [
            f"Hard targets ({n} seeds): perplexity {spread(hard, 'perplexity')}, token accuracy "
            f"{spread(hard, 'accuracy')}, ECE {spread(hard, 'ece')} (after temperature scaling "
            f"{spread(hard, 'ts_ece')})."
        ]
        cl = {
            c["key"]: c
            for c in claims(recs, label_smoothing=label_smoothing)
            if c["claim"].startswith("smoothing")
        }
        words = []
        if cl:
            a = next(iter(cl.values()))["alpha"]
            ls = groups[("smoothing", a)]
            dp, da, de, dt = (diff(ls, hard, k) for k in ("perplexity", "accuracy", "ece", "ts_ece"))
            s.append(
                f"Smoothing a = {a:g} against hard (paired over {dp.n} seeds): perplexity {dp.fmt(digits=3)} "
                f"({direction(dp, up='up', down='down')}); Vaswani et al. 2017 report it up (4.67 -> 4.92): "
                f"{cl['perplexity']['status']}."
            )
            s.append(
                f"Token accuracy {da.fmt(100, 2)} points ({direction(da, up='up', down='down')}); Vaswani "
                f"et al. report a gain (BLEU 25.3 -> 25.8): {cl['accuracy']['status']}."
            )
            if any(r.get("exact_match") is not None for r in ls):
                dx = diff(ls, hard, "exact_match")
                s.append(
                    f"Exact match (greedy decoding) {dx.fmt(100, 1)} points "
                    f"({direction(dx, up='up', down='down')})."
                )
            ece_word = direction(de, up="up", down="down")
            s.append(
                f"ECE {de.fmt(digits=4)} ({ece_word}); Müller et al. 2019 report it down (0.056 -> 0.019): "
                f"{cl['ece']['status']}."
                + (_ece_explanation(hard) if cl["ece"]["status"] == "contradicted" else "")
            )
            s.append(
                f"After temperature scaling (fitted on validation) the ECE difference is {dt.fmt(digits=4)} "
                f"({direction(dt, up='smoothing worse', down='smoothing better')}). "
                "Temperature scaling never "
                "changes the argmax, so it cannot give the hard model smoothing's accuracy: that claim is "
                "the accuracy comparison above."
            )
            words = [
                f"perplexity {_word(dp)}", f"accuracy {_word(da)}", f"ECE {_word(de)}",
            ]  # fmt: skip
        for (m, p), rs in groups.items():
            if m == "hard" or (m == "smoothing" and cl and p == next(iter(cl.values()))["alpha"]):
                continue
            dp, da, de = (diff(rs, hard, k) for k in ("perplexity", "accuracy", "ece"))
            s.append(
                f"{method_label(m, p)}: perplexity {dp.fmt(digits=3)} "
                f"({direction(dp, up='up', down='down')}), "
                f"token accuracy {da.fmt(100, 2)} points ({direction(da, up='up', down='down')}), ECE "
                f"{de.fmt(digits=4)} ({direction(de, up='up', down='down')})."
            )
        if cl:
            s.append(
                f"Bottom line at a = {a:g}: perplexity {words[0].split(' ', 1)[1]} "
                f"(published: up, {cl['perplexity']['status']}), token accuracy {words[1].split(' ', 1)[1]} "
                f"(published: up, {cl['accuracy']['status']}), ECE {words[2].split(' ', 1)[1]} (published: "
                f"down, {cl['ece']['status']})."
            )
        numbers = {"claims": [{**c, "estimate": vars(c["estimate"])} for c in cl.values()]}
        out.append(Verdict(str(ds), ", ".join(words) or "no smoothing runs", s, numbers))
    return out


def _word(e: Any) -> str:
    if e.n < 2 or math.isnan(e.half):
        return "n/a"
    if degenerate(e) or not e.significant:
        return "within noise"
    return "up" if e.mean > 0 else "down"


class SequenceTask(DatasetGridTask):
    """The ``sequence`` task on the study engine: datasets x methods x seeds of :func:`run_one`."""

    name = "sequence"
    summary = (
        "what does label smoothing do to a small language model's perplexity, accuracy and calibration "
        "(Vaswani et al. 2017; Müller et al. 2019)?"
    )
    runtime = RUNTIME
    config_cls = SequenceSection
    metrics = METRICS
    methods: Mapping[str, Method] = SEQUENCE_METHODS
    default_seeds = (0, 1, 2)
    """Seeds when the config sets none (the study's ``seeds`` key overrides it)."""
    report_note = (
        "Intervals are 95% Student-t intervals over seeds; comparisons with hard targets are paired by seed "
        "(same initial weights and batches; on reverse the same noisy training answers). Metrics are on the "
        "test split; temperature scaling is fitted on the validation split."
    )
    grid_keys = _GRID_KEYS
    data_note = "brings its own data"
    model_note = "builds its own CausalTransformer"
    describe_widths = (8, 28)
    run_one = run_one
    default_grid = default_grid
    method_label = method_label

    def load_datasets(self, cfg: Any) -> dict[str, str]:
        """The datasets' fingerprints (the stdlib corpus is read now: a missing file fails before anything
        is written)."""
        sec = cfg.section
        return {
            ds: build_data(sec, ds, 0).fingerprint if ds == "stdlib" else "synthetic" for ds in sec.datasets
        }

    def run_config(self, cfg: Any, datasets: Any, dataset: str) -> dict[str, Any]:
        return {"n_bins": cfg.n_bins, "data": datasets[dataset]}

    def run_options(self, ctx: Context) -> dict[str, Any]:
        return {"n_bins": ctx.config.n_bins}

    def verdict(self, records: list[dict[str, Any]]) -> list[Verdict]:
        return verdict(records)

    def dataset_figures(
        self, dataset: Any, records: list[dict], groups: dict[tuple[str, Any], list[dict]], by_hash: dict
    ) -> list[Figure]:
        from labelsmooth.study import figures as fig
        from labelsmooth.study.tasks.task_figures import metric_by_method

        ds = dataset
        out = [Figure(
            f"perplexity_{slug(ds)}",
            f"{ds}: test perplexity, token accuracy and ECE before / after temperature scaling per "
            "method (mean and 95% t-interval over seeds).",
            metric_by_method(self.labelled(groups), [("perplexity", "perplexity"),
                             ("accuracy", "token accuracy"), ("ece", "ECE"), ("ts_ece", "ECE after T")],
                             f"{ds}: per method"),
        )]  # fmt: skip
        panels: list[tuple[str | None, list[dict]]] = []
        for (m, p), rs in groups.items():
            if m not in ("hard", "smoothing"):
                continue
            stored = [by_hash[r["run_hash"]] for r in rs if r.get("run_hash") in by_hash]
            for key, suffix in (("reliability", ""), ("reliability_ts", ", after T")):
                bins = [r.arrays[key] for r in stored if r.arrays.get(key)]
                if bins:
                    panels.append((method_label(m, p) + suffix, bins))
        if panels:
            out.append(Figure(
                f"reliability_{slug(ds)}",
                f"{ds}: reliability of the top-label next-token confidence, hard targets and each "
                "smoothing a, before and after temperature scaling (test split, bins pooled over seeds). "
                "Points above the diagonal: underconfident.",
                fig.reliability_png(panels, f"{ds}: reliability before / after temperature scaling"),
            ))  # fmt: skip
        return out


TASK = register(SequenceTask())
