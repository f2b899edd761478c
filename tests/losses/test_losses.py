import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import labelsmooth as ls
from reference import cross_entropy_loop

REDUCTIONS = ("mean", "sum", "none")


def _rand(shape, dtype, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def _labels(shape, k, seed=1, ignore_frac=0.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, shape, generator=g)
    if ignore_frac:
        mask = torch.rand(shape, generator=g) < ignore_frac
        y[mask] = -100
    return y


def _both(fn_ours, fn_torch, x):
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    la, lb = fn_ours(xa), fn_torch(xb)
    seed = torch.randn_like(la)
    (la * seed).sum().backward()
    (lb * seed).sum().backward()
    return la, lb, xa.grad, xb.grad


# Relative 1e-6 (float32) and 1e-12 (float64); the absolute floor covers per-row losses near 0, where
# lse - z_y cancels in any implementation (PyTorch's included) at the logits' own rounding level.
TOL = {torch.float32: dict(rtol=1e-6, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (5,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.7])
def test_parity_with_pytorch_index_targets(dtype, shape, reduction, weighted, alpha):
    k = shape[1] if len(shape) >= 2 else shape[0]
    x = _rand(shape, dtype)
    tshape = (shape[0], *shape[2:]) if len(shape) >= 2 else ()
    y = _labels(tshape, k, ignore_frac=0.25 if tshape else 0.0)
    if len(shape) >= 2:
        y.view(-1)[0] = 1  # at least one row kept
    w = _rand((k,), dtype, seed=5).abs() + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=alpha)
    la, lb, ga, gb = _both(lambda z: ls.cross_entropy(z, y, **kw), lambda z: F.cross_entropy(z, y, **kw), x)
    assert la.dtype == lb.dtype and la.shape == lb.shape
    torch.testing.assert_close(la, lb, **TOL[dtype])
    torch.testing.assert_close(ga, gb, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3)])
def test_parity_with_pytorch_probability_targets(dtype, reduction, weighted, shape):
    x = _rand(shape, dtype)
    t = torch.softmax(_rand(shape, dtype, seed=3), dim=1)
    w = _rand((shape[1],), dtype, seed=5).abs() + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.2)
    la, lb, ga, gb = _both(lambda z: ls.cross_entropy(z, t, **kw), lambda z: F.cross_entropy(z, t, **kw), x)
    torch.testing.assert_close(la, lb, **TOL[dtype])
    torch.testing.assert_close(ga, gb, **TOL[dtype])


def test_module_matches_functional_and_moves_buffers():
    w = torch.tensor([1.0, 2.0, 0.5])
    m = ls.CrossEntropyLoss(weight=w, label_smoothing=0.2, ignore_index=1)
    x, y = _rand((4, 3), torch.float32), torch.tensor([0, 1, 2, 2])
    torch.testing.assert_close(m(x, y), F.cross_entropy(x, y, weight=w, ignore_index=1, label_smoothing=0.2))
    assert "weight" in dict(m.named_buffers())
    m64 = m.to(torch.float64)
    assert m64.weight.dtype == torch.float64
    assert "label_smoothing=0.2" in repr(m)


@pytest.mark.parametrize("weight_mode", ["torch", "row"])
def test_prior_and_per_sample_alpha_match_loop_reference(weight_mode):
    k, n = 6, 8
    x = _rand((n, k), torch.float64)
    y = _labels((n,), k, ignore_frac=0.2)
    y[0] = 2
    g = torch.Generator().manual_seed(9)
    alpha = torch.rand(n, generator=g, dtype=torch.float64)
    prior = torch.softmax(torch.randn(k, generator=g, dtype=torch.float64), -1)
    per_row = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), -1)
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.2
    for a, u, ww, red in itertools.product((0.15, alpha), (None, prior, per_row), (None, w), REDUCTIONS):
        got = ls.cross_entropy(x, y, ww, reduction=red, label_smoothing=a, prior=u, weight_mode=weight_mode)
        want = cross_entropy_loop(x, y, a, ww, reduction=red, prior=u, weight_mode=weight_mode)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_gradient_is_softmax_minus_p():
    x = _rand((5, 4), torch.float64).requires_grad_(True)
    y = torch.tensor([0, 3, 1, 1, 2])
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    ls.cross_entropy(x, y, label_smoothing=0.3, prior=prior, reduction="sum").backward()
    want = ls.theory.gradient(x.detach(), y, 0.3, prior=prior)
    torch.testing.assert_close(x.grad, want, rtol=1e-12, atol=1e-14)


