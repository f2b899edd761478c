"""What the ``distill`` and ``noise`` task cores share: the digits split, a seeded training loop, measures.

Deterministic given the seed: the split (:func:`labelsmooth.study.data.split`), the label noise
(:func:`labelsmooth.study.noise.apply_noise`), the initial weights and the batch order all derive from it,
and training runs on one thread (``torch.set_num_threads(1)``), so a run gives the same numbers in any
process. Runs with the same seed are *paired* (same split, same noisy labels), which is what the paired
intervals of :func:`labelsmooth.study.stats.paired` need.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from labelsmooth._validation import check_number, expected
from labelsmooth.study import measure, stats
from labelsmooth.study.data import Dataset, load_digits, split
from labelsmooth.study.models import MLP
from labelsmooth.study.noise import apply_noise
from labelsmooth.study.tasks.base import Metric
from labelsmooth.study.train import derive_seed

BASE_METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy", "%", "higher", cli=True, description="test accuracy"),
    Metric("nll", "NLL", ".3f", "lower", scaled=True, cli=True, description="test NLL"),
    Metric("ece", "ECE", "%", "lower", scaled=True, cli=True, description="test ECE (15 bins)"),
    Metric("ts_temperature", "T (TS)", ".2f", summary=False,
           description="the temperature fitted on the validation split (named so that it never collides "
           "with the temperature of a distillation run)"),
    Metric("val_accuracy", "val accuracy", "%", "higher", summary=False,
           description="validation accuracy (what model selection uses)"),
    Metric("val_nll", "val NLL", ".3f", "lower", summary=False, description="validation NLL (ties)"),
    Metric("diverged", "diverged", summary=False, description="non-finite logits at the end"),
)  # fmt: skip
"""The metrics every run of ``distill`` and ``noise`` stores (engine :class:`Metric` entries; ``scaled``
ones also as ``ts_<key>``, after a temperature fitted on the validation split)."""


@functools.lru_cache(maxsize=1)
def digits() -> Dataset:
    """scikit-learn's bundled digits, loaded once per process."""
    return load_digits()


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """One seed's split of the digits: standardised float32 inputs (N, 64), int64 labels, the train indices
    into the dataset (stored with artefacts so a dependent run can check it sees the same split), and the
    training labels after noise (``y_train``) beside the clean ones."""

    X_train: torch.Tensor
    X_val: torch.Tensor
    X_test: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    y_val: torch.Tensor
    y_test: torch.Tensor
    train_index: np.ndarray
    num_classes: int


