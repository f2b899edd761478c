"""The Triton kernel, run on CPU tensors under TRITON_INTERPRET=1 (so CI covers the GPU code).

TRITON_INTERPRET must be set before Triton builds the kernels, and other tests (torch.compile) may
import Triton first in the pytest process. So the checks run in a child process: this file, executed
as a script with the variable set. One child runs every case, group by group (the cases of a group share
a random generator; all share one interpreter start-up, seconds of CPU for torch and Triton), and writes
each case's outcome, a traceback or ``None``, to a JSON file; each case is then its own parametrised
test, which fails with that case's traceback. The cases are one xdist group: one pytest-xdist worker runs
them, so no other worker sits waiting for a child it did not start (a file lock still keeps
``--dist load`` to one child).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import traceback

import pytest


def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


CASES = {
    "base": [
        "default",
        "no smoothing",
        "weight",
        "zero weight on a target",
        "prior",
        "per-row prior and weight",
        "per-row smoothing",
        "block wider than V",
        "in place",
        "-inf leading blocks",
        "all ignored and N = 1",
        "bf16 confident rows",
        "fused linear",
    ],
    "options": [
        "softcap",
        "z_loss",
        "softcap, z_loss, weight and prior",
        "softcap, z_loss and per-row smoothing",
        "num_items_in_batch",
        "return_aux fused",
        "return_aux linear",
    ],
}


def _results(tmp_path_factory) -> dict:
    """The outcomes of every case, by group, from one child process shared by all xdist workers of the run."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "triton-interpreter.json"
    with open(root / "triton-interpreter.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            env = dict(os.environ, TRITON_INTERPRET="1")
            tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/: reference.py
            env["PYTHONPATH"] = tests_dir + os.pathsep + env.get("PYTHONPATH", "")
            try:
                proc = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), str(out)], env=env, capture_output=True,
                    text=True, timeout=300,
                )  # fmt: skip
                crash = f"the child process failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                failed = proc.returncode != 0 or not out.exists()
            except subprocess.TimeoutExpired:  # recorded once, not retried by every case
                crash, failed = "the child process ran past 300 s", True
            if failed:
                out.write_text(json.dumps({g: {name: crash for name in names} for g, names in CASES.items()}))
    return json.loads(out.read_text())


@pytest.mark.skipif(
    not _triton_importable(), reason="triton is not importable (pip install labelsmooth[triton])"
)
@pytest.mark.xdist_group("triton")
@pytest.mark.parametrize("group, case", [(g, c) for g, names in CASES.items() for c in names])
def test_triton_kernel_under_interpreter(group, case, tmp_path_factory):
    outcome = _results(tmp_path_factory).get(group, {})
    assert case in outcome, f"the child did not run {group}: {case}"
    if outcome[case] is not None:
        pytest.fail(f"{group}: {case}\n{outcome[case]}", pytrace=False)


