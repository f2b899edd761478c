"""discriminator_loss / generator_loss against float64 references, gradcheck, errors; theory D*."""

from __future__ import annotations

import math

import pytest
import torch

import labelsmooth
from labelsmooth import binary_cross_entropy_with_logits, discriminator_loss, generator_loss
from labelsmooth.theory import optimal_discriminator


def _ref_bce(z: torch.Tensor, t: float) -> torch.Tensor:
    z = z.double()
    p = 1 / (1 + torch.exp(-z))
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


@pytest.mark.parametrize("a,b", [(1.0, 0.0), (0.9, 0.0), (0.8, 0.0), (0.9, 0.1), (0.5, 0.5)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_discriminator_loss_matches_float64_reference(a, b, reduction):
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(7, generator=g) * 3, torch.randn(5, generator=g) * 3
    got = discriminator_loss(r, f, real_target=a, fake_target=b, reduction=reduction)
    red = torch.mean if reduction == "mean" else torch.sum
    want = red(_ref_bce(r, a)) + red(_ref_bce(f, b))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_discriminator_loss_equals_the_library_bce_conventions():
    g = torch.Generator().manual_seed(1)
    r, f = torch.randn(6, generator=g), torch.randn(6, generator=g)
    one, zero = torch.ones(6), torch.zeros(6)
    one_sided = binary_cross_entropy_with_logits(r, one, label_smoothing=0.1, one_sided=True) + (
        binary_cross_entropy_with_logits(f, zero, label_smoothing=0.1, one_sided=True)
    )
    two_sided = binary_cross_entropy_with_logits(r, one, label_smoothing=0.2) + (
        binary_cross_entropy_with_logits(f, zero, label_smoothing=0.2)
    )
    assert discriminator_loss(r, f, real_target=0.9).item() == pytest.approx(one_sided.item(), rel=1e-6)
    got = discriminator_loss(r, f, real_target=0.9, fake_target=0.1)
    assert got.item() == pytest.approx(two_sided.item(), rel=1e-6)


def test_extreme_logits_stay_finite_and_exact():
    r = torch.tensor([200.0, -200.0])
    f = torch.tensor([-200.0, 200.0])
    got = discriminator_loss(r, f, real_target=0.9, fake_target=0.1)
    # per side: mean of (1-a)*200 and a*200 = 100
    assert got.item() == pytest.approx(200.0, rel=1e-6)
    assert generator_loss(torch.tensor([-300.0])).item() == pytest.approx(300.0)


def test_half_inputs_are_computed_in_float32():
    r, f = torch.tensor([2.0, 3.0], dtype=torch.bfloat16), torch.tensor([-1.0, 0.5], dtype=torch.bfloat16)
    got = discriminator_loss(r, f, real_target=0.9)
    assert got.dtype == torch.bfloat16
    assert got.float().item() == pytest.approx(
        discriminator_loss(r.float(), f.float(), real_target=0.9).item(), rel=1e-2
    )


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    r = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)
    f = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: discriminator_loss(x, y, real_target=0.9, fake_target=0.1), (r, f)
    )
    assert torch.autograd.gradcheck(lambda y: generator_loss(y, reduction="sum"), (f,))


def test_gradient_on_real_logits_is_sigmoid_minus_target():
    r = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    discriminator_loss(r, torch.zeros(1, dtype=torch.float64), real_target=0.9, reduction="sum").backward()
    assert torch.allclose(r.grad, torch.sigmoid(r.detach()) - 0.9)


def test_generator_loss_reference():
    f = torch.tensor([-1.0, 0.5, 4.0])
    assert generator_loss(f).item() == pytest.approx(_ref_bce(f, 1.0).mean().item(), rel=1e-6)
    assert generator_loss(f, reduction="sum").item() == pytest.approx(_ref_bce(f, 1.0).sum().item(), rel=1e-6)


def test_exported():
    assert labelsmooth.discriminator_loss is discriminator_loss
    assert labelsmooth.generator_loss is generator_loss
    assert "optimal_discriminator" in labelsmooth.theory.__all__


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(real_target=1.2), ValueError, "`real_target` in \\[0, 1\\], got 1.2"),
        (dict(fake_target=-0.1), ValueError, "`fake_target` in \\[0, 1\\]"),
        (dict(real_target="0.9"), TypeError, "`real_target` to be a float"),
        (dict(reduction="none"), ValueError, "`reduction` to be one of 'mean', 'sum'"),
    ],
)
def test_discriminator_loss_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        discriminator_loss(torch.zeros(2), torch.zeros(2), **kwargs)