def digits_split(
    seed: int, val_fraction: float, test_fraction: float, noise_rate: float = 0.0
) -> DigitsSplit:
    """The seed's stratified split, standardised with the training statistics; symmetric noise on train."""
    ds = digits()
    sp = split(ds.y, val_fraction, test_fraction, seed=seed)
    flat = ds.X.reshape(len(ds.X), -1)
    mean, std = flat[sp.train].mean(0), flat[sp.train].std(0)
    X = torch.from_numpy(((flat - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32))
    y_clean = ds.y[sp.train]
    y_noisy = apply_noise(y_clean, "symmetric", noise_rate, ds.num_classes, seed)
    return DigitsSplit(
        X[sp.train],
        X[sp.val],
        X[sp.test],
        torch.from_numpy(y_noisy),
        torch.from_numpy(y_clean),
        torch.from_numpy(ds.y[sp.val]),
        torch.from_numpy(ds.y[sp.test]),
        sp.train,
        ds.num_classes,
    )


def mlp(num_classes: int, width: int, depth: int, seed: int, role: str) -> MLP:
    """An MLP on the 64 digit pixels with seeded initial weights (``role`` separates teacher and student)."""
    torch.manual_seed(derive_seed(seed, role, "init"))
    return MLP((64,), num_classes, width, depth)


BatchLoss = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``batch_loss(logits, batch_indices, epoch) -> scalar loss`` (indices into the training split)."""


def train(
    model: nn.Module,
    X: torch.Tensor,
    batch_loss: BatchLoss,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    seed: int,
    role: str,
    epoch_end: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Adam on mini-batches in a seeded order; returns the curves ``{"epoch", "train_loss"}``. Stops early
    (the curve ends) when the loss turns non-finite."""
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(derive_seed(seed, role, "batches"))
    n = X.shape[0]
    bs = batch_size or n
    curves: dict[str, list[float]] = {"epoch": [], "train_loss": []}
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(model(X[idx]), idx, epoch)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if epoch_end is not None:
            epoch_end(epoch)
        curves["epoch"].append(epoch)
        curves["train_loss"].append(total / n)
        if not math.isfinite(total):
            break
    model.eval()
    return curves


def logits(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(X).float()


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(float(v)) else None


def evaluate(
    z_val: torch.Tensor, y_val: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor, n_bins: int
) -> dict[str, Any]:
    """Test accuracy, NLL and ECE, NLL / ECE after a temperature fitted on the validation split, and the
    validation accuracy and NLL (for model selection: never select on test numbers)."""
    if not (bool(torch.isfinite(z_val).all()) and bool(torch.isfinite(z_test).all())):
        return {
            "diverged": True,
            "accuracy": None,
            "nll": None,
            "ece": None,
            "ts_temperature": None,
            "ts_nll": None,
            "ts_ece": None,
            "val_accuracy": None,
            "val_nll": None,
        }
    val_nll, val_acc, _ = measure.quick(z_val, y_val, n_bins)
    nll, acc, ece = measure.quick(z_test, y_test, n_bins)
    temperature, _, z_ts = measure.temperature_scale(z_val, y_val, z_test)
    ts_nll, _, ts_ece = measure.quick(z_ts, y_test, n_bins)
    return {
        "diverged": False,
        "accuracy": _finite(acc),
        "nll": _finite(nll),
        "ece": _finite(ece),
        "ts_temperature": _finite(temperature),
        "ts_nll": _finite(ts_nll),
        "ts_ece": _finite(ts_ece),
        "val_accuracy": _finite(val_acc),
        "val_nll": _finite(val_nll),
    }


def within_class_cosine(features: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over classes of the mean pairwise cosine similarity of the (penultimate) features of one class.

    With unit vectors ``u_i`` of the ``n_c`` samples of class c, the mean over pairs ``i != j`` is
    ``(||sum_i u_i||^2 - n_c) / (n_c (n_c - 1))``. Higher = tighter clusters: the "erasure" of within-class
    information that Müller et al. (2019) see in smoothed models' penultimate layers.
    """
    u = torch.nn.functional.normalize(features.double(), dim=1)
    values = []
    for c in torch.unique(target).tolist():
        uc = u[target == c]
        n = uc.shape[0]
        if n >= 2:
            values.append(float(((uc.sum(0) ** 2).sum() - n) / (n * (n - 1))))
    return float(np.mean(values)) if values else math.nan


def probability_geometry(z: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """How much a model's probabilities say beyond the label, on inputs with labels ``target``:

    - ``prob_spread``: mean over classes of the mean squared distance of ``softmax(z_i)`` to its class mean
      (Shen et al. 2021's within-class variation of the soft labels; lower = more "stable" / more erased);
    - ``wrong_mass``: mean of ``1 - p_y``, the mass a student can learn from besides the label;
    - ``wrong_entropy``: mean entropy of the distribution over the wrong classes (renormalised), divided by
      ``log(K - 1)``: 1 = the wrong classes are uniform (no "dark knowledge" of which classes look alike).
    """
    p = torch.softmax(z.double(), 1)
    k = p.shape[1]
    spread = []
    for c in torch.unique(target).tolist():
        pc = p[target == c]
        spread.append(float(((pc - pc.mean(0)) ** 2).sum(1).mean()))
    py = p.gather(1, target[:, None]).squeeze(1)
    wrong = p.scatter(1, target[:, None], 0.0)
    rest = wrong.sum(1, keepdim=True).clamp_min(1e-300)
    q = wrong / rest
    ent = -(torch.where(q > 0, q * q.clamp_min(1e-300).log(), torch.zeros_like(q))).sum(1) / math.log(k - 1)
    return {
        "prob_spread": float(np.mean(spread)),
        "wrong_mass": float((1 - py).mean()),
        "wrong_entropy": float(ent.mean()),
    }


def check_positive_int(name: str, value: Any) -> None:
    check_number(name, value, lo=1, integer=True, what="to be an int >= 1")


def check_nonempty(name: str, values: Any) -> None:
    if not isinstance(values, tuple) or not values:
        raise ValueError(expected(name, "to be a non-empty tuple", values))
    if len(set(values)) != len(values):
        raise ValueError(expected(name, "to hold distinct values", values))


# --------------------------------------------------------------------------- verdict helpers
@dataclass(frozen=True)
class Claim:
    """One measured claim: ``estimate`` is a paired mean difference with its 95% t-interval over seeds;
    ``held`` is True / False, or None when there are too few seeds to say."""

    name: str
    statement: str
    estimate: stats.Estimate
    held: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


VERDICT = {True: "held", False: "did NOT hold", None: "too few seeds"}


def select(records: Sequence[Mapping[str, Any]], **axes: Any) -> list[dict]:
    return [dict(r) for r in records if all(r.get(k) == v for k, v in axes.items())]


def held(est: stats.Estimate, direction: Literal["<=0", ">=0", "<0", ">0"]) -> bool | None:
    """ "<=0": not significantly positive; "<0": significantly negative; and so on. None below 2 seeds."""
    if est.n < 2:
        return None
    if direction == "<=0":
        return not (est.significant and est.mean > 0)
    if direction == ">=0":
        return not (est.significant and est.mean < 0)
    if direction == "<0":
        return est.significant and est.mean < 0
    return est.significant and est.mean > 0


def choose_by_validation(groups: Mapping[Any, Sequence[Mapping[str, Any]]]) -> Any:
    """The key of ``groups`` (key -> runs over seeds) with the best mean *validation* accuracy, ties broken
    by the lower mean validation NLL: the classification task's rule (:func:`labelsmooth.study.verdict.
    choose_alpha`), so that no choice is made on test numbers. None when no group has a validation number.
    """
    best, best_key = None, None
    for key, recs in groups.items():
        acc = stats.estimate(r.get("val_accuracy") for r in recs).mean
        nll = stats.estimate(r.get("val_nll") for r in recs).mean
        if math.isnan(acc):
            continue
        rank = (-acc, nll if not math.isnan(nll) else math.inf)
        if best is None or rank < best:
            best, best_key = rank, key
    return best_key


def pts(est: stats.Estimate) -> str:
    """A paired difference of fractions in percentage points, with its 95% interval and n."""
    if math.isnan(est.mean):
        return "n/a"
    if math.isnan(est.half):
        return f"{est.mean * 100:+.2f} points (n = {est.n}, no interval)"
    return f"{est.mean * 100:+.2f} ± {est.half * 100:.2f} points (n = {est.n})"


def outcome(helds: Sequence[bool | None]) -> str:
    """The outcome of a claim made of several comparisons: "held" (every one held), "did not hold" (none
    did), "partly held", or "too few seeds" (no comparison had two seeds)."""
    known = [h for h in helds if h is not None]
    if not known:
        return "too few seeds"
    if all(known):
        return "held"
    if not any(known):
        return "did not hold"
    return "partly held"
