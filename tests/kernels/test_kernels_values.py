"""Fast paths equal the reference: labelsmooth.kernels.fused_cross_entropy / linear_cross_entropy against
float64 references, PyTorch and a naive loop, in float32 and half precision, gradchecks, the fused linear
variant and torch.compile. Edge cases are in test_kernels_edge_cases.py, bad input in
test_kernels_errors.py."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from kernel_problems import (
    REDUCTIONS,
    VARIANTS,
    _cast,
    _dense,
    _gen,
    _linear_problem,
    _loss_and_grad,
    _options,
    _problem,
    _rel,
)

from labelsmooth.kernels import _core, fused_cross_entropy, linear_cross_entropy
from labelsmooth.kernels.chunked import _apply
from labelsmooth.losses import cross_entropy
from reference import cross_entropy_dense64, cross_entropy_loop, seeded_property


# ---------------------------------------------------------------- agreement with the references
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("v", [11, 37])  # rows shorter / longer than SOFTMAX_MIN_CLASSES
def test_float32_matches_float64_reference(variant, reduction, v):
    assert 11 < _core.SOFTMAX_MIN_CLASSES <= 37
    z64, y, g = _problem(v=v)
    kw = _options(variant, *z64.shape, g)
    go = (
        torch.rand(z64.shape[0], generator=g, dtype=torch.float64)
        if reduction == "none"
        else torch.tensor(0.7)
    )
    ref_loss, ref_grad = _loss_and_grad(
        lambda z, y, **k: _dense(z, y, k.pop("reduction"), k), z64, y, reduction, kw, go
    )
    loss, grad = _loss_and_grad(fused_cross_entropy, z64.float(), y, reduction, _cast(kw, torch.float32), go)
    assert loss.dtype == torch.float32 and grad.dtype == torch.float32
    assert _rel(loss, ref_loss) < 1e-5
    assert _rel(grad, ref_grad) < 1e-5
    # and the library's reference loss agrees in value and gradient
    lib_loss, lib_grad = _loss_and_grad(
        cross_entropy, z64.float(), y, reduction, _cast(kw, torch.float32), go
    )
    assert _rel(loss, lib_loss) < 1e-5
    assert _rel(grad, lib_grad) < 1e-5


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_pytorch_uniform_prior(reduction, weighted):
    z64, y, g = _problem(n=9, v=13, seed=3)
    w = torch.rand(13, generator=g) + 0.1 if weighted else None
    z = z64.float()
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1 = fused_cross_entropy(z1, y, w, reduction=reduction, label_smoothing=0.1)
    l2 = F.cross_entropy(z2, y, w, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-6)
    l1.sum().backward()
    l2.sum().backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-5, atol=1e-7)


def test_matches_naive_loop():
    z64, y, g = _problem(n=5, v=7, seed=4)
    w = torch.rand(7, generator=g, dtype=torch.float64)
    u = torch.softmax(torch.randn(7, generator=g, dtype=torch.float64), 0)
    for red in REDUCTIONS:
        got = fused_cross_entropy(z64, y, w, reduction=red, label_smoothing=0.25, prior=u)
        torch.testing.assert_close(got, cross_entropy_loop(z64, y, 0.25, w, reduction=red, prior=u))


@seeded_property(
    25, n=st.integers(1, 9), v=st.integers(2, 40), a=st.floats(0.0, 1.0), block=st.integers(1, 5)
)
def test_property_blocks_do_not_change_the_result(n, v, a, seed, block):
    """Any row-block size (here 1..5 rows per block) gives the reference's loss and gradient."""
    g = _gen(seed)
    z = torch.randn(n, v, generator=g, dtype=torch.float64) * 4
    y = torch.randint(0, v, (n,), generator=g)
    y[torch.rand(n, generator=g) < 0.2] = -100
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1 = _apply(z1, y, None, -100, "sum", a, None, False, "torch", block_bytes=8 * v * block)
    l2 = cross_entropy_dense64(z2, y, a, reduction="sum")
    l1.backward()
    l2.backward()
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(z1.grad, z2.grad)


