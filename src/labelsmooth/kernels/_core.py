"""Per-row maths shared by every fast path (CPU row blocks, fused linear, Triton).

For a row with logits ``z`` (V classes), label ``y``, smoothing ``a``, prior ``u`` (uniform ``1/V`` by
default), class weights ``w`` (ones by default), and ``uw = u * w``, ``c = sum_k uw_k``, each kernel
only needs four numbers per row, its *statistics*:

- ``m = max_k z_k`` and ``S = sum_k exp(z_k - m)``, so that ``lse = m + log S``;
- ``z_y``, the target logit;
- ``zu = sum_k uw_k z_k`` (``mean(z)`` for the uniform prior without weights).

From them (:func:`row_terms`), with ``L = log S`` and ``r`` the reduction's scale of the row
(``1 / sum w_y`` for ``"mean"``, 1 otherwise, 0 on ignored rows):

.. math::

    \\ell = (1-a)\\,w_y\\,(L - (z_y - m)) + a\\,(c\\,L - (zu - c\\,m))

    \\partial \\ell / \\partial z_k \\cdot r = C\\,\\mathrm{softmax}(z)_k - B\\,uw_k - T\\,[k = y],\\quad
    C = r\\,((1-a) w_y + a c),\\; B = r a,\\; T = r (1-a) w_y,

with ``softmax(z)_k = exp(z_k - m) / S``.

Options. Soft-capping ``c`` replaces ``z`` by ``z' = c tanh(z / c)`` before everything above; the gradient
with respect to ``z`` is the one above (taken at ``z'``) times ``1 - tanh(z / c)^2``. The z-loss
``lambda`` adds ``lambda lse^2`` to the loss of each row not ignored and ``2 lambda lse softmax(z)`` to its
gradient, so it only moves ``C`` by ``r 2 lambda lse``.

This is ``(1-a) w_y (softmax - onehot) + a (c softmax - uw)`` (PyTorch's weighting), i.e.
``softmax(z) - p`` without weights. The terms ``L - (z_y - m)`` and ``zu - c m`` are formed from the
shifted logits so that logits of magnitude 1e4 keep their precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .._numerics import apply_reduction, compute_dtype
from .._validation import expected
from ..losses.cross_entropy import CEArgs, prepare_cross_entropy_args


@dataclass
class RowParams:
    """Per-problem constants, already on the logits' device in the compute dtype.

    ``uw`` is ``None`` (uniform prior, no weights: ``uw_k = 1/V``, ``c = 1``), ``(V,)`` or ``(M, V)``;
    ``c`` is a float, a 0-d tensor or ``(M,)``. ``alpha`` is a float or ``(M,)``. ``wy`` is ``w_y`` with 0
    on ignored rows, ``valid`` marks rows not ignored, ``safe`` is the target with ignored rows set to 0,
    ``scale`` is ``r`` (0 on ignored rows) and ``denom`` the mean's denominator.
    """

    num_classes: int
    alpha: float | torch.Tensor
    uw: torch.Tensor | None
    c: float | torch.Tensor
    wy: torch.Tensor
    valid: torch.Tensor
    safe: torch.Tensor
    scale: torch.Tensor
    denom: torch.Tensor
    smooth: bool
    softcap: float | None = None
    z_loss: float = 0.0

    def rows(self, s: int, e: int) -> RowParams:
        """The parameters of rows ``s:e``."""

        uw = self.uw[s:e] if self.uw is not None and self.uw.dim() == 2 else self.uw
        c = self.c[s:e] if isinstance(self.c, torch.Tensor) and self.c.dim() == 1 else self.c
        return RowParams(
            self.num_classes,
            self.alpha[s:e] if isinstance(self.alpha, torch.Tensor) else self.alpha,
            uw,
            c,
            self.wy[s:e],
            self.valid[s:e],
            self.safe[s:e],
            self.scale[s:e],
            self.denom,
            self.smooth,
            self.softcap,
            self.z_loss,
        )

    def with_scale(self, scale: torch.Tensor) -> RowParams:
        """The same problem with another per-row scale ``r`` (kept 0 on ignored rows)."""
        p = RowParams(**self.__dict__)
        p.scale = torch.where(self.valid, scale.to(self.scale.dtype), torch.zeros_like(self.scale))
        return p


def prepare_row_params(input: torch.Tensor, *args: Any, **options: Any) -> tuple[CEArgs, RowParams]:
    """Validate a kernel call's arguments and build its :class:`RowParams`.

    ``prepare_row_params(input, target, weight, ignore_index, reduction, label_smoothing, prior, softcap=...,
    z_loss=..., num_items_in_batch=...)`` takes the arguments of
    :func:`labelsmooth.losses.cross_entropy.prepare_cross_entropy_args` (PyTorch's weighting, no negative
    smoothing: the kernels' semantics) and validates them with the reference's own checks, so that the
    kernels accept and reject exactly what :func:`labelsmooth.cross_entropy` does.

    Returns the validated ``CEArgs`` (logits flattened to ``(M, V)`` rows) and the :class:`RowParams`.

    Raises
    ------
    TypeError
        Probability (floating) targets: the kernels take class indices only.
    """
    ce = prepare_cross_entropy_args(input, *args, **options)
    if not ce.index_target:
        raise TypeError(
            expected(
                "target",
                "to hold integer class indices (for probability targets use labelsmooth.cross_entropy)",
                ce.target.dtype,
            )
        )
    params = row_params(
        ce.target,
        ce.num_classes,
        ce.weight,
        ce.ignore_index,
        ce.reduction,
        ce.label_smoothing,
        ce.prior,
        compute_dtype(input.dtype),
        input.device,
        softcap=ce.softcap,
        z_loss=ce.z_loss,
        num_items=ce.num_items,
    )
    return ce, params


def row_params(
    target: torch.Tensor,
    num_classes: int,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    alpha: float | torch.Tensor,
    prior: torch.Tensor | None,
    dtype: torch.dtype,
    device: torch.device,
    *,
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items: float | torch.Tensor | None = None,
) -> RowParams:
    """Build :class:`RowParams` from validated row arguments (``target`` is ``(M,)``).

    ``num_items`` (validated: a number > 0 or a 0-d tensor) replaces ``sum w_y`` as the mean's
    denominator.
    """
    # Few tensor ops on purpose: on a GPU each is a launch (~5-10 us of host time), and this runs per call.
    target = target.to(device)
    valid = target != ignore_index
    safe = torch.where(valid, target, 0).long()
    w = weight.to(device=device, dtype=dtype) if weight is not None else None
    if w is not None:
        wy = torch.where(valid, w[safe], 0.0)
    else:
        wy = valid.to(dtype)
    if num_items is None:
        denom = wy.sum()
    elif isinstance(num_items, torch.Tensor):
        denom = num_items.to(device=device, dtype=dtype)
    else:
        denom = torch.tensor(float(num_items), dtype=dtype, device=device)
    if reduction == "mean" and num_items is not None and not isinstance(num_items, torch.Tensor):
        scale = valid.to(dtype) * (1.0 / float(num_items))
    elif reduction == "mean":
        # 1 / denom, and 0 (not inf) when denom is 0 (an all-ignored batch): its gradient is 0, its loss
        # nan (0/0).
        scale = torch.where(valid, denom.reciprocal().nan_to_num(posinf=0.0), 0.0)
    else:
        scale = wy if w is None else valid.to(dtype)
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(device=device, dtype=dtype)
        smooth = True
    else:
        smooth = alpha != 0.0
    u = prior.to(device=device, dtype=dtype) if prior is not None else None
    uw: torch.Tensor | None
    if w is None:
        uw = u
    elif u is None:
        uw = w / num_classes
    else:
        uw = u * w
    c: float | torch.Tensor = 1.0
    if uw is not None:
        c = uw.sum(-1)
        uw = uw.contiguous()
    return RowParams(num_classes, alpha, uw, c, wy, valid, safe, scale, denom, smooth, softcap, float(z_loss))


def row_terms(
    m: torch.Tensor, L: torch.Tensor, zy: torch.Tensor, zu: torch.Tensor | None, p: RowParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row loss and gradient coefficients ``(loss, C, B, T)`` from the row statistics.

    ``L = log S`` (so ``lse = m + L``); all inputs are ``(r,)`` tensors in the compute dtype (``zu`` may be
    ``None`` when ``a = 0``). The gradient is ``C softmax(z) - B uw - T e_y`` with
    ``C = r ((1-a) w_y + a c)``: a kernel holding ``exp(z - m)`` rather than the softmax uses ``C / S``.
    The loss is 0 on ignored rows. With a z-loss ``lambda``, ``lambda lse^2`` is added to the loss and
    ``r 2 lambda lse`` to ``C``.
    """
    a, wy = p.alpha, p.wy
    loss = (1 - a) * wy * (L - (zy - m))
    if p.smooth and zu is not None:
        loss = loss + a * (p.c * L - (zu - p.c * m))
    r = p.scale
    C = r * ((1 - a) * wy + a * p.c)
    if p.z_loss:
        lse = m + L
        loss = loss + p.z_loss * lse * lse
        C = C + r * (2 * p.z_loss) * lse
    loss = torch.where(p.valid, loss, torch.zeros_like(loss))
    B = r * a if isinstance(a, torch.Tensor) else r * float(a)
    T = r * (1 - a) * wy
    return loss, C, B, T


# Rows shorter than this take exp(z - m) / sum as three ops instead of torch.softmax (measured on the dev
# machine, 2^20 float32 elements: softmax 19 ms at V = 8, 1.6 ms at V = 16; the three ops 2.8 and 1.8 ms).
SOFTMAX_MIN_CLASSES = 16


def block_loss_grad(
    zb: torch.Tensor,
    out: torch.Tensor,
    p: RowParams,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    tb: torch.Tensor | None = None,
) -> torch.Tensor:
    """One row block: per-row losses, and the scaled gradient written into ``out``.

    The statistics that need the logits (``m``, ``z_y``, ``zu``) come first, then ATen's vectorised
    softmax writes ``softmax(z)`` into ``out`` (one ``exp`` per element; 2x faster on the CPU than
    ``exp(z - m)`` as a separate op), the row sum ``s`` and maximum of that softmax give
    ``log S = log(s / max_k softmax(z)_k)`` (the softmax at the row's maximum is ``exp(0) / S``) and the
    exact normalisation, and two in-place passes turn the softmax into the gradient.

    With soft-capping, ``t = tanh(z / c)`` goes into ``tb`` first and ``out`` receives ``z' = c t``, on
    which everything above runs; the gradient is finally multiplied by ``1 - t^2``.

    Parameters
    ----------
    zb : Tensor (r, V)
        Logits of the block, in the compute dtype.
    out : Tensor (r, V)
        Same dtype; receives ``r_i * dloss_i/dz``. May be ``zb`` itself (in place).
    p : RowParams
        The parameters of these rows (:meth:`RowParams.rows`).
    stats : (Tensor (r,), Tensor (r,) bool), optional
        Receive each row's ``lse`` (of the capped logits) and whether its target logit is the row maximum.
    tb : Tensor (r, V), optional
        Scratch of the compute dtype, not aliasing ``zb`` or ``out``; required with soft-capping.

    Returns
    -------
    Tensor (r,)
        Per-row losses (0 on ignored rows), unscaled.
    """
    if p.softcap is not None:
        if tb is None:  # pragma: no cover - internal
            raise RuntimeError("block_loss_grad: soft-capping needs a scratch block")
        torch.div(zb, p.softcap, out=tb)
        tb.tanh_()
        torch.mul(tb, p.softcap, out=out)  # out may alias zb: the raw logits are no longer needed
        zb = out
    m = zb.amax(1)
    zu = None
    if p.smooth:  # statistics that need the original logits come first (out may alias zb)
        if p.uw is None:
            zu = zb.mean(1)
        elif p.uw.dim() == 1:
            zu = zb @ p.uw
        else:
            zu = (zb.unsqueeze(1) @ p.uw.unsqueeze(2)).view(-1)
    zy = zb.gather(1, p.safe.unsqueeze(1)).squeeze(1)
    if zb.shape[1] >= SOFTMAX_MIN_CLASSES:
        torch.softmax(zb, 1, out=out)
    else:  # ATen's softmax does not vectorise rows shorter than a SIMD register: 5-7x slower there
        torch.sub(zb, m.unsqueeze(1), out=out)
        out.exp_()
        out.div_(out.sum(1, keepdim=True))
    # ATen sums exp(z - m) in one running vector per row, relative error up to ~1e-5 at V = 32000: enough
    # to lose the bits of a confident target's gradient (p_y - (1-a) cancels). The cascade sum of the
    # softmax, s = S_exact / S_aten, corrects both the normalisation (C / s) and log S.
    s = out.sum(1)
    L = (s / out.amax(1)).log()
    if stats is not None:
        stats[0].copy_(m + L)
        stats[1].copy_(zy == m)
    loss, C, B, T = row_terms(m, L, zy, zu, p)
    out.mul_((C / s).unsqueeze(1))
    if p.smooth:
        if p.uw is None:
            out.sub_((B * (1.0 / p.num_classes)).unsqueeze(1))
        else:
            uw = p.uw.unsqueeze(0) if p.uw.dim() == 1 else p.uw
            out.addcmul_(uw, B.unsqueeze(1), value=-1)
    # The target's -(1-a) w_y term is folded in the compute dtype, before any rounding to half.
    out.scatter_add_(1, p.safe.unsqueeze(1), -T.unsqueeze(1))
    if p.softcap is not None and tb is not None:
        tb.mul_(tb)
        out.addcmul_(out, tb, value=-1)  # d z' / d z = 1 - tanh(z / c)^2
    return loss


def reduce_loss(losses: torch.Tensor, p: RowParams, reduction: str, out_shape, dtype) -> torch.Tensor:
    """Apply the reduction to per-row losses (the reference's own reduction) and cast to the input dtype."""
    return apply_reduction(losses, p.denom, reduction, out_shape).to(dtype)
