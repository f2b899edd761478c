"""The study tasks ``value`` and ``preference`` on the engine (issue 12 §3): CLI and API runs on tiny grids,
resume (also after kill -9), equal numbers for 1 and 2 workers, report and export, the verdict logic on
hand-made records (a claim that holds, fails, or is not detectable), and bad configs."""

from __future__ import annotations

import json
import os
import sys

import pytest
from click.testing import CliRunner

from labelsmooth.cli import main
from labelsmooth.study import run
from labelsmooth.study.runner import plan, prepare_context
from labelsmooth.study.tasks import BUILTIN, get_task, preference, value
from study_fixtures import (
    assert_figures_are_not_clipped,
    assert_resume_trains_only_the_missing_runs,
    sigkill_once_a_run_is_stored,
    stored_numbers,
)

TINY_VALUE = {"n_train": 64, "n_test": 32, "steps": 6, "eval_every": 3, "hidden": 8, "bins": 12}
TINY_PREF = {"arms": 5, "pairs": 20, "steps": 40, "eval_every": 10, "flip_rates": [0.0, 0.4],
             "methods": {"dpo": True, "cdpo": [0.2], "rdpo": [0.4]}}  # fmt: skip


def _cfg(task: str, seeds: int = 2, **section) -> dict:
    base = TINY_VALUE if task == "value" else TINY_PREF
    return {"task": task, "seeds": seeds, task: {**base, **section}}


def _numbers(results) -> dict:
    return stored_numbers(results, ("data", "e_true", "method", "param", "seed"))


# ------------------------------------------------------------------------------------------- registry, CLI


def test_both_tasks_are_builtin_and_listed_with_what_they_answer_and_their_runtime():
    assert {"value", "preference"} <= set(BUILTIN)
    out = CliRunner().invoke(main, ["tasks"]).output
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "HL-Gauss <= two-hot <= MSE" in lines["value"] and "25 runs" in lines["value"]
    assert "rDPO" in lines["preference"] and "105 runs" in lines["preference"]
    assert " s wall" in lines["value"] and " s wall" in lines["preference"]


def test_value_from_the_api_reports_figures_resumes(tmp_path):
    out = tmp_path / "v"
    res = run(_cfg("value"), out=out, workers=1)
    assert len(res) == 10 and {r["label"] for r in res} == {
        "mse", "two_hot", "hl_gauss(0.5)", "hl_gauss(0.75)", "hl_gauss(1.5)"}  # fmt: skip
    assert all(r["data"] == "synthetic" and r["rmse"] > 0 for r in res)
    assert all((r["crps"] is None) == (r["method"] == "mse") for r in res)
    assert (out / "figures" / "rmse_synthetic.png").stat().st_size > 1000
    assert_figures_are_not_clipped(out)
    md = (out / "report.md").read_text()
    assert "HL-Gauss <= two-hot <= MSE" in md and "Paired RMSE differences over seeds" in md
    trained = []
    again = run(_cfg("value"), out=out, workers=1, on_run=trained.append, report=False)
    assert trained == [] and _numbers(again) == _numbers(res)