# ---------------------------------------------------------------- half precision
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_loss_within_1e2(dtype, reduction):
    z64, y, g = _problem(n=8, v=50, seed=5)
    z = z64.to(dtype)
    kw = {"label_smoothing": 0.1, "weight": torch.rand(50, generator=g) + 0.5}
    loss = fused_cross_entropy(z, y, reduction=reduction, **kw)
    assert loss.dtype == dtype
    ref = _dense(z.double(), y, reduction, _cast(kw, torch.float64))
    assert _rel(loss, ref) < 1e-2


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("v", [100, 32000])
def test_bf16_confident_rows_target_gradient(alpha, v):
    """Target softmax 0.9 / 0.99 / 0.999: the target logit's gradient is no worse than PyTorch's bf16.

    At V = 32000 with random off-target logits this also checks the row sum's accuracy: a sum of
    exp(z - m) off by 1e-5 relative (a plain running sum) moves p_y - (1 - a) by far more than 2^-8.
    """
    g = torch.Generator().manual_seed(7)
    rows = []
    for q in (0.9, 0.99, 0.999):
        # Off-target logits ~ N(0, 0.5^2) (bf16-exact), z_y = log(q / (1 - q) * sum_k exp(z_k)): softmax_y = q.
        r = (torch.randn(v, generator=g, dtype=torch.float64) * 0.5).to(torch.bfloat16).double()
        r[3] = -torch.inf
        r[3] = torch.log(torch.tensor(q / (1 - q), dtype=torch.float64)) + torch.logsumexp(r, 0)
        rows.append(r)
    zb = torch.stack(rows).to(torch.bfloat16)
    y = torch.full((3,), 3)
    ref = zb.double().requires_grad_()
    cross_entropy_dense64(ref, y, alpha, reduction="sum").backward()
    ours = zb.clone().requires_grad_()
    fused_cross_entropy(ours, y, reduction="sum", label_smoothing=alpha).backward()
    theirs = zb.clone().requires_grad_()
    F.cross_entropy(theirs, y, reduction="sum", label_smoothing=alpha).backward()
    t_ref = ref.grad[:, 3]
    err_ours = ((ours.grad[:, 3].double() - t_ref).abs() / t_ref.abs()).max().item()
    err_torch = ((theirs.grad[:, 3].double() - t_ref).abs() / t_ref.abs()).max().item()
    assert err_ours <= err_torch
    assert err_ours <= 2.0**-8  # one bf16 rounding of the exact float32 value


# ---------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradcheck_fused(reduction):
    z, y, g = _problem(n=4, v=5, seed=11)
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    u = torch.softmax(torch.randn(5, generator=g, dtype=torch.float64), 0)
    z = z.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: fused_cross_entropy(t, y, w, reduction=reduction, label_smoothing=0.2, prior=u), (z,)
    )


# ---------------------------------------------------------------- fused linear
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", ["plain", "weight", "prior_rows_weight", "per_sample"])
def test_linear_matches_reference(bias, reduction, variant):
    x, W, b, y, g = _linear_problem(bias=bias)
    kw = _options(variant, 7, 11, g)
    go = torch.rand(7, generator=g, dtype=torch.float64) if reduction == "none" else torch.tensor(1.3)
    leaves = [t.float().clone().requires_grad_() for t in (x, W) + ((b,) if bias else ())]
    ref_leaves = [t.clone().requires_grad_() for t in (x, W) + ((b,) if bias else ())]
    bb = leaves[2] if bias else None
    loss = linear_cross_entropy(
        leaves[0], leaves[1], y, bb, reduction=reduction, chunk_size=3, **_cast(kw, torch.float32)
    )
    z = ref_leaves[0] @ ref_leaves[1].t() + (ref_leaves[2] if bias else 0)
    ref = _dense(z, y, reduction, kw)
    assert _rel(loss, ref) < 1e-5
    (loss.double() * go).sum().backward()
    (ref * go).sum().backward()
    for a, r in zip(leaves, ref_leaves):
        assert _rel(a.grad, r.grad) < 1e-5


