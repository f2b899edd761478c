"""Binary smoothing, the confidence penalty and the focal loss."""

import math

import pytest
import torch
import torch.nn.functional as F

import labelsmooth as ls


def test_bce_smoothing_toward_half_is_k2_chapter_formula():
    x = torch.randn(6, 3, dtype=torch.float64)
    t = (torch.rand(6, 3) > 0.5).double()
    a = 0.2
    got = ls.binary_cross_entropy_with_logits(x, t, label_smoothing=a, reduction="none")
    # two-class view: logits [0, x], target class t, smoothing a -> the K = 2 multiclass loss
    z2 = torch.stack([torch.zeros_like(x), x], -1).reshape(-1, 2)
    want = F.cross_entropy(z2, t.long().reshape(-1), label_smoothing=a, reduction="none").reshape(6, 3)
    torch.testing.assert_close(got, want)


def test_bce_one_sided_and_options_match_pytorch():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(5, 4) > 0.5).double()
    w = torch.rand(4, dtype=torch.float64)
    pw = torch.rand(4, dtype=torch.float64) + 0.5
    for red in ("mean", "sum", "none"):
        got = ls.binary_cross_entropy_with_logits(x, t, w, red, pw, 0.1, one_sided=True)
        want = F.binary_cross_entropy_with_logits(x, t * 0.9, w, reduction=red, pos_weight=pw)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(
            ls.binary_cross_entropy_with_logits(x, t, w, red, pw, 0.0),
            F.binary_cross_entropy_with_logits(x, t, w, reduction=red, pos_weight=pw),
        )
    assert torch.autograd.gradcheck(
        lambda z: ls.binary_cross_entropy_with_logits(z, t, label_smoothing=0.3), (x,)
    )
    m = ls.BCEWithLogitsLoss(label_smoothing=0.1, one_sided=True)
    torch.testing.assert_close(m(x, t), F.binary_cross_entropy_with_logits(x, t * 0.9))


def test_bce_half_and_errors():
    x = torch.randn(8).to(torch.bfloat16)
    t = torch.ones(8, dtype=torch.bfloat16)
    out = ls.binary_cross_entropy_with_logits(x, t, label_smoothing=0.1)
    assert out.dtype == torch.bfloat16
    want = F.binary_cross_entropy_with_logits(x.double(), t.double() * 0.9 + 0.05)
    assert abs(out.double() - want).item() < 1e-2 * want.item()
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 1\], got -0.1"):
        ls.binary_cross_entropy_with_logits(x, t, label_smoothing=-0.1)
    with pytest.raises(ValueError, match=r"`target` of shape \(8,\)"):
        ls.binary_cross_entropy_with_logits(x, t[:4])
    with pytest.raises(TypeError, match=r"`target` to be a floating-point tensor"):
        ls.binary_cross_entropy_with_logits(x, t.long())
    with pytest.raises(TypeError, match=r"`input` to be a floating-point tensor"):
        ls.binary_cross_entropy_with_logits(x.long(), t)
    with pytest.raises(ValueError, match=r"`label_smoothing`"):
        ls.BCEWithLogitsLoss(label_smoothing=3.0)


def test_confidence_penalty_definition_and_gradcheck():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, -100, 3, 4, 2])
    w = torch.rand(5, dtype=torch.float64) + 0.5
    got = ls.confidence_penalty(x, y, beta=0.3, weight=w, reduction="none")
    q = torch.softmax(x, -1)
    h = -(q * q.log()).sum(-1)
    keep = y != -100
    ce = F.cross_entropy(x, y, reduction="none")
    want = torch.where(keep, w[y.clamp_min(0)] * (ce - 0.3 * h), torch.zeros(()))
    torch.testing.assert_close(got, want)
    mean = ls.confidence_penalty(x, y, beta=0.3, weight=w)
    torch.testing.assert_close(mean, want.sum() / w[y[keep]].sum())
    torch.testing.assert_close(ls.confidence_penalty(x, y, beta=0.0), F.cross_entropy(x, y))
    assert torch.autograd.gradcheck(lambda z: ls.confidence_penalty(z, y, beta=0.5), (x,))
    torch.testing.assert_close(ls.ConfidencePenaltyLoss(0.3, weight=w)(x, y), mean)
    with pytest.raises(ValueError, match=r"`beta` >= 0, got -1"):
        ls.confidence_penalty(x, y, beta=-1)
    with pytest.raises(ValueError, match=r"`beta` >= 0"):
        ls.ConfidencePenaltyLoss(beta=-0.5)
    with pytest.raises(TypeError, match=r"`target` to hold integer class indices"):
        ls.confidence_penalty(x, torch.softmax(x, -1).detach())


def test_focal_definition_flsd_and_gradcheck():
    x = torch.randn(8, 4, dtype=torch.float64, requires_grad=True) * 2
    x = x.detach().requires_grad_(True)
    y = torch.tensor([0, 1, 2, 3, 0, 1, -100, 3])
    keep = y != -100
    logq = torch.log_softmax(x, -1)[torch.arange(8), y.clamp_min(0)]
    q = logq.exp()
    want = torch.where(keep, -((1 - q) ** 2) * logq, torch.zeros(()))
    torch.testing.assert_close(ls.focal_loss(x, y, 2.0, reduction="none"), want)
    torch.testing.assert_close(ls.focal_loss(x, y, 0.0), F.cross_entropy(x, y))
    g = torch.where(q < 0.2, 5.0, 3.0).double()
    want53 = torch.where(keep, -((1 - q) ** g) * logq, torch.zeros(()))
    torch.testing.assert_close(ls.focal_loss(x, y, "flsd-53", reduction="none"), want53)
    torch.testing.assert_close(ls.focal_loss(x, y, g, reduction="none"), want53)
    assert torch.autograd.gradcheck(lambda z: ls.focal_loss(z, y, 2.0), (x,))
    assert torch.autograd.gradcheck(lambda z: ls.focal_loss(z, y, 0.5), (x,))
    torch.testing.assert_close(ls.FocalLoss(gamma=2.0)(x, y), ls.focal_loss(x, y, 2.0))


def test_focal_saturated_rows_are_finite():
    x = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    for gamma in (0.5, 1.0, 2.0):
        loss = ls.focal_loss(x, torch.tensor([0]), gamma)
        loss.backward()
        assert math.isfinite(loss.item()) and bool(torch.isfinite(x.grad).all())
        x.grad = None


def test_focal_errors():
    x, y = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(
        ValueError, match=r"`gamma` to be a float >= 0, a tensor, or \"flsd-53\", got 'flsd-99'"
    ):
        ls.focal_loss(x, y, "flsd-99")
    with pytest.raises(ValueError, match=r"`gamma` to be a float >= 0.*got -1"):
        ls.focal_loss(x, y, -1)
    with pytest.raises(ValueError, match=r"`gamma` >= 0"):
        ls.focal_loss(x, y, torch.tensor([-1.0, 1.0]))
    with pytest.raises(ValueError, match=r"`gamma` to be a scalar or of shape \(2,\)"):
        ls.focal_loss(x, y, torch.tensor([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"`reduction`"):
        ls.FocalLoss(reduction="bad")
    with pytest.raises(ValueError, match=r"`gamma` to be a float >= 0.*got -2"):
        ls.FocalLoss(gamma=-2)
    with pytest.raises(ValueError, match=r"got 'focal'"):
        ls.FocalLoss(gamma="focal")
