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


# --------------------------------------------------------------------------- metrics
def _top_label_loop(probs, target):
    """(confidence, correct) per row; argmax takes the first maximal index."""
    out = []
    for row, y in zip(probs.tolist(), target.tolist()):
        c = max(row)
        pred = row.index(c)
        out.append((float(c), pred == int(y)))
    return out


def ece_loop(probs, target, n_bins=15, norm="l1", right_closed=False):
    """Top-label ECE / RMS-CE / MCE with one Python loop over samples and one over bins."""
    bins = [[] for _ in range(n_bins)]
    for c, ok in _top_label_loop(probs, target):
        if right_closed:
            b = max(math.ceil(c * n_bins) - 1, 0)
        else:
            b = min(math.floor(c * n_bins), n_bins - 1)
        bins[b].append((c, ok))
    n = len(target)
    total, worst = 0.0, 0.0
    for members in bins:
        if not members:
            continue
        conf = sum(c for c, _ in members) / len(members)
        acc = sum(1.0 for _, ok in members if ok) / len(members)
        gap = abs(acc - conf)
        total += len(members) / n * (gap if norm == "l1" else gap * gap)
        worst = max(worst, gap)
    if norm == "max":
        return worst
    return total if norm == "l1" else math.sqrt(total)


def bin_counts_loop(probs, target, n_bins=15, right_closed=False):
    counts = [0] * n_bins
    for c, _ in _top_label_loop(probs, target):
        b = max(math.ceil(c * n_bins) - 1, 0) if right_closed else min(math.floor(c * n_bins), n_bins - 1)
        counts[b] += 1
    return counts


def classwise_ece_loop(probs, target, n_bins=15):
    rows, ys = probs.tolist(), target.tolist()
    n, k = len(rows), len(rows[0])
    total = 0.0
    for cls in range(k):
        bins = [[] for _ in range(n_bins)]
        for row, y in zip(rows, ys):
            p = row[cls]
            bins[min(math.floor(p * n_bins), n_bins - 1)].append((p, 1.0 if y == cls else 0.0))
        for members in bins:
            if members:
                total += abs(sum(o for _, o in members) - sum(p for p, _ in members)) / n
    return total / k


def nll_brier_entropy_loop(probs, target):
    rows, ys = probs.tolist(), target.tolist()
    nll = brier = ent = 0.0
    for row, y in zip(rows, ys):
        nll += -math.log(row[y]) if row[y] > 0 else math.inf
        brier += sum((p - (1.0 if j == y else 0.0)) ** 2 for j, p in enumerate(row))
        ent += -sum(p * math.log(p) for p in row if p > 0)
    n = len(rows)
    return nll / n, brier / n, ent / n


def logit_gap_loop(logits, target):
    out = []
    for row, y in zip(logits.tolist(), target.tolist()):
        out.append(row[y] - max(v for j, v in enumerate(row) if j != y))
    return out


def smece_sigma_direct(conf, correct, sigma, n_grid=8001, images=5):
    """smECE at a fixed bandwidth: the reflected Gaussian kernel summed explicitly, trapezoid integral."""
    f = torch.as_tensor(conf, dtype=torch.float64)
    r = torch.as_tensor(correct, dtype=torch.float64) - f
    t = torch.linspace(0.0, 1.0, n_grid, dtype=torch.float64)
    dens = torch.zeros(n_grid, dtype=torch.float64)
    norm = 1.0 / (sigma * math.sqrt(2.0 * math.pi))
    for i in range(f.numel()):
        ker = torch.zeros(n_grid, dtype=torch.float64)
        for k in range(-images, images + 1):
            ker += torch.exp(-0.5 * ((t - f[i] - 2 * k) / sigma) ** 2)
            ker += torch.exp(-0.5 * ((t + f[i] - 2 * k) / sigma) ** 2)
        dens += r[i] * norm * ker
    a = (dens / f.numel()).abs()
    h = 1.0 / (n_grid - 1)
    return float(h * (a.sum() - 0.5 * (a[0] + a[-1])))


# --------------------------------------------------------------------------- kernel options
def cross_entropy_options64(
    logits,
    target,
    alpha=0.0,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    prior=None,
    softcap=None,
    z_loss=0.0,
    num_items=None,
):
    """``cross_entropy_dense64`` with soft-capping, the z-loss and a given mean denominator, in float64.

    z' = c tanh(z / c) (when ``softcap`` is given); loss_i = -sum_k P_ik log_softmax(z'_i)_k
    + z_loss * logsumexp(z'_i)^2 on rows not ignored (P as in ``cross_entropy_dense64``); "mean" divides
    the sum by ``num_items`` when given, else by sum_i w_{y_i}. Differentiable back to ``logits``.
    """
    z = logits
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    loss = cross_entropy_dense64(z, target, alpha, weight, ignore_index, "none", prior)
    valid = (target != ignore_index).double()
    loss = loss + z_loss * torch.logsumexp(z, dim=1) ** 2 * valid
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if num_items is not None:
        return loss.sum() / float(num_items)
    k = z.shape[1]
    w = weight.double() if weight is not None else torch.ones(k, dtype=torch.float64)
    safe = torch.where(target != ignore_index, target, torch.zeros_like(target))
    return loss.sum() / (w[safe] * valid).sum()
