"""The compiled half-precision CPU block (kernels/_bf16.py): the accuracy gates of the eager pass.

``LABELSMOOTH_HALF_COMPILE=1`` forces the compiled block on these small shapes (``auto`` would take it only
from 2^24 logits). Each new graph variant (dtype, prior kind, soft-capping, loss only, in place) compiles
once per process, a few seconds each: the fast test below uses one variant; the others are marked
``slow`` and grouped on one xdist worker so that they share the compiled graphs.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from labelsmooth.kernels import _bf16, fused_cross_entropy
from reference import cross_entropy_dense64, cross_entropy_options64

pytestmark = pytest.mark.xdist_group("half_compile")
V = 1000


@pytest.fixture
def compiled(monkeypatch):
    """Force the compiled block and count the blocks it computed (a fallback would not count)."""
    monkeypatch.setenv(_bf16.ENV, "1")
    calls = []
    real = _bf16.run_block

    def counting(*args):
        out = real(*args)
        if out is not None:
            calls.append(args[0].shape[0])
        return out

    monkeypatch.setattr(_bf16, "run_block", counting)
    yield calls
    assert not _bf16._FAILED


def _problem(n=40, v=V, seed=0, scale=3.0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, v, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, v, (n,), generator=g)
    y[::7] = -100
    return z, y, g


def _grad_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Max |got - ref| in units of one rounding to ``got.dtype`` (2^-8 relative for bf16, 2^-11 for fp16;
    below the smallest normal number, the spacing of subnormals)."""
    fi = torch.finfo(got.dtype)
    tol = ref.abs() * fi.eps / 2 + fi.smallest_normal * fi.eps
    return float(((got.double() - ref).abs() / tol).max())


def _confident_rows(v: int, alpha: float, g: torch.Generator) -> torch.Tensor:
    rows = []
    for q in (0.9, 0.99, 0.999):  # target softmax q (as in test_kernels_values.py)
        r = (torch.randn(v, generator=g, dtype=torch.float64) * 0.5).to(torch.bfloat16).double()
        r[3] = -torch.inf
        r[3] = math.log(q / (1 - q)) + torch.logsumexp(r, 0)
        rows.append(r)
    return torch.stack(rows).to(torch.bfloat16)


def test_compiled_block_matches_float64_and_keeps_confident_targets(compiled):
    z, y, g = _problem()
    conf = _confident_rows(V, 0.1, g)
    z = torch.cat([z, conf])
    y = torch.cat([y, torch.full((3,), 3)])
    ref = z.double().requires_grad_()
    cross_entropy_dense64(ref, y, 0.1, reduction="sum").backward()
    ours = z.clone().requires_grad_()
    loss = fused_cross_entropy(ours, y, reduction="sum", label_smoothing=0.1)
    loss.backward()
    assert compiled, "the compiled block did not run"
    assert ours.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss.double(), cross_entropy_dense64(z.double(), y, 0.1, reduction="sum"),
                               rtol=1e-2, atol=0)  # fmt: skip
    assert _grad_err(ours.grad, ref.grad) <= 1.0  # one bf16 rounding of the exact value, every element
    t_ref = ref.grad[-3:, 3]
    theirs = conf.clone().requires_grad_()
    F.cross_entropy(theirs, y[-3:], reduction="sum", label_smoothing=0.1).backward()
    err_ours = ((ours.grad[-3:, 3].double() - t_ref).abs() / t_ref.abs()).max().item()
    err_torch = ((theirs.grad[:, 3].double() - t_ref).abs() / t_ref.abs()).max().item()
    assert err_ours <= min(err_torch, 2.0**-8)