def _options_cases():
    """Soft-capping, z-loss, global denominator and the per-row statistics in the Triton kernel."""
    import torch

    from labelsmooth.kernels import _core, _stream, triton_ce
    from labelsmooth.kernels import fused_cross_entropy as fce
    from labelsmooth.kernels import linear_cross_entropy as lce
    from reference import cross_entropy_options64

    g = torch.Generator().manual_seed(1)
    n, v = 5, 37
    w = torch.rand(v, generator=g) + 0.1
    u = torch.softmax(torch.randn(v, generator=g), 0)
    variants = [
        {"softcap": 2.5},
        {"z_loss": 0.05},
        {"softcap": 2.5, "z_loss": 0.05, "weight": w, "prior": u},
        {"softcap": 30.0, "z_loss": 1e-4, "label_smoothing": torch.rand(n, generator=g)},
        {"softcap": 4.0, "z_loss": 1e-2, "num_items_in_batch": 11},
    ]
    for name, kw in zip(CASES["options"], variants):

        def case(kw=kw, reductions=("mean", "sum", "none") if name == "softcap" else ("mean", "none")):
            for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
                for reduction in reductions:
                    if reduction != "mean" and "num_items_in_batch" in kw:
                        continue
                    z = torch.randn(n, v, generator=g) * 3
                    z[0, 4], z[4, 1] = 1e4, -1e4
                    y = torch.tensor([0, 3, -100, 36, 2])
                    a = kw.get("label_smoothing", 0.1)
                    opts = {k: kw[k] for k in ("softcap", "z_loss", "num_items_in_batch") if k in kw}
                    _, p = _core.prepare_row_params(
                        z.to(dtype), y, kw.get("weight"), -100, reduction, a, kw.get("prior"), **opts
                    )
                    zt = z.to(dtype)
                    grad = torch.empty_like(zt)
                    stats = _stream.new_stats(n, dtype, zt.device)
                    rows = triton_ce.loss_grad(zt, grad, p, block=16, stats=stats)
                    ref_z = zt.double().requires_grad_()
                    ref = cross_entropy_options64(
                        ref_z, y, a.double() if isinstance(a, torch.Tensor) else a,
                        kw["weight"].double() if "weight" in kw else None, -100, "none",
                        kw["prior"].double() if "prior" in kw else None, kw.get("softcap"), kw.get("z_loss", 0.0),
                    )  # fmt: skip
                    ref.backward(p.scale.double())
                    err_l = ((rows.double() - ref.detach()).abs().max() / ref.detach().abs().max()).item()
                    err_g = ((grad.double() - ref_z.grad).abs().max() / ref_z.grad.abs().max()).item()
                    assert err_l < tol and err_g < tol, (dtype, reduction, sorted(kw), err_l, err_g)
                    capped = zt.double()
                    if "softcap" in kw:
                        capped = kw["softcap"] * torch.tanh(capped / kw["softcap"])
                    torch.testing.assert_close(
                        stats[0].double(), torch.logsumexp(capped, 1), rtol=1e-5, atol=1e-4
                    )
                    keep = y != -100  # an ignored row's flag refers to class 0
                    assert torch.equal(stats[1][keep], (capped.argmax(1) == y)[keep]), (
                        stats[1],
                        capped.argmax(1),
                        y,
                    )
                    loss_only = triton_ce.loss_grad(zt, None, p, block=16)
                    torch.testing.assert_close(loss_only, rows)

        yield name, case

    y = torch.tensor([1, -100, 5, 36, 0, 0])  # shared by the two return_aux cases
    opts = {"label_smoothing": 0.1, "softcap": 3.0, "z_loss": 1e-2, "return_aux": True}

    def return_aux_fused():
        # the public functions with return_aux, against the torch path
        z = torch.randn(6, 37, generator=g)
        for inplace in (False, True):
            zt, zc = z.clone().requires_grad_(), z.clone().requires_grad_()
            lt, at = fce(zt.clone() if inplace else zt, y, backend="triton", inplace=inplace, **opts)
            lc, ac = fce(zc, y, backend="torch", **opts)
            torch.testing.assert_close(lt, lc)
            for x1, x2 in zip(at, ac):
                torch.testing.assert_close(x1, x2)
            lt.backward()
            lc.backward()
            torch.testing.assert_close(zt.grad, zc.grad)

    yield "return_aux fused", return_aux_fused

    def return_aux_linear():
        x, W = torch.randn(6, 4, generator=g), torch.randn(37, 4, generator=g)
        xs, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        lt, at = lce(xs, W, y, chunk_size=4, backend="triton", num_items_in_batch=9, **opts)
        lc, ac = lce(xr, W, y, chunk_size=4, backend="torch", num_items_in_batch=9, **opts)
        torch.testing.assert_close(lt, lc)
        torch.testing.assert_close(at.lse, ac.lse)
        torch.testing.assert_close(at.accuracy, ac.accuracy)
        lt.backward()
        lc.backward()
        torch.testing.assert_close(xs.grad, xr.grad)

    yield "return_aux linear", return_aux_linear