def test_per_sample_alpha_broadcasts_over_spatial_dims():
    x = _rand((2, 3, 4), torch.float64)
    y = _labels((2, 4), 3)
    a = torch.tensor([0.0, 0.5], dtype=torch.float64)
    got = ls.cross_entropy(x, y, reduction="none", label_smoothing=a)
    for i in range(2):
        want = F.cross_entropy(x[i : i + 1], y[i : i + 1], reduction="none", label_smoothing=float(a[i]))
        torch.testing.assert_close(got[i : i + 1], want)


def test_negative_smoothing():
    x, y = _rand((4, 5), torch.float64), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"negative smoothing needs allow_negative=True"):
        ls.cross_entropy(x, y, label_smoothing=-0.2)
    got = ls.cross_entropy(x, y, label_smoothing=-0.2, allow_negative=True)
    torch.testing.assert_close(got, cross_entropy_loop(x, y, -0.2))


def test_weight_modes_have_different_optima():
    """ "row" keeps the optimum at p; PyTorch's weighting moves it toward up-weighted classes."""
    k, a, y = 4, 0.3, torch.tensor([0])
    w = torch.tensor([1.0, 4.0, 1.0, 1.0], dtype=torch.float64)
    p = ls.smooth_labels(y, k, a, dtype=torch.float64)[0]
    optima = {}
    for mode in ("torch", "row"):
        z = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([z], lr=1, max_iter=200, tolerance_grad=1e-14, tolerance_change=1e-16)

        def closure(z=z, mode=mode, opt=opt):
            opt.zero_grad()
            loss = ls.cross_entropy(z, y, w, label_smoothing=a, weight_mode=mode)
            loss.backward()
            return loss

        opt.step(closure)
        optima[mode] = torch.softmax(z.detach()[0], -1)
    torch.testing.assert_close(optima["row"], p, rtol=1e-6, atol=1e-8)
    # torch mode: optimum is proportional to (1 - a) w_y onehot + a u * w
    tilde = (1 - a) * w[0] * torch.nn.functional.one_hot(y, k)[0] + a * w / k
    tilde = tilde / tilde.sum()
    torch.testing.assert_close(optima["torch"], tilde, rtol=1e-6, atol=1e-8)
    assert optima["torch"][1] > p[1] + 0.05  # the up-weighted class gains mass


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_and_empty_batches_behave_like_pytorch(reduction):
    x = _rand((3, 4), torch.float32).requires_grad_(True)
    y = torch.full((3,), -100)
    got = ls.cross_entropy(x, y, reduction=reduction, label_smoothing=0.1)
    want = F.cross_entropy(x, y, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(got, want, equal_nan=True)
    if reduction == "mean":
        assert math.isnan(got.item())
    got.sum().backward()
    assert x.grad is not None
    empty = torch.empty(0, 4)
    got = ls.cross_entropy(empty, torch.empty(0, dtype=torch.long), reduction=reduction, label_smoothing=0.1)
    want = F.cross_entropy(empty, torch.empty(0, dtype=torch.long), reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(got, want, equal_nan=True)


def test_extreme_logits_are_finite():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], requires_grad=True)
    y = torch.tensor([1, 2])
    loss = ls.cross_entropy(x, y, label_smoothing=0.1)
    loss.backward()
    want = F.cross_entropy(x.detach().double(), y, label_smoothing=0.1)
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss.double(), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_accumulates_in_float32(dtype):
    x = _rand((64, 50), torch.float32).to(dtype)
    y = _labels((64,), 50)
    got = ls.cross_entropy(x, y, label_smoothing=0.1)
    want = F.cross_entropy(x.double(), y, label_smoothing=0.1)
    assert got.dtype == dtype
    assert abs(got.double() - want).item() / want.item() < 1e-2


@pytest.mark.parametrize("conf", [0.9, 0.99, 0.999])
@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_confident_rows_target_gradient_no_worse_than_pytorch(conf, alpha, dtype):
    k, n = 32, 16
    y = torch.arange(n) % k
    z = torch.zeros(n, k, dtype=torch.float64)
    z[torch.arange(n), y] = math.log(conf * (k - 1) / (1 - conf))
    z = z + torch.linspace(-0.01, 0.01, k, dtype=torch.float64)  # break exact ties a little
    x = z.to(dtype)
    ref = x.double().requires_grad_(True)
    F.cross_entropy(ref, y, label_smoothing=alpha, reduction="sum").backward()

    def target_grad(fn):
        xi = x.clone().requires_grad_(True)
        fn(xi, y, label_smoothing=alpha, reduction="sum").backward()
        return xi.grad.double()[torch.arange(n), y]

    want = ref.grad[torch.arange(n), y]
    err_ours = ((target_grad(ls.cross_entropy) - want).abs() / want.abs()).max().item()
    err_torch = ((target_grad(F.cross_entropy) - want).abs() / want.abs()).max().item()
    assert err_ours <= err_torch + 1e-12, (err_ours, err_torch)
    assert err_ours < 1e-2