def test_preference_from_the_cli_dry_run_study_report_export(tmp_path):
    out = str(tmp_path / "p")
    sets = ["--set", "preference.arms=5", "--set", "preference.pairs=20", "--set", "preference.steps=40",
            "--set", "preference.eval_every=10", "--set", "preference.flip_rates=[0, 0.4]",
            "--set", 'preference.methods={dpo = true, cdpo = [0.2], rdpo = [0.4]}']  # fmt: skip
    args = ["study", "--task", "preference", "--seeds", "2", "--out", out, *sets]
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("12 runs (task preference), 12 to train") and "e_true=0.4" in dry.output
    assert not os.path.exists(out)
    result = CliRunner().invoke(main, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "e_true = 0.4: rDPO's ranking" in result.output and "Kendall tau" in result.output
    for name in ("margins", "reward", "kendall_tau"):
        assert os.path.getsize(os.path.join(out, "figures", f"{name}.png")) > 1000
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "cDPO&#x27;s margins" in html and "log((1-e)/e)/beta" in html
    before = open(os.path.join(out, "report.html"), "rb").read()
    assert CliRunner().invoke(main, ["report", out]).exit_code == 0
    assert open(os.path.join(out, "report.html"), "rb").read() == before
    exported = json.loads(CliRunner().invoke(main, ["export", out, "--format", "json"]).output)
    assert len(exported) == 12 and {r["e_true"] for r in exported} == {0.0, 0.4}
    assert {r["label"] for r in exported} == {"dpo", "cdpo(0.2)", "rdpo(0.4)"}
    dry2 = CliRunner().invoke(main, [*args, "--dry-run"])
    assert "12 runs (task preference), 0 to train" in dry2.output


@pytest.mark.parametrize("task", ["value", "preference"])
def test_one_and_two_workers_store_the_same_numbers(tmp_path, task):
    one = run(_cfg(task, seeds=1), out=tmp_path / "one", workers=1, report=False)
    two = run(_cfg(task, seeds=1), out=tmp_path / "two", workers=2, report=False)
    assert len(one) == len(two) > 2 and _numbers(one) == _numbers(two)


def test_a_study_killed_with_sigkill_resumes_without_retraining(tmp_path):
    out = tmp_path / "k"
    cfg = _cfg("value", seeds=3, steps=100, eval_every=50)
    code = f"from labelsmooth.study import run; run({cfg!r}, out={str(out)!r}, workers=1, report=False)"
    stored = sigkill_once_a_run_is_stored(code, out)
    assert 1 <= len(stored) < 15
    assert_resume_trains_only_the_missing_runs(cfg, out, stored, 15, workers=1)


def test_adding_a_method_keeps_the_other_runs_hashes():
    few = plan(prepare_context(_cfg("value", methods={"mse": True})))
    many = plan(prepare_context(_cfg("value")))
    assert {s.run_hash for s in few} < {s.run_hash for s in many}
    p = plan(prepare_context(_cfg("preference", flip_rates=[0.4])))
    assert {s.run_hash for s in p} < {s.run_hash for s in plan(prepare_context(_cfg("preference")))}


def test_cartpole_through_the_engine(tmp_path):
    pytest.importorskip("gymnasium")
    cfg = _cfg("value", seeds=1, data="cartpole", horizon=12, rollouts=4, methods={"two_hot": True})
    res = run(cfg, out=tmp_path / "c", workers=1, report=False)
    assert len(res) == 1 and res[0]["data"] == "cartpole" and res[0]["rmse"] > 0


def test_cartpole_without_gymnasium_names_the_extra_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium.envs.classic_control.cartpole", None)
    with pytest.raises(ImportError, match=r'value.data = "cartpole" needs gymnasium.*labelsmooth\[rl\]'):
        run(_cfg("value", data="cartpole"), out=tmp_path / "c")
    assert not (tmp_path / "c").exists()
    result = CliRunner().invoke(main, ["study", "--task", "value", "--set", 'value.data="cartpole"',
                                       "--out", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 1 and 'pip install "labelsmooth[rl]"' in result.output


# ------------------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("cfg", "exc", "match"),
    [
        ({"task": "value", "value": {"step": 5}}, ValueError, "did you mean `value.steps`"),
        ({"task": "value", "preference": {"arms": 3}}, ValueError, "belongs to task 'preference'"),
        ({"task": "preference", "value": {"bins": 3}}, ValueError, "belongs to task 'value'"),
        (
            {"task": "preference", "data": {"datasets": ["digits"]}},
            ValueError,
            "belongs to task 'classification'",
        ),
        ({"task": "value", "value": {"n_train": 0}}, ValueError, "`value.n_train` >= 1"),
        ({"task": "value", "value": {"data": "atari"}}, ValueError, "`value.data` to be one of"),
        (
            {"task": "value", "value": {"methods": {"hl_gaus": [0.5]}}},
            ValueError,
            "`value.methods` to be a registered method \\(did you mean 'hl_gauss'\\?\\)",
        ),
        (
            {"task": "value", "value": {"methods": {"ls": [0.1]}}},
            ValueError,
            "to name a method of task 'value'",
        ),
        (
            {"task": "value", "value": {"methods": {"hl_gauss": [-1.0]}}},
            ValueError,
            r"`value.methods.hl_gauss` in \(0, inf\]",
        ),
        (
            {"task": "value", "value": {"methods": {"mse": [0.1]}}},
            TypeError,
            "`value.methods.mse` to be true or",
        ),
        (
            {"task": "value", "value": {"methods": {"mse": False}}},
            ValueError,
            "to select at least one method",
        ),
        ({"task": "value", "value": {"methods": {"hl_gauss": [0.5, 0.5]}}}, ValueError, "distinct"),
        ({"task": "value", "value": {"v_max": -4.0}}, ValueError, "`value.v_max` > v_min"),
        (
            {"task": "preference", "preference": {"flip_rates": [0.5]}},
            ValueError,
            r"`preference.flip_rates` in",
        ),
        (
            {"task": "preference", "preference": {"methods": {"cdpo": [0.5]}}},
            ValueError,
            r"`preference.methods.cdpo` in \(0, 0.5\)",
        ),
        (
            {"task": "preference", "preference": {"methods": {"ipo": True}}},
            ValueError,
            "`preference.methods` to be a registered method",
        ),
        ({"task": "preference", "preference": {"beta": 0}}, ValueError, r"`preference.beta` in \(0, inf\]"),
        ({"task": "preference", "preference": {"beta": "x"}}, TypeError, "`preference.beta` to be a number"),
    ],
)
def test_bad_configs_are_errors_naming_the_key(cfg, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        run(cfg, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_user_data_or_model_is_refused(tmp_path):
    with pytest.raises(TypeError, match="`data` to be None"):
        prepare_context(_cfg("value"), data=([[0.0]], [0]))
    with pytest.raises(TypeError, match="`model_fn` to be None"):
        prepare_context(_cfg("preference"), model_fn=lambda *a: None)


# ------------------------------------------------------------------------------------------- verdict logic


def _value_records(rmse: dict[str, list[float]]) -> list[dict]:
    name = {"mse": ("mse", None), "two_hot": ("two_hot", None), "hl": ("hl_gauss", 0.75)}
    return [
        {"data": "synthetic", "method": name[k][0], "param": name[k][1], "seed": s, "rmse": v}
        for k, vs in rmse.items()
        for s, v in enumerate(vs)
    ]


@pytest.mark.parametrize(
    ("rmse", "outcome", "phrase"),
    [
        (
            {"mse": [0.30, 0.32, 0.31], "two_hot": [0.20, 0.21, 0.22], "hl": [0.15, 0.17, 0.16]},
            "holds",
            "holds, both steps significant",
        ),
        (
            {"mse": [0.20, 0.21, 0.22], "two_hot": [0.30, 0.32, 0.31], "hl": [0.15, 0.17, 0.16]},
            "fails",
            "two-hot <= MSE significantly reversed",
        ),
        (
            {"mse": [0.30, 0.32, 0.31], "two_hot": [0.20, 0.23, 0.19], "hl": [0.21, 0.20, 0.20]},
            "undetectable",
            "HL-Gauss <= two-hot within noise",
        ),
        ({"mse": [0.30], "two_hot": [0.20], "hl": [0.15]}, "undetectable", "within noise"),
    ],
)
def test_value_verdict_holds_fails_or_is_undetectable(rmse, outcome, phrase):
    (v,) = get_task("value").verdict(_value_records(rmse))
    assert v.outcome == outcome and phrase in v.sentences[-1]
    assert v.title == "value, synthetic data, Student-t target noise"


def test_value_verdict_without_the_methods_is_untested():
    (v,) = value.verdict(_value_records({"mse": [0.3, 0.2]}))
    assert v.outcome == "untested" and "needs mse, two_hot and hl_gauss runs" in v.text


def _pref(method, param, seed, e_true=0.2, **metrics):
    return {"e_true": e_true, "method": method, "param": param, "seed": seed, **metrics}


def _claims(records) -> dict[str, object]:
    return {v.title.split(": ", 1)[1]: v for v in preference.verdict(records)}


def test_dpo_claim_holds_partly_fails_undetectable():
    grow = [_pref("dpo", None, s, margin=5.0 + s, margin_growth=0.5 + 0.1 * s, top_rank=2.0, p_top=0.9,
                  p_best=0.05) for s in range(3)]  # fmt: skip
    assert _claims(grow)["DPO's margins"].outcome == "holds"
    flat = [dict(r, margin_growth=1e-6 * (s + 1), top_rank=1.0) for s, r in enumerate(grow)]
    v = _claims(flat)["DPO's margins"]
    assert v.outcome == "fails" and "the margins converge and no lock-in" in v.text
    locked = [dict(r, margin_growth=1e-6 * (s + 1)) for s, r in enumerate(grow)]
    assert _claims(locked)["DPO's margins"].outcome == "partly"
    noisy = [dict(r, margin_growth=g, top_rank=1.0) for r, g in zip(grow, (-1.0, 2.0, 0.1))]
    assert _claims(noisy)["DPO's margins"].outcome == "undetectable"


def test_cdpo_claim_holds_fails_undetectable():
    def recs(ratios):
        return [_pref("cdpo", 0.2, s, margin_ratio=r, margin_growth=0.0) for s, r in enumerate(ratios)]

    assert _claims(recs([0.99, 1.0, 1.01]))["cDPO's margins"].outcome == "holds"
    v = _claims(recs([0.30, 0.33, 0.31]))["cDPO's margins"]
    assert v.outcome == "fails" and "isolated pair" in v.text
    assert _claims(recs([0.5, 1.0, 1.5]))["cDPO's margins"].outcome == "undetectable"
    assert _claims(recs([1.0]))["cDPO's margins"].outcome == "undetectable"


def test_rdpo_claim_holds_fails_undetectable_untested():
    def recs(taus, e_true=0.2):
        return [_pref(m, p, s, e_true=e_true, kendall_tau=t + 0.01 * s)
                for (m, p), t in taus.items() for s in range(3)]  # fmt: skip

    best = {("dpo", None): 0.4, ("rdpo", 0.2): 0.6, ("rdpo", 0.4): 0.5}
    v = _claims(recs(best))["rDPO's ranking"]
    assert v.outcome == "holds" and "rdpo(0.2) ranks significantly better" in v.text
    worse = {("dpo", None): 0.7, ("rdpo", 0.2): 0.6, ("rdpo", 0.4): 0.5}
    assert _claims(recs(worse))["rDPO's ranking"].outcome == "fails"
    tie = recs({("dpo", None): 0.6, ("rdpo", 0.2): 0.6})
    tie[0]["kendall_tau"] += 0.05  # seed 0 of DPO ranks a little better, seeds 1, 2 the same
    assert _claims(tie)["rDPO's ranking"].outcome == "undetectable"
    clean = recs({("dpo", None): 0.7, ("rdpo", 0.2): 0.6}, e_true=0.0)
    assert _claims(clean)["rDPO's ranking"].outcome == "holds"  # at e_true = 0, rDPO(0) is DPO
    missing = recs({("dpo", None): 0.7, ("rdpo", 0.2): 0.6}, e_true=0.4)
    assert _claims(missing)["rDPO's ranking"].outcome == "untested"


def test_reward_report_and_one_verdict_per_flip_rate():
    recs = [_pref(m, p, s, e_true=e, reward=r + 0.01 * s) for e in (0.0, 0.4)
            for (m, p), r in {("dpo", None): 1.0, ("cdpo", 0.2): 1.5}.items() for s in range(3)]  # fmt: skip
    titles = [v.title for v in preference.verdict(recs)]
    assert titles == ["e_true = 0: expected true reward", "e_true = 0.4: expected true reward"]
    (v, _) = preference.verdict(recs)
    assert v.outcome == "differs" and "higher than DPO: cdpo(0.2)" in v.text
