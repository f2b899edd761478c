"""Naive, obviously-correct reference implementations used by the tests.

Each function here is written for clarity, not speed: explicit loops, float64, no cleverness.
Sections are appended per module (losses, metrics, kernels); keep them independent.
"""

from __future__ import annotations

import math

import torch


# --------------------------------------------------------------------------- losses
def smoothed_target_loop(target, num_classes, alpha, prior=None):
    """p_k = (1 - alpha) * [k == y] + alpha * u_k, one row at a time."""
    rows = []
    for i, y in enumerate(target.tolist()):
        a = float(alpha[i]) if isinstance(alpha, torch.Tensor) else float(alpha)
        if prior is None:
            u = [1.0 / num_classes] * num_classes
        elif prior.dim() == 1:
            u = prior.tolist()
        else:
            u = prior[i].tolist()
        rows.append([(1 - a) * (1.0 if k == y else 0.0) + a * u[k] for k in range(num_classes)])
    return torch.tensor(rows, dtype=torch.float64)


def cross_entropy_loop(
    logits,
    target,
    alpha=0.0,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    prior=None,
    weight_mode="torch",
):
    """Label-smoothed CE for (N, K) logits and index targets, built from the explicit target p."""
    z = logits.double()
    n, k = z.shape
    w = weight.double() if weight is not None else torch.ones(k, dtype=torch.float64)
    losses, denom = [], 0.0
    for i in range(n):
        y = int(target[i])
        if y == ignore_index:
            losses.append(0.0)
            continue
        a = float(alpha[i]) if isinstance(alpha, torch.Tensor) else float(alpha)
        u = [1.0 / k] * k if prior is None else (prior.tolist() if prior.dim() == 1 else prior[i].tolist())
        lse = math.log(sum(math.exp(float(z[i, j])) for j in range(k)))
        logq = [float(z[i, j]) - lse for j in range(k)]
        if weight_mode == "torch":
            li = -(1 - a) * float(w[y]) * logq[y] - a * sum(u[j] * float(w[j]) * logq[j] for j in range(k))
        else:
            p = [(1 - a) * (1.0 if j == y else 0.0) + a * u[j] for j in range(k)]
            li = -float(w[y]) * sum(p[j] * logq[j] for j in range(k))
        losses.append(li)
        denom += float(w[y])
    out = torch.tensor(losses, dtype=torch.float64)
    if reduction == "none":
        return out
    if reduction == "sum":
        return out.sum()
    return out.sum() / denom if denom else torch.tensor(float("nan"), dtype=torch.float64)


# --------------------------------------------------------------------------- kernels
def cross_entropy_dense64(logits, target, alpha=0.0, weight=None, ignore_index=-100, reduction="mean", prior=None):
    """PyTorch-weighted smoothed CE in float64 with the explicit (N, K) weighted target, differentiable.

    P_ik = (1 - a_i) w_{y_i} [k = y_i] + a_i u_k w_k;  loss_i = -sum_k P_ik log_softmax(z_i)_k;
    "mean" divides by sum_i w_{y_i} over rows not ignored. Returns a float64 tensor with autograd
    history back to ``logits`` (which should be a float64 leaf).
    """
    z = logits
    n, k = z.shape
    w = weight.double() if weight is not None else torch.ones(k, dtype=torch.float64)
    if prior is None:
        u = torch.full((n, k), 1.0 / k, dtype=torch.float64)
    else:
        u = prior.double().expand(n, k)
    a = alpha.double() if isinstance(alpha, torch.Tensor) else torch.full((n,), float(alpha), dtype=torch.float64)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = torch.zeros(n, k, dtype=torch.float64)
    onehot[torch.arange(n), safe] = 1.0
    P = (1 - a)[:, None] * w[safe][:, None] * onehot + a[:, None] * u * w[None, :]
    P = P * valid[:, None].double()
    loss = -(P * torch.log_softmax(z, dim=1)).sum(1)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[safe] * valid.double()).sum()
