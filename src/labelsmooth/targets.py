"""Smoothed targets, priors, and the converter between the two smoothing conventions.

The smoothed target of the chapter (Szegedy et al. 2016) mixes the one-hot label with a prior u:

.. math::

    p_k = (1 - \\alpha)\\,[k = y] + \\alpha\\,u_k,

with u uniform (u_k = 1/K) unless a prior is given. Mass alpha/K lands on *every* class, the true
one included: this is the convention of PyTorch, timm, Keras and optax, and the one used everywhere in
labelsmooth. The losses never build this tensor for index labels; :func:`smooth_labels` exists for
teaching, for soft-target pipelines, and for tests.
"""

from __future__ import annotations

from typing import Any, Literal, Union, get_args

import torch

from ._deprecation import renamed_keywords
from ._validation import (
    check_bool,
    check_choice,
    check_distribution,
    check_float_tensor,
    check_labels,
    check_num_classes,
    check_number,
    check_prior,
    check_smoothing,
    expected,
)

__all__ = [
    "Support",
    "class_prior",
    "classwise_smoothing",
    "convert_smoothing",
    "histogram_mean",
    "hl_gauss_targets",
    "smooth_labels",
    "two_hot_targets",
]

Convention = Literal["uniform", "off_target"]
CONVENTIONS: tuple[Convention, ...] = get_args(Convention)
SmoothingScale = Literal["log", "linear"]
SCALES: tuple[SmoothingScale, ...] = get_args(SmoothingScale)


