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

Model selection: the best r at each noise rate is the one with the best mean **validation** accuracy over
seeds (ties: the lower validation NLL), the classification task's rule; the test numbers are then reported
for the selected r. Validation accuracy rather than validation NLL because negative r makes the loss
unbounded below: its logits grow without limit, so its NLL is poor by construction whatever its accuracy,
and selecting on NLL would rule negative r out before measuring it. The validation labels are clean (as in
Wei et al.'s protocol with a clean validation set); with noisy validation labels accuracy still ranks
models the same way in expectation under symmetric noise.

The engine task (:class:`NoiseTask`, registered as ``noise``) runs the grid noise rates x methods x seeds;
its section is ``[noise]`` (the same name as the classification task's noise section, a different task).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from labelsmooth._validation import check_number, check_scalar_range, expected
from labelsmooth.losses import (
    OnlineLabelSmoothing,
    cross_entropy,
    forward_corrected_loss,
    label_relaxation_loss,
    symmetric_transition,
)
from labelsmooth.study import stats
from labelsmooth.study.noise import memorised_fraction
from labelsmooth.study.tasks import _digits, register
from labelsmooth.study.tasks._common import DigitsTrainingSection
from labelsmooth.study.tasks._digits import BASE_METRICS, VERDICT, Claim, held, pts, select
from labelsmooth.study.tasks.base import Context, Figure, Method, Metric, NeededRun, RunRecord, RunSpec, Task

__all__ = [
    "METHODS",
    "METRICS",
    "TASK",
    "NoiseRun",
    "NoiseSection",
    "NoiseTask",
    "best_r_curve",
    "claims",
    "grid",
    "methods",
    "run_one",
    "summarize",
    "verdicts",
]


class _OnlineLoss:
    """Online label smoothing as a batch loss: the module's loss, then its running sums updated; the soft
    labels swap in at each epoch's end (:meth:`epoch_end`)."""

    def __init__(self, target: torch.Tensor, num_classes: int, section: NoiseSection) -> None:
        self.target = target
        self.ols = OnlineLabelSmoothing(
            num_classes, label_smoothing=section.ols_label_smoothing, alpha=section.ols_alpha
        )

    def __call__(self, z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        yb = self.target[idx]
        out = self.ols(z, yb)
        self.ols.update(z.detach(), yb)
        return out

    def epoch_end(self, epoch: int) -> None:
        self.ols.step_epoch()


def _gls(param: float, *, target: torch.Tensor, section: NoiseSection, **context: Any) -> _digits.BatchLoss:
    """Wei et al.'s protocol: cross-entropy for ``warmup_epochs``, then smoothing r (negative allowed)."""
    r = float(param)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        rate = r if epoch > section.warmup_epochs else 0.0
        return cross_entropy(z, target[idx], label_smoothing=rate, allow_negative=True)

    return loss


def _ols(param: None, *, target: torch.Tensor, num_classes: int, section: NoiseSection, **context: Any):
    return _OnlineLoss(target, num_classes, section)


def _relax(param: float, *, target: torch.Tensor, **context: Any) -> _digits.BatchLoss:
    a = float(param)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return label_relaxation_loss(z, target[idx], a)

    return loss


def _forward(param: None, *, target: torch.Tensor, num_classes: int, noise_rate: float, **context: Any):
    transition = symmetric_transition(num_classes, noise_rate)

    def loss(z: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return forward_corrected_loss(z, target[idx], transition)

    return loss


METHODS: dict[str, Method] = {
    "gls": Method(
        "gls",
        "r",
        _gls,
        label=lambda p: f"GLS r={p:g}" + (" (CE)" if p == 0 else ""),
        description="generalised label smoothing with rate r (CE warm-up first; r < 0 is negative smoothing)",
    ),
    "ols": Method(
        "ols",
        None,
        _ols,
        label=lambda p: "online LS",
        description="online label smoothing (Zhang et al. 2021)",
    ),
    "relax": Method(
        "relax",
        "a",
        _relax,
        label=lambda p: f"relaxation a={p:g}",
        description="label relaxation with a (Lienen and Hüllermeier 2021)",
    ),
    "forward": Method(
        "forward",
        None,
        _forward,
        label=lambda p: "forward correction (true T)",
        description="forward loss correction with the true transition matrix (Patrini et al. 2017)",
    ),
}
"""The task's own method registry: ``objective(param, **context)`` returns the batch loss; the context is
the noisy training labels ``target``, ``num_classes``, the ``section`` and the ``noise_rate`` (forward)."""

METRICS: tuple[Metric, ...] = (
    *BASE_METRICS,
    Metric(
        "train_accuracy",
        "train accuracy (noisy)",
        "%",
        summary=False,
        description="against the noisy training labels",
    ),
    Metric(
        "train_accuracy_clean",
        "train accuracy (clean)",
        "%",
        "higher",
        summary=False,
        description="against the clean training labels",
    ),
    Metric(
        "memorised",
        "memorised",
        "%",
        "lower",
        cli=True,
        description="wrongly labelled training examples predicted as their wrong label (None without noise)",
    ),
)
"""The ``noise`` metrics table."""


@dataclass(frozen=True)
class NoiseSection(DigitsTrainingSection):
    """The ``[noise]`` config section of the ``noise`` task (the seeds and ``n_bins`` are the study's
    top-level keys). Default grid: 4 noise rates x (7 r + ols + relax + forward) x 5 seeds = 200 runs."""

    section_name = "noise"

    noise_rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)
    smoothing: tuple[float, ...] = (0.6, 0.4, 0.2, 0.0, -0.2, -0.4, -1.0)
    relaxation: tuple[float, ...] = (0.2,)
    online: bool = True
    forward: bool = True
    warmup_epochs: int = 20
    epochs: int = 60
    ols_label_smoothing: float = 0.1
    ols_alpha: float = 0.5
    width: int = 128
    depth: int = 2

    def validate(self) -> NoiseSection:
        """Check every value; raise ValueError naming the key (``noise.<key>``). Returns self."""
        for key in ("noise_rates", "smoothing"):
            _digits.check_nonempty(f"noise.{key}", getattr(self, key))
        if self.relaxation:
            _digits.check_nonempty("noise.relaxation", self.relaxation)
        for r in self.noise_rates:
            check_scalar_range("noise.noise_rates", r, 0.0, 1.0, hi_open=True)
        for r in self.smoothing:
            check_scalar_range("noise.smoothing", r, -math.inf, 1.0, lo_open=True)
        for a in self.relaxation:
            check_scalar_range("noise.relaxation", a, 0.0, 1.0, lo_open=True, hi_open=True)
        for key in ("epochs", "width", "depth"):
            _digits.check_positive_int(f"noise.{key}", getattr(self, key))
        w = self.warmup_epochs
        what = f"an int in [0, epochs = {self.epochs})"
        check_number("noise.warmup_epochs", w, lo=0, hi=self.epochs, hi_open=True, integer=True, what=what)
        check_scalar_range("noise.ols_label_smoothing", self.ols_label_smoothing, 0.0, 1.0)
        check_scalar_range("noise.ols_alpha", self.ols_alpha, 0.0, 1.0)
        self.check_training()
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


def grid(section: NoiseSection, seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> list[NoiseRun]:
    return [NoiseRun(m, p, eta, s) for eta in section.noise_rates for s in seeds for m, p in methods(section)]


def run_one(
    section: NoiseSection, method: str, param: float | None, noise_rate: float, seed: int, *, n_bins: int = 15
) -> dict[str, Any]:
    """Train one model on the seed's split with symmetric noise ``noise_rate``; returns
    ``{"metrics", "curves", "arrays", "artefacts"}`` (no artefacts: nothing depends on these runs)."""
    if method not in METHODS:
        raise ValueError(expected("method", "to be one of " + ", ".join(map(repr, METHODS)), method))
    if method in ("gls", "relax") and param is None:
        raise ValueError(expected("param", f"(r or a) for method {method!r}", None))
    check_scalar_range("noise_rate", noise_rate, 0.0, 1.0, hi_open=True)
    d = _digits.digits_split(seed, section.val_fraction, section.test_fraction, noise_rate)
    k = d.num_classes
    model = _digits.mlp(k, section.width, section.depth, seed, "noise")
    y = d.y_train
    if method == "relax":
        check_scalar_range("param", param, 0.0, 1.0, lo_open=True, hi_open=True)
    elif method == "gls":
        check_scalar_range("param", param, -math.inf, 1.0, lo_open=True)
    loss = METHODS[method].objective(param, target=y, num_classes=k, section=section, noise_rate=noise_rate)
    epoch_end: Callable[[int], None] | None = getattr(loss, "epoch_end", None)
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
    metrics = _digits.evaluate(z_va, d.y_val, z_te, d.y_test, n_bins)
    pred = z_tr.argmax(1)
    metrics["train_accuracy"] = float((pred == y).double().mean())
    metrics["train_accuracy_clean"] = float((pred == d.y_train_clean).double().mean())
    metrics["memorised"] = memorised_fraction(pred.numpy(), y.numpy(), d.y_train_clean.numpy())
    arrays = {"ols_soft_labels": loss.ols.soft_labels.tolist()} if isinstance(loss, _OnlineLoss) else {}
    return {"metrics": metrics, "curves": curves, "arrays": arrays, "artefacts": {}}


def execute(section: NoiseSection, run: NoiseRun, *, n_bins: int = 15) -> dict[str, Any]:
    return run_one(section, run.method, run.param, run.noise_rate, run.seed, n_bins=n_bins)


# --------------------------------------------------------------------------- verdict
def best_r_curve(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[dict[str, Any]]:
    """The "best r against eta" data, one dict per noise rate (ascending):

    - ``best_r``: the ``gls`` rate with the best mean validation accuracy over seeds (ties: lower validation
      NLL; :func:`labelsmooth.study.tasks._digits.choose_by_validation`) — never chosen on test numbers;
    - ``test``: the test ``key`` of that r (an :class:`~labelsmooth.study.stats.Estimate` over seeds);
    - ``per_seed``: seed -> the r each seed's own validation split selects; ``per_seed_r``: their mean and
      95% t-interval (the figure's interval), ``per_seed_test``: the test ``key`` of each seed's own choice;
    - ``by_r``: r -> test estimate; ``by_r_val``: r -> validation-accuracy estimate;
    - ``test_best_r``: the r with the best mean *test* ``key`` (descriptive only: what test selection, which
      the verdict never uses, would have picked).
    """
    out = []
    for (eta,), group in sorted(stats.group(select(records, method="gls"), ("noise_rate",)).items()):
        by_param = {r: g for (r,), g in stats.group(group, ("param",)).items()}
        by_r = {r: stats.estimate(x.get(key) for x in g) for r, g in sorted(by_param.items(), reverse=True)}
        by_r_val = {
            r: stats.estimate(x.get("val_accuracy") for x in g)
            for r, g in sorted(by_param.items(), reverse=True)
        }
        best = _digits.choose_by_validation(by_param)
        per_seed: dict[int, float] = {}
        per_seed_test: list[Any] = []
        for (seed,), g in sorted(stats.group(group, ("seed",)).items()):
            choice = _digits.choose_by_validation({x["param"]: [x] for x in g})
            if choice is not None:
                per_seed[seed] = choice
                per_seed_test.append(next(x.get(key) for x in g if x["param"] == choice))
        finite = {r: e for r, e in by_r.items() if not math.isnan(e.mean)}
        out.append(
            {
                "noise_rate": eta,
                "best_r": best,
                "test": by_r[best] if best is not None else stats.estimate([]),
                "per_seed": per_seed,
                "per_seed_r": stats.estimate(per_seed.values()),
                "per_seed_test": stats.estimate(per_seed_test),
                "by_r": by_r,
                "by_r_val": by_r_val,
                "test_best_r": max(finite, key=lambda r: finite[r].mean) if finite else None,
            }
        )
    return out


def _best_in(records: Sequence[Mapping[str, Any]], eta: float, rs: Sequence[float]) -> float | None:
    """The r of ``rs`` with the best mean validation accuracy at noise ``eta`` (None if none was run)."""
    groups = {r: select(records, method="gls", noise_rate=eta, param=r) for r in rs}
    return _digits.choose_by_validation({r: g for r, g in groups.items() if g})


def claims(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Claim]:
    """Wei et al.'s phase transition and Lukasik et al.'s comparison with forward correction: every r is
    chosen on the validation split, every difference is of test ``key``, paired over seeds.

    - ``best_r_positive[eta=lowest]`` / ``best_r_negative[eta=highest]``: held when the validation-selected r
      has that sign *and* the best r of that sign is not significantly worse on test than the best r of the
      other signs (each chosen on validation); the estimate is that paired difference.
    - ``competitive_with_forward[eta]`` (0 < eta <= 0.4): the validation-selected positive r minus forward
      correction with the true transition matrix; held unless significantly negative.
    - ``<method>_vs_ce[eta]``: online smoothing, relaxation and forward correction minus cross-entropy
      (descriptive, ``held`` None).
    """
    out: list[Claim] = []
    curve = best_r_curve(records, key)
    if not curve:
        return out
    rs = sorted({r["param"] for r in records if r["method"] == "gls"})
    pos, neg = [r for r in rs if r > 0], [r for r in rs if r < 0]
    lo, hi = curve[0], curve[-1]
    if pos and neg and len(curve) > 1:
        for point, want in ((lo, "positive"), (hi, "negative")):
            eta = point["noise_rate"]
            mine, other = (
                (pos, [r for r in rs if r <= 0]) if want == "positive" else (neg, [r for r in rs if r >= 0])
            )
            a, b = _best_in(records, eta, mine), _best_in(records, eta, other)
            if a is None or b is None:
                continue
            est = stats.paired(
                select(records, method="gls", noise_rate=eta, param=a),
                select(records, method="gls", noise_rate=eta, param=b),
                key,
            )
            best = point["best_r"]
            sign_ok = best is not None and (best > 0 if want == "positive" else best < 0)
            ok = None if est.n < 2 else bool(sign_ok and held(est, ">=0"))
            best_txt = "n/a" if best is None else f"{best:g}"
            out.append(
                Claim(
                    f"best_r_{want}[eta={eta:g}]",
                    f"at eta={eta:g} the validation-selected r is {best_txt} (wanted: {want}); best "
                    f"{want} r={a:g} "
                    f"minus best other r={b:g} on test",
                    est,
                    ok,
                    {"best_r": best, "noise_rate": eta},
                )
            )
    for p in curve:
        eta = p["noise_rate"]
        if not 0 < eta <= 0.4:
            continue
        fwd = select(records, method="forward", noise_rate=eta)
        bp = _best_in(records, eta, pos) if pos else None
        if fwd and bp is not None:
            est = stats.paired(select(records, method="gls", noise_rate=eta, param=bp), fwd, key)
            out.append(
                Claim(
                    f"competitive_with_forward[eta={eta:g}]",
                    f"smoothing r={bp:g} (validation-selected positive r) minus forward correction at "
                    f"eta={eta:g}",
                    est,
                    held(est, ">=0"),
                    {"noise_rate": eta, "r": bp},
                )
            )
    for p in curve:
        eta = p["noise_rate"]
        ce = select(records, method="gls", noise_rate=eta, param=0.0)
        for m in ("ols", "relax", "forward"):
            for (param,), g in stats.group(select(records, method=m, noise_rate=eta), ("param",)).items():
                label = m if param is None else f"{m} {param:g}"
                out.append(
                    Claim(
                        f"{m}_vs_ce[eta={eta:g}]",
                        f"{label} minus cross-entropy at eta={eta:g}",
                        stats.paired(g, ce, key),
                        None,
                        {"descriptive": True},
                    )
                )
    return out


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def verdicts(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[Any]:
    """The report's verdicts: the phase transition (Wei et al. 2022), smoothing vs forward correction
    (Lukasik et al. 2020), and the other methods against cross-entropy (measured, not judged)."""
    from labelsmooth.study.tasks.base import Verdict

    found = claims(records, key)
    curve = best_r_curve(records, key)
    out = []
    phase = [c for c in found if c.name.startswith("best_r_")]
    if phase:
        word = _digits.outcome([c.held for c in phase])
        if word == "partly held":
            word = "did not hold"  # the transition needs both ends
        sentences = [
            "Rule: r is chosen by mean validation accuracy (ties: validation NLL), test accuracy "
            "reported for "
            "it; the claim holds when the chosen r is positive at the lowest noise rate and negative at the "
            "highest, and neither choice is significantly worse on test than the best r of the other signs."
        ]
        for p in curve:
            ps = p["per_seed_r"]
            sentences.append(
                f"eta={p['noise_rate']:g}: selected r = {_g(p['best_r'])}, test {key} "
                f"{p['test'].fmt(100, 1)}%; per-seed choices {sorted(p['per_seed'].values())} "
                f"(mean {ps.fmt(1, 2)}); test selection would pick r = {_g(p['test_best_r'])}."
            )
        sentences += [f"{c.statement}: {pts(c.estimate)} ({VERDICT[c.held]})." for c in phase]
        sentences.append(f"Overall: {word}.")
        out.append(
            Verdict(
                "The best r moves from positive to negative as noise grows (Wei et al. 2022)",
                word,
                sentences,
                {
                    c.name: {"mean": c.estimate.mean, "half": c.estimate.half, "held": c.held, **c.detail}
                    for c in phase
                },
            )
        )
    fwd = [c for c in found if c.name.startswith("competitive_with_forward")]
    if fwd:
        word = _digits.outcome([c.held for c in fwd])
        sentences = [
            "Rule: held unless the validation-selected positive r is significantly worse on test than "
            "forward correction with the true transition matrix (paired over seeds)."
        ]
        sentences += [f"{c.statement}: {pts(c.estimate)} ({VERDICT[c.held]})." for c in fwd]
        sentences.append(f"Overall: {word}.")
        out.append(
            Verdict(
                "Smoothing is competitive with forward correction at moderate noise (Lukasik et al. 2020)",
                word,
                sentences,
                {c.name: {"mean": c.estimate.mean, "half": c.estimate.half, "held": c.held} for c in fwd},
            )
        )
    other = [c for c in found if c.detail.get("descriptive")]
    if other:
        out.append(
            Verdict(
                "Other methods against cross-entropy (measured, not judged)",
                "measured",
                [f"{c.statement}: {pts(c.estimate)}." for c in other],
            )
        )
    return out


def summarize(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> list[str]:
    """Plain-language lines: best r per noise rate (validation-selected) with every r's test mean, then
    each verdict's title, outcome and sentences."""
    lines = [f"Best r against eta (selected on validation accuracy; mean test {key} ± 95% t-interval):"]
    for p in best_r_curve(records, key):
        row = ", ".join(f"r={r:g}: {e.fmt(100, 1)}" for r, e in p["by_r"].items())
        best = "n/a" if p["best_r"] is None else f"{p['best_r']:g}"
        lines.append(f"  eta={p['noise_rate']:g}: best r = {best}  ({row})")
    for v in verdicts(records, key):
        lines.append(f"{v.title}: {v.outcome}")
        lines += [f"  {s}" for s in v.sentences]
    return lines


# --------------------------------------------------------------------------- figures


def best_r_figure(records: Sequence[Mapping[str, Any]], key: str = "accuracy") -> bytes:
    """Left: the validation-selected r against eta (pooled choice, each seed's own choice, and the 95%
    t-interval of the per-seed choices). Right: test ``key`` against r, one curve per eta, 95% intervals;
    a star marks the selected r."""
    from labelsmooth.study import figures

    plt = figures._plt()
    curve = best_r_curve(records, key)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    etas = [p["noise_rate"] for p in curve]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for p in curve:
        seeds = list(p["per_seed"].values())
        ax.scatter(
            [p["noise_rate"]] * len(seeds),
            seeds,
            s=14,
            alpha=0.5,
            color="gray",
            label="a seed's own choice" if p is curve[0] else None,
        )
    ps = [p["per_seed_r"] for p in curve]
    ax.errorbar(
        etas,
        [e.mean for e in ps],
        yerr=[0 if e.n < 2 else e.half for e in ps],
        fmt="o",
        capsize=4,
        color=colors[1],
        label="mean of per-seed choices, 95% t-interval",
    )
    ax.plot(etas, [p["best_r"] for p in curve], "s-", color=colors[0], label="choice on mean val accuracy")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("symmetric noise rate eta")
    ax.set_ylabel("best smoothing rate r")
    ax.legend(fontsize=7)
    for ci, p in enumerate(curve):
        rs = sorted(p["by_r"])
        est = [p["by_r"][r] for r in rs]
        c = colors[ci % len(colors)]
        ax2.errorbar(
            rs,
            [e.mean * 100 for e in est],
            yerr=[0 if e.n < 2 else e.half * 100 for e in est],
            marker="o",
            capsize=3,
            color=c,
            label=f"eta={p['noise_rate']:g}",
        )
        if p["best_r"] is not None:
            ax2.plot([p["best_r"]], [p["test"].mean * 100], "*", ms=14, color=c)
    ax2.set_xlabel("smoothing rate r (r < 0: negative smoothing)")
    ax2.set_ylabel(f"test {key} (%)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return figures.to_png(fig)


# --------------------------------------------------------------------------- the engine task

_TRAIN_KEYS = (
    "warmup_epochs",
    "epochs",
    "width",
    "depth",
    "lr",
    "batch_size",
    "weight_decay",
    "val_fraction",
    "test_fraction",
)
_OLS_KEYS = ("ols_label_smoothing", "ols_alpha")


class NoiseTask(Task):
    """The ``noise`` study task: noise rates x methods x seeds, independent runs."""

    name = "noise"
    summary = (
        "under symmetric label noise, does the best smoothing rate turn negative (Wei 2022), and is "
        "smoothing competitive with forward correction (Lukasik 2020)?"
    )
    runtime = (
        "200 runs (4 noise rates, 10 methods, 5 seeds): measured 75-100 s wall on 2 idle cores (241 s CPU)"
    )
    config_cls = NoiseSection
    metrics = METRICS
    methods: Mapping[str, Method] = METHODS
    setting_axes = ("noise_rate",)
    report_note = (
        "Intervals are 95% Student-t intervals over seeds; comparisons are paired by seed (same split, same "
        "noisy labels, same initial weights). The best r is chosen by mean validation accuracy (clean "
        "validation labels; ties: validation NLL), never by test numbers; test numbers are reported for the "
        "chosen r. Temperature scaling (the 'after T' columns) is fitted on the validation split."
    )

    def validate(self, section: Any) -> None:
        section.validate()

    def setting_header(self) -> list[str]:
        return ["label noise"]

    def setting_cells(self, key: tuple) -> list[str]:
        return [f"{key[0]:.0%} symmetric"]

    def plan(self, cfg: Any, datasets: Any) -> list[RunSpec]:
        sec = cfg.section
        specs = []
        for run in grid(sec, cfg.seeds):
            keys = _TRAIN_KEYS + (_OLS_KEYS if run.method == "ols" else ())
            conf = {
                "task": self.name,
                "n_bins": cfg.n_bins,
                "run": run.axes(),
                "train": {k: getattr(sec, k) for k in keys},
            }
            specs.append(RunSpec(run.axes(), conf, payload=run))
        return specs

    def execute(self, spec: RunSpec, ctx: Context, needs: Mapping[str, NeededRun]) -> RunRecord:
        a = spec.axes
        return RunRecord.of(
            run_one(
                ctx.section, a["method"], a["param"], a["noise_rate"], a["seed"], n_bins=ctx.config.n_bins
            )
        )

    def describe(self, spec: RunSpec) -> str:
        a = spec.axes
        return f"noise {a['noise_rate']:<4g} {self.label(a):28s} seed {a['seed']:<3d}"

    def verdict(self, records: list[dict[str, Any]]) -> list[Any]:
        return verdicts(records)

    def figures(self, runs: list[Any], records: list[dict[str, Any]], verdicts: list[Any]) -> list[Figure]:
        if not select(records, method="gls"):
            return []
        return [
            Figure(
                "best_r_vs_noise",
                "Left: the smoothing rate r chosen on the validation split against the noise rate eta — "
                "squares: "
                "the choice on mean validation accuracy over seeds (the verdict's); grey: each seed's "
                "own choice; "
                "circles: their mean with a 95% t-interval. Right: test accuracy against r per eta (95% "
                "t-intervals over seeds); stars mark the chosen r. r = 0 is cross-entropy, r < 0 "
                "negative smoothing.",
                best_r_figure(records),
            )
        ]


TASK = register(NoiseTask())