def test_gradcheck_float64():
    x = _rand((4, 5), torch.float64).requires_grad_(True)
    y = torch.tensor([0, 4, -100, 2])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    prior = torch.softmax(_rand((4, 5), torch.float64, seed=4), -1)
    a = torch.tensor([0.1, 0.2, 0.3, 0.0], dtype=torch.float64)
    for mode in ("torch", "row"):
        assert torch.autograd.gradcheck(
            lambda z, mode=mode: ls.cross_entropy(z, y, w, label_smoothing=a, prior=prior, weight_mode=mode),
            (x,),
        )
    t = torch.softmax(_rand((4, 5), torch.float64, seed=6), -1)
    assert torch.autograd.gradcheck(lambda z: ls.cross_entropy(z, t, w, label_smoothing=0.2), (x,))
    assert torch.autograd.gradcheck(
        lambda z: ls.cross_entropy(z, y, reduction="none", label_smoothing=0.2), (x,)
    )


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 9), n=st.integers(1, 6), a=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_permuting_classes_and_labels_changes_nothing(k, n, a, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    perm = torch.randperm(k, generator=g)
    inv = torch.argsort(perm)
    base = ls.cross_entropy(x, y, label_smoothing=a, reduction="none")
    torch.testing.assert_close(
        ls.cross_entropy(x[:, perm], inv[y], label_smoothing=a, reduction="none"), base
    )


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 9), a=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_loss_is_bounded_below_by_entropy_of_target(k, a, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, k, generator=g, dtype=torch.float64) * 4
    y = torch.randint(0, k, (3,), generator=g)
    loss = ls.cross_entropy(x, y, label_smoothing=a, reduction="none")
    assert bool((loss >= ls.theory.minimal_loss(a, k) - 1e-12).all())


X = torch.zeros(2, 3)
Y = torch.tensor([0, 1])


@pytest.mark.parametrize(
    ("call", "exc", "fragment"),
    [
        (
            lambda: ls.cross_entropy(X.long(), Y),
            TypeError,
            "`input` to be a floating-point tensor, got torch.int64",
        ),
        (lambda: ls.cross_entropy([[0.0, 1.0]], Y), TypeError, "`input` to be a torch.Tensor, got 'list'"),
        (lambda: ls.cross_entropy(X, [0, 1]), TypeError, "`target` to be a torch.Tensor"),
        (lambda: ls.cross_entropy(torch.tensor(1.0), Y), ValueError, "`input` to have a class dimension"),
        (lambda: ls.cross_entropy(torch.zeros(2, 1), Y), ValueError, "at least 2 classes"),
        (lambda: ls.cross_entropy(X, torch.tensor([0, 1, 2])), ValueError, "`target` of shape (2,)"),
        (lambda: ls.cross_entropy(X, torch.tensor([0, 3])), ValueError, "[0, 3) or ignore_index=-100, got 3"),
        (lambda: ls.cross_entropy(X, torch.tensor([0, -5])), ValueError, "got -5"),
        (
            lambda: ls.cross_entropy(X, torch.zeros(2, 4)),
            ValueError,
            "`target` of shape (2, 3) (probabilities",
        ),
        (
            lambda: ls.cross_entropy(X, Y, label_smoothing=1.5),
            ValueError,
            "`label_smoothing` in [0, 1], got 1.5",
        ),
        (lambda: ls.cross_entropy(X, Y, label_smoothing=1.5, allow_negative=True), ValueError, "(-inf, 1]"),
        (
            lambda: ls.cross_entropy(X, Y, label_smoothing=torch.tensor([0.1, 0.2, 0.3])),
            ValueError,
            "shape (2,)",
        ),
        (
            lambda: ls.cross_entropy(torch.zeros(3), torch.tensor(0), label_smoothing=torch.tensor([0.1])),
            ValueError,
            "float for unbatched",
        ),
        (
            lambda: ls.cross_entropy(X, Y, reduction="avg"),
            ValueError,
            "`reduction` to be one of 'mean', 'sum', 'none', got 'avg'",
        ),
        (
            lambda: ls.cross_entropy(X, Y, weight_mode="class"),
            ValueError,
            "`weight_mode` to be one of 'torch', 'row'",
        ),
        (lambda: ls.cross_entropy(X, Y, weight=torch.ones(4)), ValueError, "`weight` of shape (3,)"),
        (
            lambda: ls.cross_entropy(X, Y, weight=torch.ones(3, dtype=torch.long)),
            TypeError,
            "`weight` to be a floating-point",
        ),
        (
            lambda: ls.cross_entropy(X, Y, prior=torch.tensor([0.5, 0.5, 0.5])),
            ValueError,
            "`prior` to sum to 1",
        ),
        (
            lambda: ls.cross_entropy(X, Y, prior=torch.full((3, 3), 1 / 3)),
            ValueError,
            "`prior` of shape (3,) or (2, 3)",
        ),
        (
            lambda: ls.cross_entropy(torch.zeros(3), torch.tensor(0), prior=torch.full((1, 3), 1 / 3)),
            ValueError,
            "for unbatched input",
        ),
        (
            lambda: ls.cross_entropy(X, torch.zeros(2, 3), weight=torch.ones(3), weight_mode="row"),
            ValueError,
            '`weight_mode` "torch" for probability',
        ),
        (
            lambda: ls.CrossEntropyLoss(label_smoothing=2.0),
            ValueError,
            "`label_smoothing` in [0, 1], got 2.0",
        ),
        (lambda: ls.CrossEntropyLoss(reduction="x"), ValueError, "`reduction`"),
        (lambda: ls.CrossEntropyLoss(weight_mode="x"), ValueError, "`weight_mode`"),
    ],
)
def test_errors_name_argument_and_value(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value)


