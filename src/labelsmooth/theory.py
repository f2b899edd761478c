"""The chapter's mechanisms as executable, tested formulas.

With K classes, smoothing ``a`` and uniform prior, the smoothed target is
``p = (1 - a) onehot(y) + a/K``. The cross-entropy ``H(p, q) = H(p) + KL(p || q)`` is minimised at
``q* = p`` (the KL term vanishes), so the best achievable loss is ``H(p)``, the gradient with respect to
the logits is ``softmax(z) - p``, and at the optimum the true logit exceeds every other one by

.. math::

    \\Delta^* = \\log\\frac{p_y}{p_k} = \\log\\Bigl(1 + \\frac{K(1 - a)}{a}\\Bigr),

finite for every ``a > 0`` and infinite for hard targets: that is why hard targets drive logits apart
without bound, and smoothing does not.
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    check_float_tensor,
    check_num_classes,
    check_number,
    check_scalar_range,
    check_smoothing,
    expected,
)
from .targets import smooth_labels

__all__ = [
    "cdpo_optimal_margin",
    "cross_entropy_decomposition",
    "descend_logit_gap",
    "descend_preference_margin",
    "entropy",
    "gradient",
    "kl_divergence",
    "max_confidence",
    "minimal_loss",
    "optimal_discriminator",
    "optimal_logit_gap",
    "optimal_prediction",
]


def optimal_prediction(
    target: torch.Tensor,
    num_classes: int,
    label_smoothing: float | torch.Tensor,
    *,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """The minimiser of the smoothed cross-entropy over predictions q: ``q* = p`` itself.

    Because ``H(p, q) = H(p) + KL(p || q)`` and ``KL >= 0`` with equality only at ``q = p``.

    >>> import torch
    >>> from labelsmooth.theory import optimal_prediction
    >>> optimal_prediction(torch.tensor([2]), 5, 0.1)
    tensor([[0.0200, 0.0200, 0.9200, 0.0200, 0.0200]])
    """
    return smooth_labels(target, num_classes, label_smoothing, prior=prior)


def optimal_logit_gap(label_smoothing: float, num_classes: int) -> float:
    """Gap between the true logit and every other logit at the optimum, ``log(1 + K(1 - a)/a)``.

    At ``q = p`` the softmax ratio ``q_y / q_k = exp(z_y - z_k)`` equals
    ``(1 - a + a/K) / (a/K) = 1 + K(1 - a)/a``.

    Parameters
    ----------
    label_smoothing : float
        ``a`` <= 1. For ``a <= 0`` (hard or negative smoothing) there is no finite optimum and the
        result is ``inf``.
    num_classes : int
        K, at least 2.

    Returns
    -------
    float
        ``inf`` at ``a = 0``, ``0`` at ``a = 1``.

    Examples
    --------
    >>> from labelsmooth.theory import optimal_logit_gap
    >>> round(optimal_logit_gap(0.1, 10), 4)
    4.5109
    >>> optimal_logit_gap(0.0, 10)
    inf
    """
    num_classes = check_num_classes(num_classes)
    a = check_smoothing(label_smoothing, allow_negative=True)
    if isinstance(a, torch.Tensor):
        raise TypeError(expected("label_smoothing", "to be a float", label_smoothing))
    if a <= 0:
        return math.inf
    return math.log1p(num_classes * (1 - a) / a)


def max_confidence(label_smoothing: float, num_classes: int) -> float:
    """Largest confidence the optimum allows: ``1 - a (K - 1)/K`` (= ``p_y``).

    >>> from labelsmooth.theory import max_confidence
    >>> round(max_confidence(0.1, 5), 4)
    0.92
    """
    num_classes = check_num_classes(num_classes)
    a = check_smoothing(label_smoothing)
    if isinstance(a, torch.Tensor):
        raise TypeError(expected("label_smoothing", "to be a float", label_smoothing))
    return 1 - a * (num_classes - 1) / num_classes


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = -sum_k p_k log p_k`` over the last dimension (0 log 0 = 0), in nats.

    >>> import torch
    >>> from labelsmooth.theory import entropy
    >>> round(entropy(torch.tensor([0.5, 0.5])).item(), 4)
    0.6931
    """
    check_float_tensor("p", p)
    return -torch.special.xlogy(p, p).sum(-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)`` over the last dimension, in nats.

    >>> import torch
    >>> from labelsmooth.theory import kl_divergence
    >>> round(kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])).item(), 4)
    0.5108
    """
    check_float_tensor("p", p)
    check_float_tensor("q", q)
    if p.shape != q.shape:
        raise ValueError(expected("q", f"of shape {tuple(p.shape)} like p", q))
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def minimal_loss(label_smoothing: float, num_classes: int) -> float:
    """The smallest achievable smoothed cross-entropy, ``H(p)`` for the uniform prior.

    .. math::

        H(p) = -(1 - a + a/K)\\log(1 - a + a/K) - (K - 1)\\frac{a}{K}\\log\\frac{a}{K}

    >>> from labelsmooth.theory import minimal_loss
    >>> round(minimal_loss(0.1, 5), 4)
    0.3897
    >>> minimal_loss(0.0, 5)
    0.0
    """
    num_classes = check_num_classes(num_classes)
    a = check_smoothing(label_smoothing)
    if isinstance(a, torch.Tensor):
        raise TypeError(expected("label_smoothing", "to be a float", label_smoothing))
    k = num_classes
    top, rest = 1 - a + a / k, a / k

    def xlogx(x: float) -> float:
        return x * math.log(x) if x > 0 else 0.0

    return -(xlogx(top) + (k - 1) * xlogx(rest))


def gradient(
    logits: torch.Tensor,
    target: torch.Tensor,
    label_smoothing: float | torch.Tensor,
    *,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of the per-row smoothed cross-entropy with respect to the logits: ``softmax(z) - p``.

    Parameters
    ----------
    logits : Tensor ``(N, K)``
    target : LongTensor ``(N,)``
    label_smoothing : float or Tensor ``(N,)``
    prior : Tensor ``(K,)`` or ``(N, K)``, optional

    Returns
    -------
    Tensor ``(N, K)``; each row sums to 0. It vanishes exactly when ``softmax(z) = p``.

    >>> import torch
    >>> from labelsmooth.theory import gradient
    >>> gradient(torch.zeros(1, 4), torch.tensor([1]), 0.2)
    tensor([[ 0.2000, -0.6000,  0.2000,  0.2000]])
    """
    check_float_tensor("logits", logits)
    if logits.dim() != 2:
        raise ValueError(expected("logits", "of shape (N, K)", logits))
    p = smooth_labels(target, logits.shape[1], label_smoothing, prior=prior, dtype=logits.dtype)
    return torch.softmax(logits, dim=-1) - p


