"""Edge cases of labelsmooth.kernels.fused_cross_entropy / linear_cross_entropy: extreme logits, ignored
rows and batches, empty batches, blocks, shapes, in-place gradients, grad_output scaling, loss-only passes,
worker threads and huge pages for large CPU buffers."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from kernel_problems import REDUCTIONS, _gen, _problem, _rel

from labelsmooth.kernels import _alloc, fused_cross_entropy, linear_cross_entropy
from labelsmooth.kernels.chunked import _apply
from labelsmooth.losses import cross_entropy
from reference import cross_entropy_dense64


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
