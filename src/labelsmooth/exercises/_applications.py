"""Checks for the exercises on the chapter's applications (notebooks 11 and up): distillation, fairness
and privacy. Reference values come from labelsmooth's own losses, metrics and privacy module."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from labelsmooth import privacy
from labelsmooth.losses import distillation_loss
from labelsmooth.metrics import aurc
from labelsmooth.targets import convert_smoothing
from labelsmooth.theory import cdpo_optimal_margin

from ._practice import _call
from ._registry import Exercise, WrongAnswer, as_float, diagnose, register

# ---------------------------------------------------------------- 11: distillation
KD_STUDENT = [[1.0, 0.5, -0.5, 0.0]]
KD_TEACHER = [[3.0, 1.0, -1.0, 0.0]]


def _kd_grad_norm(temperature: float, scaled: bool) -> float:
    s = torch.tensor(KD_STUDENT, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(KD_TEACHER, dtype=torch.float64)
    loss = distillation_loss(s, t, temperature=temperature)
    if not scaled:
        loss = loss / temperature**2
    loss.backward()
    assert s.grad is not None
    return float(s.grad.norm())


def _kd_ratio() -> float:
    return _kd_grad_norm(8.0, scaled=False) / _kd_grad_norm(4.0, scaled=False)


def _verify_kd_ratio(answer: Any) -> str:
    got = as_float(answer, "the ratio of gradient norms")
    want = _kd_ratio()
    if abs(got - want) <= 2e-3:
        return (
            f"{want:.4f}, close to (4/8)^2 = 0.25: without the T^2 factor the soft-target gradient shrinks "
            "like 1/T^2, so Hinton et al. multiply the loss by T^2 to keep its scale when T changes."
        )
    slips = (
        (0.5, "The gradient is divided by T once by the chain rule and once more by the softmax's "
              "linearisation at high T: it shrinks like 1/T^2, not 1/T."),
        (1.0, "A ratio of about 1 is what the T^2-scaled loss gives; measure the unscaled KL."),
    )  # fmt: skip
    diagnose(got, slips, f"{got:.4g} is not the ratio |grad at T = 8| / |grad at T = 4| of the unscaled KL.",
             tol=2e-3)  # fmt: skip


register(
    Exercise(
        "kd_temperature",
        "Without the T^2 factor, by what factor does the gradient of KL(softmax(t/T) || softmax(s/T)) with "
        "respect to the student's logits shrink from T = 4 to T = 8?",
        _verify_kd_ratio,
        (
            "Compute both gradients with autograd: distillation_loss(s, t, temperature=T) / T**2.",
            "Divide the norm at T = 8 by the norm at T = 4.",
        ),
        wrong=(0.5, 1.0, 2.0),
        solution=_kd_ratio,
    )
)


def _verify_tfkd(answer: Any) -> str:
    got = as_float(answer, "the uniform label_smoothing")
    want = float(convert_smoothing(0.1, 10, from_convention="off_target", to_convention="uniform"))
    if abs(got - want) <= 1e-9:
        return (
            "The virtual teacher is a smoothed target in the off-target convention: a' = 1 - a = 0.1, i.e. "
            f"label_smoothing = a' K/(K - 1) = {want:.6f} in the uniform one."
        )
    slips = (
        (0.1, "0.1 is the off-target a' = 1 - a; convert it to the uniform convention (ex. 9)."),
        (0.9, "0.9 is the teacher's mass on the label, not the smoothing."),
    )
    diagnose(got, slips, f"{got:.6g} does not reproduce the virtual teacher's target for K = 10.", tol=1e-9)


register(
    Exercise(
        "teacher_free",
        "Tf-KD's virtual teacher puts a = 0.9 on the label and (1 - a)/(K - 1) on every other class, K = 10. "
        "Which label_smoothing (the uniform convention of labelsmooth.cross_entropy) gives the same target?",
        _verify_tfkd,
        (
            "Compare with exercise 9: 1 - a on the label and the rest spread over the K - 1 others.",
            "labelsmooth.convert_smoothing(1 - a, K, from_convention='off_target', to_convention='uniform').",
        ),
        wrong=(0.1, 0.9, 0.09),
        solution=lambda: float(
            convert_smoothing(0.1, 10, from_convention="off_target", to_convention="uniform")
        ),
    )
)


# ---------------------------------------------------------------- 12: selective prediction and privacy
def _selective_case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(200, 4, generator=g, dtype=torch.float64)
    target = torch.distributions.Categorical(logits=logits).sample()
    return torch.softmax(logits, -1), target


def _aurc_reference(probs: torch.Tensor, target: torch.Tensor) -> float:
    return aurc(probs, target, from_logits=False)


def _aurc_solution(probs: torch.Tensor, target: torch.Tensor) -> float:
    conf, pred = probs.max(-1)
    errors = (pred != target).double()
    order = torch.argsort(conf, descending=True)  # the most confident first (no ties in these inputs)
    risk = torch.cumsum(errors[order], 0) / torch.arange(1, len(errors) + 1, dtype=torch.float64)
    return float(risk.mean())


def _aurc_ascending(probs: torch.Tensor, target: torch.Tensor) -> float:
    """The usual slip: the least confident first."""
    conf, pred = probs.max(-1)
    errors = (pred != target).double()
    steps = torch.arange(1, len(errors) + 1, dtype=torch.float64)
    return float((torch.cumsum(errors[torch.argsort(conf)], 0) / steps).mean())


def _verify_aurc(fn: Any) -> str:
    for seed in (0, 1):
        p, y = _selective_case(seed)
        got = as_float(_call(fn, "aurc(probs, target)", p, y), "aurc(...)")
        want = _aurc_reference(p, y)
        if abs(got - want) <= 1e-9:
            continue
        conf, pred = p.max(-1)
        errors = (pred != y).double()
        asc = torch.argsort(conf)
        steps = torch.arange(1, len(errors) + 1, dtype=torch.float64)
        wrong_order = float((torch.cumsum(errors[asc], 0) / steps).mean())
        if abs(got - wrong_order) <= 1e-9:
            raise WrongAnswer("Sort by decreasing confidence: selective prediction keeps the most confident.")
        if abs(got - float(errors.mean())) <= 1e-9:
            raise WrongAnswer("That is the risk at full coverage; AURC averages it over every coverage.")
        raise WrongAnswer(f"Your AURC is {got:.6f}, the reference {want:.6f}.")
    return "AURC = mean over k of the error rate among the k most confident predictions (lower is better)."


register(
    Exercise(
        "aurc",
        "Write aurc(probs, target): sort the samples by decreasing max-probability; for each k, the error "
        "rate among the k most confident; return the mean of those N risks.",
        _verify_aurc,
        (
            "errors = (probs.argmax(-1) != target); order = argsort(confidence, descending).",
            "risk_k = cumsum(errors[order])[k] / (k + 1); AURC = mean_k risk_k.",
        ),
        wrong=(
            lambda p, y: float((p.argmax(-1) != y).double().mean()),
            lambda p, y: _aurc_ascending(p, y),
        ),
        solution=lambda: _aurc_solution,
    )
)


def _mia_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.6, 1.0, 150), rng.normal(0.0, 1.0, 170)


def _advantage_solution(members: np.ndarray, nonmembers: np.ndarray) -> float:
    best = 0.0
    for threshold in np.concatenate([members, nonmembers]):
        tpr = float((members >= threshold).mean())
        fpr = float((nonmembers >= threshold).mean())
        best = max(best, tpr - fpr)
    return best


def _verify_advantage(fn: Any) -> str:
    for seed in (0, 1):
        m, nm = _mia_case(seed)
        got = as_float(_call(fn, "advantage(member_scores, nonmember_scores)", m, nm), "advantage(...)")
        want = privacy.membership_attack(m, nm).advantage
        if abs(got - want) <= 1e-9:
            continue
        if abs(got - privacy.membership_attack(m, nm).auc) <= 1e-9:
            raise WrongAnswer("That is the AUC; the advantage is the best TPR - FPR over thresholds.")
        raise WrongAnswer(f"Your advantage is {got:.6f}, the reference {want:.6f}.")
    return (
        "max over thresholds of TPR - FPR: how much better than guessing the best single threshold does. "
        "Carlini et al. (2022) argue for TPR at a low FPR instead: an attack can be confident on a few."
    )


register(
    Exercise(
        "membership_advantage",
        "Write advantage(member_scores, nonmember_scores): over every threshold t, TPR = P(member >= t), "
        "FPR = P(non-member >= t); return the largest TPR - FPR.",
        _verify_advantage,
        ("Try every observed score as a threshold.", "Predict 'member' when the score is >= t."),
        wrong=(lambda m, nm: privacy.membership_attack(m, nm).auc, lambda m, nm: 0.0),
        solution=lambda: _advantage_solution,
    )
)


# ---------------------------------------------------------------- 13: reinforcement learning
HL_Y, HL_LO, HL_HI, HL_BINS = 0.3, -1.0, 1.0, 8


def _hl_reference() -> list[float]:
    from labelsmooth.targets import Support, hl_gauss_targets

    support = Support.uniform(HL_LO, HL_HI, HL_BINS)
    sigma = 0.75 * (HL_HI - HL_LO) / HL_BINS
    return hl_gauss_targets(torch.tensor([HL_Y], dtype=torch.float64), support, sigma)[0].tolist()


def _hl_unnormalised() -> list[float]:
    import math

    edges = [HL_LO + i * (HL_HI - HL_LO) / HL_BINS for i in range(HL_BINS + 1)]
    sigma = 0.75 * (HL_HI - HL_LO) / HL_BINS

    def phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return [phi((edges[i + 1] - HL_Y) / sigma) - phi((edges[i] - HL_Y) / sigma) for i in range(HL_BINS)]


def _verify_hl(answer: Any) -> str:
    from ._registry import as_floats, close

    got = as_floats(answer, HL_BINS, f"the HL-Gauss target ({HL_BINS} numbers)")
    want = _hl_reference()
    if close(got, want, 1e-6):
        return (
            "p_i = Phi((e_{i+1} - y)/sigma) - Phi((e_i - y)/sigma), renormalised over the support: the value "
            "smoothed over neighbouring bins, the regression analogue of label smoothing."
        )
    if close(got, _hl_unnormalised(), 1e-6):
        raise WrongAnswer("Renormalise over the support: the Gaussian's tails beyond [-1, 1] are cut off")
    if abs(sum(got) - 1) > 1e-6:
        raise WrongAnswer(f"Your target sums to {sum(got):.4g}; a distribution over the bins sums to 1.")
    raise WrongAnswer("Integrate N(y, sigma^2) over each bin: its CDF differenced at the edges.")


register(
    Exercise(
        "hl_gauss_target",
        f"y = {HL_Y}, {HL_BINS} equal bins on [{HL_LO:g}, {HL_HI:g}], sigma = 0.75 x bin width: the HL-Gauss "
        "target over the bins.",
        _verify_hl,
        (
            "Phi is the standard normal CDF: 0.5 (1 + erf(x / sqrt(2))).",
            "p_i is proportional to Phi((e_{i+1} - y)/sigma) - Phi((e_i - y)/sigma); divide by their sum.",
        ),
        wrong=(_hl_unnormalised(), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [1 / 8] * 8),
        solution=_hl_reference,
    )
)


def _verify_cdpo(answer: Any) -> str:
    got = as_float(answer, "the optimal margin h*")
    want = cdpo_optimal_margin(0.1, 0.1)
    if abs(got - want) <= 1e-6 * want:
        return (
            f"h* = log((1 - e)/e) / beta = {want:.4f}: a finite margin, where DPO's (e = 0) is infinite — "
            "the same fix smoothing brings to the logit gap (exercise 4)."
        )
    if abs(got - want * 0.1) <= 1e-6:
        raise WrongAnswer("That is beta h*; the margin h itself is divided by beta = 0.1.")
    if abs(got + want) <= 1e-6:
        raise WrongAnswer("The sign is flipped: the chosen response wins; log((1 - e)/e) > 0 for e < 0.5.")
    raise WrongAnswer(f"{got:.6g} is not where the cDPO loss of one pair is minimal.")


register(
    Exercise(
        "cdpo_margin",
        "cDPO with e = 0.1 and beta = 0.1: the margin h (policy log-ratio of chosen minus rejected, relative "
        "to the reference) that minimises (1 - e)(-log sigmoid(beta h)) + e(-log sigmoid(-beta h)).",
        _verify_cdpo,
        (
            "Differentiate: -(1 - e) sigmoid(-beta h) + e sigmoid(beta h) = 0.",
            "sigmoid(beta h) = 1 - e, so beta h = log((1 - e)/e).",
        ),
        wrong=(2.1972245773362196, -21.972245773362196, float("inf")),
        solution=lambda: cdpo_optimal_margin(0.1, 0.1),
    )
)


# ---------------------------------------------------------------- 14: GANs, one-sided smoothing
def _verify_dstar(answer: Any, real: float, fake: float, ratio: float) -> str:
    from labelsmooth.theory import optimal_discriminator

    got = as_float(answer, "D*(x)")
    pd, pg = torch.tensor([ratio], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    want = float(optimal_discriminator(pd, pg, real, fake)[0])
    if abs(got - want) <= 1e-6:
        if fake > 0:
            return (
                f"D* = b = {want:g} > 0 where only the generator puts mass: the verdict there no longer "
                "falls to 0, which weakens the push moving those samples to the data (Salimans et al. 2016); "
                "one-sided smoothing keeps b = 0."
            )
        return f"D* = (a p_data + b p_model)/(p_data + p_model) = {want:g}."
    if abs(got - ratio / (ratio + 1)) <= 1e-6 and (real, fake) != (1.0, 0.0):
        raise WrongAnswer("That is the unsmoothed D* = p_data/(p_data + p_model); use the targets a and b.")
    raise WrongAnswer(f"{got:.6g} is not (a p_data + b p_model)/(p_data + p_model) at this point.")


register(
    Exercise(
        "gan_dstar_one_sided",
        "One-sided smoothing, real target a = 0.9, fake target b = 0: D*(x) where p_data = 2 p_model.",
        lambda a: _verify_dstar(a, 0.9, 0.0, 2.0),
        (
            "Minimise -p_data [a log D + (1 - a) log(1 - D)] - p_model [b log D + (1 - b) log(1 - D)].",
            "D* = (a p_data + b p_model) / (p_data + p_model).",
        ),
        wrong=(2 / 3, 0.9, 0.0),
        solution=lambda: 0.9 * 2 / 3,
    )
)
register(
    Exercise(
        "gan_dstar_two_sided",
        "Two-sided smoothing, targets a = 0.9 and b = 0.1: D*(x) where p_data(x) = 0 and p_model(x) > 0.",
        lambda a: _verify_dstar(a, 0.9, 0.1, 0.0),
        ("Put p_data = 0 in D* = (a p_data + b p_model) / (p_data + p_model).",),
        wrong=(0.0, 0.9, 0.5),
        solution=lambda: 0.1,
    )
)


# ---------------------------------------------------------------- 15: language modelling
def _floor(a: float, v: int) -> float:
    return 1.0 / (1.0 - a + a / v)


def _verify_floor(answer: Any) -> str:
    got = as_float(answer, "the perplexity")
    want = _floor(0.1, 100)
    if abs(got - want) <= 1e-6:
        return (
            f"exp(-log(1 - a + a/V)) = {want:.4f} > 1: a model that matches the smoothed target cannot reach "
            "perplexity 1 even on a fully predictable token, one reason smoothing raises perplexity "
            "(Vaswani et al. 2017) while it may raise accuracy."
        )
    if abs(got - 1 / 0.9) <= 1e-6:
        raise WrongAnswer("1/(1 - a) forgets the a/V the true token also receives.")
    if abs(got - 1.0) <= 1e-9:
        raise WrongAnswer("Perplexity 1 needs probability 1 on the token; the smoothed optimum stops below.")
    if abs(got - (-math_log(1 - 0.1 + 0.1 / 100))) <= 1e-6:
        raise WrongAnswer("That is the NLL; perplexity is its exponential.")
    raise WrongAnswer(f"{got:.6g} is not exp(NLL) of the smoothed optimum's probability on the token.")


def math_log(x: float) -> float:
    import math

    return math.log(x)


register(
    Exercise(
        "lm_perplexity_floor",
        "A next token that is fully predictable, a vocabulary of V = 100, smoothing a = 0.1: the perplexity "
        "of the model that minimises the smoothed loss exactly.",
        _verify_floor,
        (
            "At the optimum q = p, so the probability of the true token is 1 - a + a/V.",
            "Perplexity = exp(NLL) = 1 / q(true token).",
        ),
        wrong=(1 / 0.9, 1.0, -math_log(1 - 0.1 + 0.1 / 100)),
        solution=lambda: _floor(0.1, 100),
    )
)
