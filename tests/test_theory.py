import math

import pytest
import torch

import labelsmooth as ls
from labelsmooth import theory


@pytest.mark.parametrize("k", [2, 5, 10, 100])
@pytest.mark.parametrize("a", [0.01, 0.1, 0.5, 0.9])
def test_optimal_logit_gap_is_the_gap_of_p(k, a):
    p = ls.smooth_labels(torch.tensor([0]), k, a, dtype=torch.float64)[0]
    assert theory.optimal_logit_gap(a, k) == pytest.approx(math.log(p[0] / p[1]), rel=1e-12)
    assert theory.max_confidence(a, k) == pytest.approx(p[0].item(), rel=1e-12)


def test_gap_limits():
    assert theory.optimal_logit_gap(0.0, 10) == math.inf
    assert theory.optimal_logit_gap(-0.1, 10) == math.inf
    assert theory.optimal_logit_gap(1.0, 10) == 0.0
    assert (
        theory.optimal_logit_gap(0.05, 10)
        > theory.optimal_logit_gap(0.1, 10)
        > theory.optimal_logit_gap(0.3, 10)
    )
    with pytest.raises(ValueError, match=r"`label_smoothing` in \(-inf, 1\]"):
        theory.optimal_logit_gap(1.5, 10)
    with pytest.raises(ValueError, match=r"`num_classes` >= 2, got 1"):
        theory.optimal_logit_gap(0.1, 1)
    with pytest.raises(TypeError, match=r"`label_smoothing` to be a float"):
        theory.optimal_logit_gap(torch.tensor([0.1, 0.2]), 3)
    with pytest.raises(TypeError, match=r"`label_smoothing` to be a float"):
        theory.max_confidence(torch.tensor([0.1, 0.2]), 3)
    with pytest.raises(TypeError, match=r"`label_smoothing` to be a float"):
        theory.minimal_loss(torch.tensor([0.1, 0.2]), 3)


@pytest.mark.parametrize("a", [0.05, 0.1, 0.3])
def test_numerical_optimum_is_p_and_minimal_loss_is_entropy(a):
    k, y = 6, torch.tensor([3])
    z = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=300, tolerance_grad=1e-14, tolerance_change=1e-18)

    def closure():
        opt.zero_grad()
        loss = ls.cross_entropy(z, y, label_smoothing=a)
        loss.backward()
        return loss

    opt.step(closure)
    q = torch.softmax(z.detach(), -1)
    torch.testing.assert_close(q, theory.optimal_prediction(y, k, a).double(), rtol=1e-6, atol=1e-7)
    assert ls.cross_entropy(z.detach(), y, label_smoothing=a).item() == pytest.approx(
        theory.minimal_loss(a, k), rel=1e-9
    )
    gap = (z[0, 3] - torch.cat([z[0, :3], z[0, 4:]]).max()).item()
    assert gap == pytest.approx(theory.optimal_logit_gap(a, k), rel=1e-5)


def test_gradient_matches_autograd():
    z = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (7,))
    a = torch.rand(7, dtype=torch.float64)
    ls.cross_entropy(z, y, label_smoothing=a, reduction="sum").backward()
    g = theory.gradient(z.detach(), y, a)
    torch.testing.assert_close(g, z.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g.sum(-1), torch.zeros(7, dtype=torch.float64), atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match=r"`logits` of shape \(N, K\)"):
        theory.gradient(torch.zeros(5), torch.tensor(0), 0.1)


def test_decomposition_ce_equals_entropy_plus_kl():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(8, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (8,), generator=g)
    p = ls.smooth_labels(y, 6, 0.2, dtype=torch.float64)
    h, kl = theory.cross_entropy_decomposition(p, z)
    ce = ls.cross_entropy(z, y, label_smoothing=0.2, reduction="none")
    torch.testing.assert_close(h + kl, ce, rtol=1e-12, atol=1e-14)
    assert bool((kl >= -1e-15).all())
    torch.testing.assert_close(h, torch.full((8,), theory.minimal_loss(0.2, 6), dtype=torch.float64))
    torch.testing.assert_close(kl, theory.kl_divergence(p, torch.softmax(z, -1)), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"`p` of shape"):
        theory.cross_entropy_decomposition(p[:, :3], z)
    with pytest.raises(ValueError, match=r"`q` of shape"):
        theory.kl_divergence(p, p[:, :3])


def test_entropy_known_values():
    assert theory.entropy(torch.tensor([1.0, 0.0])).item() == 0.0
    assert theory.entropy(torch.full((4,), 0.25)).item() == pytest.approx(math.log(4))
    with pytest.raises(TypeError, match=r"`p` to be a floating-point"):
        theory.entropy(torch.tensor([1, 0]))


@pytest.mark.parametrize("a", [0.05, 0.1, 0.4])
def test_gradient_descent_gap_converges_to_closed_form(a):
    gaps = theory.descend_logit_gap(a, 10, steps=4000, lr=2.0)
    target = theory.optimal_logit_gap(a, 10)
    assert gaps[0].item() == 0.0
    assert gaps[-1].item() == pytest.approx(target, rel=1e-6)
    # it approaches monotonically and does not overshoot
    assert bool((gaps[1:] >= gaps[:-1] - 1e-12).all())
    assert gaps.max().item() <= target + 1e-9


def test_hard_targets_gap_keeps_growing():
    gaps = theory.descend_logit_gap(0.0, 10, steps=4000, lr=2.0)
    assert gaps[-1] > gaps[2000] > gaps[1000] > theory.optimal_logit_gap(0.1, 10)


def test_descend_errors():
    with pytest.raises(ValueError, match=r"`steps` to be an int >= 0, got -1"):
        theory.descend_logit_gap(0.1, 3, steps=-1)
    with pytest.raises(ValueError, match=r"`lr` > 0, got 0"):
        theory.descend_logit_gap(0.1, 3, lr=0)
    with pytest.raises(ValueError, match=r"`true_class` in \[0, 3\), got 5"):
        theory.descend_logit_gap(0.1, 3, true_class=5)