def test_discriminator_loss_type_errors():
    with pytest.raises(TypeError, match="`real_logits` to be a floating-point tensor"):
        discriminator_loss(torch.zeros(2, dtype=torch.long), torch.zeros(2))
    with pytest.raises(TypeError, match=r"`fake_logits` to be a torch\.Tensor"):
        discriminator_loss(torch.zeros(2), [0.0])
    with pytest.raises(ValueError, match=r"`fake_logits` of dtype torch\.float32"):
        discriminator_loss(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="`fake_logits` to be a floating-point tensor"):
        generator_loss(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="`reduction`"):
        generator_loss(torch.zeros(2), reduction="none")


# ------------------------------------------------------------------ D*
def test_optimal_discriminator_limits():
    pd = torch.tensor([1.0, 0.0, 0.3, 0.0], dtype=torch.float64)
    pg = torch.tensor([0.0, 1.0, 0.3, 0.0], dtype=torch.float64)
    d = optimal_discriminator(pd, pg, 0.9, 0.1)
    assert d[:3].tolist() == pytest.approx([0.9, 0.1, 0.5])
    assert math.isnan(d[3].item())  # no mass: D is free
    assert optimal_discriminator(pd, pg)[:3].tolist() == pytest.approx([1.0, 0.0, 0.5])
    # one-sided keeps D* = 0 where only the generator puts mass; two-sided does not
    assert optimal_discriminator(pd, pg, 0.9, 0.0)[1].item() == 0.0


def test_optimal_discriminator_is_reached_by_gradient_descent_on_1d_densities():
    """A per-bin discriminator (one free logit per bin: as flexible as it gets) trained by Adam with
    discriminator_loss on samples of N(0, 1) (data) and N(1.5, 0.7^2) (model) converges to the closed form
    computed from the same samples' bin frequencies, and close to it from the true densities."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only contend on a loaded machine
    try:
        _descend_to_d_star()
    finally:
        torch.set_num_threads(threads)


def _descend_to_d_star():
    g = torch.Generator().manual_seed(0)
    n, edges = 8_000, torch.linspace(-3.0, 4.0, 15, dtype=torch.float64)
    real = torch.randn(n, generator=g, dtype=torch.float64)
    fake = 1.5 + 0.7 * torch.randn(n, generator=g, dtype=torch.float64)
    real, fake = real[(real > -3) & (real < 4)], fake[(fake > -3) & (fake < 4)]
    rb, fb = torch.bucketize(real, edges) - 1, torch.bucketize(fake, edges) - 1
    nb = edges.numel() - 1
    for a, b in [(1.0, 0.0), (0.9, 0.0), (0.9, 0.1)]:
        logit = torch.zeros(nb, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([logit], lr=0.2)
        for _ in range(250):
            loss = discriminator_loss(logit[rb], logit[fb], real_target=a, fake_target=b)
            opt.zero_grad()
            loss.backward()
            opt.step()
        pd = torch.bincount(rb, minlength=nb).double() / real.numel()
        pg = torch.bincount(fb, minlength=nb).double() / fake.numel()
        want = optimal_discriminator(pd, pg, a, b)
        seen = (pd + pg) > 2e-3
        assert torch.allclose(torch.sigmoid(logit.detach())[seen], want[seen], atol=2e-3)
        # against the true densities at the bin centres (sampling error only)
        mid = (edges[:-1] + edges[1:]) / 2
        true_pd = torch.exp(-(mid**2) / 2)
        true_pg = torch.exp(-((mid - 1.5) ** 2) / (2 * 0.49)) / 0.7
        core = (true_pd + true_pg) > 0.3
        assert torch.allclose(want[core], optimal_discriminator(true_pd, true_pg, a, b)[core], atol=0.05)


def test_optimal_discriminator_errors():
    with pytest.raises(ValueError, match="`p_data` to be non-negative"):
        optimal_discriminator(torch.tensor([-0.1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="`fake_target` in \\[0, 1\\]"):
        optimal_discriminator(torch.tensor([0.1]), torch.tensor([1.0]), 1.0, 2.0)
    with pytest.raises(TypeError, match="`p_model` to be a floating-point tensor"):
        optimal_discriminator(torch.tensor([0.1]), torch.tensor([1]))
