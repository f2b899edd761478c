"""Kernel options (issues 16 §3, 17 §2): softcap, z_loss, return_aux, num_items_in_batch, and the
errors of issue 10 §3, for cross_entropy, fused_cross_entropy and linear_cross_entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from kernel_problems import _problem, _rel

from labelsmooth import cross_entropy
from labelsmooth.kernels import (
    CrossEntropyAux,
    fused_cross_entropy,
    global_token_count,
    linear_cross_entropy,
)
from labelsmooth.kernels.chunked import _apply
from reference import cross_entropy_options64

REDUCTIONS = ["mean", "sum", "none"]
OPTIONS = {
    "softcap": {"softcap": 2.5},
    "z_loss": {"z_loss": 0.05},
    "both": {"softcap": 2.5, "z_loss": 0.05},
    "num_items": {"softcap": 4.0, "z_loss": 1e-2, "num_items_in_batch": 13},
}


def _semantics(name, n, v, g):
    if name == "plain":
        return {"label_smoothing": 0.1}
    if name == "weight_prior":
        return {
            "label_smoothing": 0.3,
            "weight": torch.rand(v, generator=g, dtype=torch.float64) + 0.1,
            "prior": torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), 0),
        }
    return {"label_smoothing": torch.rand(n, generator=g, dtype=torch.float64)}  # per sample


def _ref(z64, y, reduction, kw, opts):
    return cross_entropy_options64(
        z64, y, kw.get("label_smoothing", 0.0), kw.get("weight"), -100, reduction, kw.get("prior"),
        opts.get("softcap"), opts.get("z_loss", 0.0),
        opts.get("num_items_in_batch") if reduction == "mean" else None,
    )  # fmt: skip


def _f32(kw):
    return {k: (t.float() if isinstance(t, torch.Tensor) else t) for k, t in kw.items()}


def _opts_for(reduction, opts):
    return {k: v for k, v in opts.items() if reduction == "mean" or k != "num_items_in_batch"}


# ---------------------------------------------------------------- value and gradient vs float64
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("semantics", ["plain", "weight_prior", "per_sample"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn", ["cross_entropy", "fused", "fused_inplace"])
def test_logits_paths_match_float64_reference(option, semantics, reduction, fn, v=37):
    z64, y, g = _problem(n=7, v=v)
    kw = _semantics(semantics, 7, v, g)
    opts = _opts_for(reduction, OPTIONS[option])
    go = torch.rand(7, generator=g, dtype=torch.float64) if reduction == "none" else torch.tensor(0.7)
    ref_z = z64.clone().requires_grad_()
    ref = _ref(ref_z, y, reduction, kw, opts)
    (ref * go).sum().backward()
    z = z64.float().clone().requires_grad_()
    work = z.clone() if fn == "fused_inplace" else z
    if fn == "cross_entropy":
        loss = cross_entropy(work, y, reduction=reduction, **_f32(kw), **opts)
    else:
        loss = fused_cross_entropy(
            work, y, reduction=reduction, inplace=fn == "fused_inplace", **_f32(kw), **opts
        )
    assert loss.dtype == torch.float32
    (loss.double() * go).sum().backward()
    assert _rel(loss.detach(), ref.detach()) < 1e-5
    assert _rel(z.grad, ref_z.grad) < 1e-5


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_float64_reference_every_gradient(option, reduction, bias):
    g = torch.Generator().manual_seed(1)
    n, d, v = 9, 5, 23
    x64, W64 = (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(v, d, generator=g, dtype=torch.float64),
    )
    b64 = torch.randn(v, generator=g, dtype=torch.float64)
    y = torch.randint(0, v, (n,), generator=g)
    y[3] = -100
    opts = _opts_for(reduction, OPTIONS[option])
    kw = {"label_smoothing": 0.2, "weight": torch.rand(v, generator=g, dtype=torch.float64) + 0.2}
    go = torch.rand(n, generator=g, dtype=torch.float64) if reduction == "none" else torch.tensor(1.3)
    refs = [t.clone().requires_grad_() for t in (x64, W64, b64)]
    ref = _ref(refs[0] @ refs[1].t() + (refs[2] if bias else 0), y, reduction, kw, opts)
    (ref * go).sum().backward()
    leaves = [t.float().clone().requires_grad_() for t in (x64, W64, b64)]
    loss = linear_cross_entropy(
        leaves[0], leaves[1], y, leaves[2] if bias else None, reduction=reduction, chunk_size=4,
        **_f32(kw), **opts,
    )  # fmt: skip
    (loss.double() * go).sum().backward()
    assert _rel(loss.detach(), ref.detach()) < 1e-5
    for got, want in zip(leaves[: 3 if bias else 2], refs):
        assert _rel(got.grad, want.grad) < 1e-5


@pytest.mark.parametrize("fn", ["fused", "linear"])
def test_gradcheck_with_softcap_and_z_loss(fn):
    z, y, g = _problem(n=4, v=6, seed=11)
    w = torch.rand(6, generator=g, dtype=torch.float64) + 0.1
    opts = {"softcap": 1.7, "z_loss": 0.3, "num_items_in_batch": 5}
    if fn == "fused":
        assert torch.autograd.gradcheck(
            lambda t: fused_cross_entropy(t, y, w, label_smoothing=0.2, **opts), (z.requires_grad_(),)
        )
        return
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, c, d: linear_cross_entropy(a, c, y, d, w, label_smoothing=0.2, chunk_size=3, **opts),
        (x, W, b),
    )
    assert torch.autograd.gradcheck(
        lambda a: linear_cross_entropy(
            a, W, y, reduction="none", label_smoothing=0.2, softcap=1.7, z_loss=0.3
        ),
        (x,),
    )


@pytest.mark.parametrize("block_rows", [1, 3])
def test_blocks_and_worker_threads_do_not_change_options(block_rows):
    z64, y, _ = _problem(n=11, v=40, seed=4)
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            z = z64.float().clone().requires_grad_()
            loss = _apply(z, y, None, -100, "sum", 0.1, None, False, "torch", 4 * 40 * block_rows,
                          softcap=3.0, z_loss=0.01)  # fmt: skip
            loss.backward()
            out.append((loss, z.grad))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    ref_z = z64.clone().requires_grad_()
    ref = cross_entropy_options64(ref_z, y, 0.1, reduction="sum", softcap=3.0, z_loss=0.01)
    ref.backward()
    assert _rel(out[0][0], ref) < 1e-5 and _rel(out[0][1], ref_z.grad) < 1e-5


# ---------------------------------------------------------------- half precision, extremes, edge cases
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fn", ["fused", "linear"])
def test_half_precision_with_options(dtype, fn):
    z64, y, g = _problem(n=8, v=50, seed=5)
    opts = {"softcap": 5.0, "z_loss": 1e-2}
    if fn == "fused":
        z = z64.to(dtype).requires_grad_()
        loss = fused_cross_entropy(z, y, label_smoothing=0.1, **opts)
        ref_z = z.detach().double().requires_grad_()
        ref = cross_entropy_options64(ref_z, y, 0.1, **opts)
        loss.backward()
        ref.backward()
        assert loss.dtype == dtype and z.grad.dtype == dtype
        assert _rel(loss, ref) < 1e-2 and _rel(z.grad, ref_z.grad) < 2e-2
        return
    x = torch.randn(8, 6, generator=g).to(dtype).requires_grad_()
    W = torch.randn(50, 6, generator=g).to(dtype).requires_grad_()
    loss = linear_cross_entropy(x, W, y, label_smoothing=0.1, chunk_size=3, **opts)
    x64, W64 = x.detach().double().requires_grad_(), W.detach().double().requires_grad_()
    ref = cross_entropy_options64(x64 @ W64.t(), y, 0.1, **opts)
    loss.backward()
    ref.backward()
    assert _rel(loss, ref) < 1e-2
    assert _rel(x.grad, x64.grad) < 2e-2 and _rel(W.grad, W64.grad) < 2e-2


def test_bf16_confident_rows_keep_their_target_gradient_under_options():
    """The confident-row check of test_kernels_values with z_loss (softcap 50 leaves these logits nearly linear)."""
    g = torch.Generator().manual_seed(7)
    v, rows = 32000, []
    for q in (0.9, 0.99, 0.999):
        r = (torch.randn(v, generator=g, dtype=torch.float64) * 0.5).to(torch.bfloat16).double()
        r[3] = -torch.inf
        r[3] = math.log(q / (1 - q)) + torch.logsumexp(r, 0)
        rows.append(r)
    zb = torch.stack(rows).to(torch.bfloat16)
    y = torch.full((3,), 3)
    for opts in ({"z_loss": 1e-4}, {"z_loss": 1e-4, "softcap": 50.0}):
        ref = zb.double().requires_grad_()
        cross_entropy_options64(ref, y, 0.1, reduction="sum", **opts).backward()
        ours = zb.clone().requires_grad_()
        fused_cross_entropy(ours, y, reduction="sum", label_smoothing=0.1, **opts).backward()
        t_ref = ref.grad[:, 3]
        err = ((ours.grad[:, 3].double() - t_ref).abs() / t_ref.abs()).max().item()
        assert err <= 2.0**-8, (opts, err)


def test_extreme_logits_with_options():
    z = torch.tensor([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, 1e4], [1e4, 1e4, -1e4, -1e4]])
    z = torch.cat([z, torch.linspace(-1e4, 1e4, 30).expand(3, 30)], 1)
    y = torch.tensor([1, 3, 0])
    for opts in ({"softcap": 30.0}, {"z_loss": 1e-4}, {"softcap": 30.0, "z_loss": 1e-4}):
        for red in REDUCTIONS:
            z1, z2 = z.clone().requires_grad_(), z.double().requires_grad_()
            l1 = fused_cross_entropy(z1, y, reduction=red, label_smoothing=0.1, **opts)
            l2 = cross_entropy_options64(z2, y, 0.1, reduction=red, **opts)
            assert torch.isfinite(l1).all() and _rel(l1, l2) < 1e-5, (opts, red)
            l1.sum().backward()
            l2.sum().backward()
            assert torch.isfinite(z1.grad).all()
            assert _rel(z1.grad, z2.grad) < 1e-5, (opts, red)


@pytest.mark.parametrize("fn", ["cross_entropy", "fused", "linear"])
def test_ignored_all_ignored_and_empty_with_options(fn):
    opts = {"softcap": 3.0, "z_loss": 0.1}
    g = torch.Generator().manual_seed(3)
    W = torch.randn(6, 4, generator=g)

    def call(n, y, reduction):
        x = torch.randn(n, 4, generator=g).requires_grad_()
        if fn == "linear":
            out = linear_cross_entropy(x, W, y, reduction=reduction, return_aux=True, **opts)
            return x, out
        logits = (x @ W.t()).detach().requires_grad_()
        f = cross_entropy if fn == "cross_entropy" else fused_cross_entropy
        return logits, f(logits, y, reduction=reduction, return_aux=True, **opts)

    leaf, (per_row, aux) = call(4, torch.tensor([-100, 2, -100, 5]), "none")
    assert per_row[0] == 0 and per_row[2] == 0 and aux.z_loss[0] == 0 and aux.z_loss[2] == 0
    assert torch.isfinite(aux.lse).all()  # ignored rows have their lse too
    per_row.sum().backward()
    assert (leaf.grad[[0, 2]] == 0).all()
    leaf, (loss, aux) = call(3, torch.full((3,), -100), "mean")  # all ignored: nan, zero gradient
    assert torch.isnan(loss) and torch.isnan(aux.accuracy)
    loss.backward()
    assert (leaf.grad == 0).all()
    leaf, (loss, aux) = call(3, torch.full((3,), -100), "sum")
    assert loss == 0 and aux.z_loss == 0
    leaf, (loss, aux) = call(0, torch.zeros(0, dtype=torch.long), "mean")  # empty batch
    assert torch.isnan(loss) and aux.lse.shape == (0,) and torch.isnan(aux.accuracy)


# ---------------------------------------------------------------- return_aux
@pytest.mark.parametrize("fn", ["cross_entropy", "fused", "linear"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_aux_lse_z_loss_and_accuracy(fn, reduction):
    g = torch.Generator().manual_seed(9)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    W = torch.randn(12, 4, generator=g, dtype=torch.float64) * 2
    z = x @ W.t()
    y = torch.randint(0, 12, (10,), generator=g)
    y[:4] = z[:4].argmax(1)  # at least four correct rows
    y[5] = -100
    opts = {"softcap": 3.0, "z_loss": 0.02, "label_smoothing": 0.1, "reduction": reduction}

    def run(**kw):
        if fn == "linear":
            return linear_cross_entropy(x, W, y, chunk_size=3, **opts, **kw)
        return (cross_entropy if fn == "cross_entropy" else fused_cross_entropy)(z, y, **opts, **kw)

    plain = run()
    assert isinstance(plain, torch.Tensor)  # the default return is unchanged
    loss, aux = run(return_aux=True)
    assert isinstance(aux, CrossEntropyAux)
    torch.testing.assert_close(loss, plain)
    capped = 3.0 * torch.tanh(z / 3.0)
    torch.testing.assert_close(aux.lse, torch.logsumexp(capped, 1))
    valid = y != -100
    acc = (capped.argmax(1) == y)[valid].double().mean().float()
    torch.testing.assert_close(aux.accuracy, acc)
    assert aux.accuracy.dtype == torch.float32
    opts["z_loss"] = 0.0
    torch.testing.assert_close(aux.z_loss, loss - run())  # the z-loss part of the returned loss
    assert not aux.lse.requires_grad and not aux.z_loss.requires_grad


def test_aux_for_probability_targets_has_no_accuracy():
    z = torch.randn(4, 5, dtype=torch.float64)
    p = torch.softmax(torch.randn(4, 5, dtype=torch.float64), 1)
    loss, aux = cross_entropy(z, p, z_loss=0.1, return_aux=True)
    assert aux.accuracy is None
    torch.testing.assert_close(aux.lse, torch.logsumexp(z, 1))
    torch.testing.assert_close(loss, cross_entropy(z, p) + 0.1 * (torch.logsumexp(z, 1) ** 2).mean())


# ---------------------------------------------------------------- global normalisation
@pytest.mark.parametrize("fn", ["cross_entropy", "fused", "linear"])
@pytest.mark.parametrize("weighted", [False, True])
def test_micro_batches_with_the_global_count_equal_one_big_batch(fn, weighted):
    """Summing micro-batch losses divided by the global count = the big batch's mean (value, gradient)."""
    g = torch.Generator().manual_seed(2)
    n, d, v = 24, 6, 17
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(v, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, v, (n,), generator=g)
    y[torch.rand(n, generator=g) < 0.3] = -100  # the micro-batches hold different token counts
    w = torch.rand(v, generator=g, dtype=torch.float64) + 0.5 if weighted else None
    opts = {"label_smoothing": 0.1, "softcap": 4.0, "z_loss": 1e-3}

    def loss_of(xs, Ws, ys, **kw):
        if fn == "linear":
            return linear_cross_entropy(xs, Ws, ys, weight=w, chunk_size=5, **opts, **kw)
        f = cross_entropy if fn == "cross_entropy" else fused_cross_entropy
        return f(xs @ Ws.t(), ys, w, **opts, **kw)

    xb, Wb = x.clone().requires_grad_(), W.clone().requires_grad_()
    big = loss_of(xb, Wb, y)
    big.backward()
    count = global_token_count(y, weight=w)
    xa, Wa = x.clone().requires_grad_(), W.clone().requires_grad_()
    total = 0.0
    for s in (slice(0, 5), slice(5, 13), slice(13, 24)):
        piece = loss_of(xa[s], Wa, y[s], num_items_in_batch=count)
        piece.backward()  # gradient accumulation: .grad sums over micro-batches
        total = total + piece.detach()
    torch.testing.assert_close(total, big.detach())
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(Wa.grad, Wb.grad)
    # the plain mean of micro-batch means is not the big batch's mean (the bug being fixed)
    means = [loss_of(x[s], W, y[s]).detach() for s in (slice(0, 5), slice(5, 13), slice(13, 24))]
    assert abs(float(sum(means) / 3) - float(big.detach())) > 1e-3


