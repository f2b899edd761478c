"""Per-row maths of the vocabulary-parallel loss: local statistics, their combination, the gradient.

Notation as in :mod:`labelsmooth.kernels._core`, with the classes split over ranks. Row ``i`` has logits
``z`` over the global vocabulary of ``V`` classes, of which this rank holds ``[start, start + V_r)``;
``v`` are the smoothing weights (``u * w`` for ``weight_mode="torch"``, ``u`` for ``"row"``) and
``c = sum_k v_k``. Each rank computes over its own classes only

- ``m_r = max_k z_k`` and ``log S_r = log sum_k exp(z_k - m_r)``,
- ``z_y - m_r`` if it holds the target ``y`` (0 otherwise),
- ``sum_k v_k (z_k - m_r)`` and ``c_r = sum_k v_k``;

then one MAX all-reduce gives ``m = max_r m_r`` and one SUM all-reduce of three numbers per row gives

.. math::

    S = \\sum_r S_r e^{m_r - m}, \\quad z_y - m, \\quad zu - c\\,m = \\sum_r \\Big(\\sum_{k \\in r}
    v_k (z_k - m_r) + c_r (m_r - m)\\Big),

from which ``L = log S`` and the loss follow exactly as on one device:
``(1-a) w_y (L - (z_y - m)) + a (c L - (zu - c m))`` (torch) or
``w_y [(1-a)(L - (z_y - m)) + a (L - (zu - m))]`` (row). The gradient on the local classes is
``C softmax(z) - B v - T e_y`` with ``softmax(z)_k = exp(z_k - m - L)``, scaled per row by ``r``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .._validation import check_distribution, expected
from ._layout import Layout, all_reduce

_ATOL = 1e-4  # a prior must sum to 1 within this (check_distribution's tolerance)


@dataclass
class Rows:
    """Per-problem constants on this rank, in the compute dtype, for ``M`` rows.

    ``v`` is ``None`` (uniform prior without weights: ``v_k = 1/V``), ``(V_r,)`` or ``(M, V_r)``;
    ``c_local`` its sum over the local classes and ``c`` over all classes. ``here`` marks valid rows
    whose target lies in this shard, at local index ``local``. ``C, B, T`` are the gradient
    coefficients already multiplied by the reduction's scale ``r`` (0 on ignored rows).
    """

    layout: Layout
    alpha: float | torch.Tensor
    smooth: bool
    row_mode: bool
    v: torch.Tensor | None
    c_local: float | torch.Tensor
    c: float | torch.Tensor
    wy: torch.Tensor
    valid: torch.Tensor
    here: torch.Tensor
    local: torch.Tensor
    C: torch.Tensor
    B: torch.Tensor
    T: torch.Tensor
    denom: torch.Tensor

    def rows(self, s: int, e: int) -> Rows:
        """The constants of rows ``s:e`` (``denom`` stays the whole problem's)."""

        def cut(x):
            return x[s:e] if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] > 0 else x

        v = self.v[s:e] if self.v is not None and self.v.dim() == 2 else self.v
        return replace(
            self,
            alpha=cut(self.alpha),
            v=v,
            c_local=cut(self.c_local),
            c=cut(self.c),
            wy=self.wy[s:e],
            valid=self.valid[s:e],
            here=self.here[s:e],
            local=self.local[s:e],
            C=self.C[s:e],
            B=self.B[s:e],
            T=self.T[s:e],
        )

    def scaled(self, go: torch.Tensor) -> Rows:
        """The same rows with the gradient coefficients multiplied by ``go`` (a scalar or ``(M,)``)."""
        return replace(self, C=self.C * go, B=self.B * go, T=self.T * go)


def _slice(x: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, bool]:
    """The local classes of a full ``(..., V)`` vector, or the slice itself; and whether it was a slice."""
    if x.shape[-1] == layout.vocab_size:
        return x[..., layout.start : layout.start + layout.local_size], False
    return x, True


