"""Distillation, teacher-free distillation, online smoothing, label relaxation, forward correction."""

import math

import pytest
import torch
import torch.nn.functional as F

import labelsmooth as ls
from reference import (
    distillation_loop,
    forward_corrected_loop,
    label_relaxation_loop,
    online_smoothing_means_loop,
    teacher_free_loop,
)


def _data(n=7, k=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    s = (torch.randn(n, k, generator=g, dtype=torch.float64) * scale).requires_grad_()
    t = (torch.randn(n, k, generator=g, dtype=torch.float64) * scale).requires_grad_()
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


def _value_and_grad(f, *xs):
    out = f(*xs)
    grads = torch.autograd.grad(out, xs)
    return out.detach(), grads


# --------------------------------------------------------------------------- distillation
@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("alpha,a", [(1.0, 0.0), (0.7, 0.1), (0.0, 0.2)])
def test_distillation_matches_reference_value_and_grad(temperature, alpha, a):
    s, t, y = _data()
    y[2] = -100
    for red in ("mean", "sum", "none"):

        def ours(s_, t_, red=red):
            out = ls.distillation_loss(
                s_, t_, y, temperature=temperature, alpha=alpha, label_smoothing=a, reduction=red
            )
            return out.sum()

        def ref(s_, t_, red=red):
            return distillation_loop(s_, t_, y, temperature, alpha, a, reduction=red).sum()

        v1, g1 = _value_and_grad(ours, s, t)
        v2, g2 = _value_and_grad(ref, s, t)
        torch.testing.assert_close(v1, v2)
        for a_, b_ in zip(g1, g2):
            torch.testing.assert_close(a_, b_)
    assert torch.autograd.gradcheck(
        lambda s_, t_: ls.distillation_loss(
            s_, t_, y, temperature=temperature, alpha=alpha, label_smoothing=a
        ),
        (s, t),
    )


def test_distillation_without_target_matches_torch_kl_and_scaling():
    s, t, _ = _data(k=4)
    T = 3.0
    want = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(ls.distillation_loss(s, t, temperature=T), want * T * T)
    # the gradient of the T^2-scaled soft term is (softmax(s/T) - softmax(t/T)) T / N
    g = torch.autograd.grad(ls.distillation_loss(s, t, temperature=T), s)[0]
    torch.testing.assert_close(
        g, (torch.softmax(s / T, 1) - torch.softmax(t / T, 1)).detach() * T / s.shape[0]
    )
    # spatial (N, C, d) inputs are rows along dim 1, like cross_entropy
    s3 = torch.randn(2, 4, 3, dtype=torch.float64)
    t3 = torch.randn(2, 4, 3, dtype=torch.float64)
    flat = ls.distillation_loss(
        s3.movedim(1, -1).reshape(-1, 4), t3.movedim(1, -1).reshape(-1, 4), reduction="none"
    )
    torch.testing.assert_close(ls.distillation_loss(s3, t3, reduction="none"), flat.reshape(2, 3))


def test_distillation_edge_cases_half_extreme_ignored():
    s, t, y = _data(k=3)
    # alpha = 0 is the library's cross_entropy exactly
    torch.testing.assert_close(
        ls.distillation_loss(s, t, y, alpha=0.0, label_smoothing=0.1),
        ls.cross_entropy(s, y, label_smoothing=0.1),
    )
    # all rows ignored: mean is nan (0/0, like cross_entropy), sum is 0
    yi = torch.full_like(y, -100)
    assert math.isnan(ls.distillation_loss(s, t, yi, alpha=0.5).item())
    assert ls.distillation_loss(s, t, yi, alpha=0.5, reduction="sum").item() == 0.0
    # empty batch
    e = torch.zeros(0, 3)
    assert ls.distillation_loss(e, e, reduction="sum").item() == 0.0
    # extreme logits stay finite; a teacher with exact zeros (underflow) contributes 0 for those classes
    big = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = ls.distillation_loss(big, torch.tensor([[-1e4, 1e4, 0.0]]), temperature=1.0)
    out.backward()
    assert math.isfinite(out.item()) and bool(torch.isfinite(big.grad).all())
    # half inputs accumulate in float32 and come back in the input dtype
    h = ls.distillation_loss(s.detach().half(), t.detach().half(), y, temperature=2.0, alpha=0.5)
    assert h.dtype == torch.float16
    ref = ls.distillation_loss(
        s.detach().half().double(), t.detach().half().double(), y, temperature=2.0, alpha=0.5
    )
    assert abs(h.double() - ref).item() < 2e-3 * max(1.0, ref.item())
    b = ls.distillation_loss(s.detach().bfloat16(), t.detach().bfloat16(), temperature=2.0)
    assert b.dtype == torch.bfloat16


def test_distillation_errors():
    s, t, y = _data(k=3)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="`temperature` in"):
            ls.distillation_loss(s, t, temperature=bad)
    with pytest.raises(TypeError, match="`temperature` to be a float"):
        ls.distillation_loss(s, t, temperature="2")
    with pytest.raises(
        ValueError, match=r"`teacher_logits` of the student's shape \(7, 3\) \(the student has 3 classes\)"
    ):
        ls.distillation_loss(s, torch.randn(7, 4))
    with pytest.raises(ValueError, match=r"`teacher_logits` of the student's shape"):
        ls.distillation_loss(s, torch.randn(6, 3))
    with pytest.raises(ValueError, match="`student_logits` to have a class dimension"):
        ls.distillation_loss(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(TypeError, match="`teacher_logits` to be a floating-point tensor"):
        ls.distillation_loss(s, torch.ones(7, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="`target` for alpha < 1"):
        ls.distillation_loss(s, t, alpha=0.5)
    with pytest.raises(ValueError, match=r"`alpha` in \[0, 1\]"):
        ls.distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 1\]"):
        ls.distillation_loss(s, t, y, alpha=0.5, label_smoothing=-0.1)
    with pytest.raises(ValueError, match="`reduction`"):
        ls.distillation_loss(s, t, reduction="avg")
    with pytest.raises(ValueError, match="class indices"):
        ls.distillation_loss(s, t, torch.full_like(y, 3), alpha=0.5)


# --------------------------------------------------------------------------- teacher-free
@pytest.mark.parametrize("softmax_teacher", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_teacher_free_matches_reference(softmax_teacher, temperature):
    s, _, y = _data(k=4)

    def ours(z):
        return ls.teacher_free_loss(
            z, y, correct_prob=0.8, temperature=temperature, alpha=0.6, softmax_teacher=softmax_teacher
        )

    v1, g1 = _value_and_grad(ours, s)
    v2, g2 = _value_and_grad(lambda z: teacher_free_loop(z, y, 0.8, temperature, 0.6, softmax_teacher), s)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1[0], g2[0])
    assert torch.autograd.gradcheck(ours, (s,))


def test_teacher_free_at_t1_is_off_target_smoothing():
    s, _, y = _data(k=5)
    a, alpha, k = 0.85, 0.4, 5
    tf = ls.teacher_free_loss(s, y, correct_prob=a, alpha=alpha)
    ls_equiv = alpha * ls.convert_smoothing(1 - a, k, from_convention="off_target", to_convention="uniform")
    ce = ls.cross_entropy(s, y, label_smoothing=ls_equiv)
    pd = ls.teacher_free_target(y, k, a).double()
    entropy = -(pd * pd.log()).sum(1).mean()
    torch.testing.assert_close(tf, ce - alpha * entropy)
    g_tf = torch.autograd.grad(tf, s)[0]
    g_ce = torch.autograd.grad(ce, s)[0]
    torch.testing.assert_close(g_tf, g_ce)


def test_teacher_free_target_and_errors():
    p = ls.teacher_free_target(torch.tensor([0, 2]), 3, 0.5)
    torch.testing.assert_close(p, torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]]))
    # ignored rows
    s, _, y = _data(k=3)
    y[0] = -100
    full = ls.teacher_free_loss(s, y, reduction="none")
    assert full[0].item() == 0.0
    torch.testing.assert_close(ls.teacher_free_loss(s, y), full.sum() / 6)
    off = ls.teacher_free_loss(s, y, softmax_teacher=True, reduction="none")
    assert off[0].item() == 0.0
    with pytest.raises(ValueError, match="`temperature` in"):
        ls.teacher_free_loss(s, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"`correct_prob` in \[0, 1\]"):
        ls.teacher_free_loss(s, y, correct_prob=1.2)
    with pytest.raises(ValueError, match=r"`input` of shape \(N, C\)"):
        ls.teacher_free_loss(s[0], y[0])
    with pytest.raises(ValueError, match=r"`target` of shape \(N,\)"):
        ls.teacher_free_target(torch.tensor([[0]]), 3)
    with pytest.raises(TypeError, match=r"`target` to be a torch\.Tensor"):
        ls.teacher_free_target([0, 1], 3)
    with pytest.raises(TypeError, match=r"`target` to be a torch\.Tensor"):
        ls.teacher_free_loss(s, [0, 1])


