"""Problems and comparisons shared by the kernels' tests (test_kernels_values, test_kernels_edge_cases,
test_kernels_errors, test_kernel_options): seeded float64 logits and targets, the semantic variants, the
float64 dense reference, and a relative error. Importable from the test files of this folder (pytest puts
a test file's folder on sys.path)."""

from __future__ import annotations

import torch

from reference import cross_entropy_dense64

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


def _linear_problem(n=7, d=4, v=11, seed=0, dtype=torch.float64, bias=True):
    g = _gen(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    W = torch.randn(v, d, generator=g, dtype=torch.float64).to(dtype)
    b = torch.randn(v, generator=g, dtype=torch.float64).to(dtype) if bias else None
    y = torch.randint(0, v, (n,), generator=g)
    y[2] = -100
    return x, W, b, y, g
