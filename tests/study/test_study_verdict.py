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
                "val_nll": 0.4,
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
                "val_nll": 0.35,
            }
        )
    return out  # fmt: skip


@pytest.mark.parametrize(
    ("d_acc", "d_nll", "outcome"),
    [
        (0.03, -0.1, "helps"),
        (0.0, -0.1, "helps"),
        (0.03, 0.1, "trade-off"),
        (-0.03, -0.1, "trade-off"),
        (-0.03, 0.0, "hurts"),
        (-0.03, 0.1, "hurts"),
        (0.0, 0.1, "hurts"),
        (0.0, 0.0, "within noise"),
    ],
)
def test_outcomes(d_acc, d_nll, outcome):
    (v,) = judge(_records(d_acc, d_nll))
    assert v.outcome == outcome
    assert v.label_smoothing == 0.1
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


def test_both_trade_offs_name_what_is_gained_and_lost():
    (up,) = judge(_records(0.03, 0.1))
    assert (up.outcome, up.trade) == ("trade-off", "accuracy for calibration")
    assert "gains +3.0 ± 0.4 points of accuracy and loses calibration (NLL +0.100" in up.sentences[-1]
    (down,) = judge(_records(-0.03, -0.1))  # accuracy down, NLL down: a trade-off too, never "hurts"
    assert (down.outcome, down.trade) == ("trade-off", "calibration for accuracy")
    last = down.sentences[-1]
    assert "gains calibration (NLL -0.100" in last and "loses 3.0 ± 0.4 points of accuracy" in last


def _three_alphas(val_nll_by_seed):
    """Hard targets and ls a in (0.05, 0.1, 0.2); ``val_nll_by_seed[seed][a]`` sets each run's validation NLL
    (validation accuracy is the same for all, so the choice is made by validation NLL alone)."""
    out = [r for r in _records(0.0, -0.1) if r["method"] == "hard"]
    for s, by_a in enumerate(val_nll_by_seed):
        for a, v in by_a.items():
            out.append({**_records(0.0, -0.1)[2 * s + 1], "param": a, "alpha": a, "label": f"ls a={a:g}",
                        "val_nll": v, "val_accuracy": 0.9})  # fmt: skip
    return out


def test_choice_is_by_validation_nll_and_its_stability_is_reported():
    stable = [{0.05: 0.5, 0.1: 0.3, 0.2: 0.4}] * 5
    (v,) = judge(_three_alphas(stable))
    assert v.label_smoothing == 0.1 and v.numbers["selection"] == {0.05: 0, 0.1: 5, 0.2: 0} and v.numbers["stable"]
    assert "lowest validation NLL" in v.sentences[0] and "unstable" not in v.text
    # the mean is lowest for a = 0.1, but seed by seed a = 0.1 wins only 2 of 5
    unstable = [{0.05: 0.30, 0.1: 0.31, 0.2: 0.40}, {0.05: 0.30, 0.1: 0.31, 0.2: 0.40},
                {0.05: 0.60, 0.1: 0.31, 0.2: 0.40}, {0.05: 0.40, 0.1: 0.31, 0.2: 0.30},
                {0.05: 0.60, 0.1: 0.31, 0.2: 0.70}]  # fmt: skip
    (u,) = judge(_three_alphas(unstable))
    assert u.label_smoothing == 0.1 and u.numbers["selection"] == {0.05: 2, 0.1: 2, 0.2: 1}
    assert not u.numbers["stable"]
    assert (
        "The choice of a is unstable" in u.text
        and "in only 2 of 5 seeds (a = 0.05 in 2, a = 0.2 in 1)" in u.text
    )


def test_a_curve_has_paired_intervals_and_holm_adjusted_p_values():
    (v,) = judge(_three_alphas([{0.05: 0.5, 0.1: 0.3, 0.2: 0.4}] * 5))
    curve = v.numbers["curve"]
    assert [row["alpha"] for row in curve] == [0.05, 0.1, 0.2]
    ps = [row[k] for row in curve for k in ("p_accuracy", "p_nll")]
    holms = [row[k] for row in curve for k in ("holm_accuracy", "holm_nll")]
    assert all(h >= p or math.isnan(p) for p, h in zip(ps, holms))
    assert curve[0]["d_nll"].significant and curve[0]["holm_nll"] < 0.05
    assert curve[0]["d_accuracy"].mean == pytest.approx(0.0, abs=1e-12)


def test_diverged_runs_are_named_in_the_verdict():
    recs = _records(0.03, -0.1)
    recs[1]["diverged"] = True
    (v,) = judge(recs)
    assert "Diverged runs: ls a=0.1 1 of 5" in v.text


def test_t_pvalue_and_holm_match_references():
    from labelsmooth.study.stats import Estimate, holm, t_pvalue

    assert t_pvalue(Estimate(1.0, 1.0, 5)) == pytest.approx(0.05, abs=1e-4)
    assert t_pvalue(Estimate(0.5, 0.1, 3)) == pytest.approx(0.002153340746, rel=1e-9)  # scipy.stats.t.sf
    assert math.isnan(t_pvalue(Estimate(1.0, math.nan, 1)))
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