# --------------------------------------------------------------------------- label relaxation
def test_label_relaxation_matches_reference_value_and_grad():
    s, _, y = _data(n=12, k=4, scale=3.0)
    a = 0.2
    out = ls.label_relaxation_loss(s, y, a, reduction="none")
    want = label_relaxation_loop(s, y, a)
    torch.testing.assert_close(out, want)
    assert bool((out == 0).any()) and bool((out > 0).any())  # both branches are exercised
    g = torch.autograd.grad(out.sum(), s)[0]
    for detach in (True, False):  # the gradient is p - p^r whether or not p^r is detached
        torch.testing.assert_close(g, torch.autograd.grad(label_relaxation_loop(s, y, a, detach).sum(), s)[0])
    p = torch.softmax(s, 1).detach()
    active = out > 0
    rest = p.sum(1, keepdim=True) - p.gather(1, y[:, None])
    pr = (a * p / rest).scatter(1, y[:, None], 1 - a)
    torch.testing.assert_close(g[active], (p - pr)[active])
    assert torch.autograd.gradcheck(lambda z: ls.label_relaxation_loss(z, y, a), (s,))


def test_label_relaxation_edges_and_errors():
    z = torch.tensor([[20.0, 0.0, 0.0], [-30.0, 30.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0])
    out = ls.label_relaxation_loss(z, y, 0.1, reduction="none")
    assert out[0].item() == 0.0 and math.isfinite(out[1].item())
    out.sum().backward()
    assert bool(torch.isfinite(z.grad).all())
    h = ls.label_relaxation_loss(z.detach().half(), y, 0.1)
    assert h.dtype == torch.float16
    assert math.isnan(ls.label_relaxation_loss(z, torch.tensor([-100, -100])).item())
    assert ls.label_relaxation_loss(z, torch.tensor([-100, 0]), reduction="sum").item() == pytest.approx(
        out[1].item(), rel=1e-5
    )
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"`relaxation` in \(0, 1\)"):
            ls.label_relaxation_loss(z, y, bad)
    with pytest.raises(ValueError, match=r"`target` of shape \(2,\)"):
        ls.label_relaxation_loss(z, torch.tensor([0]))
    with pytest.raises(ValueError, match="class indices"):
        ls.label_relaxation_loss(z, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ls.label_relaxation_loss(torch.zeros(2, 1), y)


# --------------------------------------------------------------------------- forward correction
def test_forward_correction_matches_reference_value_and_grad():
    s, _, y = _data(n=9, k=4)
    g = torch.Generator().manual_seed(3)
    T = torch.rand(4, 4, generator=g, dtype=torch.float64) + torch.eye(4, dtype=torch.float64) * 2
    T = T / T.sum(1, keepdim=True)
    T[0, 3] = 0.0
    T[0] = T[0] / T[0].sum()
    out = ls.forward_corrected_loss(s, y, T, reduction="none")
    want = forward_corrected_loop(s, y, T)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), s)[0], torch.autograd.grad(want.sum(), s)[0])
    assert torch.autograd.gradcheck(lambda z: ls.forward_corrected_loss(z, y, T), (s,))
    # T = I is cross-entropy
    torch.testing.assert_close(
        ls.forward_corrected_loss(s, y, torch.eye(4, dtype=torch.float64)), F.cross_entropy(s, y)
    )


