"""Probabilities from a metric's validated scores: log-probabilities, probabilities, the top label.

Internal to :mod:`labelsmooth.metrics`; the inputs are checked first by
:func:`labelsmooth._validation.prepare_scores_and_target`. Everything is float64.
"""

from __future__ import annotations

import torch

from labelsmooth._validation import prob_atol


def log_probs(x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Float64 log-probabilities, ``(N, K)``: ``log_softmax`` of logits or ``log`` of probabilities."""
    if from_logits:
        return torch.log_softmax(x.double(), dim=1)
    return x.double().log()


def log_probs_and_probs(x: torch.Tensor, *, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Both at once, float64 ``(N, K)``: for logits ``p = exp(log_softmax(z))`` (one normalisation)."""
    logp = log_probs(x, from_logits=from_logits)
    return logp, logp.exp() if from_logits else x.double()


def probs(x: torch.Tensor, *, from_logits: bool) -> torch.Tensor:
    """Float64 probabilities ``(N, K)``."""
    if from_logits:
        return torch.softmax(x.double(), dim=1)
    return x.double()


def top_label(
    x: torch.Tensor, target: torch.Tensor, *, from_logits: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence ``c_i = max_k p_ik`` (float64) and correctness ``1[argmax_k p_ik = y_i]`` (bool).

    ``argmax`` takes the first maximal index on ties (as ``torch.argmax``). For probabilities the maximum
    is taken in the input dtype and then widened exactly to float64, so the stored value decides the bin;
    for logits ``c_i = exp(z_max - logsumexp(z))`` in float64.

    Fast path for validated probabilities: ``amax`` plus a gather (``p_iy == c_i``) instead of
    ``max(dim=1)`` with indices, which is several times slower on CPU. A tie at the maximum needs two
    entries equal to ``c_i``, so ``2 c_i <= sum_k p_ik <= 1 + atol`` (:func:`prob_atol`); only rows with
    ``c_i <= 1/2 + atol`` whose label attains the maximum are re-checked with ``argmax``.
    """
    if from_logits:
        z = x.double()
        zmax, pred = z.max(dim=1)
        conf = torch.exp(zmax - torch.logsumexp(z, dim=1))
        return conf, pred == target
    c = x.amax(dim=1)
    correct = x.gather(1, target[:, None]).squeeze(1) == c
    maybe_tied = correct & (c <= 0.5 + prob_atol(x.dtype, x.shape[1]))
    rows = maybe_tied.nonzero().squeeze(1)
    if rows.numel():
        correct[rows] = x[rows].argmax(dim=1) == target[rows]
    return c.double(), correct
