"""The fairness and privacy task cores: config validation, the method grids, deterministic runs that store
every declared metric, and verdicts that say when no difference is detectable. Tiny sections: seconds."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from labelsmooth.study.tasks import fairness as F
from labelsmooth.study.tasks import privacy as P

TINY_F = F.FairnessSection(seeds=(0, 1), n_samples=1000, epochs=4, width=8, depth=1)
TINY_P = P.PrivacySection(
    seeds=(0, 1), epochs=6, warmup_epochs=2, ramp_epochs=2, width=16, depth=1,
    inversion_steps=3, inversion_restarts=2, eval_epochs=3, pca_components=4,
)  # fmt: skip
TIMES = ("wall_time", "cpu_time")


def _without_times(m):
    return {k: v for k, v in m.items() if k not in TIMES}


def test_fairness_grid_and_validation():
    s = F.FairnessSection().validate()
    assert F.methods(s) == [("hard", None), ("ls", 0.05), ("ls", 0.1), ("ls", 0.2), ("classwise", (0.0, 0.2))]
    json.dumps(s.to_dict())
    for bad, match in (
        (dict(seeds=()), "fairness.seeds"),
        (dict(smoothing=(0.0,)), "fairness.smoothing"),
        (dict(classwise=(0.1,)), "fairness.classwise"),
        (dict(minority_fraction=0.7), "fairness.minority_fraction"),
        (dict(epochs=0), "fairness.epochs"),
        (dict(n_samples=500), "at least 100 samples"),
    ):
        with pytest.raises(ValueError, match=match):
            replace(s, **bad).validate()


def test_fairness_run_is_deterministic_and_complete():
    a = F.run_one(TINY_F, "classwise", [0.0, 0.2], 0)
    b = F.run_one(TINY_F, "classwise", [0.0, 0.2], 0)
    assert _without_times(a["metrics"]) == _without_times(b["metrics"])
    for key, _, fmt, better, after_ts in F.METRICS:
        assert key in a["metrics"] and math.isfinite(a["metrics"][key]), key
        assert better in ("higher", "lower", None) and isinstance(after_ts, bool)
        format(1.0, fmt)
    m = a["metrics"]
    assert m["syn_worst_group_accuracy"] == min(m["syn_minority_accuracy"], m["syn_majority_accuracy"])
    assert 0.05 < m["syn_label_noise_minority"] < 0.3  # 15% group-specific noise
    counts = a["arrays"]["lt_train_counts"]
    assert max(counts) / min(counts) == pytest.approx(20, rel=0.25)  # imbalance ratio 20
    json.dumps(a)  # everything a run returns is JSON-ready


def _fake(method, param, seed, **metrics):
    return {"method": method, "param": param, "seed": seed, "metrics": metrics}


def test_fairness_summary_says_when_no_difference_is_detectable():
    base = {k: 0.5 for k, *_ in F.METRICS}
    recs = []
    for seed, jitter in enumerate((0.01, -0.02, 0.015, -0.005)):
        recs.append(_fake("hard", None, seed, **base))
        noisy = {k: v + jitter for k, v in base.items()}
        noisy["syn_aurc_msp"] = 0.5 + 0.1 + jitter / 10  # clearly worse under MSP
        noisy["syn_aurc_norm"] = 0.5 + jitter  # back to hard's level
        recs.append(_fake("ls", 0.1, seed, **noisy))
    lines = F.summarize(recs)
    text = " ".join(lines)
    assert "ls a=0.1 vs hard" in text and "no detectable difference" in text
    assert any("groups, ls a=0.1" in x and "claim reproduced" in x for x in lines)
    assert any("long tail, ls a=0.1" in x and "not reproduced" in x for x in lines)
    assert F.summarize([_fake("ls", 0.1, 0, **base)]) == ["No hard-target runs: nothing to compare with."]


def test_privacy_grid_and_validation():
    s = P.PrivacySection().validate()
    grid = P.methods(s)
    assert [P.method_alpha(m, p) for m, p in grid] == [-0.1, -0.05, 0.0, 0.05, 0.1, 0.3]
    assert grid[0] == ("negative-schedule", {"final": -0.1, "warmup_epochs": 200, "ramp_epochs": 50})
    for bad, match in (
        (dict(smoothing=()), "privacy.smoothing"),
        (dict(smoothing=(1.0,)), "privacy.smoothing"),
        (dict(public_fraction=0.6, member_fraction=0.4), "leave non-members"),
        (dict(warmup_epochs=250, ramp_epochs=50), "< epochs"),
        (dict(pca_components=65), "8x8"),
        (dict(inversion_steps=0), "privacy.inversion_steps"),
        (dict(ramp_epochs=-1), "privacy.ramp_epochs"),
    ):
        with pytest.raises(ValueError, match=match):
            replace(s, **bad).validate()
    with pytest.raises(ValueError, match="method"):
        P.method_alpha("focal", 2.0)


def test_privacy_run_is_deterministic_and_complete():
    _, param = P.methods(TINY_P)[0]
    a = P.run_one(TINY_P, "negative-schedule", param, 1)
    b = P.run_one(TINY_P, "negative-schedule", param, 1)
    assert _without_times(a["metrics"]) == _without_times(b["metrics"])
    assert a["curves"]["label_smoothing"][:4] == [0.0, 0.0, pytest.approx(-0.05), pytest.approx(-0.1)]
    for key, _, fmt, _better, _after_ts in P.METRICS:
        assert key in a["metrics"] and math.isfinite(a["metrics"][key]), key
        format(1.0, fmt)
    assert 0.0 <= a["metrics"]["inv_attack_accuracy"] <= 1.0
    assert len(a["arrays"]["inversions"]) == 10
    json.dumps(a)


def test_privacy_summary():
    recs = []
    for seed in range(4):
        j = 0.01 * (seed - 1.5)
        common = dict(
            mia_best_auc=0.6 + j, mia_logit_tpr1=0.02, inv_member_distance=1.5, test_accuracy=0.95 + j
        )
        recs.append(
            _fake("hard", None, seed, inv_attack_accuracy=1.0, inv_eval_confidence=0.95 + j, **common)
        )
        recs.append(_fake("ls", 0.1, seed, inv_attack_accuracy=1.0, inv_eval_confidence=0.95 + j, **common))
        neg = dict(common, test_accuracy=0.85 + j / 2)
        recs.append(
            _fake("negative-schedule", {"final": -0.05, "warmup_epochs": 2, "ramp_epochs": 2}, seed,
                  inv_attack_accuracy=0.7 + j, inv_eval_confidence=0.7, **neg)
        )  # fmt: skip
    text = " ".join(P.summarize(recs))
    assert "little room to increase" in text
    assert "leakage reduced for a=-0.05 (after 2 hard epochs)" in text
    assert "test accuracy fell for a=-0.05" in text
    assert "no significant reduction for any a" in text
    assert P.summarize([r for r in recs if r["method"] != "hard"])[0].startswith("No hard-target runs")