def test_forward_correction_extremes_and_ignore():
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    y = torch.tensor([1, -100])
    T = ls.symmetric_transition(3, 0.3)
    out = ls.forward_corrected_loss(z, y, T, reduction="none")
    assert out[1].item() == 0.0
    assert out[0].item() == pytest.approx(-math.log(0.15), rel=1e-5)  # p = e_0: (T^T p)_1 = T[0, 1]
    out.sum().backward()
    assert bool(torch.isfinite(z.grad).all())
    h = ls.forward_corrected_loss(z.detach().bfloat16(), y, T)
    assert h.dtype == torch.bfloat16
    assert math.isnan(ls.forward_corrected_loss(z, torch.tensor([-100, -100]), T).item())


def test_forward_correction_errors_and_symmetric_transition():
    T = ls.symmetric_transition(4, 0.6, dtype=torch.float64)
    torch.testing.assert_close(T.sum(1), torch.ones(4, dtype=torch.float64))
    assert T[0, 0].item() == pytest.approx(0.4) and T[0, 1].item() == pytest.approx(0.2)
    z, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    bad = T.clone()
    bad[1, 1] += 0.1
    with pytest.raises(ValueError, match="`transition` to sum to 1 over its last dimension"):
        ls.forward_corrected_loss(z, y, bad)
    with pytest.raises(ValueError, match="`transition` to sum to 1"):
        ls.forward_corrected_loss(z, y, T.T.contiguous() * torch.tensor([1.0, 1.0, 1.0, 2.0]))
    neg = torch.eye(4)
    neg[0, 0], neg[0, 1] = 1.5, -0.5
    with pytest.raises(ValueError, match="`transition` to be non-negative"):
        ls.forward_corrected_loss(z, y, neg)
    with pytest.raises(ValueError, match=r"`transition` of shape \(4, 4\)"):
        ls.forward_corrected_loss(z, y, torch.eye(3))
    with pytest.raises(TypeError, match="`transition` to be a floating-point tensor"):
        ls.forward_corrected_loss(z, y, torch.eye(4).long())
    with pytest.raises(ValueError, match=r"`noise_rate` in \[0, 1\]"):
        ls.symmetric_transition(4, 1.2)
    with pytest.raises(ValueError, match="`num_classes` >= 2"):
        ls.symmetric_transition(1, 0.1)


