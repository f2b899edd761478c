"""Checks for the exercises that train models (notebooks 05-08 and 10), and the small training helper they
share. The learner's answers are functions (an ECE, a temperature fit, a memorisation rate, a selection
rule, a cluster-tightness measure); each check calls the function on inputs of its own and compares the
result with labelsmooth's implementation, and recognises the usual slips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from labelsmooth import losses
from labelsmooth.calibration import TemperatureScaler
from labelsmooth.metrics import calibration_gap, expected_calibration_error

from ._registry import Exercise, NotAnswered, WrongAnswer, as_float, register


# ---------------------------------------------------------------- the shared training helper
@dataclass(frozen=True)
class Split:
    """Standardised digits, split into train / validation / test (tensors)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    y_train_clean: torch.Tensor


def digits(noise: float = 0.0, seed: int = 0) -> Split:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), split 60/20/20 with a fixed seed;
    ``noise`` replaces that fraction of the *training* labels by a uniformly drawn other class."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_tr, n_va = int(0.6 * len(y)), int(0.2 * len(y))
    tr, va, te = idx[:n_tr], idx[n_tr : n_tr + n_va], idx[n_tr + n_va :]
    mean, std = X[tr].mean(0), X[tr].std(0)
    std = np.where(std > 1e-8, std, 1.0)  # pixels constant in training (the border) stay 0, not 1e8
    Xs = ((X - mean) / std).astype(np.float32)
    y_clean = y[tr].copy()
    y_noisy = y_clean.copy()
    flip = rng.random(len(tr)) < noise
    y_noisy[flip] = (y_clean[flip] + rng.integers(1, 10, flip.sum())) % 10  # always another class
    t = torch.from_numpy
    return Split(t(Xs[tr]), t(y_noisy), t(Xs[va]), t(y[va]), t(Xs[te]), t(y[te]), t(y_clean))


