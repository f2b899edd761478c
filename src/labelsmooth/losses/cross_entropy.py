"""Label-smoothed cross-entropy, drop-in for :func:`torch.nn.functional.cross_entropy`.

Everything rests on two lines of the chapter. With logits z, label y, smoothing alpha and prior u
(uniform unless given), the loss against the smoothed target p = (1 - alpha) onehot(y) + alpha u is

.. math::

    \\mathrm{CE}(p, \\mathrm{softmax}(z)) = (1-\\alpha)(\\mathrm{lse}(z) - z_y)
        + \\alpha\\,(\\mathrm{lse}(z) - \\textstyle\\sum_k u_k z_k),

and its gradient with respect to the logits is ``softmax(z) - p``. Neither needs the N x K target: the
loss is built from the log-sum-exp, the target logit and one weighted sum per row.

This module holds the reference semantics. The fast kernels in :mod:`labelsmooth.kernels` reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import torch

from .._numerics import apply_reduction, class_last_rows, compute_dtype
from .._validation import (
    WEIGHT_MODES,
    Reduction,
    WeightMode,
    check_choice,
    check_float_tensor,
    check_labels,
    check_num_classes,
    check_num_items,
    check_prior,
    check_reduction,
    check_smoothing,
    check_softcap,
    check_z_loss,
    expected,
)
from ._module import FunctionalLoss

__all__ = ["CrossEntropyAux", "CrossEntropyLoss", "cross_entropy"]



@dataclass
class CEArgs:
    """Validated cross-entropy arguments, flattened to rows.

    ``logits`` is ``(M, C)`` with the class dimension last (a view or a copy of the input),
    ``target`` is ``(M,)`` class indices or ``(M, C)`` probabilities, ``label_smoothing`` is a float or
    ``(M,)``, ``prior`` is ``None``, ``(C,)`` or ``(M, C)``. ``out_shape`` is the shape of
    ``reduction="none"`` output. ``softcap`` (``None`` or ``c > 0``), ``z_loss`` (``lambda >= 0``) and
    ``num_items`` (``None``, a number or a 0-d tensor: the mean's denominator) are the validated options;
    ``ignore_index`` and ``reduction`` are the call's own.
    """

    logits: torch.Tensor
    target: torch.Tensor
    index_target: bool
    weight: torch.Tensor | None
    label_smoothing: float | torch.Tensor
    prior: torch.Tensor | None
    num_classes: int
    out_shape: tuple[int, ...]
    softcap: float | None = None
    z_loss: float = 0.0
    num_items: float | torch.Tensor | None = None
    ignore_index: int = -100
    reduction: str = "mean"


class CrossEntropyAux(NamedTuple):
    """Extras of one cross-entropy call, from the same pass as the loss (``return_aux=True``).

    None of them carries a gradient (the z-loss's gradient flows through the returned loss).

    - ``lse``: the per-row log-sum-exp ``log sum_k exp(z_k)`` of the logits the loss sees (after
      soft-capping), shape ``target.shape`` (index targets) or the batch shape, every row including
      ignored ones, in the compute dtype (float32 for half inputs).
    - ``z_loss``: the z-loss part ``lambda * lse^2`` of the returned loss, reduced like the loss (a
      scalar for ``"mean"``/``"sum"``, per row with 0 on ignored rows for ``"none"``); zeros when
      ``z_loss=0``.
    - ``accuracy``: 0-d float32 tensor, the fraction of rows not ignored whose target logit is the
      row's maximum (ties count as correct), ``nan`` when every row is ignored; ``None`` for
      probability targets.
    """

    lse: torch.Tensor
    z_loss: torch.Tensor
    accuracy: torch.Tensor | None


def make_aux(
    lse: torch.Tensor,
    correct: torch.Tensor | None,
    valid: torch.Tensor | None,
    denom: torch.Tensor,
    z_loss: float,
    reduction: str,
    out_shape: tuple[int, ...],
) -> CrossEntropyAux:
    """:class:`CrossEntropyAux` from per-row ``lse`` (M,), ``correct`` (M,) bool and ``valid`` (M,) bool.

    ``valid=None`` means every row counts (probability targets, where ``correct`` is ``None``).
    """
    lse = lse.detach()
    zl = z_loss * lse * lse
    if valid is not None:
        zl = torch.where(valid, zl, torch.zeros_like(zl))
    accuracy = None
    if correct is not None and valid is not None:
        hits = (correct & valid).sum().to(torch.float32)
        accuracy = hits / valid.sum().to(torch.float32)
    zl = apply_reduction(zl, denom.detach(), reduction, out_shape)
    return CrossEntropyAux(lse.reshape(out_shape), zl, accuracy)


def _expand_per_sample(t: torch.Tensor, n: int, spatial: tuple[int, ...]) -> torch.Tensor:
    """Broadcast a per-sample tensor (N, ...) over the spatial dims and flatten to rows."""
    if not spatial:
        return t
    shape = (n,) + (1,) * len(spatial) + tuple(t.shape[1:])
    return t.reshape(shape).expand((n, *spatial, *t.shape[1:])).reshape(-1, *t.shape[1:])


def prepare_cross_entropy_args(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float | torch.Tensor,
    prior: torch.Tensor | None,
    weight_mode: str = "torch",
    allow_negative: bool = False,
    *,
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items_in_batch: int | float | torch.Tensor | None = None,
) -> CEArgs:
    """Validate the arguments of :func:`cross_entropy` and flatten them to rows.

    Shared by the reference loss, the alternatives and the fast kernels (through
    :func:`labelsmooth.kernels._core.prepare_row_params`) so that all accept and reject the same inputs.
    """
    check_float_tensor("input", input)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    check_reduction(reduction)
    check_choice("weight_mode", weight_mode, WEIGHT_MODES)
    if input.dim() == 0:
        raise ValueError(
            expected("input", "to have a class dimension: shape (C,), (N, C) or (N, C, d1, ...)", input)
        )
    batched = input.dim() >= 2
    num_classes = input.shape[1] if batched else input.shape[0]
    if num_classes < 2:
        raise ValueError(expected("input", "to have at least 2 classes along its class dimension", input))
    check_num_classes(int(num_classes), "num_classes")
    n = input.shape[0] if batched else None
    spatial = tuple(input.shape[2:]) if batched else ()

    softcap = check_softcap(softcap)
    z_loss = check_z_loss(z_loss)
    num_items = check_num_items(num_items_in_batch, reduction)

    index_target = not target.is_floating_point()
    want = (input.shape[0], *spatial) if batched else ()
    if not index_target and tuple(target.shape) == want and want != tuple(input.shape):
        raise TypeError(
            expected(
                "target",
                f"of shape {want} to hold integer class indices (probability targets have the input's "
                f"shape {tuple(input.shape)})",
                target.dtype,
            )
        )
    if index_target:
        if tuple(target.shape) != want:
            raise ValueError(
                expected("target", f"of shape {want} for input of shape {tuple(input.shape)}", target)
            )
        check_labels("target", target, num_classes, ignore_index)
    else:
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(
                expected("target", f"of shape {tuple(input.shape)} (probabilities, like input)", target)
            )
        if ignore_index >= 0:
            # PyTorch raises too: masking rows of soft targets by a class index is undefined.
            raise ValueError(
                expected("ignore_index", "to be negative with probability targets (no labels)", ignore_index)
            )
        if weight_mode == "row" and weight is not None:
            raise ValueError(
                expected(
                    "weight_mode", '"torch" for probability targets (no label to weight by)', weight_mode
                )
            )

    if weight is not None:
        check_float_tensor("weight", weight)
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(expected("weight", f"of shape ({num_classes},)", weight))

    a = check_smoothing(label_smoothing, n=n if n is not None else None, allow_negative=allow_negative)
    if isinstance(a, torch.Tensor):
        if n is None:
            raise ValueError(expected("label_smoothing", "to be a float for unbatched input", a))
        a = _expand_per_sample(a, n, spatial)

    if prior is not None:
        prior = check_prior(prior, num_classes, n)
        if prior.dim() == 2:
            if n is None:
                raise ValueError(expected("prior", f"of shape ({num_classes},) for unbatched input", prior))
            prior = _expand_per_sample(prior, n, spatial)

    extra = len(spatial)
    logits = class_last_rows(input, batched, extra)
    if index_target:
        rows_target = target.reshape(-1)
        out_shape = tuple(target.shape)
    else:
        rows_target = class_last_rows(target, batched, extra)
        out_shape = tuple(input.shape[:1]) + spatial if batched else ()
    return CEArgs(
        logits, rows_target, index_target, weight, a, prior, int(num_classes), out_shape,
        softcap, z_loss, num_items, ignore_index, reduction,
    )  # fmt: skip


# The overloads state only how ``return_aux`` picks the result's type; the implementation's signature
# below is the one signature of the parameters (checked at run time, shown by help() and the docs).
@overload
def cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[False] = False, **kwargs: Any
) -> torch.Tensor: ...


@overload
def cross_entropy(
    input: torch.Tensor, target: torch.Tensor, *args: Any, return_aux: Literal[True], **kwargs: Any
) -> tuple[torch.Tensor, CrossEntropyAux]: ...


def cross_entropy(  # type: ignore[misc]  # wider overloads: see above
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float | torch.Tensor = 0.0,
    *,
    prior: torch.Tensor | None = None,
    weight_mode: WeightMode = "torch",
    allow_negative: bool = False,
    softcap: float | None = None,
    z_loss: float = 0.0,
    num_items_in_batch: int | float | torch.Tensor | None = None,
    return_aux: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, CrossEntropyAux]:
    """Label-smoothed cross-entropy; a drop-in for :func:`torch.nn.functional.cross_entropy`.

    For a row with logits ``z`` (K classes), label ``y``, smoothing ``a`` and prior ``u`` (uniform
    ``1/K`` unless ``prior`` is given), with ``lse = log sum_k exp(z_k)``:

    .. math::

        \\ell = (1 - a)\\,w_y(\\mathrm{lse} - z_y) + a \\sum_k u_k w_k (\\mathrm{lse} - z_k)
        \\quad (\\texttt{weight\\_mode="torch"})

        \\ell = w_y\\,[(1 - a)(\\mathrm{lse} - z_y) + a(\\mathrm{lse} - \\textstyle\\sum_k u_k z_k)]
        \\quad (\\texttt{weight\\_mode="row"})

    ``w`` is ``weight`` (all ones by default). Without weights both equal CE(p, softmax(z)) with
    p = (1 - a) onehot(y) + a u, and the gradient is ``softmax(z) - p``. The N x K target is never
    built for index labels.

    Parameters
    ----------
    input : Tensor of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``
        Logits (unnormalised), float16/bfloat16/float32/float64. Half inputs are accumulated in float32
        and the result is cast back to the input dtype, as PyTorch does.
    target : LongTensor of shape ``()``, ``(N,)`` or ``(N, d1, ...)``; or a float tensor shaped like
        ``input``
        Class indices in ``[0, C)`` or ``ignore_index``; or class probabilities.
    weight : Tensor of shape ``(C,)``, optional
        Per-class weights.
    ignore_index : int
        Rows whose label equals it contribute to neither term nor to the mean's denominator.
        Only for index targets.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides by the sum of ``w_y`` over the rows not ignored (the row count without
        weights). For probability targets it divides by the number of rows, as PyTorch does.
    label_smoothing : float or Tensor of shape ``(N,)``
        ``a`` in [0, 1], or one value per sample (broadcast over ``d1, ...``).
    prior : Tensor of shape ``(C,)`` or ``(N, C)``, optional
        The distribution smoothed toward, e.g. class frequencies (:func:`labelsmooth.class_prior`).
        Checked to sum to 1 within 1e-4, then renormalised exactly.
    weight_mode : {"torch", "row"}
        ``"torch"`` reproduces PyTorch exactly: the smoothing term is weighted per class ``w_k``, which
        moves the optimum away from p toward up-weighted classes (PyTorch issue 104776). ``"row"``
        weights the whole row by ``w_y``, so the minimiser stays p.
    allow_negative : bool
        Permit ``a < 0``, negative label smoothing (Wei et al. 2022; Struppek et al. 2024).
    softcap : float, optional
        Final-logit soft-capping ``c > 0`` (Gemma 2 and 3): every formula above is applied to
        ``c * tanh(z / c)`` instead of ``z``, and the gradient flows through the ``tanh``.
    z_loss : float, default 0.0
        The z-loss weight ``lambda >= 0`` of PaLM (Chowdhery et al. 2022; Liger's ``lse_square_scale``):
        each row not ignored adds ``lambda * lse^2`` (not multiplied by a class weight) to its loss, and
        the reduction treats the sum like the loss (``"mean"`` divides it by the same denominator).
    num_items_in_batch : int, float or 1-element Tensor, optional
        Only with ``reduction="mean"``: divide the summed loss by this number instead of the local
        denominator (the sum of ``w_y`` over rows not ignored, i.e. their count without weights; the row
        count for probability targets). With class weights it *replaces* the weight sum: pass the global
        ``sum w_y`` (``labelsmooth.kernels.global_token_count(target, weight=weight)``) to keep the
        weighted mean. For gradient accumulation and data parallelism pass the count over the whole
        global batch, so that the micro-batch losses add up to the loss of the global batch (Hugging
        Face's name; see docs/kernels.md). A tensor is not read on the host.
    return_aux : bool, default False
        Return ``(loss, aux)`` with ``aux`` a :class:`CrossEntropyAux` (per-row ``lse``, the ``z_loss``
        part, the token ``accuracy``) instead of the loss alone.

    Returns
    -------
    Tensor
        A scalar, or the per-row losses of shape ``target.shape`` (index targets) with 0 on ignored
        rows, for ``reduction="none"``. Same dtype as ``input``. With ``return_aux=True``, the tuple
        ``(loss, CrossEntropyAux)``.

    Notes
    -----
    An all-ignored batch with ``reduction="mean"`` returns ``nan`` (0/0), exactly as PyTorch does;
    ``"sum"`` returns 0. Probability targets are not checked to sum to 1 (PyTorch does not either).

    Raises
    ------
    TypeError
        Integer logits, a non-tensor target, non-float weight or prior.
    ValueError
        Fewer than 2 classes; shape mismatches; labels outside ``[0, C)`` other than ``ignore_index``;
        smoothing outside [0, 1] (or above 1 with ``allow_negative``) or of the wrong length; a prior
        that is not a distribution; an unknown ``reduction`` or ``weight_mode``; ``softcap <= 0``;
        ``z_loss < 0``; ``num_items_in_batch <= 0`` or given with a reduction other than ``"mean"``;
        ``ignore_index >= 0`` with probability targets (PyTorch raises too).
    TypeError
        Floating targets of the index shape (class indices must be integers).

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from labelsmooth import cross_entropy
    >>> z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    >>> y = torch.tensor([0, 2])
    >>> round(cross_entropy(z, y, label_smoothing=0.1).item(), 4)
    0.3455
    >>> ours = cross_entropy(z, y, label_smoothing=0.1)
    >>> bool(torch.allclose(ours, F.cross_entropy(z, y, label_smoothing=0.1)))
    True
    >>> loss, aux = cross_entropy(z, y, label_smoothing=0.1, softcap=2.0, z_loss=1e-4, return_aux=True)
    >>> round(loss.item(), 4), [round(v, 4) for v in aux.lse.tolist()], aux.accuracy.item()
    (0.4581, [1.8894, 2.1327], 1.0)

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.
    """
    args = prepare_cross_entropy_args(
        input, target, weight, ignore_index, reduction, label_smoothing, prior, weight_mode, allow_negative,
        softcap=softcap, z_loss=z_loss, num_items_in_batch=num_items_in_batch,
    )  # fmt: skip
    cdtype = compute_dtype(input.dtype)
    z = args.logits.to(cdtype)
    if args.softcap is not None:
        z = args.softcap * torch.tanh(z / args.softcap)
    a = args.label_smoothing
    if isinstance(a, torch.Tensor):
        a = a.to(device=z.device, dtype=cdtype)
    w = args.weight.to(device=z.device, dtype=cdtype) if args.weight is not None else None
    u = args.prior.to(device=z.device, dtype=cdtype) if args.prior is not None else None

    correct = valid = None
    if args.index_target:
        loss, denom, lse, correct, valid = _index_loss(z, args.target, w, ignore_index, a, u, weight_mode)
    else:
        loss, denom, lse = _prob_loss(z, args.target.to(cdtype), w, a, u)
    if args.z_loss:
        zl = args.z_loss * lse * lse
        loss = loss + (zl if valid is None else torch.where(valid, zl, torch.zeros_like(zl)))
    if args.num_items is not None:
        denom = torch.as_tensor(args.num_items, device=z.device).to(loss.dtype)
    out = apply_reduction(loss, denom, reduction, args.out_shape).to(input.dtype)
    if not return_aux:
        return out
    return out, make_aux(lse, correct, valid, denom, args.z_loss, reduction, args.out_shape)


def _uz(z: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
    """Row-wise sum_k u_k z_k, without building u for the uniform prior."""
    if u is None:
        return z.mean(-1)
    if u.dim() == 1:
        return z @ u
    return (z * u).sum(-1)


def _index_loss(z, target, w, ignore_index, a, u, weight_mode):
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    # Shift each row by its (detached) maximum first, as log_softmax does, so that lse - z_y and
    # lse - <u, z> are formed from numbers the size of the row's spread, not of the logits: a float32 row
    # near 1e4 keeps its precision. Every term below is invariant to a per-row shift (sum_k u_k = 1), and
    # the detached shift leaves the gradient unchanged.
    m = z.detach().amax(dim=-1, keepdim=True) if z.numel() else torch.zeros_like(z[..., :1])
    z = z - m
    lse = torch.logsumexp(z, dim=-1)
    zy = z.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    wy = w[safe] if w is not None else None
    if w is None or weight_mode == "row":
        # One term: lse - (1 - a) z_y - a <u, z>, times w_y in row mode.
        smooth = _uz(z, u) if (not isinstance(a, float) or a != 0.0) else None
        row = lse - zy if smooth is None else lse - (1 - a) * zy - a * smooth
        if wy is not None:
            row = wy * row
    else:
        # PyTorch's weighting: (1 - a) w_y (lse - z_y) + a sum_k u_k w_k (lse - z_k).
        uw = w / w.shape[0] if u is None else u * w
        s = uw.sum(-1)
        row = (1 - a) * wy * (lse - zy)
        if not isinstance(a, float) or a != 0.0:
            row = row + a * (s * lse - _uz(z, uw))
    zero = torch.zeros((), dtype=row.dtype, device=row.device)
    loss = torch.where(valid, row, zero)
    denom = wy.masked_fill(~valid, 0).sum() if wy is not None else valid.sum().to(row.dtype)
    # the unshifted log-sum-exp (its gradient is softmax(z): m is detached) and "the target is a maximum"
    return loss, denom, lse + m.squeeze(-1), zy == 0, valid


def _prob_loss(z, p, w, a, u):
    logq = torch.log_softmax(z, dim=-1)
    k = z.shape[-1]
    if isinstance(a, torch.Tensor):
        a = a.unsqueeze(-1)
    if not isinstance(a, float) or a != 0.0:
        p = (1 - a) * p + a * (u if u is not None else torch.full_like(p[..., :1], 1.0 / k))
    terms = p * logq if w is None else p * w * logq
    loss = -terms.sum(-1)
    denom = torch.tensor(float(loss.shape[0]), dtype=loss.dtype, device=loss.device)
    return loss, denom, torch.logsumexp(z, dim=-1)


class CrossEntropyLoss(FunctionalLoss):
    """Module form of :func:`cross_entropy`; a drop-in for :class:`torch.nn.CrossEntropyLoss`.

    Stores the options (``weight`` and ``prior`` as buffers, so ``.to(device)`` moves them) and calls
    :func:`cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import CrossEntropyLoss
    >>> loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    >>> round(loss_fn(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])).item(), 4)
    0.3913
    """

    weight: torch.Tensor | None
    prior: torch.Tensor | None
    function = staticmethod(cross_entropy)

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
        *,
        prior: torch.Tensor | None = None,
        weight_mode: WeightMode = "torch",
        allow_negative: bool = False,
    ) -> None:
        super().__init__()
        check_reduction(reduction)
        check_choice("weight_mode", weight_mode, WEIGHT_MODES)
        check_smoothing(label_smoothing, allow_negative=allow_negative)
        self._keep(locals(), buffers=("weight", "prior"))

    def extra_repr(self) -> str:
        return (
            f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}, "
            f"weight_mode={self.weight_mode!r}"
        )