def smooth_labels(
    target: torch.Tensor,
    num_classes: int,
    label_smoothing: float | torch.Tensor,
    *,
    prior: torch.Tensor | None = None,
    allow_negative: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Build the smoothed target ``p = (1 - a) * onehot(y) + a * u``.

    .. math::

        p_{ik} = (1 - \\alpha_i)\\,[k = y_i] + \\alpha_i\\,u_{ik}

    where ``y_i`` is the label of sample ``i``, ``alpha_i`` its smoothing factor, and ``u_i`` the prior:
    uniform ``1/K`` by default, a ``(K,)`` distribution (for example the class frequencies from
    :func:`class_prior`) or one distribution per sample ``(N, K)``.

    Parameters
    ----------
    target : LongTensor of shape ``(N,)`` or any shape ``(*)``
        Class indices in ``[0, num_classes)``.
    num_classes : int
        K, at least 2.
    label_smoothing : float or Tensor of shape ``(N,)``
        alpha in [0, 1] (or <= 1 with ``allow_negative=True``); a tensor gives one value per sample and
        needs a 1-D ``target``.
    prior : Tensor of shape ``(K,)`` or ``(N, K)``, optional
        The distribution the label is smoothed toward. Must sum to 1 (tolerance 1e-4); it is then
        renormalised to sum to 1 exactly.
    allow_negative : bool
        Permit alpha < 0 (negative label smoothing, Wei et al. 2022), which yields negative entries.
    dtype : torch.dtype, optional
        Output dtype; defaults to the prior's, the smoothing tensor's, or the default float dtype.

    Returns
    -------
    Tensor of shape ``(*, K)``
        Class dimension last, like :func:`torch.nn.functional.one_hot`. Rows sum to 1.

    Raises
    ------
    ValueError
        ``num_classes < 2``, labels outside ``[0, K)``, smoothing out of range or of the wrong length,
        a prior that is not a distribution or has the wrong shape.
    TypeError
        Non-integer labels, non-float smoothing tensor or prior.

    Examples
    --------
    The chapter's example: K = 5, true class 3 (index 2), alpha = 0.1.

    >>> import torch
    >>> from labelsmooth import smooth_labels
    >>> smooth_labels(torch.tensor([2]), num_classes=5, label_smoothing=0.1)
    tensor([[0.0200, 0.0200, 0.9200, 0.0200, 0.0200]])
    """
    num_classes = check_num_classes(num_classes)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    check_labels("target", target, num_classes)
    n = target.shape[0] if target.dim() == 1 else None
    a = check_smoothing(label_smoothing, n=n, allow_negative=allow_negative)
    if isinstance(a, torch.Tensor) and target.dim() != 1:
        raise ValueError(expected("target", "to be 1-D when `label_smoothing` is a tensor", target))
    if prior is not None:
        prior = check_prior(prior, num_classes, n)
        if prior.dim() == 2 and target.dim() != 1:
            raise ValueError(expected("target", "to be 1-D when `prior` is given per sample", target))
    if dtype is None:
        if prior is not None:
            dtype = prior.dtype
        elif isinstance(a, torch.Tensor):
            dtype = a.dtype
        else:
            dtype = torch.get_default_dtype()
    onehot = torch.nn.functional.one_hot(target.long(), num_classes).to(dtype)
    if prior is None:
        u = torch.full((num_classes,), 1.0 / num_classes, dtype=dtype, device=target.device)
    else:
        u = prior.to(dtype=dtype, device=target.device)
    if isinstance(a, torch.Tensor):
        a = a.to(dtype=dtype, device=target.device).unsqueeze(-1)
    return (1 - a) * onehot + a * u


@renamed_keywords(value="label_smoothing")
def convert_smoothing(
    label_smoothing: float | torch.Tensor,
    num_classes: int,
    *,
    from_convention: Convention,
    to_convention: Convention,
) -> float | torch.Tensor:
    """Convert a smoothing factor between the two conventions in use.

    Two libraries that both say ``label_smoothing=0.1`` can mean different targets:

    ================  ==========================  =====================  ================================
    convention        true class gets             every other class      used by
    ================  ==========================  =====================  ================================
    ``"uniform"``     ``1 - a + a/K``             ``a/K``                PyTorch, timm, Keras, optax,
                                                                         labelsmooth (this library)
    ``"off_target"``  ``1 - a'``                  ``a'/(K - 1)``         Megatron-LM, NeMo, OpenNMT
    ================  ==========================  =====================  ================================

    ``torch.nn.functional.cross_entropy(label_smoothing=a)`` is the ``"uniform"`` convention. The two
    describe the same target when ``a' = a (K - 1) / K``, i.e. ``a = a' K / (K - 1)``.

    Parameters
    ----------
    label_smoothing : float or Tensor
        The smoothing factor in ``from_convention``; must lie in [0, 1]. Formerly ``value`` (still
        accepted, with a DeprecationWarning, for one release).
    num_classes : int
        K, at least 2.
    from_convention, to_convention : {"uniform", "off_target"}

    Returns
    -------
    float or Tensor
        The factor giving the same target in ``to_convention``.

    Raises
    ------
    ValueError
        ``label_smoothing`` outside [0, 1], or one whose target cannot be written in the other convention
        (``a' > (K - 1)/K`` puts less mass on the true class than on the others' average, which
        needs ``a > 1`` in the uniform convention).
    TypeError
        Both ``label_smoothing`` and its deprecated spelling ``value`` given.

    Examples
    --------
    >>> from labelsmooth import convert_smoothing
    >>> round(convert_smoothing(0.1, 5, from_convention="off_target", to_convention="uniform"), 6)
    0.125
    >>> round(convert_smoothing(0.125, 5, from_convention="uniform", to_convention="off_target"), 6)
    0.1
    """
    num_classes = check_num_classes(num_classes)
    check_choice("from_convention", from_convention, CONVENTIONS)
    check_choice("to_convention", to_convention, CONVENTIONS)
    check_smoothing(label_smoothing)
    k = num_classes
    if from_convention == to_convention:
        return label_smoothing
    if from_convention == "uniform":
        return label_smoothing * (k - 1) / k
    out = label_smoothing * k / (k - 1)
    too_big = bool((out > 1).any()) if isinstance(out, torch.Tensor) else out > 1
    if too_big:
        limit = (k - 1) / k
        raise ValueError(
            expected(
                "label_smoothing",
                f"<= {limit:g} = (K-1)/K to be expressible in the uniform convention",
                label_smoothing,
            )
        )
    return out


def class_prior(
    target: torch.Tensor,
    num_classes: int,
    *,
    ignore_index: int | None = -100,
    eps: float = 0.0,
) -> torch.Tensor:
    """Class frequencies of ``target``, a prior to smooth toward instead of uniform.

    .. math::

        u_k = \\frac{n_k + \\epsilon}{\\sum_j (n_j + \\epsilon)}

    where ``n_k`` counts the labels equal to ``k`` (``ignore_index`` excluded).

    Parameters
    ----------
    target : LongTensor of any shape
        Class indices in ``[0, num_classes)`` or ``ignore_index``.
    num_classes : int
        K, at least 2.
    ignore_index : int or None
        Labels equal to it are not counted.
    eps : float
        Additive (Laplace) count, >= 0; keeps unseen classes above zero.

    Returns
    -------
    Tensor of shape ``(K,)``, float32 (or the default dtype), summing to 1.

    Raises
    ------
    ValueError
        No label left to count and ``eps = 0``; labels out of range; ``eps < 0``.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import class_prior
    >>> class_prior(torch.tensor([0, 0, 1, 2]), num_classes=3)
    tensor([0.5000, 0.2500, 0.2500])
    """
    num_classes = check_num_classes(num_classes)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    check_labels("target", target, num_classes, ignore_index)
    check_number("eps", eps, lo=0)
    flat = target.reshape(-1)
    if ignore_index is not None:
        flat = flat[flat != ignore_index]
    counts = torch.bincount(flat.long(), minlength=num_classes).to(torch.get_default_dtype()) + eps
    total = counts.sum()
    if float(total) == 0:
        raise ValueError(expected("target", "to hold at least one label (or pass eps > 0)", target))
    return counts / total


@renamed_keywords(low="label_smoothing_low", high="label_smoothing_high")
def classwise_smoothing(
    class_counts: torch.Tensor | list[int] | tuple[int, ...],
    label_smoothing_low: float,
    label_smoothing_high: float,
    *,
    scale: SmoothingScale = "log",
) -> torch.Tensor:
    r"""Per-class smoothing factors that grow with the class size: label-aware smoothing for long tails.

    Zhong, Cui, Liu and Jia (CVPR 2021, *Improving Calibration for Long-Tailed Recognition*, MiSLAS)
    smooth the head classes, on which a model trained on imbalanced data is overconfident, more than the
    tail classes. With :math:`N_y` the training count of class :math:`y`, :math:`N_{\min}` and
    :math:`N_{\max}` the smallest and largest counts, :math:`a_{\mathrm{tail}} =` ``label_smoothing_low``
    and :math:`a_{\mathrm{head}} =` ``label_smoothing_high``:

    .. math::

        a_y = a_{\mathrm{tail}} + (a_{\mathrm{head}} - a_{\mathrm{tail}})
              \frac{f(N_y) - f(N_{\min})}{f(N_{\max}) - f(N_{\min})},
        \qquad f = \log \ (\text{``scale="log"``}) \ \text{or} \ f(N) = N \ (\text{``"linear"``}).

    ``"linear"`` is MiSLAS's linear variant; ``"log"`` (the default) spaces the factors evenly across the
    orders of magnitude of a long tail (with an imbalance ratio of 100, the median class is not pushed to
    the tail value). When every class has the same count the factors are all :math:`(a_{\mathrm{tail}} +
    a_{\mathrm{head}}) / 2`. Use the result as per-sample smoothing, ``label_smoothing=a[target]`` in
    :func:`labelsmooth.cross_entropy`.

    Parameters
    ----------
    class_counts : Tensor or sequence of int, shape (K,)
        Training examples per class, each >= 1 (e.g. ``torch.bincount(y, minlength=K)``).
    label_smoothing_low, label_smoothing_high : float in [0, 1]
        :math:`a_{\mathrm{tail}}` and :math:`a_{\mathrm{head}}`; ``label_smoothing_low >
        label_smoothing_high`` is allowed (less smoothing on the head). Formerly ``low`` and ``high``
        (still accepted as keywords, with a DeprecationWarning, for one release).
    scale : {"log", "linear"}, default "log"

    Returns
    -------
    Tensor of shape ``(K,)``, float32 (or the default dtype).

    Raises
    ------
    ValueError
        Fewer than 2 classes, a count below 1, ``label_smoothing_low``/``label_smoothing_high`` outside
        [0, 1], an unknown ``scale``.
    TypeError
        Counts that are not integers; a factor given under both its name and its deprecated spelling.

    Examples
    --------
    >>> from labelsmooth import classwise_smoothing
    >>> classwise_smoothing([100, 10, 1], label_smoothing_low=0.0, label_smoothing_high=0.2)
    tensor([0.2000, 0.1000, 0.0000])
    >>> classwise_smoothing([100, 10, 1], 0.0, 0.2, scale="linear")
    tensor([0.2000, 0.0182, 0.0000])
    """
    from ._validation import check_scalar_range

    counts = class_counts if isinstance(class_counts, torch.Tensor) else torch.as_tensor(class_counts)
    if counts.is_floating_point() or counts.is_complex() or counts.dtype == torch.bool:
        raise TypeError(expected("class_counts", "to hold integer counts", counts.dtype))
    if counts.dim() != 1 or counts.shape[0] < 2:
        raise ValueError(expected("class_counts", "to have shape (K,) with K >= 2", counts))
    if bool((counts < 1).any()):
        raise ValueError(
            expected(
                "class_counts",
                "to be >= 1 for every class (add 1 to each count if a class is empty)",
                int(counts.min()),
            )
        )
    lo = check_scalar_range("label_smoothing_low", label_smoothing_low, 0.0, 1.0)
    hi = check_scalar_range("label_smoothing_high", label_smoothing_high, 0.0, 1.0)
    check_choice("scale", scale, SCALES)
    f = counts.double().log() if scale == "log" else counts.double()
    span = f.max() - f.min()
    if float(span) == 0.0:
        out = torch.full_like(f, (lo + hi) / 2.0)
    else:
        out = lo + (hi - lo) * (f - f.min()) / span
    return out.to(torch.get_default_dtype())



# ---------------------------------------------------------------------------------------------------------
# Value targets: a scalar regression target y as a distribution over fixed bins ("Stop Regressing",
# Farebrother et al. 2024, after Imani and White 2018; two-hot as in MuZero and DreamerV3).
# ---------------------------------------------------------------------------------------------------------


class Support:
    """Fixed bins for value learning as classification: edges ``e_0 < e_1 < ... < e_B``.

    Bin ``i`` is ``[e_i, e_{i+1})``; its centre is ``c_i = (e_i + e_{i+1}) / 2`` and its width
    ``w_i = e_{i+1} - e_i``. A scalar ``y`` is represented by a distribution ``p`` over the ``B`` bins
    (:func:`hl_gauss_targets`, :func:`two_hot_targets`) and recovered as ``sum_i p_i c_i``
    (:func:`histogram_mean`).

    Parameters
    ----------
    edges : Tensor or sequence of floats, shape ``(B + 1,)``
        Strictly increasing and finite, ``B >= 2`` bins. Stored as float64 on the CPU; every function
        casts it to the dtype and device of its input.

    Raises
    ------
    ValueError
        Fewer than 3 edges, not 1-D, not finite, or not strictly increasing.
    TypeError
        Edges that are not real numbers.

    Examples
    --------
    >>> from labelsmooth import Support
    >>> s = Support.uniform(0.0, 1.0, bins=4)
    >>> s.centres
    tensor([0.1250, 0.3750, 0.6250, 0.8750], dtype=torch.float64)
    >>> s.bins, s.width, s.lo, s.hi
    (4, 0.25, 0.0, 1.0)
    >>> Support([0.0, 1.0, 3.0]).widths
    tensor([1., 2.], dtype=torch.float64)
    """

    __slots__ = ("_edges",)

    def __init__(self, edges: torch.Tensor | list[float] | tuple[float, ...]) -> None:
        if isinstance(edges, Support):
            edges = edges.edges
        if isinstance(edges, torch.Tensor):
            if edges.is_complex() or edges.dtype == torch.bool:
                raise TypeError(expected("edges", "to hold real numbers", edges.dtype))
            e = edges.detach().to(device="cpu", dtype=torch.float64)
        else:
            try:
                e = torch.as_tensor(list(edges), dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(expected("edges", "to be a sequence of floats or a tensor", edges)) from exc
        if e.dim() != 1 or e.numel() < 3:
            raise ValueError(expected("edges", "to be 1-D with at least 3 edges (2 bins)", e))
        if not bool(torch.isfinite(e).all()):
            raise ValueError(expected("edges", "to be finite", e))
        steps = e[1:] - e[:-1]
        if not bool((steps > 0).all()):
            i = int(torch.nonzero(steps <= 0)[0])
            raise ValueError(
                expected("edges", f"to be strictly increasing (edge {i + 1} <= edge {i})", e[i + 1])
            )
        self._edges = e

    @classmethod
    def uniform(cls, lo: float, hi: float, bins: int) -> Support:
        """``bins`` equal bins covering ``[lo, hi]``: edges ``lo + i (hi - lo) / bins``, ``i = 0..bins``."""
        bins = check_num_classes(bins, name="bins")
        for name, v in (("lo", lo), ("hi", hi)):
            check_number(name, v, finite=True)
        if not hi > lo:
            raise ValueError(expected("hi", f"> lo = {lo!r}", hi))
        return cls(torch.linspace(float(lo), float(hi), bins + 1, dtype=torch.float64))

    @property
    def edges(self) -> torch.Tensor:
        """The ``B + 1`` edges, float64."""
        return self._edges

    @property
    def centres(self) -> torch.Tensor:
        """The ``B`` bin centres ``(e_i + e_{i+1}) / 2``, float64."""
        return (self._edges[1:] + self._edges[:-1]) / 2

    @property
    def widths(self) -> torch.Tensor:
        """The ``B`` bin widths ``e_{i+1} - e_i``, float64."""
        return self._edges[1:] - self._edges[:-1]

    @property
    def width(self) -> float:
        """The common bin width of a uniform support (ValueError if the widths differ by > 1e-9 relative)."""
        w = self.widths
        if float((w.max() - w.min()) / w.max()) > 1e-9:
            raise ValueError(expected("support", "to have equal bins for `width` (use `widths`)", self))
        return float(w.mean())

    @property
    def bins(self) -> int:
        """B, the number of bins."""
        return self._edges.numel() - 1

    @property
    def lo(self) -> float:
        return float(self._edges[0])

    @property
    def hi(self) -> float:
        return float(self._edges[-1])

    def __repr__(self) -> str:
        return f"Support(bins={self.bins}, lo={self.lo:g}, hi={self.hi:g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Support) and torch.equal(self._edges, other._edges)

    def __hash__(self) -> int:
        return hash(tuple(self._edges.tolist()))


SupportLike = Union[Support, torch.Tensor, "list[float]", "tuple[float, ...]"]


def as_support(support: Any) -> Support:
    """A :class:`Support` from a Support or from plain edges (a tensor or a sequence of floats)."""
    return support if isinstance(support, Support) else Support(support)


def _check_values(name: str, y: Any) -> torch.Tensor:
    """Regression targets: a floating-point tensor (integer returns must be cast by the caller)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(expected(name, "to be a torch.Tensor", type(y).__name__))
    if not y.is_floating_point():
        raise TypeError(expected(name, "to be a floating-point tensor (cast integer values)", y.dtype))
    if y.numel() and not bool(torch.isfinite(y).all()):
        raise ValueError(expected(name, "to be finite", y))
    return y


def check_sigma(sigma: Any) -> float:
    """The HL-Gauss width: a finite float > 0."""
    return check_number("sigma", sigma, lo=0, lo_open=True, finite=True)


def _value_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half inputs are computed in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def hl_gauss_targets(y: torch.Tensor, support: SupportLike, sigma: float) -> torch.Tensor:
    """The HL-Gauss histogram of ``y``: a Gaussian ``N(y, sigma^2)`` integrated over each bin.

    .. math::

        p_i = \\frac{\\Phi((e_{i+1} - y)/\\sigma) - \\Phi((e_i - y)/\\sigma)}
                   {\\Phi((e_B - y)/\\sigma) - \\Phi((e_0 - y)/\\sigma)},
        \\qquad \\Phi(x) = \\tfrac12\\bigl(1 + \\operatorname{erf}(x/\\sqrt2)\\bigr),

    the mass of the bins ``[e_i, e_{i+1})`` renormalised over the support ``[e_0, e_B]``. It is label
    smoothing for regression: the target spreads over neighbouring bins, by an amount set by ``sigma``.
    Farebrother et al. recommend ``sigma = 0.75`` bin widths (``0.75 * support.width``), which puts about
    half the mass outside ``y``'s bin. As ``sigma -> 0`` the histogram becomes the one-hot bin of ``y``.

    ``y`` outside the support is **clipped** to ``[e_0, e_B]`` first (the histogram cannot represent it).

    Parameters
    ----------
    y : floating-point Tensor of any shape ``(*)``
        Scalar targets (returns, values). Half precision is computed in float32.
    support : Support or edges ``(B + 1,)``
    sigma : float
        Standard deviation of the Gaussian, in the units of ``y``; > 0.

    Returns
    -------
    Tensor of shape ``(*, B)``, the dtype of ``y`` (float32 for half ``y``); rows sum to 1.

    Raises
    ------
    TypeError
        ``y`` not a floating-point tensor (integer returns must be cast), ``sigma`` not a number.
    ValueError
        ``sigma <= 0``, non-finite ``y``, a support that is not strictly increasing.

    References
    ----------
    Imani and White, *Improving Regression Performance with Distributional Losses*, ICML 2018.
    Farebrother et al., *Stop Regressing: Training Value Functions via Classification for Scalable Deep
    RL*, ICML 2024.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import Support, hl_gauss_targets
    >>> s = Support.uniform(0.0, 4.0, bins=4)
    >>> hl_gauss_targets(torch.tensor([1.5]), s, sigma=0.75)
    tensor([[0.2352, 0.5068, 0.2352, 0.0229]])
    """
    support = as_support(support)
    y = _check_values("y", y)
    sigma = check_sigma(sigma)
    dtype = _value_dtype(y.dtype)
    edges = support.edges.to(device=y.device, dtype=dtype)
    yc = y.to(dtype).clamp(edges[0], edges[-1]).unsqueeze(-1)
    cdf = torch.special.ndtr((edges - yc) / sigma)  # (*, B + 1)
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


def two_hot_targets(y: torch.Tensor, support: SupportLike) -> torch.Tensor:
    """The two-hot histogram of ``y``: its mass split between the two nearest bin centres.

    For ``c_k <= y <= c_{k+1}``:

    .. math::

        p_k = \\frac{c_{k+1} - y}{c_{k+1} - c_k}, \\qquad p_{k+1} = \\frac{y - c_k}{c_{k+1} - c_k},

    every other bin 0, so that ``sum_i p_i c_i = y`` exactly (MuZero, DreamerV3). ``y`` outside
    ``[c_0, c_{B-1}]`` (the range of the centres, half a bin inside the edges) is **clipped** to it.

    Parameters
    ----------
    y, support
        As in :func:`hl_gauss_targets`.

    Returns
    -------
    Tensor of shape ``(*, B)``, with the dtype and the row sums of :func:`hl_gauss_targets`' output, and at
    most two non-zero entries per row.

    Raises
    ------
    TypeError, ValueError
        For ``y`` and ``support``, as in :func:`hl_gauss_targets`: ``y`` not a floating-point tensor or not
        finite, a support that is not strictly increasing.

    References
    ----------
    Schrittwieser et al., *Mastering Atari, Go, Chess and Shogi by Planning with a Learned Model*
    (MuZero), Nature 2020. Hafner et al., *Mastering Diverse Domains through World Models* (DreamerV3),
    2023.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import Support, two_hot_targets
    >>> s = Support.uniform(0.0, 4.0, bins=4)       # centres 0.5, 1.5, 2.5, 3.5
    >>> two_hot_targets(torch.tensor([1.75, 9.0]), s)
    tensor([[0.0000, 0.7500, 0.2500, 0.0000],
            [0.0000, 0.0000, 0.0000, 1.0000]])
    """
    support = as_support(support)
    y = _check_values("y", y)
    dtype = _value_dtype(y.dtype)
    c = support.centres.to(device=y.device, dtype=dtype)
    yc = y.to(dtype).clamp(c[0], c[-1])
    k = (torch.searchsorted(c, yc.reshape(-1).contiguous(), right=True) - 1).clamp(0, c.numel() - 2)
    k = k.reshape(yc.shape)
    lo, hi = c[k], c[k + 1]
    w_hi = (yc - lo) / (hi - lo)
    out = torch.zeros(*yc.shape, c.numel(), dtype=dtype, device=y.device)
    out.scatter_(-1, k.unsqueeze(-1), (1 - w_hi).unsqueeze(-1))
    out.scatter_(-1, (k + 1).unsqueeze(-1), w_hi.unsqueeze(-1))
    return out


def histogram_mean(input: torch.Tensor, support: SupportLike, *, from_logits: bool) -> torch.Tensor:
    """The scalar a histogram predicts: its mean over the bin centres, ``sum_i p_i c_i``.

    With ``from_logits=True``, ``p = softmax(input)`` over the last dimension; otherwise ``input`` must
    already hold distributions (non-negative, summing to 1 within 1e-4). This inverts
    :func:`two_hot_targets` exactly inside the support, and :func:`hl_gauss_targets` up to the truncation
    of the Gaussian at the edges.

    Parameters
    ----------
    input : floating-point Tensor ``(*, B)``
        Logits or probabilities over the ``B`` bins.
    support : Support or edges ``(B + 1,)``
    from_logits : bool, keyword-only, required
        Whether ``input`` holds logits.

    Returns
    -------
    Tensor ``(*)``, the dtype of ``input`` (float32 for half input).

    Raises
    ------
    TypeError
        Non-float ``input``; ``from_logits`` not a bool.
    ValueError
        Last dimension not ``B``; probabilities that are not distributions.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import Support, histogram_mean, two_hot_targets
    >>> s = Support.uniform(0.0, 4.0, bins=4)
    >>> histogram_mean(two_hot_targets(torch.tensor([1.75]), s), s, from_logits=False)
    tensor([1.7500])
    >>> histogram_mean(torch.zeros(4), s, from_logits=True)
    tensor(2.)
    """
    support = as_support(support)
    check_float_tensor("input", input)
    check_bool("from_logits", from_logits)
    if input.dim() == 0 or input.shape[-1] != support.bins:
        raise ValueError(expected("input", f"with last dimension {support.bins} (the bins)", input))
    dtype = _value_dtype(input.dtype)
    x = input.to(dtype)
    p = torch.softmax(x, dim=-1) if from_logits else check_distribution("input", x)
    return p @ support.centres.to(device=x.device, dtype=dtype)