def test_prior_within_tolerance_is_renormalised_for_reference_and_kernel():
    x, y = _rand((6, 4), torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    exact = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    loose = exact * (1 + 5e-5)  # sums to 1.00005: accepted (tolerance 1e-4), then renormalised
    for mode in ("torch", "row"):
        torch.testing.assert_close(
            ls.cross_entropy(x, y, label_smoothing=0.3, prior=loose, weight_mode=mode),
            ls.cross_entropy(x, y, label_smoothing=0.3, prior=exact, weight_mode=mode),
            rtol=1e-14,
            atol=1e-15,
        )
    torch.testing.assert_close(
        ls.fused_cross_entropy(x, y, label_smoothing=0.3, prior=loose),
        ls.cross_entropy(x, y, label_smoothing=0.3, prior=loose),
        rtol=1e-12,
        atol=1e-14,
    )
    torch.testing.assert_close(
        ls.smooth_labels(y, 4, 1.0, prior=loose).sum(-1), torch.ones(6, dtype=torch.float64)
    )


@pytest.mark.parametrize("weight_mode", ["torch", "row"])
def test_large_logits_keep_precision_when_the_loss_is_small(weight_mode):
    # logits near 1e4 with a confident row: the loss is ~0.1, and lse - z_y must not cancel at 1e4's ulp
    z64 = torch.tensor(
        [[1e4, 1e4 - 20.0, 1e4 - 30.0, 1e4 - 25.0], [-1e4, -1e4 - 9.0, -1e4 - 3.0, -1e4 - 1.0]],
        dtype=torch.float64,
    )
    y = torch.tensor([0, 0])
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    for kw in (dict(), dict(weight=w, prior=prior)):
        want = ls.cross_entropy(
            z64,
            y,
            label_smoothing=0.1,
            reduction="none",
            weight_mode=weight_mode,
            **{k: v.double() for k, v in kw.items()},
        )
        x = z64.float().requires_grad_(True)
        got = ls.cross_entropy(x, y, label_smoothing=0.1, reduction="none", weight_mode=weight_mode, **kw)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)
        got.sum().backward()
        ref = z64.clone().requires_grad_(True)
        ls.cross_entropy(
            ref,
            y,
            label_smoothing=0.1,
            reduction="none",
            weight_mode=weight_mode,
            **{k: v.double() for k, v in kw.items()},
        ).sum().backward()
        torch.testing.assert_close(x.grad.double(), ref.grad, rtol=1e-5, atol=1e-7)
    if weight_mode == "torch":  # and PyTorch agrees
        torch.testing.assert_close(
            ls.cross_entropy(z64.float(), y, label_smoothing=0.1, reduction="none"),
            F.cross_entropy(z64.float(), y, label_smoothing=0.1, reduction="none"),
            rtol=1e-5,
            atol=0,
        )


@pytest.mark.parametrize("name", ["CEArgs", "prepare_cross_entropy_args"])
def test_internal_plumbing_left_losses_all_with_a_deprecation(name):
    import importlib

    import labelsmooth.losses as L

    ce_module = importlib.import_module("labelsmooth.losses.cross_entropy")

    assert name not in L.__all__
    with pytest.warns(DeprecationWarning, match=f"labelsmooth.losses.{name} is internal"):
        got = getattr(L, name)
    assert got is getattr(ce_module, name)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        L.not_a_name  # noqa: B018
