"""The ``noise`` task's core: the best smoothing rate under symmetric label noise (engine-agnostic).

An MLP (128 x 2) is trained on the digits whose training labels carry symmetric noise at each rate ``eta``
in ``noise_rates`` (:mod:`labelsmooth.study.noise`; validation and test labels stay clean), with:

- ``gls`` — generalised label smoothing with rate ``r`` in ``smoothing`` (Wei et al. 2022): cross-entropy for
  ``warmup_epochs``, then :func:`labelsmooth.cross_entropy` with ``label_smoothing=r, allow_negative=True``.
  The target is ``(1 - r) onehot(y) + r/K`` (the library's uniform convention, which is Wei et al.'s
  ``y^{GLS,r}``); ``r`` ranges over ``(-inf, 1]``; ``r < 0`` is negative smoothing (the label gets
  ``1 - r + r/K > 1`` and the others ``r/K < 0``), whose loss is unbounded below — the logits keep growing,
  so its NLL and ECE before temperature scaling are poor by construction; ``r = 0`` is plain cross-entropy.
- ``ols`` — online label smoothing (:class:`labelsmooth.OnlineLabelSmoothing`, Zhang et al. 2021).
- ``relax`` — label relaxation with ``a`` in ``relaxation`` (:func:`labelsmooth.label_relaxation_loss`).
- ``forward`` — forward loss correction with the *true* transition matrix
  (:func:`labelsmooth.forward_corrected_loss`, :func:`labelsmooth.symmetric_transition`; Patrini et al.
  2017), the baseline Lukasik et al. (2020) compare smoothing with.

Claims (:func:`claims`): the best ``r`` moves from positive at low noise to negative at high noise (Wei et
al.'s "phase transition"); smoothing is competitive with forward correction at moderate noise (Lukasik et
al. 2020). :func:`best_r_curve` gives the data of the "best r against eta" figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from labelsmooth._validation import check_scalar_range, expected
from labelsmooth.losses import (
    OnlineLabelSmoothing,
    cross_entropy,
    forward_corrected_loss,
    label_relaxation_loss,
    symmetric_transition,
)
from labelsmooth.study import stats
from labelsmooth.study.noise import memorised_fraction
from labelsmooth.study.tasks import _digits
from labelsmooth.study.tasks._digits import BASE_METRICS, VERDICT, Claim, Metric, held, select

__all__ = [
    "METHODS",
    "METRICS",
    "NoiseRun",
    "NoiseSection",
    "best_r_curve",
    "claims",
    "grid",
    "methods",
    "run_one",
    "summarize",
]

METHODS: dict[str, str] = {
    "gls": "generalised label smoothing with rate r (CE warm-up first; r < 0 is negative smoothing)",
    "ols": "online label smoothing (Zhang et al. 2021)",
    "relax": "label relaxation with a (Lienen and Hüllermeier 2021)",
    "forward": "forward loss correction with the true transition matrix (Patrini et al. 2017)",
}

METRICS: tuple[Metric, ...] = (
    *BASE_METRICS,
    ("train_accuracy", "train acc (noisy)", "%", None, False),
    ("train_accuracy_clean", "train acc (clean)", "%", "higher", False),
    ("memorised", "memorised", "%", "lower", False),
)
"""``(key, header, format, better, scaled)``; ``memorised`` is the fraction of wrongly labelled training
examples predicted as their wrong label (None without noise)."""


@dataclass(frozen=True)
class NoiseSection:
    """The ``[noise]`` config section. Default grid: 4 noise rates x (7 r + ols + relax + forward) x 5 seeds =
    200 runs, under 3 minutes on 2 cores."""

    noise_rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)
    smoothing: tuple[float, ...] = (0.6, 0.4, 0.2, 0.0, -0.2, -0.4, -1.0)
    relaxation: tuple[float, ...] = (0.2,)
    online: bool = True
    forward: bool = True
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    warmup_epochs: int = 20
    epochs: int = 60
    ols_label_smoothing: float = 0.1
    ols_alpha: float = 0.5
    width: int = 128
    depth: int = 2
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    n_bins: int = 15

    def validate(self) -> NoiseSection:
        """Check every value; raise ValueError naming the key (``noise.<key>``). Returns self."""
        for key in ("noise_rates", "smoothing", "seeds"):
            _digits.check_nonempty(f"noise.{key}", getattr(self, key))
        if self.relaxation:
            _digits.check_nonempty("noise.relaxation", self.relaxation)
        for r in self.noise_rates:
            check_scalar_range("noise.noise_rates", r, 0.0, 1.0, hi_open=True)
        for r in self.smoothing:
            check_scalar_range("noise.smoothing", r, -math.inf, 1.0, lo_open=True)
        for a in self.relaxation:
            check_scalar_range("noise.relaxation", a, 0.0, 1.0, lo_open=True, hi_open=True)
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(expected("noise.seeds", "to hold ints >= 0", s))
        for key in ("epochs", "width", "depth", "n_bins"):
            _digits.check_positive_int(f"noise.{key}", getattr(self, key))
        w = self.warmup_epochs
        if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < self.epochs:
            raise ValueError(expected("noise.warmup_epochs", f"an int in [0, epochs = {self.epochs})", w))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(
                expected("noise.batch_size", "to be an int >= 0 (0 = full batch)", self.batch_size)
            )
        check_scalar_range("noise.ols_label_smoothing", self.ols_label_smoothing, 0.0, 1.0)
        check_scalar_range("noise.ols_alpha", self.ols_alpha, 0.0, 1.0)
        check_scalar_range("noise.lr", self.lr, 0.0, math.inf, lo_open=True, hi_open=True)
        check_scalar_range("noise.weight_decay", self.weight_decay, 0.0, math.inf, hi_open=True)
        check_scalar_range("noise.val_fraction", self.val_fraction, 0.0, 0.5, lo_open=True)
        check_scalar_range("noise.test_fraction", self.test_fraction, 0.0, 0.5, lo_open=True)
        return self


@dataclass(frozen=True)
class NoiseRun:
    """One point: ``param`` is r (gls) or a (relax); None for ols and forward."""

    method: str
    param: float | None
    noise_rate: float
    seed: int

    def needs(self) -> None:
        """No run of this task depends on another."""
        return None

    def axes(self) -> dict[str, Any]:
        return asdict(self)


def methods(section: NoiseSection) -> list[tuple[str, float | None]]:
    """The methods grid: ``(method, param)`` pairs."""
    out: list[tuple[str, float | None]] = [("gls", r) for r in section.smoothing]
    if section.online:
        out.append(("ols", None))
    out += [("relax", a) for a in section.relaxation]
    if section.forward:
        out.append(("forward", None))
    return out


def grid(section: NoiseSection) -> list[NoiseRun]:
    return [
        NoiseRun(m, p, eta, s)
        for eta in section.noise_rates
        for s in section.seeds
        for m, p in methods(section)
    ]


def run_one(
    section: NoiseSection, method: str, param: float | None, noise_rate: float, seed: int
) -> dict[str, Any]:
    """Train one model on the seed's split with symmetric noise ``noise_rate``; returns
    ``{"metrics", "curves", "arrays", "artefacts"}`` (no artefacts: nothing depends on these runs)."""
    if method not in METHODS:
        raise ValueError(expected("method", "to be one of " + ", ".join(map(repr, METHODS)), method))
    if method in ("gls", "relax") and param is None:
        raise ValueError(expected("param", f"(r or a) for method {method!r}", None))
    check_scalar_range("noise_rate", noise_rate, 0.0, 1.0, hi_open=True)
    d = _digits.prepare(seed, section.val_fraction, section.test_fraction, noise_rate)
    k = d.num_classes
    model = _digits.mlp(k, section.width, section.depth, seed, "noise")
    y = d.y_train
    ols = OnlineLabelSmoothing(k, label_smoothing=section.ols_label_smoothing, alpha=section.ols_alpha)
    transition = symmetric_transition(k, noise_rate)
    if method == "relax":
        check_scalar_range("param", param, 0.0, 1.0, lo_open=True, hi_open=True)
    elif method == "gls":
        check_scalar_range("param", param, -math.inf, 1.0, lo_open=True)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        yb = y[idx]
        if method == "gls":
            r = float(param) if epoch > section.warmup_epochs else 0.0  # type: ignore[arg-type]
            return cross_entropy(z, yb, label_smoothing=r, allow_negative=True)
        if method == "ols":
            out = ols(z, yb)
            ols.update(z.detach(), yb)
            return out
        if method == "relax":
            return label_relaxation_loss(z, yb, float(param))  # type: ignore[arg-type]
        return forward_corrected_loss(z, yb, transition)

    def epoch_end(epoch: int) -> None:
        if method == "ols":
            ols.step_epoch()

    curves = _digits.train(
        model,
        d.X_train,
        loss,
        epochs=section.epochs,
        lr=section.lr,
        batch_size=section.batch_size,
        weight_decay=section.weight_decay,
        seed=seed,
        role="noise",
        epoch_end=epoch_end,
    )
    z_tr, z_va, z_te = (_digits.logits(model, x) for x in (d.X_train, d.X_val, d.X_test))
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, section.n_bins)
    pred = z_tr.argmax(1)
    metrics["train_accuracy"] = float((pred == y).double().mean())
    metrics["train_accuracy_clean"] = float((pred == d.y_train_clean).double().mean())
    metrics["memorised"] = memorised_fraction(pred.numpy(), y.numpy(), d.y_train_clean.numpy())
    arrays = {"ols_soft_labels": ols.soft_labels.tolist()} if method == "ols" else {}
    return {"metrics": metrics, "curves": curves, "arrays": arrays, "artefacts": {}}


def execute(section: NoiseSection, run: NoiseRun) -> dict[str, Any]:
    return run_one(section, run.method, run.param, run.noise_rate, run.seed)


# --------------------------------------------------------------------------- verdict
def best_r_curve(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[dict[str, Any]]:
    """The "best r against eta" figure's data: per noise rate, the ``gls`` rate with the highest mean ``key``
    over seeds (selected on the test split: descriptive, optimistic), and every r's estimate."""
    out = []
    for (eta,), group in sorted(stats.group(select(records, method="gls"), ("noise_rate",)).items()):
        by_r = {
            r: stats.estimate(x.get(key) for x in g) for (r,), g in stats.group(group, ("param",)).items()
        }
        finite = {r: e for r, e in by_r.items() if not math.isnan(e.mean)}
        best = max(finite, key=lambda r: finite[r].mean) if finite else None
        out.append({"noise_rate": eta, "best_r": best, "by_r": dict(sorted(by_r.items(), reverse=True))})
    return out


