"""Bad input to labelsmooth.kernels.fused_cross_entropy / linear_cross_entropy, and the Triton backend where
it cannot run: one clear error each."""

from __future__ import annotations

import pytest
import torch
from kernel_problems import _linear_problem, _problem

from labelsmooth.kernels import fused_cross_entropy, linear_cross_entropy


# ---------------------------------------------------------------- the Triton backend where it cannot run
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
