"""Task ``gan``: does one-sided label smoothing of the discriminator help a GAN, and does two-sided hurt?

Salimans et al. 2016 (§3.4) set the discriminator's real targets to 0.9 and keep the fake targets at 0;
smoothing the fake side too is harmful, because with targets ``(a, b)`` the optimal discriminator is
``D*(x) = (a p_data + b p_model)/(p_data + p_model)`` (:func:`labelsmooth.theory.optimal_discriminator`)
and ``b > 0`` leaves the generator little push away from regions without data.

Data: two synthetic 2-D mixtures -- ``ring`` (8 Gaussians on a circle of radius 2) and ``grid`` (25 Gaussians
on {-4, -2, 0, 2, 4}^2), each of standard deviation ``std``. Models: MLP generator and discriminator, Adam.
Methods (``param`` is the library's ``label_smoothing`` of
:func:`labelsmooth.binary_cross_entropy_with_logits`): ``none`` (targets 1/0), ``one_sided`` ``a`` (real
target ``1 - a``, fake 0), ``two_sided`` ``a`` (real ``1 - a/2``, fake ``a/2``; ``a = 0.2`` is 0.9/0.1).
The losses are :func:`labelsmooth.discriminator_loss` and the non-saturating
:func:`labelsmooth.generator_loss`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from labelsmooth._validation import expected
from labelsmooth.losses.gan import discriminator_loss, generator_loss
from labelsmooth.study.tasks._common import (
    MetricSpec,
    by_method,
    check_float,
    check_grid,
    check_int,
    check_names,
    claim_status,
    diff,
    direction,
    flatten,
    one_thread,
    spread,
)

__all__ = [
    "DATASETS",
    "METHODS",
    "METRICS",
    "SUMMARY",
    "GanSection",
    "claims",
    "default_grid",
    "mixture_centers",
    "run_one",
    "sample_mixture",
    "summarize",
    "targets_of",
]

SUMMARY = (
    "Whether one-sided label smoothing of a GAN discriminator helps, and two-sided hurts, on 2-D mixtures "
    "(Salimans et al. 2016)."
)
DATASETS = ("ring", "grid")
METHODS = ("none", "one_sided", "two_sided")

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("modes", "Modes covered", ".2f", "higher", False),
    MetricSpec("modes_fraction", "Modes covered (fraction)", ".3f", "higher", False),
    MetricSpec("high_quality", "High-quality fraction", ".3f", "higher", False),
    MetricSpec("energy_distance", "Energy distance", ".4f", "lower", False),
    MetricSpec("d_real", "Mean D(real)", ".3f", None, False),
    MetricSpec("d_fake", "Mean D(fake)", ".3f", None, False),
    MetricSpec("grad_norm_late", "Generator grad norm (late)", ".4f", None, False),
)


@dataclass(frozen=True)
class GanSection:
    """The ``[gan]`` config section. Every field has a default; :meth:`validate` names bad keys.

    Grid: ``datasets`` x methods (``none``; ``one_sided`` at each of ``one_sided``; ``two_sided`` at each of
    ``two_sided``, all as ``label_smoothing`` values) x ``seeds``.
    """

    datasets: tuple[str, ...] = DATASETS
    one_sided: tuple[float, ...] = (0.1, 0.2)  # real targets 0.9, 0.8
    two_sided: tuple[float, ...] = (0.2,)  # targets 0.9 / 0.1
    seeds: int = 5
    std: float = 0.05
    latent_dim: int = 8
    hidden: int = 128
    steps: int = 1500
    batch_size: int = 256
    lr: float = 1e-3
    n_eval: int = 2500
    quality_sigmas: float = 3.0  # a sample is high-quality within this many std of its nearest centre
    mode_min: float = 0.008  # a mode is covered when it gets this fraction of n_eval high-quality samples

    def validate(self) -> GanSection:
        """Check every field; raise ``ValueError``/``TypeError`` naming ``gan.<key>`` and the value."""
        check_names("gan.datasets", self.datasets, DATASETS)
        check_grid("gan.one_sided", self.one_sided, 0.0, 1.0)
        check_grid("gan.two_sided", self.two_sided, 0.0, 1.0)
        for key in ("seeds", "latent_dim", "hidden", "steps", "batch_size", "n_eval"):
            check_int(f"gan.{key}", getattr(self, key), 1)
        check_int("gan.n_eval", self.n_eval, 2)
        check_float("gan.std", self.std, 0.0, math.inf, lo_open=True)
        check_float("gan.lr", self.lr, 0.0, math.inf, lo_open=True)
        check_float("gan.quality_sigmas", self.quality_sigmas, 0.0, math.inf, lo_open=True)
        check_float("gan.mode_min", self.mode_min, 0.0, 1.0)
        return self

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> GanSection:
        """Build from a TOML-like mapping (lists become tuples); unknown keys are an error."""
        known = [f.name for f in fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                what = "to be a key of the gan section" + (
                    f" (did you mean `gan.{hint[0]}`?)" if hint else ""
                )
                raise ValueError(expected(f"gan.{key}", what, key))
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs).validate()


def default_grid(section: GanSection) -> list[tuple[str, str, float | None, int]]:
    """Every run of the grid as ``(dataset, method, param, seed)``; ``param`` is None for ``none``."""
    methods: list[tuple[str, float | None]] = [("none", None)]
    methods += [("one_sided", a) for a in section.one_sided]
    methods += [("two_sided", a) for a in section.two_sided]
    return [(d, m, p, s) for d in section.datasets for m, p in methods for s in range(section.seeds)]


def targets_of(method: str, param: float | None) -> tuple[float, float]:
    """The discriminator's (real, fake) targets of a method, e.g. ``("two_sided", 0.2) -> (0.9, 0.1)``."""
    if method not in METHODS:
        raise ValueError(expected("method", "to be one of " + ", ".join(map(repr, METHODS)), method))
    if method == "none":
        return 1.0, 0.0
    if param is None:
        raise ValueError(expected("param", f"to be a number for method {method!r}", param))
    a = check_float("param", param, 0.0, 1.0)
    return (1.0 - a, 0.0) if method == "one_sided" else (1.0 - a / 2, a / 2)


