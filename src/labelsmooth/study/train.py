"""Train and measure one run of the grid: split, corrupt, train, evaluate, calibrate.

Deterministic given the run: the split, the noise and the initialisation derive from the run's seed only
(so runs with the same seed are *paired*: same split, same noisy labels, same initial weights, different
objective); training uses one thread (``torch.set_num_threads(1)``) whether it runs in the parent or in a
worker process, so stored numbers are identical whatever the number of workers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from labelsmooth.study import measure
from labelsmooth.study.config import StudyConfig
from labelsmooth.study.data import Dataset, split
from labelsmooth.study.grid import RunSpec, config_hash, run_config
from labelsmooth.study.models import ModelFn, build_model, model_name, supports_projection
from labelsmooth.study.noise import apply_noise, memorised_fraction
from labelsmooth.study.objectives import make_loss
from labelsmooth.theory import optimal_logit_gap

PROJECTION_POINTS = 300  # subsample of projected penultimate features stored per run


@dataclass
class RunContext:
    """What every run of a study shares: the config, the loaded datasets, the user's model_fn."""

    config: StudyConfig
    datasets: dict[str, Dataset]
    model_fn: ModelFn | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def run_config(self, spec: RunSpec) -> dict[str, Any]:
        return run_config(
            spec, self.config, self.datasets[spec.dataset].fingerprint, model_name(self.model_fn)
        )

    def run_hash(self, spec: RunSpec) -> str:
        return config_hash(self.run_config(spec))


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from a tuple of parts (stable across processes and platforms)."""
    return int(np.random.SeedSequence([abs(hash_int(p)) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def hash_int(part: object) -> int:
    if isinstance(part, int):
        return part
    return int.from_bytes(str(part).encode()[:16].ljust(16, b"\0"), "little")


def _standardize(X: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    """Standardise with the training split's statistics: per feature (tabular) or per channel (images)."""
    axes = (0,) if X.ndim == 2 else (0, 2, 3)
    ref = X[train_idx]
    mean = ref.mean(axis=axes, keepdims=True)
    std = ref.std(axis=axes, keepdims=True)
    return ((X - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


def _logits(model: nn.Module, X: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(X[i : i + batch]) for i in range(0, len(X), batch)]).float()


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train one run and return its record: metrics, per-epoch curves and the arrays for the figures."""
    start = time.perf_counter()
    torch.set_num_threads(1)
    cfg, tc = ctx.config, ctx.config.train
    ds = ctx.datasets[spec.dataset]
    k = ds.num_classes
    sp = split(ds.y, cfg.data.val_fraction, cfg.data.test_fraction, seed=spec.seed)
    X = torch.from_numpy(_standardize(ds.X, sp.train))
    y_clean = ds.y[sp.train]
    y_noisy = apply_noise(y_clean, spec.noise_kind, spec.noise_rate, k, spec.seed, cfg.noise.matrix or None)
    Xtr, Xva, Xte = X[sp.train], X[sp.val], X[sp.test]
    ytr = torch.from_numpy(y_noisy)
    yva, yte = torch.from_numpy(ds.y[sp.val]), torch.from_numpy(ds.y[sp.test])

    torch.manual_seed(derive_seed(spec.seed, "init"))
    if ctx.model_fn is not None:
        model = ctx.model_fn(ds.input_shape, k)
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected `model_fn` to return a torch.nn.Module, got {type(model).__name__}.")
    else:
        model = build_model(cfg.model, ds.input_shape, k)
    loss_fn = make_loss(spec.method, ytr, k)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    gen = torch.Generator().manual_seed(derive_seed(spec.seed, "batches"))

    curves: dict[str, list[float]] = {
        "epoch": [],
        "train_loss": [],
        "val_nll": [],
        "val_accuracy": [],
        "val_ece": [],
    }
    diverged = False
    n = len(ytr)
    bs = tc.batch_size or n
    epoch = 0
    set_epoch = getattr(loss_fn, "set_epoch", None)  # a scheduled method (negative-schedule)
    if set_epoch is not None:
        curves["label_smoothing"] = []
    for epoch in range(1, tc.epochs + 1):
        if set_epoch is not None:
            set_epoch(epoch)
        model.train()
        order = torch.randperm(n, generator=gen) if bs < n else None
        total, seen = 0.0, 0
        for i in range(0, n, bs):
            idx = order[i : i + bs] if order is not None else slice(None)
            xb, yb = Xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(yb)
            seen += len(yb)
        train_loss = total / seen
        if not math.isfinite(train_loss):
            diverged = True
            break
        if epoch % tc.eval_every == 0 or epoch == tc.epochs:
            model.eval()
            z_val = _logits(model, Xva)
            if not bool(torch.isfinite(z_val).all()):  # logits overflowed (e.g. negative smoothing)
                diverged = True
                break
            nll, acc, ece = measure.quick(z_val, yva, cfg.n_bins)
            for key, v in zip(curves, (epoch, train_loss, nll, acc, ece)):
                curves[key].append(v)
            if set_epoch is not None:
                curves["label_smoothing"].append(float(loss_fn.label_smoothing))  # type: ignore[attr-defined]

    model.eval()
    z_tr, z_va, z_te = _logits(model, Xtr), _logits(model, Xva), _logits(model, Xte)
    finite = all(bool(torch.isfinite(z).all()) for z in (z_tr, z_va, z_te))
    metrics: dict[str, Any] = {"diverged": diverged or not finite, "epochs_run": epoch, "num_classes": k}
    arrays: dict[str, Any] = {}
    if finite:
        metrics.update(
            _evaluate(spec, model, z_tr, z_va, z_te, ytr, yva, yte, y_clean, Xte, k, cfg.n_bins, arrays)
        )
    reason = divergence(metrics)
    metrics["diverged"], metrics["diverged_reason"] = reason is not None, reason
    metrics["wall_time"] = time.perf_counter() - start
    return {
        "run_hash": ctx.run_hash(spec),
        "spec": spec.to_dict(),
        "config": ctx.run_config(spec),
        "metrics": metrics,
        "curves": curves,
        "arrays": arrays,
    }


EXPLODED_NLL = 10.0
"""A test NLL above ``EXPLODED_NLL * log K`` (ten times the uniform prediction's) is an exploded loss."""


def divergence(metrics: dict[str, Any]) -> str | None:
    """Why a run counts as diverged, or None. A run diverged when training or its logits became non-finite
    (``metrics["diverged"]`` set by the training loop, or no test NLL), when its test NLL exploded (above
    ``EXPLODED_NLL * log K``), or when the temperature fitted on validation sits at a bound of its search
    range (the logits are so large, or so flat, that no temperature in range calibrates them).

    >>> divergence({"diverged": False, "nll": 0.3, "num_classes": 10, "temperature_at_bound": None}) is None
    True
    >>> divergence({"diverged": False, "nll": 606.0, "num_classes": 10, "temperature_at_bound": "upper"})
    'test NLL 606 > 10 log K; temperature at its upper bound'
    """
    if metrics.get("diverged") or metrics.get("nll") is None or not math.isfinite(metrics["nll"]):
        return "non-finite loss or logits"
    why = []
    k = int(metrics.get("num_classes") or 2)
    if metrics["nll"] > EXPLODED_NLL * math.log(k):
        why.append(f"test NLL {metrics['nll']:.3g} > {EXPLODED_NLL:g} log K")
    if metrics.get("temperature_at_bound"):
        why.append(f"temperature at its {metrics['temperature_at_bound']} bound")
    return "; ".join(why) or None


def _evaluate(
    spec, model, z_tr, z_va, z_te, ytr, yva, yte, y_clean, Xte, k, n_bins, arrays
) -> dict[str, Any]:
    """Test metrics before and after temperature scaling, logit gaps, memorisation; fills ``arrays``."""
    out: dict[str, Any] = {}
    test = measure.summary(z_te, yte, n_bins)
    out.update(test)
    out["val_nll"], out["val_accuracy"], out["val_ece"] = measure.quick(z_va, yva, n_bins)

    temperature, at_bound, z_te_ts = measure.temperature_scale(z_va, yva, z_te)
    out["temperature"], out["temperature_at_bound"] = temperature, at_bound
    ts = measure.summary(z_te_ts, yte, n_bins)
    out.update({f"ts_{key}": v for key, v in ts.items()})

    pred_tr = z_tr.argmax(1).numpy()
    out["train_accuracy"] = float((pred_tr == ytr.numpy()).mean())  # against the labels it was trained on
    out["train_accuracy_clean"] = float((pred_tr == y_clean).mean())
    out["noise_fraction"] = float((ytr.numpy() != y_clean).mean())
    out["memorised"] = memorised_fraction(pred_tr, ytr.numpy(), y_clean)

    gap_tr = measure.logit_gap_values(z_tr, ytr)
    gap_te = measure.logit_gap_values(z_te, yte)
    out["train_logit_gap"] = float(np.median(gap_tr))
    out["train_logit_gap_mean"] = float(np.mean(gap_tr))
    out["test_logit_gap"] = float(np.median(gap_te))
    a = spec.method.label_smoothing
    opt = optimal_logit_gap(a, k) if spec.method.name in ("ls", "hard") and a is not None else None
    out["optimal_logit_gap"] = opt if opt is not None and math.isfinite(opt) else None

    arrays["reliability"] = measure.reliability_bins(z_te, yte, n_bins)
    arrays["reliability_ts"] = measure.reliability_bins(z_te_ts, yte, n_bins)
    arrays["gap_hist_train"] = measure.histogram(gap_tr)
    arrays["gap_hist_test"] = measure.histogram(gap_te)
    if supports_projection(model) and k >= 3:
        with torch.no_grad():
            feats = model.features(Xte).float()
        arrays["projection"] = measure.projected_features(
            feats, yte, model.head.weight.detach().float(), PROJECTION_POINTS
        )
    return out