def _kwargs(name: str, n: int, g: torch.Generator) -> dict:
    if name == "weight":
        return {"label_smoothing": 0.2, "weight": torch.rand(V, generator=g) + 0.1}
    if name == "prior_rows":
        return {"label_smoothing": 0.3, "prior": torch.softmax(torch.randn(n, V, generator=g), 1)}
    if name == "per_sample":
        return {"label_smoothing": torch.rand(n, generator=g)}
    if name == "options":
        return {"label_smoothing": 0.1, "z_loss": 0.05}
    if name == "softcap":  # stays on the eager pass (kernels/_bf16.py::wanted)
        return {"label_smoothing": 0.1, "softcap": 2.5, "z_loss": 0.05}
    return {"label_smoothing": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weight", "prior_rows", "per_sample", "options", "softcap", "no_smoothing"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compiled_block_options_match_float64(compiled, name, reduction):
    z, y, g = _problem(seed=1)
    kw = _kwargs(name, z.shape[0], g)
    kw64 = {k: (t.double() if isinstance(t, torch.Tensor) else t) for k, t in kw.items()}
    ref = z.double().requires_grad_()
    r = cross_entropy_options64(
        ref, y, kw64["label_smoothing"], kw64.get("weight"), -100, reduction, kw64.get("prior"),
        kw.get("softcap"), kw.get("z_loss", 0.0),
    )  # fmt: skip
    r.sum().backward()
    ours = z.clone().requires_grad_()
    loss, aux = fused_cross_entropy(ours, y, reduction=reduction, return_aux=True, **kw)
    loss.sum().backward()
    assert bool(compiled) == ("softcap" not in kw)
    tol = 1e-2 * r.detach().abs().max().item()
    torch.testing.assert_close(loss.double(), r.detach(), rtol=0, atol=tol)
    # 1 - tanh(z / c)^2 in float32 cancels: with soft-capping the eager pass too is up to ~2 roundings off.
    assert _grad_err(ours.grad, ref.grad) <= (2.0 if "softcap" in kw else 1.0)
    z64 = z.double()
    if "softcap" in kw:
        z64 = kw["softcap"] * torch.tanh(z64 / kw["softcap"])
    valid = y != -100
    torch.testing.assert_close(aux.lse[valid].double(), torch.logsumexp(z64, 1)[valid], rtol=1e-5, atol=1e-5)
    acc = (z64.argmax(1) == y)[valid].double().mean()
    assert aux.accuracy.item() == pytest.approx(acc.item())


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_compiled_block_in_place_loss_only_and_fp16(compiled, dtype):
    z, y, _ = _problem(n=41, seed=2, dtype=dtype)  # 41 rows: with 8-row blocks a last block of one row
    ref = z.double().requires_grad_()
    cross_entropy_dense64(ref, y, 0.1).backward()
    bb = 8 * V * 4
    from labelsmooth.kernels.chunked import _apply

    zi = z.clone().requires_grad_()
    _apply(zi, y, None, -100, "mean", 0.1, None, True, "auto", bb).backward()
    assert _grad_err(zi.grad, ref.grad) <= 1.0
    assert zi.grad.data_ptr() == zi.data_ptr()  # the logits' storage holds the gradient
    with torch.no_grad():
        lo = _apply(z, y, None, -100, "mean", 0.1, None, False, "auto", bb)
    torch.testing.assert_close(lo.double(), cross_entropy_dense64(z.double(), y, 0.1), rtol=1e-2, atol=0)
    assert compiled and min(compiled) >= 2  # the one-row block took the eager pass


def test_compile_failure_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setenv(_bf16.ENV, "1")
    monkeypatch.setattr(_bf16, "_FAILED", False)
    monkeypatch.setattr(_bf16, "_READY", set())

    def broken():
        def fn(*args):
            raise RuntimeError("no C++ compiler here")

        return fn

    monkeypatch.setattr(_bf16, "_compiled", broken)
    z, y, _ = _problem(n=12, v=50)
    ours = z.clone().requires_grad_()
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler here"):
        fused_cross_entropy(ours, y, label_smoothing=0.1).backward()
    assert _bf16._FAILED and not _bf16.wanted(z)
    monkeypatch.setenv(_bf16.ENV, "0")
    eager = z.clone().requires_grad_()
    fused_cross_entropy(eager, y, label_smoothing=0.1).backward()
    torch.testing.assert_close(ours.grad, eager.grad, rtol=0, atol=0)


def test_mode_and_when_it_applies(monkeypatch):
    big = torch.empty(_bf16.MIN_ELEMENTS // 1024, 1024, dtype=torch.bfloat16)
    small = torch.empty(8, 1024, dtype=torch.bfloat16)
    monkeypatch.delenv(_bf16.ENV, raising=False)
    assert _bf16.mode() == "0"  # off by default: slower than the eager pass on an idle machine
    assert not _bf16.wanted(big)
    monkeypatch.setenv(_bf16.ENV, "auto")
    assert not _bf16._FAILED
    assert _bf16.wanted(big) and not _bf16.wanted(small) and not _bf16.wanted(big.float())
    monkeypatch.setenv(_bf16.ENV, "0")
    assert not _bf16.wanted(big)
    monkeypatch.setenv(_bf16.ENV, "1")
    assert _bf16.wanted(small) and not _bf16.wanted(small.float())
    monkeypatch.setenv(_bf16.ENV, "yes")
    with pytest.raises(ValueError, match="Expected `LABELSMOOTH_HALF_COMPILE` to be one of"):
        fused_cross_entropy(small.normal_(), torch.zeros(8, dtype=torch.long))
