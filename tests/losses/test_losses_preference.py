"""DPO, cDPO and rDPO (preference_loss), the implied rewards, and the cDPO optimum of labelsmooth.theory."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import labelsmooth as ls
from labelsmooth import preference_loss, preference_rewards, theory
from reference import dpo_trl_loop


def _logps(n=9, seed=0, scale=5.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return tuple((torch.randn(n, generator=g, dtype=torch.float64) * scale - 20).to(dtype) for _ in range(4))


@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0])
@pytest.mark.parametrize(
    ("e", "robust"), [(0.0, False), (0.1, False), (0.3, False), (0.1, True), (0.45, True)]
)
def test_matches_the_trl_formulas_in_float64(beta, e, robust):
    pc, pr, rc, rr = _logps()
    got = preference_loss(pc, pr, rc, rr, beta=beta, label_smoothing=e, robust=robust)
    want, chosen, rejected = dpo_trl_loop(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), beta, e, robust)
    assert got.dtype == torch.float64 and got.item() == pytest.approx(want, rel=1e-12, abs=1e-14)
    r = preference_rewards(pc, pr, rc, rr, beta=beta)
    assert r.chosen.tolist() == pytest.approx(chosen, rel=1e-12)
    assert r.rejected.tolist() == pytest.approx(rejected, rel=1e-12)
    torch.testing.assert_close(r.margins, r.chosen - r.rejected)
    assert r.accuracies.tolist() == [float(c > j) for c, j in zip(chosen, rejected)]


@pytest.mark.parametrize("robust", [False, True])
def test_zero_smoothing_is_plain_dpo(robust):
    pc, pr, rc, rr = _logps()
    h = (pc - rc) - (pr - rr)
    dpo = -torch.nn.functional.logsigmoid(0.1 * h)
    got = preference_loss(pc, pr, rc, rr, label_smoothing=0.0, robust=robust, reduction="none")
    torch.testing.assert_close(got, dpo, rtol=0, atol=0)
    torch.testing.assert_close(preference_loss(pc, pr, rc, rr, reduction="sum"), dpo.sum())


@pytest.mark.parametrize(("e", "robust"), [(0.0, False), (0.2, False), (0.2, True)])
def test_gradient_matches_closed_form_and_gradcheck(e, robust):
    pc, pr, rc, rr = (t.requires_grad_(True) for t in _logps(5))
    beta = 0.3
    loss = preference_loss(pc, pr, rc, rr, beta=beta, label_smoothing=e, robust=robust, reduction="sum")
    g_pc, g_pr = torch.autograd.grad(loss, (pc, pr))
    z = (beta * ((pc - rc) - (pr - rr))).detach()
    s = torch.sigmoid(z)
    # d/dz: cDPO  -(1-e) sigma(-z) + e sigma(z) = s - (1 - e);  rDPO  [-(1-e)(1-s) - e s] / (1 - 2e)
    dz = (-(1 - e) * (1 - s) - e * s) / (1 - 2 * e) if robust else s - (1 - e)
    torch.testing.assert_close(g_pc, beta * dz)
    torch.testing.assert_close(g_pr, -beta * dz)
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: preference_loss(a, b, c, d, beta=beta, label_smoothing=e, robust=robust),
        (pc, pr, rc.requires_grad_(True), rr.requires_grad_(True)),
    )


@settings(max_examples=40, deadline=None)
@given(h=st.floats(-1e6, 1e6, allow_nan=False), e=st.floats(0.0, 0.49))
def test_stable_for_large_margins(h, e):
    zero = torch.zeros(1, dtype=torch.float64)
    x = torch.tensor([h], dtype=torch.float64, requires_grad=True)
    for robust in (False, True):
        loss = preference_loss(x, zero, zero, zero, beta=1.0, label_smoothing=e, robust=robust)
        (g,) = torch.autograd.grad(loss, x)
        assert math.isfinite(loss.item()) and math.isfinite(g.item())
        want, _, _ = dpo_trl_loop([h], [0.0], [0.0], [0.0], 1.0, e, robust)
        assert loss.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_float32_extreme_and_half_inputs():
    zero = torch.zeros(2)
    x = torch.tensor([1e30, -1e30])
    loss = preference_loss(x, zero, zero, zero, beta=1.0, label_smoothing=0.1, reduction="none")
    assert loss[0].item() == pytest.approx(0.1e30, rel=1e-6) and loss[1].item() == pytest.approx(
        0.9e30, rel=1e-6
    )
    pc, pr, rc, rr = _logps(dtype=torch.bfloat16)
    out = preference_loss(pc, pr, rc, rr, label_smoothing=0.2)
    assert out.dtype == torch.bfloat16
    ref = preference_loss(*(t.double() for t in (pc, pr, rc, rr)), label_smoothing=0.2)
    assert out.double().item() == pytest.approx(ref.item(), rel=1e-2)


def test_robust_at_one_half_is_a_clear_error():
    a = _logps()
    with pytest.raises(
        ValueError, match=r"in \[0, 0.5\) \(robust=True divides by 1 - 2e, which is zero at e = 0.5\)"
    ):
        preference_loss(*a, label_smoothing=0.5, robust=True)
    with pytest.raises(ValueError, match="no preference is left to learn"):
        preference_loss(*a, label_smoothing=0.5)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"label_smoothing": -0.1}, ValueError, r"`label_smoothing` in \[0, 0.5\), got -0.1"),
        ({"label_smoothing": 0.7}, ValueError, r"`label_smoothing` in \[0, 0.5\), got 0.7"),
        ({"label_smoothing": math.nan}, ValueError, "`label_smoothing` in"),
        ({"label_smoothing": torch.tensor(0.1)}, TypeError, "`label_smoothing` to be a float"),
        ({"beta": 0.0}, ValueError, "`beta` > 0"),
        ({"beta": -1.0}, ValueError, "`beta` > 0"),
        ({"beta": "0.1"}, TypeError, "`beta` to be a float"),
        ({"robust": 1}, TypeError, "`robust` to be a bool"),
        ({"reduction": "batchmean"}, ValueError, "`reduction` to be one of"),
    ],
)
def test_rejects_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        preference_loss(*_logps(), **kwargs)


def test_rejects_mismatched_shapes_and_integer_logps():
    pc, pr, rc, rr = _logps()
    with pytest.raises(
        ValueError, match=r"`reference_rejected_logps` of shape \(9,\) like policy_chosen_logps"
    ):
        preference_loss(pc, pr, rc, rr[:5])
    with pytest.raises(ValueError, match="`policy_rejected_logps` of shape"):
        preference_rewards(pc, pr.reshape(3, 3), rc, rr)
    with pytest.raises(TypeError, match="`policy_chosen_logps` to be a floating-point tensor"):
        preference_loss(pc.long(), pr, rc, rr)
    with pytest.raises(TypeError, match=r"`reference_chosen_logps` to be a torch\.Tensor"):
        preference_loss(pc, pr, [0.0] * 9, rr)


# --- theory: the cDPO optimum ---


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("e", [0.01, 0.1, 0.25, 0.4])
def test_cdpo_margin_is_where_the_gradient_vanishes_and_descent_finds_it(e, beta):
    h_star = theory.cdpo_optimal_margin(e, beta)
    assert h_star == pytest.approx(math.log((1 - e) / e) / beta, rel=1e-12)
    zero = torch.zeros(1, dtype=torch.float64)
    x = torch.tensor([h_star], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(preference_loss(x, zero, zero, zero, beta=beta, label_smoothing=e), x)
    assert abs(g.item()) < 1e-12
    h = theory.descend_preference_margin(e, beta, steps=3000)
    assert h.shape == (3001,) and h[-1].item() == pytest.approx(h_star, rel=1e-6)
    assert bool((h[1:] >= h[:-1] - 1e-12).all())  # monotone approach from h = 0


def test_dpo_and_rdpo_margins_grow_without_bound():
    dpo = theory.descend_preference_margin(0.0, 0.1, steps=4000)
    assert dpo[-1] > dpo[2000] > dpo[1000] > 0 and dpo[-1].item() > 50
    rdpo = theory.descend_preference_margin(0.2, 0.1, steps=4000, robust=True)
    assert rdpo[-1].item() > 2 * rdpo[2000].item() * 0.9 and rdpo[
        -1
    ].item() > 10 * theory.cdpo_optimal_margin(0.2, 0.1)


def test_cdpo_margin_limits_and_errors():
    assert theory.cdpo_optimal_margin(0.0, 0.1) == math.inf
    assert theory.cdpo_optimal_margin(0.5, 0.1) == 0.0
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 0.5\]"):
        theory.cdpo_optimal_margin(0.6, 0.1)
    with pytest.raises(ValueError, match="`beta` in"):
        theory.cdpo_optimal_margin(0.1, 0.0)
    with pytest.raises(ValueError, match="`steps` to be an int >= 0"):
        theory.descend_preference_margin(0.1, 0.1, steps=-1)
    with pytest.raises(ValueError, match="`lr` > 0"):
        theory.descend_preference_margin(0.1, 0.1, lr=0.0)
    with pytest.raises(ValueError, match=r"divides by 1 - 2e"):
        theory.descend_preference_margin(0.5, 0.1, robust=True)
    assert ls.losses.preference_loss is preference_loss
