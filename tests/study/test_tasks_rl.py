"""The RL task cores (value, preference): sections, determinism, errors, a tiny grid and its verdict.

The engine side (config, CLI, resume, workers, verdict logic) is in tests/study/test_rl_study_tasks.py."""

import math
import sys
from dataclasses import replace

import pytest
import torch

from labelsmooth import Support
from labelsmooth.study.tasks import preference, value
from study_fixtures import run_python

TINY_V = value.ValueSection(n_train=64, n_test=32, steps=6, eval_every=3, hidden=8, bins=12)
TINY_CP = replace(TINY_V, data="cartpole", horizon=12, rollouts=4)
TINY_P = preference.PreferenceSection(arms=5, pairs=20, steps=40, eval_every=10)


def _records(task, section, methods, seeds=2):
    return [
        {"method": m, "param": p, "seed": s, "metrics": task.run_one(section, m, p, s)["metrics"]}
        for s in range(seeds)
        for m, p in methods
    ]


# --- value ---


@pytest.mark.parametrize(("method", "param"), value.METHODS)
def test_value_run_is_deterministic_and_reports_every_metric(method, param):
    a = value.run_one(TINY_V, method, param, 3)
    b = value.run_one(TINY_V, method, param, 3)
    assert a == b
    assert set(a["metrics"]) == {m.key for m in value.METRICS}
    assert all(v is None or math.isfinite(v) for v in a["metrics"].values())
    assert (a["metrics"]["crps"] is None) == (method == "mse")
    assert [s for s, _ in a["curves"]["test_rmse"]] == [3, 6]
    assert a["metrics"]["rmse"] == pytest.approx(a["curves"]["test_rmse"][-1][1])
    assert value.run_one(TINY_V, method, param, 4)["metrics"] != a["metrics"]


def test_value_seed_fixes_the_data_for_every_method():
    d = value.make_data(TINY_V, 1)
    torch.testing.assert_close(d["x_train"], value.make_data(TINY_V, 1)["x_train"])
    assert d["y_train"].shape == (64,) and d["clean_test"].shape == (32,)
    assert not torch.equal(d["y_train"], value.make_data(TINY_V, 2)["y_train"])


def test_value_cartpole_returns_and_run():
    d = value.make_data(TINY_CP, 0)
    bound = sum(0.95**t for t in range(12))
    assert float(d["y_train"].min()) >= 1.0 and float(d["y_train"].max()) <= bound + 1e-5
    out = value.run_one(TINY_CP, "hl_gauss", 0.75, 0)
    assert out == value.run_one(TINY_CP, "hl_gauss", 0.75, 0)
    assert TINY_CP.support().hi == pytest.approx(20.0)


def test_value_cartpole_without_gymnasium_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium.envs.classic_control.cartpole", None)
    with pytest.raises(ImportError, match=r'pip install "labelsmooth\[rl\]"'):
        value.make_data(TINY_CP, 0)


def test_importing_labelsmooth_and_the_tasks_does_not_import_gymnasium(tmp_path):
    code = (
        "import sys; assert not any(m.split('.')[0] in ('gymnasium', 'labelsmooth') for m in sys.modules)\n"
        "import labelsmooth, labelsmooth.study.tasks.value; print('gymnasium' in sys.modules)"
    )
    exitcode, stdout, stderr = run_python(code, tmp_path)  # a new process: nothing of labelsmooth imported
    assert exitcode == 0, stderr
    assert stdout.strip() == "False"


def test_crps_and_coverage_exact_cases():
    s = Support.uniform(0.0, 1.0, 4)
    point = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    crps, cover = value.crps_and_coverage(point, torch.tensor([0.9]), s)
    assert crps == pytest.approx(abs(0.375 - 0.9))
    assert cover == 0.0  # the interval is [0.275, 0.475]
    flat = torch.full((4001, 4), 0.25, dtype=torch.float64)
    _, cover = value.crps_and_coverage(flat, torch.linspace(0, 1, 4001), s)
    assert cover == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [
        ({"data": "atari"}, ValueError, "`data` to be one of 'synthetic', 'cartpole'"),
        ({"n_train": 0}, ValueError, "`n_train` >= 1"),
        ({"steps": True}, TypeError, "`steps` to be an int"),
        ({"dim": 1}, ValueError, "`dim` >= 2"),
        ({"gamma": 1.0}, ValueError, r"`gamma` in \(0, 1\)"),
        ({"epsilon": 1.5}, ValueError, r"`epsilon` in \[0, 1\]"),
        ({"noise_df": 0.0}, ValueError, "`noise_df` in"),
        ({"lr": "1e-3"}, TypeError, "`lr` to be a float"),
        ({"v_max": -3.0}, ValueError, "`v_max` > v_min"),
    ],
)
def test_value_section_validate(changes, exc, match):
    with pytest.raises(exc, match=match):
        replace(value.ValueSection(), **changes).validate()


def test_value_bad_method():
    with pytest.raises(ValueError, match="`method` to be one of 'mse', 'two_hot', 'hl_gauss'"):
        value.run_one(TINY_V, "huber", None, 0)
    with pytest.raises(ValueError, match="`param` to be None for method 'mse'"):
        value.run_one(TINY_V, "mse", 0.5, 0)
    with pytest.raises(TypeError, match="`param` to be a float"):
        value.run_one(TINY_V, "hl_gauss", None, 0)
    with pytest.raises(ValueError, match="`seed` >= 0"):
        value.run_one(TINY_V, "mse", None, -1)