def method_label(method: str, param: float | None) -> str:
    """Display label with the targets, e.g. ``one-sided (0.9/0)``; lookups use (method, param)."""
    if method == "none":
        return "no smoothing (1/0)"
    a, b = targets_of(method, param)
    return f"{method.replace('_', '-')} ({a:g}/{b:g})"


def mixture_centers(dataset: str) -> torch.Tensor:
    """The mixture's centres, ``(M, 2)`` float64: 8 on a circle of radius 2, or the 5 x 5 grid."""
    if dataset == "ring":
        angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * torch.cos(angle), 2 * torch.sin(angle)], 1)
    if dataset == "grid":
        v = torch.arange(-4.0, 5.0, 2.0, dtype=torch.float64)
        return torch.cartesian_prod(v, v)
    raise ValueError(expected("dataset", "to be one of " + ", ".join(map(repr, DATASETS)), dataset))


def sample_mixture(dataset: str, n: int, std: float, g: torch.Generator) -> torch.Tensor:
    """``n`` float32 samples of the equal-weight Gaussian mixture (centres by :func:`mixture_centers`)."""
    c = mixture_centers(dataset).float()
    idx = torch.randint(0, c.shape[0], (n,), generator=g)
    return c[idx] + std * torch.randn(n, 2, generator=g)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_out),
    )  # fmt: skip


