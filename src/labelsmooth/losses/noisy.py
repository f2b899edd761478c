"""Losses for noisy labels that label smoothing is compared with: online label smoothing, label relaxation and
forward loss correction.

- :class:`OnlineLabelSmoothing` (Zhang et al. 2021) replaces the fixed smoothed target by the mean
  prediction of the correctly classified training samples of each class, re-estimated every epoch.
- :func:`label_relaxation_loss` (Lienen and Hüllermeier 2021) stops pulling a prediction once its label
  mass reaches ``1 - a`` and otherwise pulls it to the nearest distribution that does.
- :func:`forward_corrected_loss` (Patrini et al. 2017) fits the clean posterior through a known noise
  transition matrix; :func:`symmetric_transition` builds the matrix of symmetric noise.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._numerics import apply_reduction, compute_dtype
from .._validation import (
    Reduction,
    check_distribution,
    check_float_tensor,
    check_labels,
    check_num_classes,
    check_reduction,
    check_scalar_range,
    check_smoothing,
    expected,
)
from .cross_entropy import cross_entropy

__all__ = ["OnlineLabelSmoothing", "forward_corrected_loss", "label_relaxation_loss", "symmetric_transition"]


def _index_rows(input: torch.Tensor, target: torch.Tensor, ignore_index: int):
    """(N, C) logits in the compute dtype, the valid mask and the safe labels (ignored rows -> 0)."""
    check_float_tensor("input", input)
    if input.dim() != 2:
        raise ValueError(expected("input", "of shape (N, C)", input))
    if input.shape[1] < 2:
        raise ValueError(expected("input", "to have at least 2 classes", input))
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    if tuple(target.shape) != (input.shape[0],):
        raise ValueError(expected("target", f"of shape ({input.shape[0]},)", target))
    check_labels("target", target, int(input.shape[1]), ignore_index)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    return input.to(compute_dtype(input.dtype)), valid, safe


def _masked_reduce(row, valid, reduction, shape, dtype):
    row = torch.where(valid, row, torch.zeros_like(row))
    return apply_reduction(row, valid.sum().to(row.dtype), reduction, shape).to(dtype)


# --------------------------------------------------------------------------- label relaxation
def label_relaxation_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    relaxation: float = 0.1,
    *,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Label relaxation (Lienen and Hüllermeier 2021): 0 once ``p_y >= 1 - a``, else the KL to the credal set.

    The label defines the credal set ``Q = {q : q_y >= 1 - a}`` of acceptable predictions. With
    ``p = softmax(z)``:

    .. math::

        \\ell = \\begin{cases} 0 & p_y \\ge 1 - a \\\\
            \\mathrm{KL}(p^r \\,\\|\\, p) & \\text{otherwise} \\end{cases}
        \\qquad p^r_y = 1 - a, \\quad p^r_k = a\\,\\frac{p_k}{\\sum_{j \\ne y} p_j}\\ (k \\ne y)

    ``p^r`` is the projection of ``p`` onto ``Q`` (the member of ``Q`` closest in KL). In closed form
    ``KL(p^r || p) = (1 - a)(log(1 - a) - log p_y) + a(log a - log(1 - p_y))``, computed here with
    ``log_softmax`` and a log-sum-exp over the other classes (``log(1 - p_y)`` is never formed by a
    subtraction).

    Like the authors' PyTorch code (the credal target is built under ``torch.no_grad()``), ``p^r`` is
    treated as a constant, so the gradient is ``softmax(z) - p^r`` on the active rows. This is also the
    gradient of the closed form with ``p^r`` *not* detached: the KL's derivative in its first argument,
    along the set's boundary, vanishes at the projection, so detaching changes nothing.

    Parameters
    ----------
    input : Tensor of shape ``(N, C)``
        Logits; half inputs are accumulated in float32.
    target : LongTensor of shape ``(N,)``
        Class indices or ``ignore_index``.
    relaxation : float
        ``a`` in (0, 1).
    ignore_index, reduction
        As in :func:`labelsmooth.cross_entropy` (``"mean"`` over the rows not ignored).

    Raises
    ------
    ValueError
        ``relaxation`` outside (0, 1); shape or label errors.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import label_relaxation_loss
    >>> z = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> label_relaxation_loss(z, torch.tensor([0, 0]), 0.3, reduction="none")
    tensor([0.0000, 0.5466])

    References
    ----------
    Lienen and Hüllermeier, "From Label Smoothing to Label Relaxation", AAAI 2021.
    """
    a = check_scalar_range("relaxation", relaxation, 0.0, 1.0, lo_open=True, hi_open=True)
    check_reduction(reduction)
    z, valid, safe = _index_rows(input, target, ignore_index)
    logp = torch.log_softmax(z, -1)
    logp_y = logp.gather(1, safe[:, None]).squeeze(1)
    is_y = torch.zeros_like(z, dtype=torch.bool).scatter(1, safe[:, None], True)
    log_rest = torch.logsumexp(logp.masked_fill(is_y, -math.inf), -1)  # log sum_{k != y} p_k
    with torch.no_grad():
        # p^r_k = a p_k / sum_{j != y} p_j off the label, 1 - a on it (a constant, as in the authors' code)
        log_pr = torch.where(is_y, math.log(1 - a), math.log(a) + logp - log_rest[:, None])
        pr = log_pr.exp()
    kl = (torch.where(pr > 0, pr * (log_pr - logp), torch.zeros_like(pr))).sum(-1)
    active = valid & (logp_y.detach() < math.log1p(-a))
    row = torch.where(active, kl, torch.zeros_like(kl))
    return apply_reduction(row, valid.sum().to(row.dtype), reduction, tuple(target.shape)).to(input.dtype)


