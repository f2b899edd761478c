"""Naive, obviously-correct reference implementations used by the tests.

Each function here is written for clarity, not speed: explicit loops, float64, no cleverness.
Sections are appended per module (losses, metrics, kernels); keep them independent.
"""

from __future__ import annotations

import itertools
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



# --------------------------------------------------------------------------- group, selective and privacy metrics
def group_rates_loop(pred, target, groups):
    """Per group: (selection rate, TPR, FPR) of binary predictions, one Python loop per group (fairlearn's
    MetricFrame by hand)."""
    out = {}
    for g in sorted(set(groups)):
        rows = [i for i in range(len(groups)) if groups[i] == g]
        pos = [i for i in rows if target[i] == 1]
        neg = [i for i in rows if target[i] == 0]
        sr = sum(pred[i] for i in rows) / len(rows)
        tpr = sum(pred[i] for i in pos) / len(pos)
        fpr = sum(pred[i] for i in neg) / len(neg)
        out[g] = (sr, tpr, fpr)
    return out


def aurc_loop(scores, errors):
    """AURC by its definition, O(N^2): for each k, the expected number of errors among the k highest-scored
    samples when tied scores are ordered at random (a sample in a tie block straddling k counts with the
    fraction of the block that fits)."""
    n = len(scores)
    total = 0.0
    for k in range(1, n + 1):
        # the k-th largest score
        srt = sorted(scores, reverse=True)
        t = srt[k - 1]
        above = sum(1 for s in scores if s > t)
        tied = sum(1 for s in scores if s == t)
        frac = (k - above) / tied
        e = 0.0
        for s, err in zip(scores, errors):
            if s > t:
                e += err
            elif s == t:
                e += frac * err
        total += e / k
    return total / n


def modified_entropy_loop(probs, target):
    """Song and Mittal's Mentr(p, y) = -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k), row by row (float64)."""
    out = []
    for row, y in zip(probs.tolist(), target.tolist()):
        v = 0.0
        for k, pk in enumerate(row):
            if k == y:
                v -= (1 - pk) * math.log(pk) if pk < 1 else 0.0
            elif pk > 0:
                v -= pk * math.log(1 - pk)
        out.append(v)
    return out