def build_models(section: GanSection) -> tuple[nn.Sequential, nn.Sequential]:
    """Generator ``latent_dim -> 2`` and discriminator ``2 -> 1`` (logit), 3 hidden layers of ``hidden``."""
    return _mlp(section.latent_dim, section.hidden, 2), _mlp(2, section.hidden, 1)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (within-sample means exclude i = j), float64.

    Zero in expectation iff the distributions agree (Székely and Rizzo 2013); in the units of the data.
    """
    x, y = x.double(), y.double()
    n, m = x.shape[0], y.shape[0]
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)


def quality(samples: torch.Tensor, dataset: str, section: GanSection) -> tuple[float, int, torch.Tensor]:
    """High-quality fraction, modes covered, and per-mode high-quality counts of generated ``samples``."""
    c = mixture_centers(dataset)
    d = torch.cdist(samples.double(), c)
    near, which = d.min(1)
    good = near <= section.quality_sigmas * section.std
    counts = torch.bincount(which[good], minlength=c.shape[0])
    covered = int((counts >= max(1.0, section.mode_min * samples.shape[0])).sum())
    return float(good.double().mean()), covered, counts


def run_one(
    section: GanSection, method: str, param: float | None, seed: int, *, dataset: str | None = None
) -> dict:
    """Train one GAN of the grid and measure its samples.

    ``dataset`` defaults to the section's first dataset. Returns ``{"metrics": {key: float} (the keys of
    METRICS), "curves": {"d_loss", "g_loss", "g_grad_norm"}, "arrays": {"samples": 500 generated points,
    "real": 500 real points, "centers", "mode_counts"}}``. Deterministic given its inputs (one thread).
    """
    dataset = section.datasets[0] if dataset is None else dataset
    real_t, fake_t = targets_of(method, param)
    mixture_centers(dataset)  # checks the name
    with one_thread():
        torch.manual_seed(seed)
        G, D = build_models(section)
        opt_g = torch.optim.Adam(G.parameters(), lr=section.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=section.lr, betas=(0.5, 0.999))
        g = torch.Generator().manual_seed(seed)
        every = max(1, section.steps // 40)
        late = section.steps - max(1, section.steps // 10)
        curves: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "g_grad_norm": []}
        late_norms: list[float] = []
        for step in range(section.steps):
            real = sample_mixture(dataset, section.batch_size, section.std, g)
            z = torch.randn(section.batch_size, section.latent_dim, generator=g)
            fake = G(z)
            logits = D(torch.cat([real, fake.detach()]))  # one pass over both halves
            d_real, d_fake = logits[: section.batch_size], logits[section.batch_size :]
            d_loss = discriminator_loss(d_real, d_fake, real_target=real_t, fake_target=fake_t)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = generator_loss(D(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            logged = step % every == 0 or step + 1 == section.steps
            if logged or step >= late:  # the norm costs a host sync: only when it is recorded
                norm = float(
                    torch.linalg.vector_norm(
                        torch.stack([p.grad.norm() for p in G.parameters() if p.grad is not None])
                    )
                )
            opt_g.step()
            if step >= late:
                late_norms.append(norm)
            if logged:
                curves["d_loss"].append(float(d_loss.detach()))
                curves["g_loss"].append(float(g_loss.detach()))
                curves["g_grad_norm"].append(norm)
        with torch.no_grad():
            ge = torch.Generator().manual_seed(10_000 + seed)
            samples = G(torch.randn(section.n_eval, section.latent_dim, generator=ge))
            real = sample_mixture(dataset, section.n_eval, section.std, ge)
            hq, covered, counts = quality(samples, dataset, section)
            m = min(1000, section.n_eval)
            metrics = {
                "modes": float(covered),
                "modes_fraction": covered / counts.numel(),
                "high_quality": hq,
                "energy_distance": energy_distance(samples[:m], real[:m]),
                "d_real": float(torch.sigmoid(D(real)).mean()),
                "d_fake": float(torch.sigmoid(D(samples)).mean()),
                "grad_norm_late": sum(late_norms) / len(late_norms),
            }
            k = min(500, section.n_eval)
            arrays = {
                "samples": [[round(float(a), 4), round(float(b), 4)] for a, b in samples[:k]],
                "real": [[round(float(a), 4), round(float(b), 4)] for a, b in real[:k]],
                "centers": mixture_centers(dataset).tolist(),
                "mode_counts": [int(v) for v in counts],
            }
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "curves": curves, "arrays": arrays}


# ------------------------------------------------------------------ verdict
def _datasets(records: list[dict]) -> list[Any]:
    seen: list[Any] = []
    for r in records:
        if r.get("dataset") not in seen:
            seen.append(r.get("dataset"))
    return seen


TWO_SIDED_CLAIM = "two-sided smoothing (0.9/0.1) is worse than one-sided (0.9/0)"


def claims(records: list[dict]) -> list[dict[str, Any]]:
    """Salimans et al. 2016's two claims on a grid's records, paired over seeds, one dict per dataset:

    * one-sided smoothing (real target 0.9) does not reduce the modes covered versus no smoothing
      (reported as the paired difference one-sided - none; "reproduced" when it is > 0, "not detectable"
      when its interval contains 0, which is also consistent with "does no harm");
    * two-sided (0.9/0.1) is worse than one-sided (0.9/0): more energy distance (paired two - one > 0).
    """
    flat = flatten(records)
    out = []
    for ds in _datasets(flat):
        groups = by_method([r for r in flat if r.get("dataset") == ds])
        base = next((rs for (m, _), rs in groups.items() if m == "none"), None)
        one = next(
            (
                rs
                for (m, p), rs in groups.items()
                if m == "one_sided" and math.isclose(targets_of(m, p)[0], 0.9)
            ),
            None,
        )
        two = next(
            (
                rs
                for (m, p), rs in groups.items()
                if m == "two_sided" and math.isclose(targets_of(m, p)[0], 0.9)
            ),
            None,
        )
        if base and one:
            e = diff(one, base, "modes")
            out.append({"dataset": ds, "claim": "one-sided smoothing (0.9/0) covers at least as many modes",
                        "source": "Salimans et al. 2016", "key": "modes", "estimate": e,
                        "status": claim_status(e, +1)})  # fmt: skip
        if one and two:
            e = diff(two, one, "energy_distance")
            out.append({"dataset": ds, "claim": TWO_SIDED_CLAIM,
                        "source": "Salimans et al. 2016", "key": "energy_distance", "estimate": e,
                        "status": claim_status(e, +1)})  # fmt: skip
    return out


def summarize(records: list[dict]) -> list[str]:
    """The verdict in words: per dataset, each method's distribution over seeds, its paired difference from
    no smoothing, and the claims; says plainly when no difference is detectable."""
    flat = flatten(records)
    lines: list[str] = []
    for ds in _datasets(flat):
        groups = by_method([r for r in flat if r.get("dataset") == ds])
        base = next((rs for (m, _), rs in groups.items() if m == "none"), None)
        lines.append(f"{ds}:")
        for (m, p), rs in groups.items():
            s = (
                f"  {method_label(m, p)}: modes covered {spread(rs, 'modes')}, high-quality fraction "
                f"{spread(rs, 'high_quality')}, energy distance {spread(rs, 'energy_distance')}, "
                f"mean D(real) {spread(rs, 'd_real')}"
            )
            if base and m != "none":
                dm, de = diff(rs, base, "modes"), diff(rs, base, "energy_distance")
                s += (
                    f"; vs no smoothing: modes {dm.fmt(digits=2)} "
                    f"({direction(dm, up='more', down='fewer')}), energy distance {de.fmt(digits=4)} "
                    f"({direction(de, up='worse', down='better')})"
                )
            lines.append(s + ".")
        for c in claims([r for r in flat if r.get("dataset") == ds]):
            lines.append(
                f"  Claim '{c['claim']}' ({c['source']}): {c['status']} "
                f"(paired difference in {c['key']} {c['estimate'].fmt(digits=4)}, n = {c['estimate'].n})."
            )
    return lines