# --------------------------------------------------------------------------- forward correction
def symmetric_transition(
    num_classes: int, noise_rate: float, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The K x K transition matrix of symmetric label noise: ``T = (1 - r) I + r/(K - 1) (11^T - I)``.

    ``T[i, j] = P(noisy = j | clean = i)``: a label is kept with probability ``1 - r`` and otherwise replaced
    by one of the *other* K - 1 classes uniformly, so ``r`` is the expected fraction of wrong labels (the
    convention of :mod:`labelsmooth.study.noise`).

    >>> symmetric_transition(3, 0.2)
    tensor([[0.8000, 0.1000, 0.1000],
            [0.1000, 0.8000, 0.1000],
            [0.1000, 0.1000, 0.8000]])
    """
    k = check_num_classes(num_classes)
    r = check_scalar_range("noise_rate", noise_rate, 0.0, 1.0)
    eye = torch.eye(k, dtype=torch.float64)
    return ((1 - r) * eye + r / (k - 1) * (1 - eye)).to(dtype)


def forward_corrected_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    transition: torch.Tensor,
    *,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Forward loss correction (Patrini et al. 2017): cross-entropy of the *noisy* label under ``T^T p``.

    The model's ``p = softmax(z)`` estimates the clean posterior; the noisy label ``y~`` is then distributed
    as ``(T^T p)_j = sum_i p_i T[i, j]``, and the loss is its negative log-likelihood, computed in log space:

    .. math::

        \\ell = -\\log \\sum_i p_i T_{i\\tilde y}
              = -\\mathrm{logsumexp}_i\\big(\\log\\mathrm{softmax}(z)_i + \\log T_{i\\tilde y}\\big)

    ``T`` is row-stochastic, rows indexed by the true class: ``T[i, j] = P(noisy = j | clean = i)``
    (:func:`symmetric_transition`). With ``T = I`` it is cross-entropy. Zeros in ``T`` are exact (``log 0 =
    -inf`` drops the term); a label whose column of ``T`` is all zero has infinite loss. Patrini et al. prove
    the minimiser of the corrected loss on noisy data is the minimiser of cross-entropy on clean data.

    Parameters
    ----------
    input : Tensor of shape ``(N, C)``
        Logits; half inputs are accumulated in float32.
    target : LongTensor of shape ``(N,)``
        The (noisy) class indices, or ``ignore_index``.
    transition : Tensor of shape ``(C, C)``
        Row-stochastic (non-negative, each row sums to 1 within 1e-4), float.
    ignore_index, reduction
        As in :func:`labelsmooth.cross_entropy`.

    Raises
    ------
    ValueError
        ``transition`` not ``(C, C)``, negative, not finite, or with a row not summing to 1; shape or label
        errors.
    TypeError
        Non-float ``transition`` or ``input``.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import forward_corrected_loss, symmetric_transition
    >>> z, y = torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])
    >>> round(forward_corrected_loss(z, y, symmetric_transition(3, 0.2)).item(), 4)
    0.4309
    >>> round(forward_corrected_loss(z, y, torch.eye(3)).item(), 4)  # T = I: cross-entropy
    0.2413

    References
    ----------
    Patrini, Rozza, Menon, Nock and Qu, "Making Deep Neural Networks Robust to Label Noise: a Loss
    Correction Approach", CVPR 2017.
    """
    check_reduction(reduction)
    z, valid, safe = _index_rows(input, target, ignore_index)
    k = z.shape[1]
    check_float_tensor("transition", transition)
    if tuple(transition.shape) != (k, k):
        raise ValueError(expected("transition", f"of shape ({k}, {k}) for {k} classes", transition))
    check_distribution("transition", transition)  # each row (true class) a distribution over noisy labels
    log_t = transition.to(device=z.device, dtype=z.dtype).log()
    logp = torch.log_softmax(z, -1)
    # (N, C): log p_i + log T[i, y~] for every row, then log-sum-exp over the true class i
    row = -torch.logsumexp(logp + log_t[:, safe].T, -1)
    return _masked_reduce(row, valid, reduction, tuple(target.shape), input.dtype)


# --------------------------------------------------------------------------- online label smoothing
class OnlineLabelSmoothing(nn.Module):
    """Online label smoothing (Zhang et al. 2021): per-class soft targets re-estimated every epoch.

    The module holds a K x K soft-label matrix ``S`` (row ``c`` is the target of class ``c``). The loss of a
    row with logits ``z`` and label ``y``, ``q = softmax(z)``, mirrors the paper's
    ``L = alpha L_hard + (1 - alpha) L_soft`` (their alpha = 0.5):

    .. math::

        \\ell = \\alpha\\,(-\\log q_y) + (1 - \\alpha)\\,\\Big(-\\sum_k S_{yk} \\log q_k\\Big)

    Training loop, one epoch at a time::

        loss = ols(logits, y); loss.backward(); ...
        ols.update(logits, y)   # accumulate the predictions of the correctly classified samples
        ...
        ols.step_epoch()        # at the end of the epoch: S <- the accumulated means

    ``update`` adds ``softmax(z)`` (detached) of every sample whose argmax equals its label to the running
    sum of that label's class; ``step_epoch`` sets ``S[c]`` to the mean over those samples and clears the
    sums. A class with no correctly classified sample in the epoch keeps its previous row (the paper leaves
    this case open; keeping the row avoids a 0/0). At the start ``S`` is uniform label smoothing,
    ``(1 - label_smoothing) I + label_smoothing / K`` (Zhang et al. initialise with a fixed smoothed target
    before the first epoch's statistics exist). ``S`` and the accumulators are buffers, so they are in
    ``state_dict()`` and move with ``.to(device)``; checkpoints resume mid-epoch.

    ``forward`` does not update the statistics (call ``update``, e.g. on the same logits, only in training).

    Parameters
    ----------
    num_classes : int
        K >= 2.
    label_smoothing : float
        The initial (uniform-convention) smoothing in [0, 1] (default 0.1).
    alpha : float
        Weight of the hard cross-entropy in [0, 1] (default 0.5, the paper's).
    ignore_index : int
    reduction : {"mean", "sum", "none"}

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import OnlineLabelSmoothing
    >>> ols = OnlineLabelSmoothing(3, label_smoothing=0.3)
    >>> z, y = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    >>> round(ols(z, y).item(), 4)
    0.9839
    >>> ols.update(z, y)        # only the first row is classified correctly
    >>> ols.step_epoch()
    >>> ols.soft_labels[0]      # class 0's new target: the first row's softmax
    tensor([0.7856, 0.1753, 0.0391])
    >>> ols.soft_labels[2]      # class 2 had no correct sample: its row is kept
    tensor([0.1000, 0.1000, 0.8000])

    References
    ----------
    Zhang, Jiang, Hou, Cheng, Yang and Cheng, "Delving Deep into Label Smoothing", IEEE TIP 30, 2021.
    """

    soft_labels: torch.Tensor
    prob_sum: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        *,
        label_smoothing: float = 0.1,
        alpha: float = 0.5,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        k = check_num_classes(num_classes)
        a = float(check_smoothing(label_smoothing))  # type: ignore[arg-type]
        self.alpha = check_scalar_range("alpha", alpha, 0.0, 1.0)
        check_reduction(reduction)
        self.num_classes = k
        self.label_smoothing = a
        self.ignore_index = ignore_index
        self.reduction = reduction
        eye = torch.eye(k)
        self.register_buffer("soft_labels", (1 - a) * eye + a / k)
        self.register_buffer("prob_sum", torch.zeros(k, k))
        self.register_buffer("count", torch.zeros(k))

    def _check(self, input: torch.Tensor) -> None:
        check_float_tensor("input", input)
        if input.dim() != 2 or input.shape[1] != self.num_classes:
            raise ValueError(expected("input", f"of shape (N, {self.num_classes})", input))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(input)
        z, valid, safe = _index_rows(input, target, self.ignore_index)
        hard = cross_entropy(z, target, ignore_index=self.ignore_index, reduction="none")
        s = self.soft_labels.to(device=z.device, dtype=z.dtype)[safe]
        soft = -(s * torch.log_softmax(z, -1)).sum(-1)
        row = self.alpha * hard + (1 - self.alpha) * soft
        return _masked_reduce(row, valid, self.reduction, tuple(target.shape), input.dtype)

    @torch.no_grad()
    def update(self, input: torch.Tensor, target: torch.Tensor) -> None:
        """Add the softmax of every correctly classified, non-ignored row to its class's running sum."""
        self._check(input)
        z, valid, safe = _index_rows(input, target, self.ignore_index)
        q = torch.softmax(z.float(), -1)
        ok = valid & (q.argmax(-1) == safe)
        dev = self.prob_sum.device
        self.prob_sum.index_add_(0, safe[ok].to(dev), q[ok].to(dev, self.prob_sum.dtype))
        ones = torch.ones(int(ok.sum()), device=dev, dtype=self.count.dtype)
        self.count.index_add_(0, safe[ok].to(dev), ones)

    @torch.no_grad()
    def step_epoch(self) -> None:
        """Swap in the per-class means (a class without a correct sample keeps its row); reset the sums."""
        seen = self.count > 0
        self.soft_labels[seen] = self.prob_sum[seen] / self.count[seen, None]
        self.prob_sum.zero_()
        self.count.zero_()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, label_smoothing={self.label_smoothing}, alpha={self.alpha}"