def _base_cases():
    """The loss and gradient of every row against a float64 reference, and the public functions."""
    import torch
    import torch.nn.functional as F

    from labelsmooth.kernels import _core, triton_ce
    from labelsmooth.kernels import fused_cross_entropy as fce
    from labelsmooth.kernels import linear_cross_entropy as lce
    from reference import cross_entropy_dense64

    g = torch.Generator().manual_seed(0)
    n, v = 5, 37  # V not a multiple of the block (16 below)

    def check(dtype, reduction, kw, block=16, tol=1e-5):
        z = torch.randn(n, v, generator=g) * 3
        z[0, 4], z[4, 1] = 1e4, -1e4
        y = torch.tensor([0, 3, -100, 36, 2])
        _, p = _core.prepare_row_params(
            z.to(dtype), y, kw.get("weight"), -100, reduction, kw.get("label_smoothing", 0.1), kw.get("prior")
        )
        zt = z.to(dtype)
        grad = torch.empty_like(zt)
        loss_rows = triton_ce.loss_grad(zt, grad, p, block=block)
        ref_z = zt.double().requires_grad_()
        kw64 = {k: (t.double() if isinstance(t, torch.Tensor) else t) for k, t in kw.items()}
        ref = cross_entropy_dense64(
            ref_z, y, kw64.get("label_smoothing", 0.1), kw64.get("weight"), -100, "none", kw64.get("prior")
        )
        scale = p.scale.double()
        ref.backward(scale)
        err_l = ((loss_rows.double() - ref.detach()).abs().max() / ref.detach().abs().max()).item()
        err_g = ((grad.double() - ref_z.grad).abs().max() / ref_z.grad.abs().max()).item()
        assert err_l < tol and err_g < tol, (dtype, reduction, sorted(kw), err_l, err_g)
        loss_only = triton_ce.loss_grad(zt, None, p, block=block)  # first pass only, no gradient
        torch.testing.assert_close(loss_only, loss_rows)

    w = torch.rand(v, generator=g) + 0.1
    u = torch.softmax(torch.randn(v, generator=g), 0)
    urows = torch.softmax(torch.randn(n, v, generator=g), 1)
    w0 = w.clone()
    w0[3] = 0.0  # a valid row whose target class has weight 0: only its smoothing term counts
    variants = [
        {},
        {"label_smoothing": 0.0},
        {"weight": w},
        {"weight": w0},
        {"prior": u},
        {"prior": urows, "weight": w},
        {"label_smoothing": torch.rand(n, generator=g)},
    ]
    for name, kw in zip(CASES["base"], variants):

        # The kernel reads the reduction only through the per-row scale r: every reduction for the default
        # case, "mean" and "none" (r = 1 / sum w_y and r = 1) for the others.
        def case(kw=kw, reductions=("mean", "sum", "none") if name == "default" else ("mean", "none")):
            for reduction in reductions:
                check(torch.float32, reduction, kw)
                check(torch.bfloat16, reduction, kw, tol=1e-2)

        yield name, case

    def wide_block():
        check(torch.float32, "mean", {}, block=64)  # one block wider than V

    yield "block wider than V", wide_block

    def in_place():
        # in place through the public function (backend forced; CPU tensors under the interpreter)
        z = torch.randn(4, 37, generator=g)
        y = torch.tensor([1, -100, 5, 36])
        ref = z.clone().requires_grad_()
        F.cross_entropy(ref, y, label_smoothing=0.1).backward()
        work = z.clone().requires_grad_()
        ptr = work.data_ptr()
        loss = fce(work, y, label_smoothing=0.1, backend="triton", inplace=True)
        torch.testing.assert_close(loss, F.cross_entropy(z, y, label_smoothing=0.1))
        loss.backward()
        assert work.grad.data_ptr() == ptr
        torch.testing.assert_close(work.grad, ref.grad)

    yield "in place", in_place

    def minus_inf_rows():
        # rows whose first blocks (16 classes here) are all -inf: the online max starts at -inf (was nan)
        zinf = torch.randn(3, 37, generator=g)
        zinf[0, :16] = -torch.inf
        zinf[1, :32] = -torch.inf
        yinf = torch.tensor([20, 33, 5])
        _, pinf = _core.prepare_row_params(zinf, yinf, None, -100, "sum", 0.0, None)
        ginf = torch.empty_like(zinf)
        rows_inf = triton_ce.loss_grad(zinf, ginf, pinf, block=16)
        zref = zinf.clone().requires_grad_()
        ref_rows = F.cross_entropy(zref, yinf, reduction="none")
        ref_rows.sum().backward()
        torch.testing.assert_close(rows_inf, ref_rows.detach())
        torch.testing.assert_close(ginf, zref.grad)

    yield "-inf leading blocks", minus_inf_rows

    def all_ignored():
        # all rows ignored, N = 1
        zi = torch.randn(3, 37, generator=g).requires_grad_()
        li = fce(zi, torch.full((3,), -100), label_smoothing=0.1, backend="triton")
        assert torch.isnan(li)
        li.backward()
        assert (zi.grad == 0).all()
        z1 = torch.randn(1, 37, generator=g)
        torch.testing.assert_close(
            fce(z1, torch.tensor([7]), label_smoothing=0.3, backend="triton"),
            F.cross_entropy(z1, torch.tensor([7]), label_smoothing=0.3),
        )

    yield "all ignored and N = 1", all_ignored

    def bf16_confident():
        # bf16 confident rows: the target gradient is one rounding of its float32 value, and no worse than
        # PyTorch's bf16 autograd. (The interpreter casts float32 -> bf16 by truncation, so its bound is
        # 2**-7; a GPU rounds to nearest, 2**-8.)
        rows = torch.zeros(3, 100)
        for i, q in enumerate((0.9, 0.99, 0.999)):
            rows[i, 3] = torch.log(torch.tensor(q * 99 / (1 - q)))
        y3 = torch.full((3,), 3)
        for a in (0.0, 0.1):
            refb = rows.bfloat16().double().requires_grad_()
            cross_entropy_dense64(refb, y3, a, reduction="sum").backward()
            t = refb.grad[:, 3]
            ours = rows.bfloat16().requires_grad_()
            fce(ours, y3, reduction="sum", label_smoothing=a, backend="triton").backward()
            theirs = rows.bfloat16().requires_grad_()
            F.cross_entropy(theirs, y3, reduction="sum", label_smoothing=a).backward()
            rel = ((ours.grad[:, 3].double() - t).abs() / t.abs()).max().item()
            rel_torch = ((theirs.grad[:, 3].double() - t).abs() / t.abs()).max().item()
            assert rel <= 2.0**-7 and rel <= rel_torch, (a, rel, rel_torch)

    yield "bf16 confident rows", bf16_confident

    def linear():
        # the fused linear path with Triton chunks
        x, W = torch.randn(6, 4, generator=g), torch.randn(37, 4, generator=g)
        yl = torch.tensor([0, 1, -100, 36, 5, 5])
        xs = x.clone().requires_grad_()
        out = lce(xs, W, yl, label_smoothing=0.1, chunk_size=4, backend="triton")
        xr = x.clone().requires_grad_()
        ref = F.cross_entropy(xr @ W.t(), yl, label_smoothing=0.1)
        torch.testing.assert_close(out, ref)
        out.backward()
        ref.backward()
        torch.testing.assert_close(xs.grad, xr.grad)

    yield "fused linear", linear


def _run_groups(out: str) -> None:
    """Child: run each group's cases in order, each outcome (None or a traceback) into ``out`` as JSON."""
    os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    outcomes: dict[str, dict[str, str | None]] = {}
    for group, cases in (("base", _base_cases), ("options", _options_cases)):
        outcome = outcomes[group] = {}
        for name, case in cases():
            try:
                case()
                outcome[name] = None
            except Exception:
                outcome[name] = traceback.format_exc()
        if list(outcome) != CASES[group]:
            raise RuntimeError(f"the cases of {group} ran as {list(outcome)}, CASES lists {CASES[group]}")
    with open(out, "w") as f:
        json.dump(outcomes, f)


if __name__ == "__main__":
    _run_groups(sys.argv[1])