def train_mlp(
    X: torch.Tensor, y: torch.Tensor, *, label_smoothing: float = 0.0, epochs: int = 200, seed: int = 0
) -> torch.nn.Module:
    """A 2-hidden-layer MLP (64 units) trained full-batch with Adam on ``labelsmooth.cross_entropy``.

    The model has ``.features(x)`` (penultimate activations) and ``.head`` (the last layer). Trains on one
    thread (a network this small only loses time to intra-op threads) and gives the caller's back."""
    torch.manual_seed(seed)
    model = _MLP(X.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            opt.zero_grad()
            losses.cross_entropy(model(X), y, label_smoothing=label_smoothing).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


class _MLP(torch.nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU()
        )
        self.head = torch.nn.Linear(64, k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# ---------------------------------------------------------------- inputs the checks feed the answers
def _probs(seed: int, n: int = 400, k: int = 5, sharp: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = sharp * torch.randn(n, k, generator=g, dtype=torch.float64)
    target = torch.distributions.Categorical(logits=logits / 1.5).sample()  # miscalibrated on purpose
    return torch.softmax(logits, -1), target


def _call(fn: Any, what: str, *args: Any) -> Any:
    if not callable(fn):
        raise WrongAnswer(f"Expected your answer to be a function {what}, got {type(fn).__name__}.")
    try:
        result = fn(*args)
    except WrongAnswer:
        raise
    except Exception as exc:
        raise WrongAnswer(f"Your function raised {type(exc).__name__}: {exc}") from None
    if result is None:  # the placeholder body `...`
        raise NotAnswered
    return result


# ---------------------------------------------------------------- 05: ECE and the signed gap
def _ece_variants(p: torch.Tensor, y: torch.Tensor, n_bins: int) -> dict[str, float]:
    conf, pred = p.max(-1)
    correct = (pred == y).double()
    idx = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    unweighted, per_sample = [], 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            gap = abs(conf[m].mean() - correct[m].mean()).item()
            unweighted.append(gap)
            per_sample += gap * m.sum().item()
    return {
        "unweighted": float(np.mean(unweighted)),
        "no_abs": abs(float((conf - correct).mean())),
    }


def _verify_ece(fn: Any) -> str:
    for seed in (0, 1, 2):
        p, y = _probs(seed)
        got = as_float(_call(fn, "ece(probs, target, n_bins)", p, y, 15), "ece(...)")
        want = expected_calibration_error(p, y, n_bins=15, from_logits=False)
        if abs(got - want) <= 1e-6:
            continue
        v = _ece_variants(p, y, 15)
        if abs(got - v["unweighted"]) <= 1e-6:
            raise WrongAnswer("You averaged the bins' gaps equally; weight each bin by its share of samples.")
        if abs(got - v["no_abs"]) <= 1e-6:
            raise WrongAnswer(
                "That is |mean confidence - accuracy| over all samples: the gaps must be taken per bin, in "
                "absolute value, before averaging (errors in different bins must not cancel)."
            )
        raise WrongAnswer(f"Your ECE is {got:.6f}, the reference {want:.6f} (15 equal-width bins, top label)")
    return "ECE = sum_b (n_b / N) |conf_b - acc_b| over equal-width bins of the top-label confidence."


def _ece_solution() -> Callable[..., float]:
    def ece(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15) -> float:
        conf, pred = probs.max(-1)
        correct = (pred == target).double()
        idx = torch.clamp((conf * n_bins).long(), max=n_bins - 1)  # bins [i/B, (i+1)/B); 1.0 in the last
        total = 0.0
        for b in range(n_bins):
            m = idx == b
            if m.any():
                total += m.sum().item() * abs(conf[m].mean() - correct[m].mean()).item()
        return total / len(target)

    return ece


register(
    Exercise(
        "ece",
        "Write ece(probs, target, n_bins=15): the top-label expected calibration error, equal-width bins.",
        _verify_ece,
        (
            "Take each sample's top-label confidence max_k q_k and whether that label is right.",
            "Bin the confidences into [0, 1/B), [1/B, 2/B), ...; per bin compare confidence and accuracy.",
            "ECE = sum over bins of (bin size / N) * |mean confidence - accuracy|.",
        ),
        wrong=(
            lambda p, y, n: _ece_variants(p, y, n)["unweighted"],
            lambda p, y, n: _ece_variants(p, y, n)["no_abs"],
            0.05,
        ),
        solution=_ece_solution,
    )
)


def _verify_signed_gap(fn: Any) -> str:
    for seed in (0, 3):
        p, y = _probs(seed)
        got = as_float(_call(fn, "signed_gap(probs, target)", p, y), "signed_gap(...)")
        want = calibration_gap(p, y, from_logits=False)
        if abs(got - want) <= 1e-9:
            continue
        if abs(got + want) <= 1e-9:
            raise WrongAnswer("The sign is flipped: confidence minus accuracy; overconfidence is positive.")
        raise WrongAnswer(f"Your gap is {got:.6f}, the reference {want:.6f}.")
    return "mean confidence - accuracy: > 0 overconfident, < 0 underconfident."


register(
    Exercise(
        "signed_gap",
        "Write signed_gap(probs, target): mean top-label confidence minus accuracy.",
        _verify_signed_gap,
        ("Overconfidence should come out positive.",),
        wrong=(
            lambda p, y: -calibration_gap(p, y, from_logits=False),
            lambda p, y: float(p.max(-1).values.mean()),
        ),
        solution=lambda: (lambda p, y: float(p.max(-1).values.mean() - (p.argmax(-1) == y).double().mean())),
    )
)


# ---------------------------------------------------------------- 06: temperature scaling
def _verify_temperature(fn: Any) -> str:
    for seed, scale in ((0, 0.4), (1, 3.0)):
        g = torch.Generator().manual_seed(seed)
        true = 2.5 * torch.randn(300, 6, generator=g, dtype=torch.float64)
        target = torch.distributions.Categorical(logits=true).sample()
        logits = true * scale  # under- (0.4) or over-confident (3.0) logits of a well-ranked model
        got = as_float(_call(fn, "fit_temperature(logits, target)", logits, target), "fit_temperature(...)")
        want = float(TemperatureScaler().fit(logits, target).temperature_)
        if abs(got - want) <= 0.02 * want:
            continue
        if abs(1 / got - want) <= 0.02 * want:
            raise WrongAnswer("You returned the inverse temperature: softmax(z / T), so T > 1 softens.")
        raise WrongAnswer(f"T = {got:.4g}; minimising the validation NLL of softmax(z / T) gives {want:.4g}.")
    return "T minimises the NLL of softmax(z / T): T > 1 softens an overconfident model, T < 1 sharpens."


def _temperature_solution() -> Callable[..., float]:
    def fit_temperature(logits: torch.Tensor, target: torch.Tensor) -> float:
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits.double() / log_t.exp(), target)
            loss.backward()
            return loss

        opt.step(closure)
        return float(log_t.detach().exp())

    return fit_temperature


register(
    Exercise(
        "fit_temperature",
        "Write fit_temperature(logits, target): the T > 0 minimising the NLL of softmax(logits / T).",
        _verify_temperature,
        (
            "Optimise log T (so that T stays positive) with LBFGS or a 1-D search.",
            "The loss is cross_entropy(logits / T, target); T > 1 softens the predictions.",
        ),
        wrong=(lambda z, y: 1.0, lambda z, y: 1 / _temperature_solution()(z, y)),
        solution=_temperature_solution,
    )
)


# ---------------------------------------------------------------- 07: memorisation of noisy labels
def _memo_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 4, (300,), generator=g)
    noisy = clean.clone()
    flip = torch.rand(300, generator=g) < 0.3
    noisy[flip] = (clean[flip] + 1) % 4
    pred = torch.where(torch.rand(300, generator=g) < 0.6, noisy, clean)
    return pred, noisy, clean


def _memorised(pred: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> float:
    wrong = noisy != clean
    return float((pred[wrong] == noisy[wrong]).double().mean())


def _verify_memo(fn: Any) -> str:
    for seed in (0, 1):
        pred, noisy, clean = _memo_case(seed)
        got = as_float(_call(fn, "memorised(pred, noisy, clean)", pred, noisy, clean), "memorised(...)")
        want = _memorised(pred, noisy, clean)
        if abs(got - want) <= 1e-9:
            continue
        wrong = noisy != clean
        if abs(got - float((pred == noisy).double().mean())) <= 1e-9:
            raise WrongAnswer("Count only the corrupted samples (noisy != clean): clean ones agree anyway.")
        if abs(got - float((pred[wrong] == clean[wrong]).double().mean())) <= 1e-9:
            raise WrongAnswer("That is the fraction the model *corrected* (predicts the clean label).")
        raise WrongAnswer(f"Your rate is {got:.4f}, the reference {want:.4f}.")
    return "Of the corrupted training samples, the fraction the model predicts as their noisy label."


register(
    Exercise(
        "memorised",
        "Write memorised(pred, noisy, clean): among corrupted training samples, the fraction predicted as "
        "their noisy label.",
        _verify_memo,
        ("Select the samples with noisy != clean first.",),
        wrong=(
            lambda p, n, c: float((p == n).double().mean()),
            lambda p, n, c: float((p[n != c] == c[n != c]).double().mean()),
        ),
        solution=lambda: _memorised,
    )
)


# ---------------------------------------------------------------- 08: choosing a
def _select_case(seed: int) -> tuple[list[float], list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 5, (60,), generator=g)
    base = torch.randn(60, 5, generator=g, dtype=torch.float64)
    base[torch.arange(60), target] += 1.5
    alphas = [0.0, 0.05, 0.1, 0.2, 0.3]
    logits = [base * s + 0.3 * torch.randn(60, 5, generator=g, dtype=torch.float64)
              for s in (4.0, 3.0, 2.0, 1.2, 0.7)]  # fmt: skip
    return alphas, logits, target


def _select(alphas: list[float], logits: list[torch.Tensor], target: torch.Tensor, by: str) -> float:
    if by == "nll":
        scores = [-float(torch.nn.functional.cross_entropy(z, target)) for z in logits]
    else:
        scores = [float((z.argmax(-1) == target).double().mean()) for z in logits]
    best = max(scores)
    return min(a for a, s in zip(alphas, scores) if s == best)  # ties: the smallest a


def _verify_select(fn: Any) -> str:
    for seed in (0, 1, 2):
        alphas, logits, target = _select_case(seed)
        for by in ("nll", "accuracy"):
            chosen = _call(fn, "select(alphas, logits, target, by)", alphas, logits, target, by)
            got = as_float(chosen, "select(...)")
            want = _select(alphas, logits, target, by)
            if got == want:
                continue
            if by == "accuracy" and got == max(
                a for a, z in zip(alphas, logits)
                if float((z.argmax(-1) == target).double().mean())
                == max(float((w.argmax(-1) == target).double().mean()) for w in logits)
            ):  # fmt: skip
                raise WrongAnswer("Accuracy ties often on small splits: break ties toward the smallest a.")
            raise WrongAnswer(f"by={by!r}: you chose a = {got:g}, the rule gives a = {want:g}.")
    return (
        "Validation NLL is a proper scoring rule and moves smoothly; validation accuracy moves in steps of "
        "1/N and ties, so the two often pick different a."
    )


register(
    Exercise(
        "select_alpha",
        "Write select(alphas, val_logits, val_target, by): the a with the best validation NLL (by='nll') or "
        "accuracy (by='accuracy'), ties broken toward the smallest a.",
        _verify_select,
        ("Score each candidate on the validation split; lower NLL is better, higher accuracy is better.",),
        wrong=(
            lambda a, z, y, by: a[0],
            lambda a, z, y, by: a[-1],
        ),
        solution=lambda: _select,
    )
)


# ---------------------------------------------------------------- 10: the penultimate-layer picture
def _cosine(features: torch.Tensor, target: torch.Tensor) -> float:
    f = torch.nn.functional.normalize(features.double(), dim=1)
    sims = []
    for c in target.unique():
        g = f[target == c]
        n = len(g)
        if n > 1:
            s = g @ g.T
            sims.append(float((s.sum() - s.diagonal().sum()) / (n * (n - 1))))
    return float(np.mean(sims))


def _cosine_with_self(unit: torch.Tensor, target: torch.Tensor) -> float:
    """The usual slip: each sample's similarity with itself (1) left in the mean."""
    return float(np.mean([float((unit[target == c] @ unit[target == c].T).mean()) for c in target.unique()]))


def _verify_cosine(fn: Any) -> str:
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        target = torch.randint(0, 4, (120,), generator=g)
        centres = torch.randn(4, 16, generator=g, dtype=torch.float64)
        feats = centres[target] + 0.8 * torch.randn(120, 16, generator=g, dtype=torch.float64)
        value = _call(fn, "within_class_cosine(features, target)", feats, target)
        got = as_float(value, "within_class_cosine(...)")
        want = _cosine(feats, target)
        if abs(got - want) <= 1e-6:
            continue
        f = torch.nn.functional.normalize(feats, dim=1)
        with_diag = _cosine_with_self(f, target)
        if abs(got - with_diag) <= 1e-6:
            raise WrongAnswer("Leave out each sample's similarity with itself (always 1): pairs i != j only.")
        raise WrongAnswer(f"Your value is {got:.6f}, the reference {want:.6f} (mean over classes).")
    return "Mean cosine similarity of same-class penultimate features (pairs i != j), averaged over classes."


register(
    Exercise(
        "within_class_cosine",
        "Write within_class_cosine(features, target): per class, the mean cosine similarity between the "
        "features of two different samples; then the mean over classes.",
        _verify_cosine,
        (
            "Normalise each feature vector to unit length; then cosine similarity is a dot product.",
            "For n samples of a class: the n x n similarity matrix's sum minus its diagonal, over n(n - 1).",
        ),
        wrong=(
            lambda f, t: _cosine_with_self(torch.nn.functional.normalize(f, dim=1), t),
            lambda f, t: 1.0,
        ),
        solution=lambda: _cosine,
    )
)

