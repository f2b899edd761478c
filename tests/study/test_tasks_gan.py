"""Task core `gan`: mixtures, metrics, run_one determinism, validation and the verdict's wording."""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch

from labelsmooth.study.tasks import gan
from study_fixtures import task_record

TINY = gan.GanSection(steps=6, batch_size=16, hidden=8, latent_dim=2, n_eval=40)


def test_defaults_validate_and_grid():
    s = gan.GanSection().validate()
    grid = gan.default_grid(s)
    assert len(grid) == 2 * 4 * 4  # the task's default: 4 seeds
    assert grid[0] == ("ring", "none", None, 0)
    assert {(m, p) for _, m, p, _ in grid} == {
        ("none", None),
        ("one_sided", 0.1),
        ("one_sided", 0.2),
        ("two_sided", 0.2),
    }


@pytest.mark.parametrize(
    "method,param,targets",
    [("none", None, (1.0, 0.0)), ("one_sided", 0.1, (0.9, 0.0)), ("one_sided", 0.2, (0.8, 0.0)),
     ("two_sided", 0.2, (0.9, 0.1))],
)  # fmt: skip
def test_targets_of(method, param, targets):
    assert gan.targets_of(method, param) == pytest.approx(targets)


def test_mixtures():
    ring, grid = gan.mixture_centers("ring"), gan.mixture_centers("grid")
    assert ring.shape == (8, 2) and torch.allclose(
        ring.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64)
    )
    assert grid.shape == (25, 2) and set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = gan.sample_mixture("ring", 500, 0.05, g1), gan.sample_mixture("ring", 500, 0.05, g2)
    assert torch.equal(a, b) and a.shape == (500, 2)
    hq, covered, counts = gan.quality(a, "ring", gan.GanSection())
    assert hq > 0.98 and covered == 8 and int(counts.sum()) == round(hq * 500)
    collapsed = ring[:1].float().expand(500, 2).clone()
    assert gan.quality(collapsed, "ring", gan.GanSection())[1] == 1


def test_energy_distance():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    same = gan.energy_distance(x, y)
    shifted = gan.energy_distance(x, y + 1.0)
    assert abs(same) < 0.02 and shifted > 0.5


def test_run_one_is_deterministic_and_complete():
    a = gan.run_one(TINY, "two_sided", 0.2, 1, dataset="grid")
    b = gan.run_one(TINY, "two_sided", 0.2, 1, dataset="grid")
    assert a == b
    assert set(a["metrics"]) == {m.key for m in gan.METRICS}
    assert all(math.isfinite(v) for v in a["metrics"].values())
    assert len(a["arrays"]["samples"]) == 40 and len(a["arrays"]["mode_counts"]) == 25
    assert a["metrics"] != gan.run_one(TINY, "none", None, 1, dataset="grid")["metrics"]
    json.dumps(a)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(datasets=("rings",)), ValueError, "did you mean 'ring'"),
        (dict(one_sided=(1.5,)), ValueError, "`gan.one_sided\\[0\\]` in \\[0, 1\\], got 1.5"),
        (dict(two_sided=(0.2, 0.2)), ValueError, "`gan.two_sided` to hold no repeats"),
        (dict(steps=0), ValueError, "`gan.steps` >= 1, got 0"),
        (dict(n_eval=1), ValueError, "`gan.n_eval` >= 2, got 1"),
        (dict(std=0.0), ValueError, "`gan.std` in \\(0, inf\\]"),
        (dict(latent_dim=True), TypeError, "`gan.latent_dim` to be an int"),
        (dict(mode_min=2.0), ValueError, "`gan.mode_min` in \\[0, 1\\]"),
    ],
)
def test_validate_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gan.GanSection(**kwargs).validate()


def test_from_mapping_and_bad_methods():
    assert gan.GanSection.from_mapping({"one_sided": [0.1]}).one_sided == (0.1,)
    with pytest.raises(ValueError, match=r"did you mean `gan\.steps`"):
        gan.GanSection.from_mapping({"stepz": 3})
    with pytest.raises(ValueError, match="`method` to be one of 'none', 'one_sided', 'two_sided'"):
        gan.run_one(TINY, "smooth", 0.1, 0)
    with pytest.raises(ValueError, match="`param` to be a number for method 'one_sided'"):
        gan.targets_of("one_sided", None)
    with pytest.raises(ValueError, match="`dataset` to be one of 'ring', 'grid'"):
        gan.run_one(TINY, "none", None, 0, dataset="spiral")


_rec = functools.partial(task_record, "ring")


def test_summarize_says_when_nothing_is_detectable():
    recs = []
    for s in range(4):
        noise = (-1) ** s * 0.5
        recs.append(_rec("none", None, s, modes=6 + noise, energy_distance=0.1, high_quality=0.5, d_real=0.7))
        recs.append(_rec("one_sided", 0.1, s, modes=6 - noise, energy_distance=0.1 + 0.01 * s,
                         high_quality=0.5, d_real=0.6))  # fmt: skip
        recs.append(_rec("two_sided", 0.2, s, modes=5.0, energy_distance=0.3 + 0.01 * s, high_quality=0.4,
                         d_real=0.65))  # fmt: skip
    cl = {c["claim"][:9]: c for c in gan.claims(recs)}
    assert cl["one-sided"]["status"] == "not detectable"
    assert cl["two-sided"]["status"] == "reproduced"
    text = "\n".join(gan.summarize(recs))
    assert "one-sided (0.9/0): modes covered 6.000 ± " in text
    assert "vs no smoothing: modes 0.00 ± 1.84 (no detectable difference)" in text
    assert "two-sided (0.9/0.1)" in text and "energy distance 0.2150 ± 0.0205 (worse)" in text


def test_figures_render_png_from_the_arrays():
    pytest.importorskip("matplotlib")
    from labelsmooth.study.tasks.task_figures import gan_samples, metric_by_method

    out = gan.run_one(TINY, "none", None, 0)
    png = gan_samples([("none", out["arrays"]), ("empty", {})], "ring")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    recs = [{"modes": 3.0}, {"modes": 4.0}]
    assert (
        metric_by_method([("none", recs), ("one", [{"modes": None}])], [("modes", "modes")], "t")[:4]
        == b"\x89PNG"
    )