def test_value_tiny_grid_verdict():
    lines = value.summarize(_records(value, TINY_V, value.METHODS), TINY_V)
    assert lines[0].startswith("mse: RMSE vs clean") and "over 2 seeds" in lines[0]
    assert "CRPS" in lines[1] and "CRPS" not in lines[0]
    assert lines[-2].startswith("Paired RMSE differences over seeds (mean ± 95% half-width): hl_gauss(0.75)")
    assert lines[-1].startswith("Claim HL-Gauss <= two-hot <= MSE in RMSE: ")
    short = value.summarize(_records(value, TINY_V, value.METHODS[:2], seeds=1))
    assert short[-1].startswith("The claim HL-Gauss <= two-hot <= MSE in RMSE needs")


# --- preference ---


@pytest.mark.parametrize(("method", "param"), preference.METHODS)
def test_preference_run_is_deterministic_and_reports_every_metric(method, param):
    a = preference.run_one(TINY_P, method, param, 5, flip_rate=0.2)
    assert a == preference.run_one(TINY_P, method, param, 5, flip_rate=0.2)
    m = a["metrics"]
    assert set(m) == {k.key for k in preference.METRICS}
    assert (m["margin_ratio"] is None) == (method != "cdpo")
    assert m["regret"] == pytest.approx(max(a["arrays"]["rewards"]) - m["reward"])
    assert m["kl"] >= 0 and 1 <= m["top_rank"] <= 5 and 0 <= m["p_best"] <= m["p_top"] <= 1
    assert [s for s, _ in a["curves"]["margin"]] == [0, 10, 20, 30, 40]
    assert a["curves"]["margin"][0][1] == 0.0 and a["curves"]["margin"][-1][1] == pytest.approx(m["margin"])


def test_preference_data_flips_at_the_true_rate():
    d = preference.make_data(replace(TINY_P, pairs=20000), 0, 0.3)
    assert float(d["flipped"].double().mean()) == pytest.approx(0.3, abs=0.02)
    assert bool((d["chosen"] != d["rejected"]).all())
    clean = preference.make_data(TINY_P, 0, 0.0)
    assert not bool(clean["flipped"].any())


def test_kendall_tau_matches_a_pair_loop():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(9, generator=g), torch.randn(9, generator=g)
    s = sum(
        math.copysign(1, (a[i] - a[j]).item() * (b[i] - b[j]).item())
        for i in range(9)
        for j in range(i + 1, 9)
    )
    assert preference.kendall_tau(a, b) == pytest.approx(s / 36)
    assert preference.kendall_tau(a, a) == pytest.approx(1.0)
    assert math.isnan(preference.kendall_tau(torch.zeros(3), a[:3]))


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [
        ({"arms": 1}, ValueError, "`arms` >= 2"),
        ({"pairs": 0}, ValueError, "`pairs` >= 1"),
        ({"flip_rates": (0.0, 0.5)}, ValueError, r"`flip_rates` in \[0, 0.5\)"),
        ({"flip_rates": (-0.1,)}, ValueError, "`flip_rates` in"),
        ({"flip_rates": (0.2, 0.2)}, ValueError, "`flip_rates` to hold distinct values"),
        ({"flip_rates": ()}, TypeError, "`flip_rates` to be a non-empty list"),
        ({"beta": 0.0}, ValueError, "`beta` in"),
        ({"steps": 2.5}, TypeError, "`steps` to be an int"),
    ],
)
def test_preference_section_validate(changes, exc, match):
    with pytest.raises(exc, match=match):
        replace(preference.PreferenceSection(), **changes).validate()


def test_preference_bad_method_and_param():
    with pytest.raises(ValueError, match="`method` to be one of 'dpo', 'cdpo', 'rdpo'"):
        preference.run_one(TINY_P, "ipo", 0.1, 0, flip_rate=0.0)
    with pytest.raises(ValueError, match=r"`param` to be None \(or 0\.0\) for method 'dpo'"):
        preference.run_one(TINY_P, "dpo", 0.1, 0, flip_rate=0.0)
    with pytest.raises(ValueError, match=r"`param` in \(0, 0.5\)"):
        preference.run_one(TINY_P, "rdpo", 0.5, 0, flip_rate=0.0)
    with pytest.raises(ValueError, match=r"`flip_rate` in \[0, 0.5\)"):
        preference.run_one(TINY_P, "dpo", None, 0, flip_rate=0.5)


def test_preference_tiny_grid_verdict():
    records = [
        {"e_true": 0.2, "method": m, "param": p, "seed": s,
         "metrics": preference.run_one(TINY_P, m, p, s, flip_rate=0.2)["metrics"]}
        for s in range(2)
        for m, p in preference.METHODS
    ]  # fmt: skip
    lines = preference.summarize(records)
    assert [line.split(" [")[0] for line in lines] == [
        "e_true = 0.2: DPO's margins", "e_true = 0.2: cDPO's margins", "e_true = 0.2: rDPO's ranking",
        "e_true = 0.2: expected true reward",
    ]  # fmt: skip
    assert "Expected true reward: dpo" in lines[3] and "cdpo(0.1) " in lines[3]
    assert "cdpo(0.1): beta*h / log((1-e)/e) = " in lines[1]
    assert "Claim (rDPO ranks best when e = e_true): " in lines[2]
    assert preference.summarize([]) == []
