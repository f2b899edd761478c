"""The C row kernel (kernels/_native.py, kernels/_rows.c): the accuracy gates of the eager pass.

``LABELSMOOTH_NATIVE=1`` (the kernel for float32 and bfloat16, raising if it cannot be built); a counting
wrapper of :func:`labelsmooth.kernels._native.run_rows` proves that it ran (a fallback to the eager pass
would not count).
"""

from __future__ import annotations

import math
import os
import tempfile

import pytest
import torch
import torch.nn.functional as F

from labelsmooth.kernels import _native, fused_cross_entropy
from reference import cross_entropy_dense64, cross_entropy_options64

V = 1000


@pytest.fixture
def native(monkeypatch):
    """Require the C kernel and count the rows it computed."""
    monkeypatch.setenv(_native.ENV, "1")
    calls = []
    real = _native.run_rows

    def counting(z, grad, k, s, e, *rest):
        left = real(z, grad, k, s, e, *rest)
        calls.append(e - s - len(left))
        return left

    monkeypatch.setattr(_native, "run_rows", counting)
    yield calls
    assert not _native._FAILED


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


def test_native_matches_float64_and_keeps_confident_targets(native):
    z, y, g = _problem()
    conf = _confident_rows(V, 0.1, g)
    z = torch.cat([z, conf])
    y = torch.cat([y, torch.full((3,), 3)])
    ref = z.double().requires_grad_()
    cross_entropy_dense64(ref, y, 0.1, reduction="sum").backward()
    ours = z.clone().requires_grad_()
    loss = fused_cross_entropy(ours, y, reduction="sum", label_smoothing=0.1)
    loss.backward()
    assert sum(native) == z.shape[0], "the C kernel did not run"
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
    if name == "softcap":
        return {"label_smoothing": 0.1, "softcap": 2.5, "z_loss": 0.05}
    return {"label_smoothing": 0.0}