# --------------------------------------------------------------------------- online label smoothing
def test_online_label_smoothing_loss_update_and_state():
    k = 4
    ols = ls.OnlineLabelSmoothing(k, label_smoothing=0.2, alpha=0.3)
    init = ols.soft_labels.clone()
    torch.testing.assert_close(init, ls.smooth_labels(torch.arange(k), k, 0.2))
    s, _, y = _data(n=10, k=k)
    # the loss: alpha CE + (1 - alpha) CE(S[y], q)
    got = ols(s, y)
    want = 0.3 * F.cross_entropy(s, y) + 0.7 * F.cross_entropy(s, init.double()[y])
    torch.testing.assert_close(got, want)
    g = torch.autograd.grad(got, s)[0]
    torch.testing.assert_close(g, torch.autograd.grad(want, s)[0])
    assert torch.autograd.gradcheck(lambda z: ols(z, y), (s,))
    # one epoch of updates in two batches equals the reference means; unseen classes keep their row
    y2 = y.clone()
    y2[y2 == 3] = 0  # class 3 never appears
    batches = [(s[:5].detach(), y2[:5]), (s[5:].detach(), y2[5:])]
    for z, t in batches:
        ols.update(z, t)
    ols.step_epoch()
    want_s = online_smoothing_means_loop(batches, k, init)
    torch.testing.assert_close(ols.soft_labels.double(), want_s, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ols.soft_labels[3], init[3])
    assert ols.count.sum().item() == 0 and ols.prob_sum.abs().sum().item() == 0
    # state round-trips through state_dict, mid-epoch accumulators included
    ols.update(s.detach(), y)
    other = ls.OnlineLabelSmoothing(k)
    other.load_state_dict(ols.state_dict())
    assert set(ols.state_dict()) == {"soft_labels", "prob_sum", "count"}
    for name in ("soft_labels", "prob_sum", "count"):
        torch.testing.assert_close(getattr(other, name), getattr(ols, name))


def test_online_label_smoothing_ignore_half_and_errors():
    ols = ls.OnlineLabelSmoothing(3, label_smoothing=0.1)
    z = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    y = torch.tensor([0, -100])
    per = ls.OnlineLabelSmoothing(3, label_smoothing=0.1, reduction="none")(z, y)
    assert per[1].item() == 0.0
    assert ols(z, y).item() == pytest.approx(per[0].item())
    ols.update(z, y)
    assert ols.count.tolist() == [1.0, 0.0, 0.0]
    assert ols(z.half(), y).dtype == torch.float16
    with pytest.raises(ValueError, match=r"`input` of shape \(N, 3\)"):
        ols(torch.zeros(2, 4), y)
    with pytest.raises(ValueError, match=r"`input` of shape \(N, 3\)"):
        ols.update(torch.zeros(2, 4), y)
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 1\]"):
        ls.OnlineLabelSmoothing(3, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"`alpha` in \[0, 1\]"):
        ls.OnlineLabelSmoothing(3, alpha=-0.1)
    with pytest.raises(TypeError, match="`num_classes` to be an int"):
        ls.OnlineLabelSmoothing(3.0)
    with pytest.raises(ValueError, match="`reduction`"):
        ls.OnlineLabelSmoothing(3, reduction="avg")


def test_online_label_smoothing_update_after_double():
    # .double() makes the count buffer float64; update() used to add float32 ones to it and raise
    ols = ls.OnlineLabelSmoothing(3).double()
    z = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
    ols.update(z, torch.tensor([0, 1]))
    assert ols.count.tolist() == [1.0, 1.0, 0.0]
    ols.step_epoch()
    torch.testing.assert_close(ols.soft_labels[0], torch.softmax(z[0], 0))