def test_num_items_as_int_float_and_tensor_agree():
    z64, y, _ = _problem(n=7, v=37)
    ref = cross_entropy_options64(z64, y, 0.1, num_items=11)
    for n in (11, 11.0, torch.tensor(11), torch.tensor([11.0])):
        for f in (cross_entropy, fused_cross_entropy):
            torch.testing.assert_close(f(z64, y, label_smoothing=0.1, num_items_in_batch=n), ref)


def test_global_token_count_without_distributed():
    y = torch.tensor([[0, 3, -100], [-100, -100, 2]])
    c = global_token_count(y)
    assert c.dtype == torch.int64 and c.dim() == 0 and int(c) == 3
    assert int(global_token_count(y, ignore_index=3)) == 5  # -100 counts when it is not ignore_index
    w = torch.tensor([0.5, 1.0, 2.0, 4.0])
    torch.testing.assert_close(global_token_count(y, weight=w), torch.tensor(6.5))
    assert int(global_token_count(torch.full((4,), -100))) == 0
    with pytest.raises(TypeError, match="target"):
        global_token_count(y.float())
    with pytest.raises(TypeError, match="target"):
        global_token_count([0, 1])
    with pytest.raises(TypeError, match="weight"):
        global_token_count(y, weight=torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="weight"):
        global_token_count(y, weight=torch.ones(2, 2))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"softcap": 0.0}, ValueError, r"`softcap` in \(0, inf\)"),
        ({"softcap": -30.0}, ValueError, "softcap"),
        ({"softcap": math.inf}, ValueError, "softcap"),
        ({"softcap": "30"}, TypeError, "softcap"),
        ({"z_loss": -1e-4}, ValueError, r"`z_loss` in \[0, inf\)"),
        ({"z_loss": math.nan}, ValueError, "z_loss"),
        ({"z_loss": True}, TypeError, "z_loss"),
        ({"num_items_in_batch": 0}, ValueError, "num_items_in_batch"),
        ({"num_items_in_batch": -3}, ValueError, "num_items_in_batch"),
        ({"num_items_in_batch": True}, TypeError, "num_items_in_batch"),
        ({"num_items_in_batch": "8"}, TypeError, "num_items_in_batch"),
        ({"num_items_in_batch": torch.ones(2)}, ValueError, "one number"),
        ({"num_items_in_batch": torch.tensor(True)}, TypeError, "num_items_in_batch"),
        ({"num_items_in_batch": 8, "reduction": "sum"}, ValueError, 'unless reduction="mean"'),
        ({"num_items_in_batch": 8, "reduction": "none"}, ValueError, 'unless reduction="mean"'),
    ],
)
@pytest.mark.parametrize("fn", ["cross_entropy", "fused", "linear"])
def test_option_errors(kwargs, exc, match, fn):
    z, y, _ = _problem(n=4, v=6)
    with pytest.raises(exc, match=match):
        if fn == "linear":
            linear_cross_entropy(z, torch.randn(5, 6, dtype=torch.float64), y, **kwargs)
        else:
            (cross_entropy if fn == "cross_entropy" else fused_cross_entropy)(z, y, **kwargs)


