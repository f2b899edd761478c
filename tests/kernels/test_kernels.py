"""Fast paths equal the reference: labelsmooth.kernels.fused_cross_entropy / linear_cross_entropy."""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labelsmooth.kernels import _alloc, _core, fused_cross_entropy, linear_cross_entropy
from labelsmooth.kernels.chunked import _apply
from labelsmooth.losses import cross_entropy
from reference import cross_entropy_dense64, cross_entropy_loop

REDUCTIONS = ["mean", "sum", "none"]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _problem(n=6, v=11, seed=0, scale=3.0, ignore=True):
    g = _gen(seed)
    z = torch.randn(n, v, generator=g, dtype=torch.float64) * scale
    y = torch.randint(0, v, (n,), generator=g)
    if ignore and n > 2:
        y[1] = -100
    return z, y, g


def _options(name, n, v, g):
    """Keyword arguments for one of the semantic variants."""
    if name == "plain":
        return {"label_smoothing": 0.1}
    if name == "no_smoothing":
        return {"label_smoothing": 0.0}
    if name == "weight":
        return {"label_smoothing": 0.2, "weight": torch.rand(v, generator=g, dtype=torch.float64) + 0.1}
    if name == "prior":
        return {
            "label_smoothing": 0.3,
            "prior": torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), 0),
        }
    if name == "prior_rows_weight":
        return {
            "label_smoothing": 0.3,
            "prior": torch.softmax(torch.randn(n, v, generator=g, dtype=torch.float64), 1),
            "weight": torch.rand(v, generator=g, dtype=torch.float64) + 0.1,
        }
    if name == "per_sample":
        return {"label_smoothing": torch.rand(n, generator=g, dtype=torch.float64)}
    raise AssertionError(name)


VARIANTS = ["plain", "no_smoothing", "weight", "prior", "prior_rows_weight", "per_sample"]


def _cast(kw, dtype):
    return {
        k: (v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
        for k, v in kw.items()
    }


def _dense(z64, y, reduction, kw):
    return cross_entropy_dense64(
        z64, y, kw.get("label_smoothing", 0.0), kw.get("weight"), -100, reduction, kw.get("prior")
    )


def _loss_and_grad(fn, z, y, reduction, kw, go):
    z = z.detach().clone().requires_grad_()
    loss = fn(z, y, reduction=reduction, **kw)
    (loss.double() * go).sum().backward()
    return loss.detach(), z.grad


def _rel(a, b):
    a, b = a.double(), b.double()
    return float(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item())


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


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 9),
    v=st.integers(2, 40),
    a=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
    block=st.integers(1, 5),
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


# ---------------------------------------------------------------- edge cases
@pytest.mark.parametrize("pad", [0, 30])  # 4 classes, or 34 (the softmax path)
def test_extreme_logits(pad):
    z = torch.tensor(
        [[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, 1e4], [1e4, 1e4, -1e4, -1e4]], dtype=torch.float32
    )
    z = torch.cat([z, torch.linspace(-1e4, 1e4, pad).expand(3, pad)], 1)
    y = torch.tensor([1, 3, 0])
    for red in REDUCTIONS:
        z1, z2 = z.clone().requires_grad_(), z.double().requires_grad_()
        l1 = fused_cross_entropy(z1, y, reduction=red, label_smoothing=0.1)
        l2 = cross_entropy_dense64(z2, y, 0.1, reduction=red)
        assert torch.isfinite(l1).all()
        assert _rel(l1, l2) < 1e-5
        l1.sum().backward()
        l2.sum().backward()
        assert torch.isfinite(z1.grad).all()
        torch.testing.assert_close(z1.grad.double(), z2.grad, rtol=1e-5, atol=1e-6)


def test_rows_ignored_and_batch_ignored():
    z, y, _ = _problem(n=4, v=6)
    y[:] = torch.tensor([-100, 2, -100, 5])
    z1 = z.clone().requires_grad_()
    out = fused_cross_entropy(z1, y, reduction="none", label_smoothing=0.1)
    assert out[0] == 0 and out[2] == 0
    out.sum().backward()
    assert (z1.grad[[0, 2]] == 0).all()
    # an entirely ignored batch: nan mean (0/0) with a zero gradient, 0 sum, as PyTorch
    yi = torch.full((4,), -100)
    for red, expect in [("mean", float("nan")), ("sum", 0.0)]:
        z2, z3 = z.float().requires_grad_(), z.float().requires_grad_()
        l2 = fused_cross_entropy(z2, yi, reduction=red, label_smoothing=0.1)
        l3 = F.cross_entropy(z3, yi, reduction=red, label_smoothing=0.1)
        torch.testing.assert_close(l2, l3, equal_nan=True)
        torch.testing.assert_close(l2, torch.tensor(expect), equal_nan=True)
        l2.backward()
        l3.backward()
        assert (z2.grad == 0).all() and (z3.grad == 0).all()