def cross_entropy_decomposition(p: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``CE(p, softmax(z))`` into ``H(p)`` (fixed by the target) and ``KL(p || q)`` (learnable).

    Returns ``(H(p), KL(p || q))`` per row; their sum is the cross-entropy.

    >>> import torch
    >>> from labelsmooth.theory import cross_entropy_decomposition
    >>> h, kl = cross_entropy_decomposition(torch.tensor([[0.9, 0.1]]), torch.tensor([[2.0, 0.0]]))
    >>> round(h.item(), 4), round(kl.item(), 4)
    (0.3251, 0.0018)
    """
    check_float_tensor("p", p)
    check_float_tensor("logits", logits)
    if p.shape != logits.shape:
        raise ValueError(expected("p", f"of shape {tuple(logits.shape)} like logits", p))
    logq = torch.log_softmax(logits, dim=-1)
    h = entropy(p)
    kl = (torch.special.xlogy(p, p) - p * logq).sum(-1)
    return h, kl


def descend_logit_gap(
    label_smoothing: float,
    num_classes: int,
    *,
    steps: int = 2000,
    lr: float = 1.0,
    true_class: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Drive one sample's free logits by gradient descent on the smoothed loss; return the gap per step.

    Starting from zero logits, each step applies ``z <- z - lr * (softmax(z) - p)``. The gap
    ``z_y - max_{k != y} z_k`` grows toward :func:`optimal_logit_gap` and stops there for ``a > 0``;
    for ``a = 0`` it keeps growing (logarithmically), the overconfidence of hard targets.

    Returns
    -------
    Tensor of shape ``(steps + 1,)``: the gap before each step and after the last.

    >>> from labelsmooth.theory import descend_logit_gap, optimal_logit_gap
    >>> gaps = descend_logit_gap(0.1, 10, steps=3000)
    >>> round(gaps[-1].item(), 3), round(optimal_logit_gap(0.1, 10), 3)
    (4.511, 4.511)
    """
    num_classes = check_num_classes(num_classes)
    check_smoothing(label_smoothing)
    check_number("steps", steps, lo=0, integer=True, what="to be an int >= 0")
    check_number("lr", lr, lo=0, lo_open=True)
    if not 0 <= true_class < num_classes:
        raise ValueError(expected("true_class", f"in [0, {num_classes})", true_class))
    y = torch.tensor([true_class])
    p = smooth_labels(y, num_classes, label_smoothing, dtype=dtype)
    z = torch.zeros(1, num_classes, dtype=dtype)
    others = [k for k in range(num_classes) if k != true_class]
    gaps = torch.empty(steps + 1, dtype=dtype)
    for t in range(steps + 1):
        gaps[t] = z[0, true_class] - z[0, others].max()
        if t < steps:
            z = z - lr * (torch.softmax(z, dim=-1) - p)
    return gaps


# ---------------------------------------------------------------------------------------------------------
# Preference smoothing (cDPO): the finite optimum of the smoothed DPO loss.
# ---------------------------------------------------------------------------------------------------------


def cdpo_optimal_margin(label_smoothing: float, beta: float) -> float:
    """The log-ratio margin ``h*`` that minimises the cDPO loss of one pair: ``log((1 - e)/e) / beta``.

    The cDPO loss ``(1 - e)(-log sigma(beta h)) + e(-log sigma(-beta h))`` has derivative
    ``beta [sigma(beta h) - (1 - e)]`` in ``h``, zero where ``sigma(beta h*) = 1 - e``:

    .. math::

        h^* = \\frac{1}{\\beta}\\log\\frac{1 - e}{e},

    the twin of :func:`optimal_logit_gap`: finite for every ``e > 0``, infinite for plain DPO (``e = 0``),
    and 0 at ``e = 1/2`` where the label carries no preference.

    Parameters
    ----------
    label_smoothing : float
        ``e`` in ``[0, 0.5]``.
    beta : float
        DPO's inverse temperature, > 0.

    Returns
    -------
    float
        ``h*``: ``inf`` at ``e = 0``, ``0`` at ``e = 1/2``.

    Raises
    ------
    ValueError
        ``e`` outside ``[0, 0.5]`` or ``beta <= 0``.

    Examples
    --------
    >>> from labelsmooth.theory import cdpo_optimal_margin
    >>> [round(cdpo_optimal_margin(e, beta=0.1), 4) for e in (0.0, 0.1, 0.5)]
    [inf, 21.9722, 0.0]
    """
    from ._validation import check_scalar_range

    e = check_scalar_range("label_smoothing", label_smoothing, 0.0, 0.5)
    b = check_scalar_range("beta", beta, 0.0, math.inf, lo_open=True, hi_open=True)
    if e == 0:
        return math.inf
    return math.log((1 - e) / e) / b


def descend_preference_margin(
    label_smoothing: float,
    beta: float,
    *,
    steps: int = 2000,
    lr: float | None = None,
    robust: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Drive one pair's free margin ``h`` by gradient descent on the cDPO (or rDPO) loss; ``h`` per step.

    Starting from ``h = 0``, each step applies ``h <- h - lr * dl/dh`` with the loss of
    :func:`labelsmooth.preference_loss` (autograd through the library's own loss). For cDPO with ``e > 0``
    ``h`` converges to :func:`cdpo_optimal_margin`; for DPO (``e = 0``) and for rDPO it keeps growing
    (logarithmically for DPO, linearly for rDPO, whose gradient tends to ``-beta e/(1 - 2e)``).

    Parameters
    ----------
    label_smoothing : float
        ``e`` in ``[0, 0.5)``.
    beta : float
        > 0.
    steps : int
        Number of descent steps, >= 0.
    lr : float, optional
        Step size, > 0; defaults to ``1 / beta**2`` (the loss's curvature in ``h`` is at most
        ``beta**2 / 4``).
    robust : bool
        Descend the rDPO loss instead.

    Returns
    -------
    Tensor of shape ``(steps + 1,)``: ``h`` before each step and after the last.

    >>> from labelsmooth.theory import cdpo_optimal_margin, descend_preference_margin
    >>> h = descend_preference_margin(0.1, 0.1, steps=500)
    >>> round(h[-1].item(), 3), round(cdpo_optimal_margin(0.1, 0.1), 3)
    (21.972, 21.972)
    """
    from .losses.preference import _check_beta, check_preference_smoothing, preference_loss

    e = check_preference_smoothing(label_smoothing, robust=robust)
    b = _check_beta(beta)
    check_number("steps", steps, lo=0, integer=True, what="to be an int >= 0")
    if lr is None:
        lr = 1.0 / b**2
    check_number("lr", lr, lo=0, lo_open=True)
    zero = torch.zeros(1, dtype=dtype)
    h = torch.zeros(1, dtype=dtype)
    out = torch.empty(steps + 1, dtype=dtype)
    for t in range(steps + 1):
        out[t] = h[0]
        if t < steps:
            h = h.detach().requires_grad_(True)
            loss = preference_loss(h, zero, zero, zero, beta=b, label_smoothing=e, robust=robust)
            (grad,) = torch.autograd.grad(loss, h)
            h = h.detach() - lr * grad
    return out

def optimal_discriminator(
    p_data: torch.Tensor,
    p_model: torch.Tensor,
    real_target: float = 1.0,
    fake_target: float = 0.0,
) -> torch.Tensor:
    r"""The discriminator that minimises the smoothed GAN loss pointwise (Salimans et al. 2016, §3.4).

    With real targets ``a`` and fake targets ``b`` (:func:`labelsmooth.discriminator_loss`), the expected
    loss at a point ``x`` is :math:`-p_d(x)[a\log D + (1-a)\log(1-D)] - p_g(x)[b\log D + (1-b)\log(1-D)]`;
    setting its derivative in ``D`` to zero gives

    .. math::

        D^*(x) = \frac{a\,p_d(x) + b\,p_g(x)}{p_d(x) + p_g(x)}

    with :math:`p_d` the data density and :math:`p_g` the generator's. Hard targets give Goodfellow's
    :math:`p_d/(p_d + p_g)`. Where only the generator puts mass (:math:`p_d = 0`), :math:`D^* = b`: with
    ``b = 0`` the generator is pushed out of such regions, with ``b > 0`` much less so -- the reason to
    smooth only the real side. Where only data lie, :math:`D^* = a`, so one-sided smoothing caps the
    discriminator's confidence without moving that push.

    Parameters
    ----------
    p_data, p_model : Tensor, broadcastable
        Non-negative densities (or probabilities) at the same points.
    real_target, fake_target : float in [0, 1]
        ``a`` and ``b``.

    Returns
    -------
    Tensor
        :math:`D^*` at every point, broadcast shape; NaN where both densities are 0 (``D`` is then free).

    Raises
    ------
    TypeError
        Non-float densities or non-number targets.
    ValueError
        Negative densities, targets outside [0, 1].

    Examples
    --------
    >>> import torch
    >>> from labelsmooth.theory import optimal_discriminator
    >>> pd, pg = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.0, 0.5, 1.0])
    >>> optimal_discriminator(pd, pg)
    tensor([1.0000, 0.5000, 0.0000])
    >>> optimal_discriminator(pd, pg, 0.9, 0.1)                     # two-sided: D* = 0.1 off the data
    tensor([0.9000, 0.5000, 0.1000])
    """
    check_float_tensor("p_data", p_data)
    check_float_tensor("p_model", p_model)
    a = check_scalar_range("real_target", real_target, 0.0, 1.0)
    b = check_scalar_range("fake_target", fake_target, 0.0, 1.0)
    for name, p in (("p_data", p_data), ("p_model", p_model)):
        if p.numel() and bool((p < 0).any()):
            raise ValueError(expected(name, "to be non-negative (a density)", p.min()))
    total = p_data + p_model
    return (a * p_data + b * p_model) / total
