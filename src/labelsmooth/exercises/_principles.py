"""Checks for the exercises on the chapter's principles: the target, the gradient, the optimum, the logit
gap and the two smoothing conventions (notebooks 01-04 and 09). Every reference value comes from
labelsmooth itself."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from labelsmooth import theory
from labelsmooth.targets import convert_smoothing, smooth_labels

from ._registry import Exercise, WrongAnswer, as_float, as_floats, close, diagnose, register


def _fmt(v: list[float]) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"


# ---------------------------------------------------------------- 01: the smoothed target
def _target_reference(prior: list[float] | None) -> list[float]:
    p = None if prior is None else torch.tensor(prior, dtype=torch.float64)
    return smooth_labels(torch.tensor([2]), 5, 0.1, prior=p, dtype=torch.float64)[0].tolist()


def _verify_target(answer: Any, prior: list[float] | None) -> str:
    got = as_floats(answer, 5, "the smoothed target (K = 5 numbers)")
    want = _target_reference(prior)
    if close(got, want, 1e-6):
        if prior is None:
            return (
                "p = (1 - a) onehot(y) + a/K puts 1 - a + a/K = 0.92 on the true class and a/K = 0.02 "
                "on the others."
            )
        return "p = (1 - a) onehot(y) + a u: the prior's mass a u_k lands on every class, the true one too."
    if abs(sum(got) - 1) > 1e-6:
        raise WrongAnswer(f"Your target {_fmt(got)} sums to {sum(got):.4g}; a distribution sums to 1.")
    if prior is None and close(got, [0.025, 0.025, 0.9, 0.025, 0.025], 1e-6):
        raise WrongAnswer(
            "This is the off-target convention (Megatron, NeMo, OpenNMT): 1 - a on the true class, "
            "a/(K - 1) elsewhere. The chapter and labelsmooth put a/K on every class, the true one included."
        )
    if max(range(5), key=lambda k: got[k]) != 2:
        raise WrongAnswer(
            f"The largest entry of {_fmt(got)} is not at index 2. Class 3 of 5 is index 2 when counting "
            "from 0, as PyTorch does."
        )
    if prior is not None and close(got, _target_reference(None), 1e-6):
        raise WrongAnswer("This is the uniform target: with a prior u the smoothing mass is a u_k, not a/K.")
    raise WrongAnswer(f"{_fmt(got)} is not (1 - a) onehot(y) + a u for a = 0.1 (off by more than 1e-6).")


PRIOR = [0.4, 0.3, 0.1, 0.1, 0.1]

register(
    Exercise(
        "smoothed_target",
        "K = 5, true class 3 (index 2), a = 0.1: write the smoothed target p as 5 numbers.",
        lambda a: _verify_target(a, None),
        (
            "p = (1 - a) onehot(y) + a u with u uniform: u_k = 1/K for every k.",
            "Every class receives a/K = 0.02, the true one included; the true class also keeps 1 - a.",
            "p = [0.02, 0.02, 0.9 + 0.02, 0.02, 0.02].",
        ),
        wrong=(
            [0.025, 0.025, 0.9, 0.025, 0.025],
            [0.02, 0.02, 0.02, 0.92, 0.02],
            [0.02, 0.02, 0.9, 0.02, 0.02],
            [0.1, 0.1, 0.9, 0.1, 0.1],
        ),
        solution=lambda: _target_reference(None),
    )
)
register(
    Exercise(
        "smoothed_target_prior",
        f"Same sample, a = 0.1, smoothing toward the class prior u = {PRIOR}: write p.",
        lambda a: _verify_target(a, PRIOR),
        (
            "Replace a/K by a u_k.",
            "p_k = 0.9 [k = 2] + 0.1 u_k.",
        ),
        wrong=([0.02, 0.02, 0.92, 0.02, 0.02], [0.04, 0.03, 0.9, 0.01, 0.01], [0.4, 0.3, 0.1, 0.1, 0.1]),
        solution=lambda: _target_reference(PRIOR),
    )
)

# ---------------------------------------------------------------- 02: the gradient q - p
GRAD_Z = [2.0, 1.0, 0.1, -1.0]
GRAD_A = 0.2


def _grad_reference() -> list[float]:
    z = torch.tensor([GRAD_Z], dtype=torch.float64)
    return theory.gradient(z, torch.tensor([0]), GRAD_A)[0].tolist()


def _verify_gradient(answer: Any) -> str:
    got = as_floats(answer, 4, "the gradient dL/dz (K = 4 numbers)")
    want = _grad_reference()
    if close(got, want, 1e-4):
        return "dL/dz = softmax(z) - p: prediction minus target, and it sums to 0 over the classes."
    if close(got, [-w for w in want], 1e-4):
        raise WrongAnswer(
            "Your gradient has the wrong sign: it is q - p (prediction minus target), not p - q."
        )
    q = torch.softmax(torch.tensor(GRAD_Z, dtype=torch.float64), 0).tolist()
    if close(got, [q[0] - 1, *q[1:]], 1e-4):
        raise WrongAnswer("This is the hard-target gradient q - onehot(y): subtract the smoothed target p.")
    if abs(sum(got)) > 1e-4:
        raise WrongAnswer(f"Your gradient sums to {sum(got):.4g}; q and p both sum to 1, so q - p sums to 0.")
    raise WrongAnswer(f"{_fmt(got)} is not softmax(z) - p (off by more than 1e-4).")


register(
    Exercise(
        "gradient",
        f"z = {GRAD_Z}, true class index 0, a = {GRAD_A}, K = 4: the gradient of the smoothed CE w.r.t. z.",
        _verify_gradient,
        (
            "Differentiate lse(z) - sum_k p_k z_k: the derivative of lse(z) is softmax(z).",
            "dL/dz_k = q_k - p_k with q = softmax(z) and p the smoothed target "
            "(0.85 on class 0, 0.05 elsewhere).",
        ),
        wrong=(
            [-v for v in _grad_reference()],
            [v + (-0.15 if k == 0 else 0.05) for k, v in enumerate(_grad_reference())],
            [0.0, 0.0, 0.0, 0.0],
        ),
        solution=_grad_reference,
    )
)


def _verify_vanishing(answer: Any) -> str:
    got = as_float(answer, "the confidence q_y at which the gradient vanishes")
    want = 1 - GRAD_A + GRAD_A / 4
    if abs(got - want) <= 1e-6:
        return (
            "The gradient vanishes at q = p, i.e. q_y = 1 - a + a/K = 0.85: a finite logit gap. With hard "
            "targets it would need q_y = 1, which no finite logits reach."
        )
    if abs(got - 1.0) <= 1e-9:
        raise WrongAnswer("q_y = 1 is where hard targets' gradient would vanish (never, for finite logits).")
    if abs(got - (1 - GRAD_A)) <= 1e-6:
        raise WrongAnswer("1 - a forgets the a/K that the true class also receives from the uniform part.")
    raise WrongAnswer(f"At {got:.4g} the gradient q - p is not zero: where does q equal p?")


register(
    Exercise(
        "vanishing_confidence",
        f"With a = {GRAD_A} and K = 4, at which confidence q_y does the gradient vanish?",
        _verify_vanishing,
        ("The gradient is q - p; it vanishes when q = p.", "p_y = 1 - a + a/K."),
        wrong=(1.0, 0.8, 0.25),
        solution=lambda: 1 - GRAD_A + GRAD_A / 4,
    )
)

# ---------------------------------------------------------------- 03: the optimum and H(p)
OPT_P = [0.7, 0.2, 0.1]


def _verify_optimum(answer: Any) -> str:
    got = as_floats(answer, 3, "the minimising prediction q* (3 numbers)")
    if close(got, OPT_P, 1e-3):
        return "q* = p: H(p, q) = H(p) + KL(p || q) and the KL is zero only at q = p."
    if close(got, [1.0, 0.0, 0.0], 1e-3):
        raise WrongAnswer(
            "The arg-max one-hot minimises the 0-1 loss, not the cross-entropy against a soft target."
        )
    raise WrongAnswer(f"{_fmt(got)} is not the minimiser; try a few q by hand and compare H(p, q).")


register(
    Exercise(
        "optimum",
        f"Minimise H(p, q) = -sum_k p_k log q_k over distributions q, for p = {OPT_P}: what is q*?",
        _verify_optimum,
        (
            "Use H(p, q) = H(p) + KL(p || q) and KL >= 0.",
            "Or minimise numerically: optimise logits z with q = softmax(z) and look at q after many steps.",
        ),
        wrong=([1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]),
        solution=lambda: list(OPT_P),
    )
)


def _verify_minimal_loss(answer: Any) -> str:
    got = as_float(answer, "the minimal smoothed cross-entropy (nats)")
    want = theory.minimal_loss(0.1, 5)
    if abs(got - want) <= 1e-4:
        return (
            f"The minimal loss is H(p) = {want:.4f} nats, not 0: a smoothed target cannot be matched at "
            "zero cost."
        )
    if abs(got) <= 1e-9:
        raise WrongAnswer("0 is the minimum for hard targets only; with smoothing the minimum is H(p) > 0.")
    if abs(got - want / math.log(2)) <= 1e-3:
        raise WrongAnswer("That is H(p) in bits; the losses use natural logarithms (nats).")
    raise WrongAnswer(f"{got:.4g} is not H(p) for K = 5, a = 0.1.")


register(
    Exercise(
        "minimal_loss",
        "K = 5, a = 0.1: the smallest value the smoothed cross-entropy can take, in nats.",
        _verify_minimal_loss,
        (
            "At the optimum q = p, so the loss is H(p, p) = H(p).",
            "H(p) = -0.92 log 0.92 - 4 x 0.02 log 0.02.",
        ),
        wrong=(0.0, 0.5623, 0.0834),
        solution=lambda: theory.minimal_loss(0.1, 5),
    )
)

KL_P, KL_Z = [0.9, 0.1], [2.0, 0.0]


def _kl_reference() -> float:
    _, kl = theory.cross_entropy_decomposition(
        torch.tensor([KL_P], dtype=torch.float64), torch.tensor([KL_Z], dtype=torch.float64)
    )
    return float(kl)


def _verify_kl(answer: Any) -> str:
    got = as_float(answer, "KL(p || q)")
    h, kl = theory.cross_entropy_decomposition(
        torch.tensor([KL_P], dtype=torch.float64), torch.tensor([KL_Z], dtype=torch.float64)
    )
    if abs(got - float(kl)) <= 1e-5:
        return "KL(p || q) = H(p, q) - H(p): the only part of the loss that training can reduce."
    if abs(got - float(h + kl)) <= 1e-4:
        raise WrongAnswer("That is the cross-entropy H(p, q); subtract the entropy H(p).")
    if abs(got - float(h)) <= 1e-4:
        raise WrongAnswer("That is the entropy H(p), the part fixed by the target.")
    raise WrongAnswer(f"{got:.4g} is not KL(p || softmax(z)) = sum_k p_k log(p_k / q_k).")


register(
    Exercise(
        "kl_decomposition",
        f"p = {KL_P}, logits z = {KL_Z}: compute KL(p || softmax(z)) and check H(p, q) = H(p) + KL.",
        _verify_kl,
        ("q = softmax(z) = [e^2, 1] / (e^2 + 1).", "KL = sum_k p_k (log p_k - log q_k)."),
        wrong=(0.3269, 0.3251, 0.0),
        solution=_kl_reference,
    )
)

# ---------------------------------------------------------------- 04: the logit gap
def _verify_gap(answer: Any) -> str:
    got = as_float(answer, "the optimal logit gap")
    want = theory.optimal_logit_gap(0.1, 10)
    if abs(got - want) <= 1e-3:
        return "log(1 + K(1 - a)/a) = log 91 = 4.511: a finite gap, so finite logits and bounded confidence."
    slips = (
        (math.log(10 * 0.9 / 0.1),
         "log(K(1 - a)/a) drops the 1: the true class gets 1 - a + a/K, so the ratio is 1 + K(1 - a)/a."),
        (math.log(0.9 * 9 / 0.1), "That is the gap of the off-target convention, log((1 - a)(K - 1)/a)."),
    )  # fmt: skip
    if abs(got - 91) <= 1e-2:
        raise WrongAnswer("91 is the ratio q_y / q_k = exp(gap); the gap is its logarithm.")
    diagnose(got, slips, f"{got:.4g} is not the gap at the optimum for K = 10, a = 0.1.", tol=1e-3)


register(
    Exercise(
        "logit_gap",
        "K = 10, a = 0.1: the gap z_y - z_k (k != y) at the optimum of the smoothed cross-entropy.",
        _verify_gap,
        (
            "At the optimum softmax(z) = p, and q_y / q_k = exp(z_y - z_k).",
            "p_y / p_k = (1 - a + a/K) / (a/K).",
        ),
        wrong=(4.4998, 4.3944, 91.0, math.inf),
        solution=lambda: theory.optimal_logit_gap(0.1, 10),
    )
)


def _hard_slope() -> float:
    gaps = theory.descend_logit_gap(0.0, 10, steps=20000)
    t1, t2 = 2000, 20000
    return float((gaps[t2] - gaps[t1]) / math.log(t2 / t1))


def _verify_rate(answer: Any) -> str:
    got = as_float(answer, "the slope of the hard-target gap against log(steps)")
    if abs(got - 1.0) <= 0.1:
        return (
            "The gap grows like log(t): each step adds about K exp(-gap) lr, so exp(gap) grows linearly "
            f"in t (measured slope {_hard_slope():.3f}). Unbounded, but slowly."
        )
    if got <= 0.05:
        raise WrongAnswer(
            "With hard targets the gap never stops growing: measure it at 2,000 and 20,000 steps."
        )
    raise WrongAnswer(
        f"A slope of {got:.3g} per unit of log(t) does not match gradient descent's gap; measure it."
    )


register(
    Exercise(
        "hard_gap_rate",
        "Hard targets (a = 0), K = 10: the gap keeps growing. Fit gap(t) = s log(t) + c; what is s?",
        _verify_rate,
        (
            "Use labelsmooth.theory.descend_logit_gap(0.0, 10, steps=20000); compare steps 2000 and 20000.",
            "s = (gap[20000] - gap[2000]) / log(10).",
        ),
        wrong=(0.0, 0.5, 2.3),
        solution=_hard_slope,
    )
)

# ---------------------------------------------------------------- 09: the conventions trap
def _uniform_of(off_target: float, k: int) -> float:
    return float(convert_smoothing(off_target, k, from_convention="off_target", to_convention="uniform"))


def _verify_convention(answer: Any, k: int) -> str:
    got = as_float(answer, f"the uniform-convention a for K = {k}")
    want = _uniform_of(0.1, k)
    if abs(got - want) <= 1e-9 * max(1.0, want) + 1e-12:
        return f"a = a' K/(K - 1) = {want:.9g}: the same target written in the chapter's convention."
    if abs(got - 0.1) <= 1e-12:
        raise WrongAnswer("The same number does not mean the same target: convert a' = 0.1 to the uniform a.")
    back = float(convert_smoothing(0.1, k, from_convention="uniform", to_convention="off_target"))
    if abs(got - back) <= 1e-9:
        raise WrongAnswer("You converted in the wrong direction (uniform -> off-target).")
    raise WrongAnswer(f"{got:.9g} does not give 1 - a' = 0.9 on the true class for K = {k}.")


for _k in (2, 32000):
    register(
        Exercise(
            f"convention_k{_k}",
            f"Megatron/NeMo's label_smoothing = 0.1 (1 - a' on the true class, a'/(K - 1) elsewhere), "
            f"K = {_k}: which a gives the same target in PyTorch's convention?",
            functools.partial(_verify_convention, k=_k),
            (
                "Equate the off-target mass: a/K = a'/(K - 1).",
                "a = a' K / (K - 1); labelsmooth.convert_smoothing does it for you.",
            ),
            wrong=(0.1, 0.05 if _k == 2 else 0.099996875),
            solution=functools.partial(_uniform_of, 0.1, _k),
        )
    )