def test_custom_ignore_index_that_is_a_class():
    z, y, _ = _problem(n=5, v=6, ignore=False)
    y[2] = 0
    torch.testing.assert_close(
        fused_cross_entropy(z, y, ignore_index=0, label_smoothing=0.2),
        cross_entropy_dense64(z, y, 0.2, ignore_index=0),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(reduction):
    """N = 0: PyTorch's values (nan for "mean", 0 for "sum", an empty tensor for "none"), zero gradients."""
    y = torch.zeros(0, dtype=torch.long)
    z = torch.zeros(0, 7, requires_grad=True)
    loss = fused_cross_entropy(z, y, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(
        loss, F.cross_entropy(z, y, reduction=reduction, label_smoothing=0.1), equal_nan=True
    )
    loss.sum().backward()
    assert z.grad.shape == (0, 7)
    x = torch.zeros(0, 4, requires_grad=True)
    W = torch.randn(7, 4, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    loss = linear_cross_entropy(x, W, y, b, reduction=reduction, label_smoothing=0.1)
    ref = F.cross_entropy(x @ W.t() + b, y, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(loss, ref, equal_nan=True)
    loss.sum().backward()
    assert x.grad.shape == (0, 4)
    assert torch.equal(W.grad, torch.zeros_like(W)) and torch.equal(b.grad, torch.zeros_like(b))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_blocks_not_dividing_rows_and_n1(n):
    z, y, _ = _problem(n=n, v=37, seed=n, ignore=False)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1 = _apply(z1, y, None, -100, "mean", 0.1, None, False, "torch", block_bytes=8 * 37 * 3)  # 3 rows/block
    l2 = cross_entropy_dense64(z2, y, 0.1)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(z1.grad, z2.grad)


def test_shapes_unbatched_and_spatial():
    g = _gen(7)
    z = torch.randn(3, 5, 2, 4, generator=g, dtype=torch.float64)  # (N, C, d1, d2)
    y = torch.randint(0, 5, (3, 2, 4), generator=g)
    y[0, 1, 2] = -100
    a = torch.rand(3, generator=g, dtype=torch.float64)
    for red in REDUCTIONS:
        z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
        l1 = fused_cross_entropy(z1, y, reduction=red, label_smoothing=a)
        l2 = cross_entropy(z2, y, reduction=red, label_smoothing=a)
        torch.testing.assert_close(l1, l2)
        l1.sum().backward()
        l2.sum().backward()
        torch.testing.assert_close(z1.grad, z2.grad)
    z = torch.randn(5, generator=g, dtype=torch.float64)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    l1 = fused_cross_entropy(z1, torch.tensor(2), label_smoothing=0.1)
    l2 = F.cross_entropy(z2, torch.tensor(2), label_smoothing=0.1)
    torch.testing.assert_close(l1, l2)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(z1.grad, z2.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_inplace_reuses_the_logits_storage(dtype, reduction):
    _, y, g = _problem(n=6, v=9, seed=8)
    x = torch.randn(6, 4, generator=g).to(dtype)
    W = torch.randn(9, 4, generator=g).to(dtype).requires_grad_()
    logits = x @ W.t()  # a non-leaf, as out of an output projection
    ref = logits.detach().clone().requires_grad_()
    fused_cross_entropy(ref, y, reduction=reduction, label_smoothing=0.1).sum().backward()
    ptr = logits.data_ptr()
    seen = []
    logits.register_hook(lambda gr: seen.append(gr))
    loss = fused_cross_entropy(logits, y, reduction=reduction, label_smoothing=0.1, inplace=True)
    assert logits.data_ptr() == ptr
    loss.sum().backward()
    assert seen[0].data_ptr() == ptr  # the gradient lives in the logits' storage
    torch.testing.assert_close(seen[0], ref.grad)
    assert W.grad is not None


def test_inplace_non_contiguous_and_spatial_write_back():
    g = _gen(9)
    z = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (3, 4), generator=g)
    ref = z.clone().requires_grad_()
    cross_entropy(ref, y, label_smoothing=0.1).backward()
    work = z.clone().requires_grad_()
    fused_cross_entropy(work, y, label_smoothing=0.1, inplace=True)
    torch.testing.assert_close(work.detach(), ref.grad)  # consumed: holds the gradient


def test_grad_output_scaling_and_second_backward():
    z, y, _ = _problem(n=5, v=6)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    (3.0 * fused_cross_entropy(z1, y, label_smoothing=0.1)).backward()
    (3.0 * cross_entropy_dense64(z2, y, 0.1)).backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    # grad_output 1 may be replayed (retain_graph); after an in-place scaling a replay raises
    z3 = z.clone().requires_grad_()
    loss = fused_cross_entropy(z3, y, label_smoothing=0.1)
    g1 = torch.autograd.grad(loss, z3, retain_graph=True)[0].clone()
    g2 = torch.autograd.grad(loss, z3, retain_graph=True)[0]
    torch.testing.assert_close(g1, g2)
    torch.autograd.grad(loss, z3, grad_outputs=torch.tensor(2.0, dtype=z.dtype), retain_graph=True)
    with pytest.raises(RuntimeError, match="backward twice"):
        torch.autograd.grad(loss, z3, retain_graph=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_loss_only_when_no_grad_is_needed(dtype):
    """No grad needed: the loss only, computed in block scratch; inplace=True leaves the logits intact."""
    z, y, _ = _problem(n=9, v=6)
    z = z.to(dtype)
    ref = cross_entropy_dense64(z.double(), y, 0.1, reduction="none")
    kept = z.clone()
    with torch.no_grad():
        l1 = _apply(z, y, None, -100, "none", 0.1, None, True, "torch", block_bytes=8 * 6 * 2)
    assert torch.equal(z, kept)
    assert not l1.requires_grad
    assert _rel(l1, ref) < (1e-2 if dtype == torch.bfloat16 else 1e-6)
    l2 = fused_cross_entropy(z, y, label_smoothing=0.1, inplace=True)  # does not require grad
    assert torch.equal(z, kept)
    assert _rel(l2, cross_entropy_dense64(z.double(), y, 0.1)) < (1e-2 if dtype == torch.bfloat16 else 1e-6)


def test_dispatch_and_missing_triton(monkeypatch):
    from labelsmooth.kernels import _dispatch, triton_ce

    assert not _dispatch.use_triton(torch.zeros(2, 3), "auto")  # CPU tensors take the torch path
    assert _dispatch.use_triton(torch.zeros(2, 3), "triton")
    monkeypatch.setattr(triton_ce, "available", lambda: False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # past the device check: CPU tensors are allowed
    z, y, _ = _problem(n=3, v=5)
    with pytest.raises(RuntimeError, match="Triton"):
        fused_cross_entropy(z.float().requires_grad_(), y, backend="triton")


@pytest.mark.parametrize("fn", ["fused", "linear"])
def test_triton_backend_on_cpu_tensors_is_one_clear_error(monkeypatch, fn):
    """Issue 10: not Triton's 15-frame ``RuntimeError: 0 active drivers``, one line naming CUDA."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    z, y, _ = _problem(n=3, v=5)
    with pytest.raises(ValueError, match=r'CUDA device with backend="triton".*got a tensor on cpu') as err:
        if fn == "fused":
            fused_cross_entropy(z.float(), y, backend="triton")
        else:
            linear_cross_entropy(z.float(), torch.randn(7, 5), torch.tensor([0, 1, 2]), backend="triton")
    assert "\n" not in str(err.value)


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
def _linear_problem(n=7, d=4, v=11, seed=0, dtype=torch.float64, bias=True):
    g = _gen(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    W = torch.randn(v, d, generator=g, dtype=torch.float64).to(dtype)
    b = torch.randn(v, generator=g, dtype=torch.float64).to(dtype) if bias else None
    y = torch.randint(0, v, (n,), generator=g)
    y[2] = -100
    return x, W, b, y, g


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


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"label_smoothing": 1.2}, ValueError, "label_smoothing"),
        ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
        ({"label_smoothing": torch.rand(3)}, ValueError, "label_smoothing"),
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"weight": torch.ones(5)}, ValueError, "weight"),
        ({"weight": torch.ones(6, dtype=torch.long)}, TypeError, "weight"),
        ({"prior": torch.ones(6)}, ValueError, "prior"),
        ({"prior": torch.full((3,), 1 / 3)}, ValueError, "prior"),
        ({"inplace": 1}, TypeError, "inplace"),
        ({"backend": "cuda"}, ValueError, "backend"),
    ],
)
def test_fused_errors(kwargs, exc, match):
    z, y, _ = _problem(n=4, v=6)
    with pytest.raises(exc, match=match):
        fused_cross_entropy(z, y, **kwargs)


def test_fused_target_errors():
    z, y, _ = _problem(n=4, v=6)
    with pytest.raises(TypeError, match="target"):
        fused_cross_entropy(z, torch.softmax(z, 1))  # probabilities: the reference loss handles them
    with pytest.raises(ValueError, match="target"):
        fused_cross_entropy(z, torch.tensor([0, 1, 6, 2]))
    with pytest.raises(ValueError, match="target"):
        fused_cross_entropy(z, y[:3])
    with pytest.raises(TypeError, match="input"):
        fused_cross_entropy(z.long(), y)


def test_linear_errors():
    x, W, b, y, _ = _linear_problem()
    cases = [
        (lambda: linear_cross_entropy(x, W[:, :3], y), ValueError, "linear_weight"),
        (lambda: linear_cross_entropy(x, W.float(), y), TypeError, "linear_weight"),
        (lambda: linear_cross_entropy(x, W, y, b[:5]), ValueError, "bias"),
        (lambda: linear_cross_entropy(x, W, y, b.float()), TypeError, "bias"),
        (lambda: linear_cross_entropy(x, W, y[:4]), ValueError, "target"),
        (lambda: linear_cross_entropy(x, W, y.tolist()), TypeError, "target"),
        (lambda: linear_cross_entropy(x, W, y, chunk_size=0), ValueError, "chunk_size"),
        (lambda: linear_cross_entropy(x.long(), W, y), TypeError, "input"),
        (lambda: linear_cross_entropy(x[0, 0], W, y), ValueError, "input"),
        (lambda: linear_cross_entropy(x, W, y, label_smoothing=2.0), ValueError, "label_smoothing"),
        (lambda: linear_cross_entropy(x, W, y, backend="gpu"), ValueError, "backend"),
        (lambda: linear_cross_entropy(x, W, torch.full((7,), 11)), ValueError, "target"),
    ]
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn()
    xs = x.clone().requires_grad_()
    loss = linear_cross_entropy(xs, W, y, b)
    torch.autograd.grad(loss, xs, grad_outputs=torch.tensor(2.0, dtype=x.dtype), retain_graph=True)
    with pytest.raises(RuntimeError, match="backward twice"):
        torch.autograd.grad(loss, xs, retain_graph=True)


# ---------------------------------------------------------------- worker threads
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_worker_threads_give_the_inline_result(dtype):
    """With >1 intra-op threads the CPU blocks run on worker threads; the result is bit-identical."""
    z, y, g = _problem(n=13, v=37, seed=21)
    z = z.to(dtype)
    kw = {
        "label_smoothing": torch.rand(13, generator=g),
        "prior": torch.softmax(torch.randn(37, generator=g), 0),
    }
    before = torch.get_num_threads()
    out = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            zz = z.clone().requires_grad_()
            loss = _apply(
                zz, y, None, -100, "sum", kw["label_smoothing"], kw["prior"], False, "torch", 4 * 37 * 2
            )
            loss.backward()
            out[threads] = (loss, zz.grad)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[1][0], out[2][0]) and torch.equal(out[1][1], out[2][1])
    ref = cross_entropy_dense64(
        z.double(), y, kw["label_smoothing"].double(), None, -100, "sum", kw["prior"].double()
    )
    assert _rel(out[2][0], ref) < (1e-2 if dtype == torch.bfloat16 else 1e-5)


# ---------------------------------------------------------------- huge pages for large CPU buffers
def _vm_flags(addr: int) -> list[str]:
    """The VmFlags of the mapping holding ``addr`` in /proc/self/smaps."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(h, 16) for h in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {addr:#x}")


THP = "/sys/kernel/mm/transparent_hugepage/enabled"


@pytest.mark.skipif(not os.path.exists(THP), reason="needs Linux with transparent huge pages")
@pytest.mark.parametrize("env", ["1", "0"])
def test_large_buffers_ask_for_huge_pages(monkeypatch, env):
    """Buffers of 32 MiB and more are madvise(MADV_HUGEPAGE)d unless LABELSMOOTH_HUGEPAGES=0; small ones never."""
    monkeypatch.setenv("LABELSMOOTH_HUGEPAGES", env)
    big = _alloc.empty((9 << 20,), torch.float32, torch.device("cpu"), zero=True)  # 36 MiB
    assert torch.count_nonzero(big) == 0
    middle = big.data_ptr() + big.numel() * 2  # a page well inside the tensor
    assert ("hg" in _vm_flags(middle)) == (env == "1")
    small = _alloc.empty((1 << 20,), torch.float32, torch.device("cpu"))  # 4 MiB
    assert small.shape == (1 << 20,)
    assert "hg" not in _vm_flags(small.data_ptr() + small.numel() * 2)


def test_fused_result_does_not_depend_on_huge_pages(monkeypatch):
    """The N x V gradient buffer takes the huge-page path (>= 32 MiB); the values are the same without it."""
    z, y, _ = _problem(n=300, v=30000, seed=3)  # 36 MB of float32 logits
    z = z.float()
    out = []
    for env in ("1", "0"):
        monkeypatch.setenv("LABELSMOOTH_HUGEPAGES", env)
        zz = z.clone().requires_grad_()
        loss = fused_cross_entropy(zz, y, label_smoothing=0.1)
        loss.backward()
        out.append((loss, zz.grad))
        if os.path.exists(THP):  # the gradient autograd hands back is that buffer
            assert ("hg" in _vm_flags(zz.grad.data_ptr() + zz.grad.nbytes // 2)) == (env == "1")
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
