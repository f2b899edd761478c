"""Knowledge distillation (Hinton et al. 2015) and teacher-free distillation (Yuan et al. 2020).

Distillation trains a student on a teacher's tempered distribution; label smoothing is the special case of a
"teacher" that puts a fixed mass on the label and spreads the rest evenly. Müller, Kornblith and Hinton (2019)
found that teachers trained *with* smoothing make worse students: smoothing erases the information about
which wrong classes resemble each other that distillation transmits. Both losses here are built on
:func:`labelsmooth.cross_entropy` and ``log_softmax`` (log space throughout).
"""

from __future__ import annotations

import math

import torch

from .._numerics import apply_reduction, class_last_rows, compute_dtype
from .._validation import Reduction, check_float_tensor, check_reduction, check_scalar_range, expected
from .cross_entropy import cross_entropy

__all__ = ["distillation_loss", "teacher_free_loss", "teacher_free_target"]


def _check_temperature(temperature: float) -> float:
    return check_scalar_range("temperature", temperature, 0.0, math.inf, lo_open=True, hi_open=True)


def _check_pair(student: torch.Tensor, teacher: torch.Tensor) -> None:
    check_float_tensor("student_logits", student)
    check_float_tensor("teacher_logits", teacher)
    if student.dim() == 0:
        what = "to have a class dimension: (C,), (N, C) or (N, C, d1, ...)"
        raise ValueError(expected("student_logits", what, student))
    if tuple(teacher.shape) != tuple(student.shape):
        cls = 1 if student.dim() >= 2 else 0
        what = f"of the student's shape {tuple(student.shape)}"
        same_rank = teacher.dim() == student.dim() and teacher.dim() > cls
        if same_rank and teacher.shape[cls] != student.shape[cls]:
            what += f" (the student has {student.shape[cls]} classes)"
        raise ValueError(expected("teacher_logits", what, teacher))