def build_rows(
    layout: Layout,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    prior: torch.Tensor | None,
    alpha: float | torch.Tensor,
    ignore_index: int,
    reduction: str,
    weight_mode: str,
    num_items_in_batch: float | torch.Tensor | None,
    dtype: torch.dtype,
    device: torch.device,
) -> Rows:
    """Constants of the problem: ``w_y``, the local smoothing weights ``v``, ``c``, the scales.

    A weight or prior *slice* (on any rank) needs the other ranks: ``w_y`` (held by the rank with ``y``),
    the prior's global sum (to check it is a distribution and renormalise) and ``c`` come from one SUM
    all-reduce, which every rank joins. With full vectors (or none) on every rank nothing is
    communicated here.
    """
    V, Vr, start = layout.vocab_size, layout.local_size, layout.start
    group = layout.group
    M = target.shape[0]
    valid = target != ignore_index
    local = target.long() - start
    here = valid & (local >= 0) & (local < Vr)
    local = torch.where(here, local, torch.zeros_like(local))
    row_mode = weight_mode == "row"

    w_l = u_l = None
    # a slice on some rank: every rank joins the all-reduce below (a full vector gives its local part)
    w_sliced = weight is not None and layout.weight_slices
    u_sliced = prior is not None and layout.prior_slices
    wy = valid.to(dtype)
    if weight is not None:
        w = weight.to(device=device, dtype=dtype)
        w_l, _ = _slice(w, layout)
        if not w_sliced:
            wy = torch.where(valid, w[torch.where(valid, target, 0).long()], 0.0)
    if prior is not None:
        u = prior.to(device=device, dtype=dtype)
        u_l, is_slice = _slice(u, layout)
        if not is_slice:
            u_l = u_l / u.sum(-1, keepdim=True)  # the reference renormalises a checked prior exactly

    # v = u * w (torch) or u (row); uniform u = 1/V.
    if u_l is None:
        v = None if (w_l is None or row_mode) else w_l / V
    else:
        v = u_l if (w_l is None or row_mode) else u_l * w_l
    need_c = not row_mode and w_l is not None and (w_sliced or u_sliced)
    c: float | torch.Tensor = 1.0  # sum_k u_k = 1: every case without weights, and weight_mode="row"
    if w_sliced or u_sliced:
        parts = []
        if w_sliced:
            assert w_l is not None
            parts.append(torch.where(here, w_l[local] if Vr else torch.zeros_like(wy), 0.0))
        if u_sliced:
            assert u_l is not None
            parts.append(u_l.sum(-1).reshape(-1))
        if need_c:
            assert v is not None
            parts.append(v.sum(-1).reshape(-1))
        flat = all_reduce(torch.cat(parts), group, "sum")
        if w_sliced:
            wy, flat = flat[:M], flat[M:]
        if u_sliced:
            assert u_l is not None
            k = 1 if u_l.dim() == 1 else M
            U, flat = flat[:k], flat[k:]
            if U.numel() and bool(((U - 1).abs() > _ATOL).any()):
                worst = U[(U - 1).abs().argmax()]
                raise ValueError(
                    expected("prior", "to sum to 1 over the full vocabulary (all shards)", worst)
                )
            Ur = U.reshape(()) if k == 1 else U
            assert v is not None
            v = v / (Ur if k == 1 else Ur.unsqueeze(-1))
            flat = flat / Ur
        if need_c:
            c = flat.reshape(()) if flat.numel() == 1 and (v is None or v.dim() == 1) else flat
    elif not row_mode and weight is not None:
        # full vectors: c as the reference computes it
        wf = weight.to(device=device, dtype=dtype)
        if prior is None:
            c = (wf / V).sum()
        else:
            uf = prior.to(device=device, dtype=dtype)
            c = (uf / uf.sum(-1, keepdim=True) * wf).sum(-1)
    c_local: float | torch.Tensor = Vr / V if v is None else v.sum(-1)

    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(device=device, dtype=dtype)
        smooth = True
    else:
        smooth = alpha != 0.0

    if num_items_in_batch is not None:
        denom = torch.as_tensor(num_items_in_batch, device=device).to(dtype).reshape(())
    else:
        denom = wy.sum()
    if reduction == "mean":
        r = torch.where(valid, denom.reciprocal().nan_to_num(posinf=0.0), 0.0)
    else:
        r = valid.to(dtype)
    a = alpha
    T = r * (1 - a) * wy
    if row_mode:
        C, B = r * wy, r * a * wy
    else:
        C = r * ((1 - a) * wy + a * c)
        B = r * a if isinstance(a, torch.Tensor) else r * float(a)
    B = B if isinstance(B, torch.Tensor) else torch.full_like(r, B)
    return Rows(layout, alpha, smooth, row_mode, v, c_local, c, wy, valid, here, local, C, B, T, denom)


def check_prior_slice(prior: torch.Tensor) -> None:
    """A slice cannot be checked to sum to 1 alone (that happens after the all-reduce): finite, >= 0."""
    if not bool(torch.isfinite(prior).all()):
        raise ValueError(expected("prior", "to be finite", prior))
    if prior.numel() and bool((prior < 0).any()):
        raise ValueError(expected("prior", "to be non-negative (a distribution)", prior.min()))


