r"""Logit geometry: the gap between the target logit and the rest, against its closed form.

With one-hot targets cross-entropy keeps pushing :math:`z_y - z_k` up (the gradient :math:`q - p` never
vanishes); with label smoothing :math:`\alpha` over :math:`K` classes the optimum is the finite gap

.. math::
    \Delta^*(\alpha, K) = \log\Big(1 + \frac{K(1 - \alpha)}{\alpha}\Big)

(:func:`labelsmooth.theory.optimal_logit_gap`). These functions measure the gaps a model actually
produces, so the two can be compared, and :func:`penultimate_projection` the penultimate-layer clusters
that smoothing tightens (Müller, Kornblith and Hinton 2019); :mod:`labelsmooth.plots` draws both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labelsmooth._validation import (
    as_tensor,
    check_int,
    check_scalar_range,
    check_scores,
    expected,
    prepare_scores_and_target,
)

__all__ = [
    "LogitGapSummary",
    "ProjectionData",
    "logit_gap",
    "logit_gap_summary",
    "penultimate_projection",
    "top2_gap",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def logit_gap(logits: Any, target: Any) -> torch.Tensor:
    r"""Per-sample gap between the target logit and the largest other logit.

    .. math:: \Delta_i = z_{i y_i} - \max_{k \ne y_i} z_{ik}

    Positive when the sample is classified correctly (with margin :math:`\Delta_i`), negative otherwise.

    Parameters
    ----------
    logits : Tensor or ndarray, shape (N, K), floating point, K >= 2
    target : Tensor or ndarray, shape (N,), integer in ``[0, K)``

    Returns
    -------
    Tensor, shape (N,), float64

    Raises
    ------
    ValueError, TypeError
        As :func:`~labelsmooth.metrics.expected_calibration_error` with ``from_logits=True``.

    Examples
    --------
    >>> import torch
    >>> logit_gap(torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, 1.0]]), torch.tensor([0, 2])).tolist()
    [2.0, -1.0]
    """
    z, t = prepare_scores_and_target(logits, target, from_logits=True, input_name="logits")
    z = z.double()
    zy = z.gather(1, t[:, None]).squeeze(1)
    others = z.scatter(1, t[:, None], -math.inf)
    return zy - others.max(dim=1).values


def top2_gap(logits: Any) -> torch.Tensor:
    r"""Per-sample gap between the largest and the second-largest logit, :math:`z_{(1)} - z_{(2)} \ge 0`.

    Label-free: the margin of the model's own prediction.

    Parameters
    ----------
    logits : Tensor or ndarray, shape (N, K), floating point, K >= 2

    Returns
    -------
    Tensor, shape (N,), float64

    Examples
    --------
    >>> import torch
    >>> top2_gap(torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, 1.0]])).tolist()
    [2.0, 1.0]
    """
    z = check_scores("logits", as_tensor("logits", logits), from_logits=True).double()
    top = z.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


@dataclass(frozen=True)
class LogitGapSummary:
    r"""Summary of the per-sample logit gaps :math:`\Delta_i` (see :func:`logit_gap_summary`).

    Attributes
    ----------
    n : int
    mean, median, std : float
        ``std`` is the population standard deviation (divides by N).
    quantiles : dict[float, float]
        The 5, 25, 50, 75 and 95 % quantiles (linear interpolation).
    label_smoothing : float or None
    optimal_gap : float or None
        :math:`\Delta^*(\alpha, K)`; ``inf`` for :math:`\alpha = 0`.
    relative_deviation : float or None
        :math:`\frac1N \sum_i |\Delta_i - \Delta^*| / \Delta^*`; NaN when :math:`\Delta^*` is 0 or inf.
    """

    n: int
    mean: float
    median: float
    std: float
    quantiles: dict[float, float] = field(default_factory=dict)
    label_smoothing: float | None = None
    optimal_gap: float | None = None
    relative_deviation: float | None = None


def logit_gap_summary(logits: Any, target: Any, label_smoothing: float | None = None) -> LogitGapSummary:
    r"""Mean, median, spread and quantiles of :math:`\Delta_i = z_{iy_i} - \max_{k \ne y_i} z_{ik}`.

    When ``label_smoothing`` :math:`\alpha` is given, also the optimum
    :math:`\Delta^* = \log(1 + K(1 - \alpha)/\alpha)` that a model trained with it reaches at
    :math:`q = p_{LS}` and the mean relative deviation
    :math:`\frac1N \sum_i |\Delta_i - \Delta^*| / \Delta^*`.
    On the training set of a converged, expressive model the deviation is small; with hard targets the
    gaps keep growing with training (:math:`\Delta^* = \infty`).

    Parameters
    ----------
    logits : Tensor or ndarray, shape (N, K)
    target : Tensor or ndarray, shape (N,), integer
    label_smoothing : float in [0, 1], optional

    Returns
    -------
    LogitGapSummary

    Raises
    ------
    ValueError, TypeError
        As :func:`logit_gap`; ``label_smoothing`` outside [0, 1].

    Examples
    --------
    >>> import math, torch
    >>> K, a = 4, 0.1
    >>> gap = math.log(1 + K * (1 - a) / a)
    >>> z = torch.tensor([[gap, 0.0, 0.0, 0.0], [0.0, 1.1 * gap, 0.0, 0.0]])
    >>> s = logit_gap_summary(z, torch.tensor([0, 1]), label_smoothing=a)
    >>> round(s.optimal_gap, 4), round(s.relative_deviation, 4)
    (3.6109, 0.05)
    """
    gaps = logit_gap(logits, target)
    num_classes = as_tensor("logits", logits).shape[1]
    q = torch.tensor(QUANTILES, dtype=torch.float64, device=gaps.device)
    qs = torch.quantile(gaps, q) if gaps.numel() <= 16_000_000 else torch.quantile(gaps.float(), q.float())
    optimal = rel = None
    if label_smoothing is not None:
        from labelsmooth.theory import optimal_logit_gap

        a = check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
        optimal = float(optimal_logit_gap(a, num_classes))
        if optimal == 0.0 or math.isinf(optimal):
            rel = math.nan
        else:
            rel = float(((gaps - optimal).abs() / optimal).mean())
    return LogitGapSummary(
        n=int(gaps.numel()),
        mean=float(gaps.mean()),
        median=float(qs[2]),
        std=float(gaps.std(correction=0)),
        quantiles={p: float(v) for p, v in zip(QUANTILES, qs.tolist())},
        label_smoothing=None if label_smoothing is None else float(label_smoothing),
        optimal_gap=optimal,
        relative_deviation=rel,
    )


# --------------------------------------------------------------------------- penultimate-layer geometry
@dataclass(frozen=True)
class ProjectionData:
    """Penultimate-layer activations of three classes projected on the plane of their templates.

    ``points`` (M, 2) and ``labels`` (M,) are the projected examples and their classes; ``templates``
    (3, 2) are the projected last-layer weight vectors (the first at the origin); ``classes`` the three
    class indices.
    """

    points: np.ndarray
    labels: np.ndarray
    templates: np.ndarray
    classes: tuple[int, int, int]


def penultimate_projection(
    features: Any,
    target: Any,
    last_layer_weight: Any,
    classes: Sequence[int] = (0, 1, 2),
    *,
    max_points: int = 1500,
    seed: int = 0,
) -> ProjectionData:
    r"""Project penultimate activations onto the plane through three classes' templates (Müller et al. 2019).

    With templates :math:`w_a, w_b, w_c` (rows of the last layer's weight, the logit being
    :math:`z_k = w_k^\top x + b_k`), take an orthonormal basis :math:`Q \in \mathbb{R}^{D \times 2}` of the
    plane through them -- the reduced QR factorisation of :math:`[w_b - w_a,\; w_c - w_a]` -- and map each
    activation :math:`x` of an example of class :math:`a`, :math:`b` or :math:`c` to
    :math:`Q^\top (x - w_a)`. Label smoothing pulls each class into a tight cluster, equidistant from the
    others' templates; hard targets leave broad, elongated clouds.

    Parameters
    ----------
    features : Tensor or ndarray, shape (N, D), floating point
        Penultimate-layer activations.
    target : Tensor or ndarray, shape (N,), integer
    last_layer_weight : Tensor or ndarray, shape (K, D), floating point
        E.g. ``model.fc.weight`` of an ``nn.Linear(D, K)``.
    classes : three distinct ints in ``[0, K)``, default (0, 1, 2)
    max_points : int, default 1500
        At most this many examples, drawn at random (seeded) when there are more.
    seed : int, default 0

    Returns
    -------
    ProjectionData

    Raises
    ------
    ValueError
        Mismatched shapes, ``classes`` not three distinct valid indices, templates on a line, no examples
        of the chosen classes, ``max_points < 1``.
    TypeError
        Non-float features or weight, non-integer target.

    References
    ----------
    Müller, Kornblith and Hinton (2019), *When Does Label Smoothing Help?*, NeurIPS, Figure 1.

    Examples
    --------
    >>> import torch
    >>> w = torch.eye(3, 4)                       # K = 3 templates in D = 4
    >>> x = torch.eye(3, 4).repeat(2, 1) * 2      # activations along the templates
    >>> d = penultimate_projection(x, torch.tensor([0, 1, 2] * 2), w)
    >>> d.points.shape, d.templates.round(3).tolist()[0]
    ((6, 2), [0.0, 0.0])
    """
    x = as_tensor("features", features)
    w = as_tensor("last_layer_weight", last_layer_weight)
    t = as_tensor("target", target)
    for name, arr in (("features", x), ("last_layer_weight", w)):
        if not arr.is_floating_point():
            raise TypeError(expected(name, "to be a floating-point tensor or array", arr.dtype))
        if arr.dim() != 2:
            raise ValueError(expected(name, "to have 2 dimensions", arr))
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(expected("target", "to hold integer class indices", t.dtype))
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(expected("target", f"to have shape ({x.shape[0]},)", t))
    if w.shape[1] != x.shape[1]:
        raise ValueError(expected("last_layer_weight", f"to have shape (K, {x.shape[1]})", w))
    cls = tuple(int(c) for c in classes) if isinstance(classes, Sequence) else ()
    if len(cls) != 3 or len(set(cls)) != 3 or not all(0 <= c < w.shape[0] for c in cls):
        raise ValueError(
            expected("classes", f"to be three distinct class indices in [0, {w.shape[0]})", classes)
        )
    max_points = check_int("max_points", max_points, lo=1, what="to be an int >= 1")
    w64 = w.double()
    origin = w64[cls[0]]
    basis = torch.stack([w64[cls[1]] - origin, w64[cls[2]] - origin], dim=1)
    q, r = torch.linalg.qr(basis)
    if abs(float(r[1, 1])) <= 1e-10 * max(abs(float(r[0, 0])), 1e-300):
        raise ValueError(
            expected("last_layer_weight", f"templates of classes {cls} to span a plane (not a line)", w)
        )
    keep = (t[:, None] == torch.tensor(cls)[None, :]).any(1).nonzero().squeeze(1)
    if keep.numel() == 0:
        raise ValueError(expected("target", f"to contain examples of classes {cls}", t))
    if keep.numel() > max_points:
        g = torch.Generator().manual_seed(int(seed))
        keep = keep[torch.randperm(keep.numel(), generator=g)[:max_points]].sort().values
    points = (x[keep].double() - origin) @ q
    templates = (w64[list(cls)] - origin) @ q
    return ProjectionData(
        points=points.numpy(), labels=t[keep].numpy(), templates=templates.numpy(), classes=cls
    )