def test_probability_targets_with_a_non_negative_ignore_index_raise():
    """Issue 10: PyTorch raises; ours silently ignored ``ignore_index``."""
    z = torch.randn(3, 4)
    p = torch.softmax(torch.randn(3, 4), 1)
    with pytest.raises(RuntimeError):
        F.cross_entropy(z, p, ignore_index=0)
    with pytest.raises(ValueError, match=r"`ignore_index` to be negative with probability targets.*got 0"):
        cross_entropy(z, p, ignore_index=0)
    torch.testing.assert_close(cross_entropy(z, p, ignore_index=-1), F.cross_entropy(z, p))


def test_float_targets_of_the_index_shape_say_indices_must_be_integers():
    """Issue 10: (N,) float targets were reported as a shape mismatch with the probabilities' shape."""
    z = torch.randn(3, 4)
    for f in (cross_entropy, fused_cross_entropy):
        with pytest.raises(
            TypeError, match=r"`target` of shape \(3,\) to hold integer class indices.*float32"
        ):
            f(z, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy(torch.randn(2, 4, 5), torch.zeros(2, 5))  # spatial: (N, d1)


def test_global_token_count_accumulates_half_weights_in_float32():
    # fp16 weights: 70000 tokens of weight 1 summed in float16 gave inf (max 65504), so the mean was 0
    y = torch.zeros(70000, dtype=torch.long)
    n = global_token_count(y, weight=torch.ones(3, dtype=torch.float16))
    assert n.dtype == torch.float32 and float(n) == 70000.0
    assert float(global_token_count(y[:1001], weight=torch.ones(3, dtype=torch.bfloat16))) == 1001.0