def check_full_prior(prior: torch.Tensor) -> None:
    check_distribution("prior", prior)


@dataclass
class Stats:
    """Local statistics of a block of rows (compute dtype): see the module docstring."""

    m: torch.Tensor  # local max, -inf for an empty shard
    logS: torch.Tensor  # log sum exp(z - m_safe), -inf for an empty shard or an all -inf row
    zy: torch.Tensor  # z_y - m_safe where the target is here, else 0
    zu: torch.Tensor  # sum_k v_k (z_k - m_safe)
    m_safe: torch.Tensor  # m with -inf replaced by 0 (the shift actually used)


def local_stats(z: torch.Tensor, p: Rows, inplace: bool) -> tuple[Stats, torch.Tensor | None]:
    """Statistics of a block ``z`` (r, V_r) in the compute dtype.

    With ``inplace`` the block is overwritten by ``exp(z - m_safe)``, which is returned (the linear
    variant turns it into the gradient); otherwise ``z`` is left untouched and ``None`` is returned.
    """
    rows, Vr = z.shape
    V = p.layout.vocab_size
    if Vr == 0:
        inf = torch.full((rows,), -torch.inf, dtype=z.dtype, device=z.device)
        zero = torch.zeros(rows, dtype=z.dtype, device=z.device)
        return Stats(inf, inf.clone(), zero, zero.clone(), zero.clone()), (z if inplace else None)
    m = z.amax(1)
    m_safe = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), m)
    d = z.sub_(m_safe.unsqueeze(1)) if inplace else z - m_safe.unsqueeze(1)
    zy = torch.where(p.here, d.gather(1, p.local.unsqueeze(1)).squeeze(1), 0.0)
    if not p.smooth:
        zu = torch.zeros_like(m)
    elif p.v is None:
        zu = d.sum(1) / V
    elif p.v.dim() == 1:
        zu = d @ p.v
    else:
        zu = (d.unsqueeze(1) @ p.v.unsqueeze(2)).view(-1)
    e = d.exp_()  # d is z's storage (inplace) or a temporary
    logS = e.sum(1).log()
    return Stats(m, logS, zy, zu, m_safe), (e if inplace else None)


def combine(st: Stats, p: Rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two all-reduces (MAX of ``m``; SUM of three numbers per row): the row loss, ``m``, ``L``, and the
    per-row factor ``exp(m_safe_r - m - L)`` that turns this rank's ``exp(z - m_safe_r)`` into the softmax.
    """
    group = p.layout.group
    m = all_reduce(st.m.clone(), group, "max")
    m = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), m)
    delta = st.m_safe - m
    payload = torch.cat([(st.logS + delta).exp(), st.zy + torch.where(p.here, delta, 0.0), st.zu])
    if p.smooth:
        payload[2 * m.shape[0] :] += p.c_local * delta
    M = m.shape[0]
    payload = all_reduce(payload, group, "sum")
    S, zy, zu = payload[:M], payload[M : 2 * M], payload[2 * M :]
    L = S.log()
    a = p.alpha
    if p.row_mode:
        row = (1 - a) * (L - zy)
        if p.smooth:
            row = row + a * (L - zu)
        row = p.wy * row
    else:
        row = (1 - a) * p.wy * (L - zy)
        if p.smooth:
            row = row + a * (p.c * L - zu)
    row = torch.where(p.valid, row, torch.zeros_like(row))
    return row, m, L, (delta - L).exp()


def grad_block(e: torch.Tensor, factor: torch.Tensor, p: Rows) -> torch.Tensor:
    """Turn ``e = exp(z - m_safe)`` (r, V_r, compute dtype) into ``r * dloss/dz`` in place."""
    if e.shape[1] == 0:
        return e
    e.mul_((p.C * factor).unsqueeze(1))
    if p.smooth:
        if p.v is None:
            e.sub_((p.B / p.layout.vocab_size).unsqueeze(1))
        else:
            v = p.v.unsqueeze(0) if p.v.dim() == 1 else p.v
            e.addcmul_(v, p.B.unsqueeze(1), value=-1)
    e.scatter_add_(1, p.local.unsqueeze(1), torch.where(p.here, -p.T, 0.0).unsqueeze(1))
    return e


def reduce_rows(row: torch.Tensor, p: Rows, reduction: str, out_shape: tuple[int, ...]) -> torch.Tensor:
    if reduction == "none":
        return row.reshape(out_shape)
    if reduction == "sum":
        return row.sum()
    return row.sum() / p.denom