def _best_in(records, eta, rs, key):
    rs = [r for r in rs if select(records, method="gls", noise_rate=eta, param=r)]
    if not rs:
        return None

    def mean(r: float) -> float:
        return stats.estimate(x.get(key) for x in select(records, method="gls", noise_rate=eta, param=r)).mean

    return max(rs, key=mean)


def claims(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Claim]:
    """Wei et al.'s phase transition and Lukasik et al.'s comparison with forward correction, paired."""
    out: list[Claim] = []
    curve = best_r_curve(records, key)
    if not curve:
        return out
    rs = sorted({r["param"] for r in records if r["method"] == "gls"})
    pos, neg = [r for r in rs if r > 0], [r for r in rs if r < 0]
    lo, hi = curve[0], curve[-1]
    if pos and neg:
        for point, want in ((lo, "positive"), (hi, "negative")):
            eta = point["noise_rate"]
            bp, bn = _best_in(records, eta, pos, key), _best_in(records, eta, neg, key)
            a, b = (bp, bn) if want == "positive" else (bn, bp)
            est = stats.paired(
                select(records, method="gls", noise_rate=eta, param=a),
                select(records, method="gls", noise_rate=eta, param=b),
                key,
            )
            best = point["best_r"]
            ok = best is not None and (best > 0 if want == "positive" else best < 0)
            out.append(
                Claim(
                    f"best_r_{want}[eta={eta:g}]",
                    f"best r at eta={eta:g} is {want} (best r = {best:g}); "
                    f"best {want} r={a:g} vs best other r={b:g}",
                    est,
                    ok,
                    {"best_r": best},
                )
            )
    moderate = [p["noise_rate"] for p in curve if 0 < p["noise_rate"] <= 0.4]
    for eta in moderate:
        fwd = select(records, method="forward", noise_rate=eta)
        bp = _best_in(records, eta, pos, key) if pos else None
        if fwd and bp is not None:
            est = stats.paired(select(records, method="gls", noise_rate=eta, param=bp), fwd, key)
            out.append(
                Claim(
                    f"competitive_with_forward[eta={eta:g}]",
                    f"smoothing r={bp:g} vs forward correction at eta={eta:g}: competitive (Lukasik 2020)",
                    est,
                    held(est, ">=0"),
                )
            )
    for eta in [p["noise_rate"] for p in curve]:
        ce = select(records, method="gls", noise_rate=eta, param=0.0)
        for m in ("ols", "relax", "forward"):
            for (p,), g in stats.group(select(records, method=m, noise_rate=eta), ("param",)).items():
                est = stats.paired(g, ce, key)
                label = m if p is None else f"{m} {p:g}"
                out.append(
                    Claim(
                        f"{m}_vs_ce[eta={eta:g}]",
                        f"{label} vs cross-entropy at eta={eta:g}",
                        est,
                        None,
                        {"descriptive": True},
                    )
                )
    return out


def summarize(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[str]:
    """Plain-language lines: best r per noise rate with every r's mean, then the claims' paired intervals."""
    lines = [f"Best r against eta (mean test {key} over seeds, ± 95% t-interval):"]
    for p in best_r_curve(records, key):
        row = ", ".join(f"r={r:g}: {e.fmt(100, 1)}" for r, e in p["by_r"].items())
        best = "n/a" if p["best_r"] is None else f"{p['best_r']:g}"
        lines.append(f"  eta={p['noise_rate']:g}: best r = {best}  ({row})")
    lines.append(f"Claims (paired differences of test {key}, points):")
    for c in claims(records, key):
        verdict = "(measured)" if c.detail.get("descriptive") else VERDICT[c.held]
        lines.append(f"  {c.statement}: {c.estimate.fmt(100, 2)} -> {verdict}")
    return lines