def _kl_rows(log_p_teacher: torch.Tensor, log_p_student: torch.Tensor) -> torch.Tensor:
    """Row-wise KL(p_t || p_s) = sum_k p_t,k (log p_t,k - log p_s,k); a term with p_t,k = 0 is 0."""
    p_t = log_p_teacher.exp()
    terms = torch.where(p_t > 0, p_t * (log_p_teacher - log_p_student), torch.zeros_like(p_t))
    return terms.sum(-1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    alpha: float = 1.0,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Hinton et al.'s distillation loss: the T^2-scaled KL to the tempered teacher, mixed with (smoothed) CE.

    For a row with student logits ``s``, teacher logits ``t`` (K classes), temperature ``T`` and label ``y``:

    .. math::

        \\ell = \\alpha\\,T^2\\,\\mathrm{KL}\\big(\\mathrm{softmax}(t/T)\\,\\|\\,\\mathrm{softmax}(s/T)\\big)
              + (1 - \\alpha)\\,\\mathrm{CE}_a(s, y)

    where ``CE_a`` is :func:`labelsmooth.cross_entropy` with ``label_smoothing=a`` (the target
    ``(1 - a) onehot(y) + a/K``). The ``T^2`` keeps the soft term's gradient, ``(softmax(s/T) -
    softmax(t/T)) T``, on the scale of the hard term's as ``T`` grows (Hinton et al., section 2). Both KL
    arguments are computed with ``log_softmax``.

    The teacher is *not* detached: pass ``teacher_logits.detach()`` (or compute them under
    ``torch.no_grad()``) for the usual frozen teacher; a teacher that requires grad receives the KL's
    gradient (online / mutual distillation).

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``
        The same shape (so the same class count), float16/bfloat16/float32/float64; half inputs are
        accumulated in float32 and the result is cast back to the student's dtype.
    target : LongTensor of shape ``()``, ``(N,)`` or ``(N, d1, ...)``, optional
        Class indices or ``ignore_index``. Required when ``alpha < 1``. When given, ``ignore_index`` rows
        are excluded from *both* terms and from the mean's denominator, as in :func:`cross_entropy`.
    temperature : float
        ``T > 0`` (default 1).
    alpha : float
        Weight of the distillation term in [0, 1] (default 1: pure distillation, no labels needed).
    label_smoothing : float
        ``a`` in [0, 1] for the label term.
    ignore_index : int
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides by the number of rows not ignored.

    Returns
    -------
    Tensor
        A scalar, or the per-row losses (0 on ignored rows) for ``reduction="none"``.

    Raises
    ------
    ValueError
        ``temperature <= 0``; ``alpha`` or ``label_smoothing`` outside [0, 1]; teacher and student of
        different shapes or class counts; ``alpha < 1`` without ``target``; the target errors of
        :func:`cross_entropy`.
    TypeError
        Non-float logits.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import distillation_loss
    >>> s = torch.tensor([[2.0, 0.5, -1.0]])
    >>> t = torch.tensor([[3.0, 1.0, -2.0]])
    >>> round(distillation_loss(s, t, temperature=2.0).item(), 4)
    0.1456
    >>> round(distillation_loss(s, s, temperature=4.0).item(), 4)  # a teacher equal to the student
    0.0
    >>> round(distillation_loss(s, t, torch.tensor([0]), alpha=0.0).item(), 4)  # alpha = 0: plain CE
    0.2413

    References
    ----------
    Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", NeurIPS workshop 2015.
    Müller, Kornblith and Hinton, "When Does Label Smoothing Help?", NeurIPS 2019.
    """
    _check_pair(student_logits, teacher_logits)
    t_ = _check_temperature(temperature)
    alpha = check_scalar_range("alpha", alpha, 0.0, 1.0)
    check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    check_reduction(reduction)
    if target is None and alpha < 1.0:
        raise ValueError(expected("target", "for alpha < 1 (the label term needs labels)", None))
    batched = student_logits.dim() >= 2
    extra = student_logits.dim() - 2 if batched else 0
    cdtype = compute_dtype(student_logits.dtype)
    s = class_last_rows(student_logits, batched, extra).to(cdtype)
    t = class_last_rows(teacher_logits, batched, extra).to(cdtype)
    kd = _kl_rows(torch.log_softmax(t / t_, -1), torch.log_softmax(s / t_, -1)) * (t_ * t_)

    if target is None:
        out_shape = (student_logits.shape[0], *student_logits.shape[2:]) if batched else ()
        denom = torch.tensor(float(kd.shape[0]), dtype=kd.dtype, device=kd.device)
        return apply_reduction(alpha * kd, denom, reduction, out_shape).to(student_logits.dtype)

    ce = cross_entropy(
        student_logits.to(cdtype),
        target,
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=label_smoothing,
    )  # validates target; 0 on ignored rows
    valid = target.reshape(-1) != ignore_index
    row = torch.where(valid, alpha * kd, torch.zeros_like(kd))
    if alpha < 1.0:
        row = row + (1.0 - alpha) * ce.reshape(-1)
    denom = valid.sum().to(row.dtype)
    return apply_reduction(row, denom, reduction, tuple(target.shape)).to(student_logits.dtype)


def teacher_free_target(target: torch.Tensor, num_classes: int, correct_prob: float = 0.9) -> torch.Tensor:
    """The virtual teacher of Tf-KD_reg: mass ``correct_prob`` on the label, the rest spread evenly.

    .. math::

        p^d_k = \\begin{cases} a & k = y \\\\ (1 - a)/(K - 1) & k \\ne y \\end{cases}

    This is label smoothing in the *off-target* convention with factor ``1 - a``, i.e. the library's
    (uniform-convention) ``label_smoothing = (1 - a) K / (K - 1)``
    (:func:`labelsmooth.convert_smoothing` with ``from_convention="off_target"``). For ``a < 1/K`` the
    label gets less mass than the other classes.

    Parameters
    ----------
    target : LongTensor of shape ``(N,)``
        Class indices in ``[0, K)``.
    num_classes : int
        K >= 2.
    correct_prob : float
        ``a`` in [0, 1].

    Returns
    -------
    Tensor of shape ``(N, K)``, float32.

    Examples
    --------
    >>> import torch
    >>> teacher_free_target(torch.tensor([1]), 4, correct_prob=0.7)
    tensor([[0.1000, 0.7000, 0.1000, 0.1000]])
    """
    from .._validation import check_labels, check_num_classes

    k = check_num_classes(num_classes)
    a = check_scalar_range("correct_prob", correct_prob, 0.0, 1.0)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    check_labels("target", target, k)
    if target.dim() != 1:
        raise ValueError(expected("target", "of shape (N,)", target))
    p = torch.full((target.shape[0], k), (1.0 - a) / (k - 1), device=target.device)
    return p.scatter(1, target.long().unsqueeze(1), a)


def teacher_free_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    correct_prob: float = 0.9,
    temperature: float = 1.0,
    alpha: float = 0.5,
    softmax_teacher: bool = False,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Teacher-free knowledge distillation, Tf-KD_reg (Yuan et al. 2020): distil from a virtual teacher.

    The teacher is :func:`teacher_free_target` ``p^d`` (mass ``a = correct_prob`` on the label,
    ``(1 - a)/(K - 1)`` elsewhere). With ``softmax_teacher=False`` (default) the loss is
    :func:`distillation_loss` with teacher log-probabilities ``log p^d``:

    .. math::

        \\ell = (1 - \\alpha)\\,\\mathrm{CE}(z, y)
              + \\alpha\\,T^2\\,\\mathrm{KL}\\big(\\mathrm{softmax}(\\log p^d / T)
                \\,\\|\\,\\mathrm{softmax}(z/T)\\big).

    At ``T = 1`` this *is* label smoothing: ``KL(p^d || q) = CE(p^d, q) - H(p^d)``, so the loss equals
    :func:`labelsmooth.cross_entropy` with ``label_smoothing = alpha (1 - a) K / (K - 1)`` minus the
    constant ``alpha H(p^d)`` — same gradient, same optimum. It is smoothing in the off-target convention
    (see :func:`labelsmooth.convert_smoothing`), reached through an explicit converter, never a flag.

    ``softmax_teacher=True`` reproduces the official code (``loss_kd_regularization`` in
    ``yuanli2333/Teacher-free-Knowledge-Distillation``), which takes a softmax of the *probabilities*
    ``p^d`` at temperature ``T`` and leaves the student untempered, without the ``T^2`` factor:

    .. math::

        \\ell = (1 - \\alpha)\\,\\mathrm{CE}(z, y)
              + \\alpha\\,\\mathrm{KL}\\big(\\mathrm{softmax}(p^d / T)\\,\\|\\,\\mathrm{softmax}(z)\\big).

    Since ``p^d`` lies in [0, 1], ``softmax(p^d / T)`` is much flatter than ``p^d`` (a = 0.99, T = 20 puts
    only ``e^{0.05}/(e^{0.05} + K - 1)`` on the label): the effective smoothing is far stronger than the
    paper's ``a`` suggests. (The official code also uses ``nn.KLDivLoss()``'s element-wise mean, dividing by
    N·K, compensated by a ``multiplier``; here the KL is summed per row and averaged over rows.)

    Parameters
    ----------
    input : Tensor of shape ``(N, C)``
        Student logits.
    target : LongTensor of shape ``(N,)``
        Class indices or ``ignore_index``.
    correct_prob : float
        ``a`` in [0, 1], the virtual teacher's mass on the label (0.9 by default; the paper uses 0.9-0.99).
    temperature : float
        ``T > 0``.
    alpha : float
        Weight of the distillation term in [0, 1].
    softmax_teacher : bool
        Reproduce the official code's softmax of the probability teacher (see above).
    ignore_index, reduction
        As in :func:`cross_entropy`.

    Raises
    ------
    ValueError
        ``temperature <= 0``; ``alpha`` or ``correct_prob`` outside [0, 1]; bad targets.

    Examples
    --------
    >>> import torch
    >>> from labelsmooth import cross_entropy, teacher_free_loss
    >>> z, y = torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])
    >>> round(teacher_free_loss(z, y, correct_prob=0.9, alpha=0.5).item(), 4)
    0.1566
    >>> official = teacher_free_loss(z, y, correct_prob=0.9, alpha=0.5, softmax_teacher=True, temperature=20)
    >>> round(official.item(), 4)
    0.4314

    References
    ----------
    Yuan, Tay, Li, Wang and Feng, "Revisiting Knowledge Distillation via Label Smoothing Regularization",
    CVPR 2020.
    """
    check_float_tensor("input", input)
    if input.dim() != 2:
        raise ValueError(expected("input", "of shape (N, C)", input))
    t_ = _check_temperature(temperature)
    alpha = check_scalar_range("alpha", alpha, 0.0, 1.0)
    check_scalar_range("correct_prob", correct_prob, 0.0, 1.0)
    check_reduction(reduction)
    if not isinstance(target, torch.Tensor):
        raise TypeError(expected("target", "to be a torch.Tensor", type(target).__name__))
    k = input.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    cdtype = compute_dtype(input.dtype)
    if not softmax_teacher:
        teacher = teacher_free_target(safe, k, correct_prob).to(device=input.device, dtype=cdtype).log()
        return distillation_loss(
            input,
            teacher,
            target,
            temperature=t_,
            alpha=alpha,
            ignore_index=ignore_index,
            reduction=reduction,
        )
    ce = cross_entropy(input.to(cdtype), target, ignore_index=ignore_index, reduction="none")
    p_d = teacher_free_target(safe, k, correct_prob).to(device=input.device, dtype=cdtype)
    kd = _kl_rows(torch.log_softmax(p_d / t_, -1), torch.log_softmax(input.to(cdtype), -1))
    row = torch.where(valid, alpha * kd + (1.0 - alpha) * ce, torch.zeros_like(kd))
    return apply_reduction(row, valid.sum().to(row.dtype), reduction, tuple(target.shape)).to(input.dtype)