def test_linear_bf16_and_leading_dims():
    x, W, b, y, _ = _linear_problem(n=8, d=6, v=30, seed=2, dtype=torch.bfloat16)
    x3, y3 = x.view(2, 4, 6), y.view(2, 4)
    xs, Ws, bs = x3.clone().requires_grad_(), W.clone().requires_grad_(), b.clone().requires_grad_()
    loss = linear_cross_entropy(xs, Ws, y3, bs, label_smoothing=0.1, chunk_size=3)
    assert loss.dtype == torch.bfloat16
    x64, W64, b64 = (t.double().requires_grad_() for t in (x, W, b))
    ref = cross_entropy_dense64(x64 @ W64.t() + b64, y, 0.1)
    assert _rel(loss, ref) < 1e-2
    loss.backward()
    ref.backward()
    assert xs.grad.shape == (2, 4, 6) and Ws.grad.dtype == torch.bfloat16
    for got, want in [(xs.grad.view(8, 6), x64.grad), (Ws.grad, W64.grad), (bs.grad, b64.grad)]:
        assert _rel(got, want) < 2e-2
    per_row = linear_cross_entropy(x3, W, y3, b, reduction="none", label_smoothing=0.1)
    assert per_row.shape == (2, 4)


def test_linear_requires_grad_combinations():
    x, W, b, y, _ = _linear_problem()
    for need in [(True, False, False), (False, True, False), (False, False, True), (True, True, True)]:
        ts = [t.clone().requires_grad_(r) for t, r in zip((x, W, b), need)]
        refs = [t.clone().requires_grad_(r) for t, r in zip((x, W, b), need)]
        loss = linear_cross_entropy(*ts[:2], y, ts[2], label_smoothing=0.1, chunk_size=4)
        ref = cross_entropy_dense64(refs[0] @ refs[1].t() + refs[2], y, 0.1)
        loss.backward()
        ref.backward()
        for t, r, n in zip(ts, refs, need):
            assert (t.grad is None) == (not n)
            if n:
                torch.testing.assert_close(t.grad, r.grad)
    # nothing requires grad, or grad disabled: loss only
    loss = linear_cross_entropy(x, W, y, b, label_smoothing=0.1)
    assert not loss.requires_grad
    with torch.no_grad():
        xs = x.clone().requires_grad_()
        torch.testing.assert_close(
            linear_cross_entropy(xs, W, y, b, label_smoothing=0.1),
            cross_entropy_dense64(x @ W.t() + b, y, 0.1),
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_linear(reduction):
    x, W, b, y, _ = _linear_problem(n=5, d=3, v=4, seed=12)
    ts = tuple(t.requires_grad_() for t in (x, W, b))
    assert torch.autograd.gradcheck(
        lambda a, w, c: linear_cross_entropy(
            a, w, y, c, reduction=reduction, label_smoothing=0.2, chunk_size=2
        ),
        ts,
    )


def test_linear_default_chunk_and_all_ignored():
    x, W, b, y, _ = _linear_problem()
    y[:] = -100
    xs = x.clone().requires_grad_()
    loss = linear_cross_entropy(xs, W, y, b, label_smoothing=0.1)
    assert torch.isnan(loss)
    loss.backward()
    assert (xs.grad == 0).all()


# ---------------------------------------------------------------- torch.compile
@pytest.mark.slow
@pytest.mark.xdist_group("triton")  # inductor imports triton, whose 500 MB library the Triton tests just read
def test_torch_compile_smoke():
    """The kernels run (eagerly, behind a graph break) inside a compiled function."""
    z, y, _ = _problem(n=4, v=6)
    z = z.float()
    x, W, b, yl, _ = _linear_problem(dtype=torch.float32)

    def f(t, xx):
        return fused_cross_entropy(t * 2.0, y, label_smoothing=0.1) + linear_cross_entropy(xx, W, yl, b)

    compiled = torch.compile(f, backend="inductor")
    t0 = time.perf_counter()
    zz, xx = z.clone().requires_grad_(), x.clone().requires_grad_()
    out = compiled(zz, xx)
    out.backward()
    if time.perf_counter() - t0 > 60:
        pytest.skip("torch.compile took more than 60 s on this machine")
    ze, xe = z.clone().requires_grad_(), x.clone().requires_grad_()
    ref = f(ze, xe)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(zz.grad, ze.grad)
    torch.testing.assert_close(xx.grad, xe.grad)
