"""The verdict is computed from the numbers: paired t-intervals, and each outcome of the rule."""

from __future__ import annotations

import math

import pytest

from labelsmooth.study.stats import estimate, paired, t_critical
from labelsmooth.study.verdict import judge


def test_t_interval_matches_the_textbook():
    e = estimate([1.0, 2.0, 3.0, 4.0, 5.0])
    assert e.mean == 3.0
    assert e.half == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))
    assert math.isnan(estimate([1.0]).half) and estimate([None, float("nan")]).n == 0
    assert t_critical(100) == pytest.approx(1.984)


def test_paired_differences_use_common_seeds():
    a = [{"seed": s, "x": 1.0 + s} for s in range(4)]
    b = [{"seed": s, "x": 0.5 + s} for s in range(3)]
    d = paired(a, b, "x")
    assert d.n == 3 and d.mean == pytest.approx(0.5) and d.half == 0.0


def _records(d_acc, d_nll, gap=-0.1, noise=0.0, jitter=0.002):
    """Five seeds of hard targets and ls a=0.1 with given mean paired differences."""
    out = []
    for s in range(5):
        j = jitter * (s - 2)
        base = {
            "dataset": "toy",
            "noise_kind": "symmetric",
            "noise_rate": noise,
            "seed": s,
            "temperature": 0.5,
            "ts_calibration_gap": 0.0,
            "ts_ece": 0.01,
            "memorised": 0.5 if noise else None,
        }
        out.append(
            {
                **base,
                "method": "hard",
                "param": None,
                "label": "hard (a=0)",
                "alpha": 0.0,
                "accuracy": 0.9 + j,
                "nll": 0.3 + j,
                "ece": 0.02,
                "calibration_gap": 0.01 + j,
                "val_accuracy": 0.9,
            }
        )
        out.append(
            {
                **base,
                "method": "ls",
                "param": 0.1,
                "label": "ls a=0.1",
                "alpha": 0.1,
                "accuracy": 0.9 + d_acc + 2 * j,
                "nll": 0.3 + d_nll + 2 * j,
                "ece": 0.1,
                "calibration_gap": gap + j,
                "val_accuracy": 0.95,
            }
        )
    return out  # fmt: skip


@pytest.mark.parametrize(
    ("d_acc", "d_nll", "outcome"),
    [
        (0.03, -0.1, "helps"),
        (0.0, -0.1, "helps"),
        (0.03, 0.1, "trade-off"),
        (-0.03, 0.0, "hurts"),
        (0.0, 0.1, "hurts"),
        (0.0, 0.0, "within noise"),
    ],
)
def test_outcomes(d_acc, d_nll, outcome):
    (v,) = judge(_records(d_acc, d_nll))
    assert v.outcome == outcome
    assert v.alpha == 0.1
    if outcome == "within noise":
        assert "within noise" in v.text and "no difference beyond seed-to-seed noise" in v.text


def test_underconfidence_and_temperature_are_reported():
    (v,) = judge(_records(0.03, 0.1, gap=-0.12))
    assert "underconfident: confidence below accuracy by 12.0" in v.text
    assert "Temperature scaling (T = 0.50)" in v.text


def test_noise_setting_reports_memorisation():
    (v,) = judge(_records(0.03, -0.1, noise=0.3))
    assert v.title == "toy, 30% symmetric label noise"
    assert "memorised 50% of the noisy training labels" in v.text


def test_no_baseline():
    recs = [r for r in _records(0.0, 0.0) if r["method"] != "hard"]
    (v,) = judge(recs)
    assert v.outcome == "no baseline"