# --------------------------------------------------------------------------- distillation and noisy labels
def _softmax_row(z):
    m = max(float(v) for v in z)
    e = [math.exp(float(v) - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def distillation_loop(
    student,
    teacher,
    target=None,
    temperature=1.0,
    alpha=1.0,
    label_smoothing=0.0,
    ignore_index=-100,
    reduction="mean",
):
    """alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE_a(s, y), row by row (differentiable)."""
    s64, t64 = student.double(), teacher.double()
    k = s64.shape[1]
    rows, n_valid = [], 0
    for i in range(s64.shape[0]):
        y = None if target is None else int(target[i])
        if y == ignore_index:
            rows.append(s64.sum() * 0.0)
            continue
        n_valid += 1
        ps = torch.softmax(s64[i] / temperature, 0)
        pt = torch.softmax(t64[i] / temperature, 0)
        kd = sum(pt[j] * (torch.log(pt[j]) - torch.log(ps[j])) for j in range(k)) * temperature**2
        row = alpha * kd
        if y is not None and alpha < 1:
            q = torch.softmax(s64[i], 0)
            p = [(1 - label_smoothing) * (j == y) + label_smoothing / k for j in range(k)]
            row = row + (1 - alpha) * sum(-p[j] * torch.log(q[j]) for j in range(k))
        rows.append(row)
    out = torch.stack(rows)
    if reduction == "none":
        return out
    return out.sum() if reduction == "sum" else out.sum() / n_valid


def teacher_free_loop(z, y, correct_prob, temperature, alpha, softmax_teacher):
    """Tf-KD_reg from its definition: the virtual teacher built entry by entry (mean over rows)."""
    z64 = z.double()
    n, k = z64.shape
    rows = []
    for i in range(n):
        pd = torch.tensor(
            [correct_prob if j == int(y[i]) else (1 - correct_prob) / (k - 1) for j in range(k)],
            dtype=torch.float64,
        )
        q = torch.softmax(z64[i], 0)
        ce = -torch.log(q[int(y[i])])
        if softmax_teacher:
            pt, ps, scale = torch.softmax(pd / temperature, 0), q, 1.0
        else:
            pt = pd ** (1 / temperature) / (pd ** (1 / temperature)).sum()  # softmax(log pd / T)
            ps, scale = torch.softmax(z64[i] / temperature, 0), temperature**2
        kd = sum(pt[j] * (torch.log(pt[j]) - torch.log(ps[j])) for j in range(k)) * scale
        rows.append((1 - alpha) * ce + alpha * kd)
    return torch.stack(rows).mean()


def label_relaxation_loop(z, y, a, detach=True):
    """KL(p^r || p) with p^r the credal projection, 0 once p_y >= 1 - a; per row (differentiable)."""
    z64 = z.double()
    n, k = z64.shape
    rows = []
    for i in range(n):
        p = torch.softmax(z64[i], 0)
        yi = int(y[i])
        if float(p[yi].detach()) >= 1 - a:
            rows.append(z64[i].sum() * 0.0)
            continue
        pp = p.detach() if detach else p
        rest = sum(pp[j] for j in range(k) if j != yi)
        pr = [(1 - a) if j == yi else a * pp[j] / rest for j in range(k)]
        rows.append(
            sum(
                pr[j] * (torch.log(torch.as_tensor(pr[j], dtype=torch.float64)) - torch.log(p[j]))
                for j in range(k)
            )
        )
    return torch.stack(rows)


def forward_corrected_loop(z, y, transition):
    """-log sum_i p_i T[i, y] per row, from the probabilities (float64, differentiable)."""
    z64, t64 = z.double(), transition.double()
    rows = []
    for i in range(z64.shape[0]):
        p = torch.softmax(z64[i], 0)
        rows.append(-torch.log(sum(p[j] * t64[j, int(y[i])] for j in range(z64.shape[1]))))
    return torch.stack(rows)


def online_smoothing_means_loop(batches, num_classes, initial):
    """The soft-label matrix after one epoch: per class, the mean softmax of its correctly classified rows."""
    sums = [[0.0] * num_classes for _ in range(num_classes)]
    counts = [0] * num_classes
    for z, y in batches:
        for i in range(z.shape[0]):
            q = _softmax_row(z[i].tolist())
            c = int(y[i])
            if max(range(num_classes), key=lambda j: q[j]) == c:
                counts[c] += 1
                sums[c] = [s + v for s, v in zip(sums[c], q)]
    out = initial.double().clone()
    for c in range(num_classes):
        if counts[c]:
            out[c] = torch.tensor([s / counts[c] for s in sums[c]], dtype=torch.float64)
    return out



# --- value targets and preference losses (issue 12), float64 loops with math.erf / math.exp ---


def hl_gauss_loop(y, edges, sigma):
    """HL-Gauss histogram of each y (clipped to the edges), bin by bin with math.erf."""

    def phi(x):
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    rows = []
    for v in y:
        v = min(max(v, edges[0]), edges[-1])
        mass = [phi((edges[i + 1] - v) / sigma) - phi((edges[i] - v) / sigma) for i in range(len(edges) - 1)]
        z = sum(mass)
        rows.append([m / z for m in mass])
    return rows


def two_hot_loop(y, edges):
    centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    rows = []
    for v in y:
        v = min(max(v, centres[0]), centres[-1])
        row = [0.0] * len(centres)
        for k in range(len(centres) - 1):
            if centres[k] <= v <= centres[k + 1]:
                w = (v - centres[k]) / (centres[k + 1] - centres[k])
                row[k], row[k + 1] = 1 - w, w
                break
        rows.append(row)
    return rows


def histogram_ce_loop(logits, targets):
    """Mean over rows of -sum_i p_i log softmax(z)_i, with a max-shifted log-sum-exp."""
    total = 0.0
    for z, p in zip(logits, targets):
        m = max(z)
        lse = m + math.log(sum(math.exp(v - m) for v in z))
        total += -sum(pi * (zi - lse) for pi, zi in zip(p, z))
    return total / len(logits)


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def dpo_trl_loop(pc, pr, rc, rr, beta, label_smoothing, robust):
    """TRL's DPOTrainer formulas, pair by pair (loss_type="sigmoid" with label_smoothing, or "robust").

    logits = (pi_chosen - pi_rejected) - (ref_chosen - ref_rejected); -log sigmoid(x) = softplus(-x).
    Returns (mean loss, chosen_rewards, rejected_rewards).
    """
    losses, chosen, rejected = [], [], []
    for a, b, c, d in zip(pc, pr, rc, rr):
        logits = (a - b) - (c - d)
        e = label_smoothing
        if robust:
            loss = ((1 - e) * _softplus(-beta * logits) - e * _softplus(beta * logits)) / (1 - 2 * e)
        else:
            loss = (1 - e) * _softplus(-beta * logits) + e * _softplus(beta * logits)
        losses.append(loss)
        chosen.append(beta * (a - c))
        rejected.append(beta * (b - d))
    return sum(losses) / len(losses), chosen, rejected



# --------------------------------------------------------------------------- kernel options
def cross_entropy_options64(
    logits, target, alpha=0.0, weight=None, ignore_index=-100, reduction="mean", prior=None,  # as dense64
    softcap=None, z_loss=0.0, num_items=None,
):  # fmt: skip
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


def seeded_property(max_examples: int, **strategies):
    """The decorator of a seeded property test: ``@settings(max_examples=..., deadline=None)`` over
    ``@given(**strategies, seed=st.integers(0, 10_000))``. No deadline, because a loaded machine makes any
    one example slow; ``seed`` (for a ``torch.Generator``) is drawn unless ``strategies`` gives its own."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    strategies.setdefault("seed", st.integers(0, 10_000))

    def decorate(test):
        return settings(max_examples=max_examples, deadline=None)(given(**strategies)(test))

    return decorate