@pytest.mark.parametrize("name", ["weight", "prior_rows", "per_sample", "options", "softcap", "no_smoothing"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_native_options_match_float64(native, name, reduction):
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
    assert sum(native) == z.shape[0]
    tol = 1e-2 * r.detach().abs().max().item()
    torch.testing.assert_close(loss.double(), r.detach(), rtol=0, atol=tol)
    # Where softmax(z)_k C ~ B uw_k the gradient cancels to ~1e-6 of its terms (here -2.6e-10), below what any
    # float32 evaluation resolves: with soft-capping one such element of this problem is 1.08 roundings off
    # (the eager pass: 1.50), so the gate there is 2.
    assert _grad_err(ours.grad, ref.grad) <= (2.0 if "softcap" in kw else 1.0)
    z64 = z.double()
    if "softcap" in kw:
        z64 = kw["softcap"] * torch.tanh(z64 / kw["softcap"])
    valid = y != -100
    torch.testing.assert_close(aux.lse[valid].double(), torch.logsumexp(z64, 1)[valid], rtol=1e-5, atol=1e-5)
    acc = (z64.argmax(1) == y)[valid].double().mean()
    assert aux.accuracy.item() == pytest.approx(acc.item())


def test_native_in_place_loss_only_and_float32(native):
    for dtype in (torch.bfloat16, torch.float32):
        z, y, _ = _problem(n=41, seed=2, dtype=dtype)  # 41 rows in 8-row blocks: a last block of one row
        ref = z.double().requires_grad_()
        cross_entropy_dense64(ref, y, 0.1).backward()
        bb = 8 * V * 4
        from labelsmooth.kernels.chunked import _apply

        zi = z.clone().requires_grad_()
        _apply(zi, y, None, -100, "mean", 0.1, None, True, "auto", bb).backward()
        if dtype == torch.bfloat16:
            assert _grad_err(zi.grad, ref.grad) <= 1.0
        else:
            torch.testing.assert_close(zi.grad.double(), ref.grad, rtol=1e-5, atol=1e-9)
        assert zi.grad.data_ptr() == zi.data_ptr()  # the logits' storage holds the gradient
        with torch.no_grad():
            lo = _apply(z, y, None, -100, "mean", 0.1, None, False, "auto", bb)
        rtol = 1e-2 if dtype == torch.bfloat16 else 1e-6
        torch.testing.assert_close(lo.double(), cross_entropy_dense64(z.double(), y, 0.1), rtol=rtol, atol=0)
    assert sum(native) == 4 * 41


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_rows_with_inf_or_nan_take_the_eager_pass_and_agree_with_it(native, monkeypatch, dtype):
    z, y, _ = _problem(n=30, seed=3, dtype=dtype)
    z[4, 10] = -math.inf  # a masked class
    z[5, :] = -math.inf
    z[6, 2] = math.inf
    z[7, 1] = -math.inf  # an ignored row (y[::7] = -100)
    z[8, 7] = math.nan  # 4..8: one run of consecutive rows
    z[20, 0] = -math.inf
    ours = z.clone().requires_grad_()
    loss, aux = fused_cross_entropy(ours, y, reduction="none", return_aux=True, label_smoothing=0.0)
    loss.sum().backward()
    assert sum(native) == 30 - 6
    monkeypatch.setenv(_native.ENV, "0")
    eager = z.clone().requires_grad_()
    loss0, aux0 = fused_cross_entropy(eager, y, reduction="none", return_aux=True, label_smoothing=0.0)
    loss0.sum().backward()
    bad = [4, 5, 6, 7, 8, 20]  # computed by the same eager maths: identical
    torch.testing.assert_close(loss[bad], loss0[bad], equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(loss, loss0, equal_nan=True, rtol=1e-6, atol=0)
    torch.testing.assert_close(aux.lse, aux0.lse, equal_nan=True, rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.grad[4:9], eager.grad[4:9], equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(ours.grad[20], eager.grad[20], equal_nan=True, rtol=0, atol=0)
    assert torch.isfinite(loss[4]) and not torch.isfinite(loss[8])  # a masked class keeps a finite loss


def test_build_failure_warns_once_and_falls_back_and_mode_1_raises(monkeypatch):
    monkeypatch.setenv(_native.ENV, "auto")
    monkeypatch.setattr(_native, "_FAILED", False)
    monkeypatch.setattr(_native, "_LIB", None)
    monkeypatch.setattr(_native, "_FUNCS", {})

    def broken():
        raise RuntimeError("no C compiler found ($CC, cc, gcc or clang)")

    monkeypatch.setattr(_native, "_load", broken)
    z, y, _ = _problem(n=12, v=50)
    ours = z.clone().requires_grad_()
    with pytest.warns(RuntimeWarning, match="building the C row kernel failed .*no C compiler found"):
        fused_cross_entropy(ours, y, label_smoothing=0.1).backward()
    assert _native._FAILED and not _native.wanted(z)
    monkeypatch.setenv(_native.ENV, "0")
    eager = z.clone().requires_grad_()
    fused_cross_entropy(eager, y, label_smoothing=0.1).backward()
    torch.testing.assert_close(ours.grad, eager.grad, rtol=0, atol=0)
    monkeypatch.setenv(_native.ENV, "1")  # asked for: no silent fallback
    with pytest.raises(RuntimeError, match="LABELSMOOTH_NATIVE=1, but the C row kernel could not be built: "
                                           "RuntimeError: no C compiler found"):  # fmt: skip
        fused_cross_entropy(z.clone().requires_grad_(), y, label_smoothing=0.1)


def test_a_missing_compiler_and_a_failing_build_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(_native.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="no C compiler found"):
        _native._load()
    monkeypatch.undo()
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(tmp_path))
    bad = tmp_path / "bad.c"
    bad.write_text("this is not C\n")
    monkeypatch.setattr(_native, "SOURCE", bad)
    with pytest.raises(RuntimeError, match="failed"):
        _native._load()
    assert not list(tmp_path.glob("*.so"))  # nothing half-written is left to be loaded later


def test_the_build_is_cached_by_source_and_loads_without_changing_the_fp_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(tmp_path))
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # a subnormal: flush-to-zero would make it 0
    _native._load()
    (so,) = tmp_path.glob("rows-*.so")
    stamp = so.stat().st_mtime_ns
    _native._load()  # a second load reuses the file
    assert so.stat().st_mtime_ns == stamp
    assert (tiny * 1.0).item() != 0.0 and torch.tensor([1e-39]).mul(0.5).item() != 0.0


def test_an_unwritable_cache_folder_builds_in_the_temporary_folder(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(blocker / "cache"))  # mkdir under a file fails
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    lib = _native._load()
    assert lib.labelsmooth_abi() == _native.ABI
    assert list((tmp_path / "tmp").glob("labelsmooth-*/rows-*.so"))


def test_mode_and_when_it_applies(monkeypatch):
    small = torch.empty(8, 1024, dtype=torch.bfloat16)
    monkeypatch.delenv(_native.ENV, raising=False)
    assert _native.mode() == "auto"
    for mode in ("auto", "1"):
        monkeypatch.setenv(_native.ENV, mode)
        assert _native.wanted(small) and _native.wanted(small.float())
        assert not _native.wanted(small.half()) and not _native.wanted(small.double())
    monkeypatch.setenv(_native.ENV, "0")
    assert not _native.wanted(small) and not _native.wanted(small.float())
    monkeypatch.setenv(_native.ENV, "yes")
    with pytest.raises(ValueError, match="Expected `LABELSMOOTH_NATIVE` to be one of"):
        fused_cross_entropy(small.normal_(), torch.zeros(8, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_softcap_over_small_and_saturated_logits_matches_float64(native, dtype):
    # |z / c| from 1e-4 (tanh ~ its argument) to 10 (saturated: 1 - tanh^2 = 8e-9, which float32's 1 - t * t
    # rounds to 0 from ~9 on; float64's, the reference's, keeps it to ~1e-8 relative up to 10).
    g = torch.Generator().manual_seed(4)
    mag = torch.logspace(-4, 1, V, dtype=torch.float64) * 5.0
    sign = torch.where(torch.rand(12, V, generator=g) < 0.5, -1.0, 1.0).double()
    z = (sign * mag[torch.randperm(V, generator=g)]).to(dtype)
    y = torch.randint(0, V, (12,), generator=g)
    ref = z.double().requires_grad_()
    r = cross_entropy_options64(ref, y, 0.1, None, -100, "sum", None, 5.0, 1e-3)
    r.backward()
    ours = z.clone().requires_grad_()
    loss = fused_cross_entropy(ours, y, reduction="sum", label_smoothing=0.1, softcap=5.0, z_loss=1e-3)
    loss.backward()
    assert sum(native) == 12
    if dtype == torch.bfloat16:
        torch.testing.assert_close(loss.double(), r.detach(), rtol=1e-2, atol=0)
        assert _grad_err(ours.grad, ref.grad) <= 2.0
    else:
        torch.testing.assert_close(loss.double(), r.detach(), rtol=1e-6, atol=0)
        torch.testing.assert_close(ours.grad.double(), ref.grad, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_vocabulary_masked_with_the_lowest_finite_value_matches_float64(native, dtype, alpha):
    # Padded vocabularies are often masked with finfo(dtype).min (finite, so the rows stay in the C kernel):
    # the smoothing sum must neither overflow (the eager pass's float32 mean does: its loss is inf at a > 0,
    # where the exact one is ~1e37) nor, at a = 0, turn 0 * inf into nan.
    g = torch.Generator().manual_seed(5)
    z = (torch.randn(6, 1500, generator=g) * 3).to(dtype)
    z[:, 1200:] = torch.finfo(dtype).min
    z[3] = -1e30  # a constant row: loss log V for any a
    z[4] = torch.finfo(dtype).min
    z[4, 7] = 2.0  # everything masked but the target
    y = torch.tensor([0, 5, 1199, 3, 7, 11])
    ours = z.clone().requires_grad_()
    loss = fused_cross_entropy(ours, y, reduction="none", label_smoothing=alpha)
    loss.sum().backward()
    assert sum(native) == 6
    ref = z.double().requires_grad_()
    r = cross_entropy_dense64(ref, y, alpha, reduction="none")
    r.sum().backward()
    assert torch.isfinite(loss).all()
    rtol = 1e-2 if dtype == torch.bfloat16 else 1e-6
    torch.testing.assert_close(loss.double(), r.detach(), rtol=rtol, atol=1e-6)
    torch.testing.assert_close(loss[3].double(), torch.tensor(math.log(1500), dtype=torch.float64), rtol=rtol, atol=0)
    if dtype == torch.bfloat16:
        assert _grad_err(ours.grad, ref.grad) <= 1.0
    else:
        torch.testing.assert_close(ours.grad.double(), ref.grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("cap", [30.0, 1e3, 1e5])
def test_softcap_keeps_relative_precision_for_large_caps(native, cap):
    # z / c is small here: tanh must keep its relative precision (an absolute 1e-7 error would be c * 1e-7
    # in the capped logits).
    g = torch.Generator().manual_seed(6)
    z = torch.randn(16, 700, generator=g) * 3
    y = torch.randint(0, 700, (16,), generator=g)
    ref = z.double().requires_grad_()
    r = cross_entropy_options64(ref, y, 0.1, None, -100, "sum", None, cap, 0.0)
    r.backward()
    ours = z.clone().requires_grad_()
    loss = fused_cross_entropy(ours, y, reduction="sum", label_smoothing=0.1, softcap=cap)
    loss.backward()
    assert sum(native) == 16
    torch.testing.assert_close(loss.double(), r.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(ours.grad.double(), ref.grad, rtol=1e-4, atol=1e-7)


def test_caps_outside_float32s_range_take_the_eager_pass(native, monkeypatch):
    z, y, _ = _problem(n=8, v=50, dtype=torch.float32)
    for cap in (1e-50, 1e39):
        ours = fused_cross_entropy(z, y, label_smoothing=0.1, softcap=cap)
        monkeypatch.setenv(_native.ENV, "0")
        eager = fused_cross_entropy(z, y, label_smoothing=0.1, softcap=cap)
        monkeypatch.setenv(_native.ENV, "1")
        torch.testing.assert_close(ours, eager, rtol=0, atol=0, equal_nan=True)
    assert sum(native) == 0


def test_a_truncated_library_is_rebuilt_not_loaded(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(tmp_path))
    _native._load()
    (so,) = tmp_path.glob("rows-*.so")
    size = so.stat().st_size
    head = so.read_bytes()[:1000]
    so.unlink()  # a new file (this process maps the old one): what a crash in an older build leaves
    so.write_bytes(head)
    lib = _native._load()  # mapping the truncated file would kill the process (SIGBUS)
    assert lib.labelsmooth_abi() == _native.ABI and so.stat().st_size == size
    so.unlink()
    so.write_bytes(b"")
    _native._load()
    assert so.stat().st_size == size


def test_a_shared_temporary_folder_is_refused_and_a_silent_compiler_reported(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(blocker / "cache"))  # unwritable: the temporary folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uid = os.getuid()
    shared = tmp_path / f"labelsmooth-{uid}"
    shared.mkdir()
    shared.chmod(0o777)  # anyone may plant a library there
    with pytest.raises(RuntimeError, match="not a private folder of this user"):
        _native._load()
    monkeypatch.setenv("LABELSMOOTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "true")  # exits 0 and writes nothing
    with pytest.raises(RuntimeError, match="exited 0 but wrote no library"):
        _native._load()
