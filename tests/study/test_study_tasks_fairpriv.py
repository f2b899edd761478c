"""The ``fairness`` and ``privacy`` engine tasks and the two registry methods of issue 13 (``classwise``,
``negative-schedule``) in the classification task: tiny grids, seconds."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from labelsmooth.cli import main
from labelsmooth.study import run
from labelsmooth.study.methods import freeze_param, get_method
from labelsmooth.study.objectives import loss_of
from labelsmooth.study.tasks import fairness as F
from labelsmooth.study.tasks import get_task
from labelsmooth.study.tasks import privacy as P
from study_fixtures import (
    assert_figures_are_not_clipped,
    assert_resume_trains_only_the_missing_runs,
    sigkill_once_a_run_is_stored,
    tiny,
)

TIMES = ("wall_time", "cpu_time")
TINY_F = {"seeds": [0, 1], "n_samples": 1000, "epochs": 4, "width": 8, "depth": 1, "smoothing": [0.1]}
TINY_P = {"seeds": [0, 1], "smoothing": [-0.05, 0.0, 0.1], "epochs": 6, "warmup_epochs": 2, "ramp_epochs": 2,
          "width": 16, "depth": 1, "inversion_steps": 3, "inversion_restarts": 2, "eval_epochs": 3,
          "pca_components": 4}  # fmt: skip


def _cfg(task, **over):
    section = dict(TINY_F if task == "fairness" else TINY_P, **over)
    return {"task": task, "workers": 1, task: section}


def _numbers(results):
    return {r["run_hash"]: {k: v for k, v in r.items() if k not in TIMES} for r in results}


@pytest.mark.parametrize("task", ["fairness", "privacy"])
def test_workers_1_and_2_store_the_same_numbers_and_the_report_has_verdicts_and_figures(tmp_path, task):
    one = run(_cfg(task), out=tmp_path / "w1", workers=1)
    two = run(_cfg(task), out=tmp_path / "w2", workers=2, report=False)
    assert len(one) == (12 if task == "fairness" else 6)
    assert _numbers(one) == _numbers(two)
    report = (tmp_path / "w1" / "report.md").read_text()
    if task == "fairness":
        assert "groups: group fairness" in report and "long_tail: selective classification" in report
        assert {r["problem"] for r in one} == {"groups", "long_tail"}
        assert all(0 <= r["worst_group_accuracy"] <= r["accuracy"] + 1e-9 for r in one)
    else:
        assert "membership inference (Kaya and Dumitras 2021)" in report and "inversion, negative" in report
        neg = [r for r in one if r["method"] == "negative-schedule"]
        assert neg and dict(neg[0]["param"]) == {"final": -0.05, "warmup_epochs": 2, "ramp_epochs": 2}
    assert assert_figures_are_not_clipped(tmp_path / "w1") >= 2


def test_cli_dry_run_study_report_and_export(tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text('task = "fairness"\n[fairness]\nseeds = [0]\nn_samples = 1000\nepochs = 3\nwidth = 8\n'
                   'depth = 1\nsmoothing = [0.1]\nproblems = ["groups"]\n')  # fmt: skip
    out = str(tmp_path / "o")
    dry = CliRunner().invoke(main, ["study", "--config", str(cfg), "--dry-run", "--out", out])
    assert dry.exit_code == 0 and dry.output.startswith("3 runs (task fairness), 3 to train"), dry.output
    assert not (tmp_path / "o").exists()
    ran = CliRunner().invoke(main, ["study", "--config", str(cfg), "--workers", "1", "--out", out])
    assert ran.exit_code == 0, ran.output
    rep = CliRunner().invoke(main, ["report", out])
    assert rep.exit_code == 0, rep.output
    exp = CliRunner().invoke(main, ["export", out, "--format", "json"])
    assert exp.exit_code == 0, exp.output
    rows = json.loads(exp.output[exp.output.index("[") :])
    assert len(rows) == 3 and {r["label"] for r in rows} == {"hard (a=0)", "ls a=0.1", "classwise a=0..0.2"}
    tasks = CliRunner().invoke(main, ["tasks"]).output
    for name in ("fairness", "privacy"):
        line = next(x for x in tasks.splitlines() if x.startswith(name))
        assert "does smoothing change" in line and "measured" in line


def test_resume_after_kill_9_trains_only_the_missing_runs(tmp_path):
    out = tmp_path / "k"
    cfg = _cfg("privacy", seeds=[0, 1, 2, 3], epochs=40, warmup_epochs=10, ramp_epochs=10)
    cfg_file = tmp_path / "p.json"
    cfg_file.write_text(json.dumps(cfg))
    code = (f"import json; from labelsmooth.study import run; run(json.load(open({str(cfg_file)!r})), "
            f"out={str(out)!r}, report=False)")  # fmt: skip
    stored = sigkill_once_a_run_is_stored(code, out, timeout=60, at_least=2)
    assert 2 <= len(stored) < 12
    results = assert_resume_trains_only_the_missing_runs(cfg, out, stored, 12)
    fresh = run(cfg, out=tmp_path / "fresh", report=False)
    assert _numbers(results) == _numbers(fresh)


def test_fairness_verdict_on_hand_made_records():
    recs = []
    for seed, j in enumerate((0.01, -0.02, 0.015, -0.005)):
        base = {"problem": "groups", "seed": seed, "worst_group_accuracy": 0.7, "accuracy_gap": 0.2,
                "ece_gap": 0.05, "eo_difference": 0.1, "dp_difference": 0.1, "aurc_msp": 0.05,
                "aurc_norm": 0.05}  # fmt: skip
        recs.append(dict(base, method="hard", param=None, label="hard (a=0)"))
        recs.append(dict(base, method="ls", param=0.1, label="ls a=0.1", worst_group_accuracy=0.7 + j,
                         aurc_msp=0.06 + j / 10, aurc_norm=0.05 + j / 20))  # fmt: skip
    fair, sel = F.judge(recs)
    assert fair.outcome == "no detectable difference" and "no evidence here" in fair.text
    assert sel.outcome == "reproduced"
    for r in recs:
        if r["method"] == "ls":
            r["aurc_norm"] = r["aurc_msp"]  # the normalised score leaves the gap
            r["accuracy_gap"] = 0.1 + r["seed"] * 0.001
    fair, sel = F.judge(recs)
    assert fair.outcome == "differences detected" and "ls a=0.1 group accuracy gap" in fair.text
    assert sel.outcome == "partly reproduced" and "the gap is not closed" in sel.text
    assert F.judge([r for r in recs if r["method"] == "ls"])[0].outcome == "no baseline"


def test_long_tail_verdict_names_the_mislas_claim_and_whether_it_held():
    def records(tail_gain, gap_change):
        recs = []
        for seed, j in enumerate((0.004, -0.003, 0.002, -0.001)):
            base = {"problem": "long_tail", "seed": seed, "worst_group_accuracy": 0.5, "tail_accuracy": 0.6,
                    "ece_gap": 0.3, "aurc_msp": 0.05, "aurc_norm": 0.05}  # fmt: skip
            recs.append(dict(base, method="hard", param=None, label="hard (a=0)"))
            recs.append(dict(base, method="classwise", param=(0.0, 0.2), label="classwise a=0..0.2",
                             tail_accuracy=0.6 + tail_gain + j, ece_gap=0.3 + gap_change + j))  # fmt: skip
        return F.judge(recs)[0].text

    assert "class-wise smoothing helps the tail classes: held here" in records(0.05, -0.1)
    assert "helps the tail classes: held in part" in records(0.0, -0.1)
    assert "helps the tail classes: did not hold (adverse)" in records(-0.05, 0.0)
    assert "helps the tail classes: did not hold (no detectable difference)" in records(0.0, 0.0)
    assert "classwise a=0..0.2 tail-half accuracy higher" in records(0.05, -0.1)


def test_privacy_verdict_on_hand_made_records():
    recs = []
    sched = freeze_param({"final": -0.05, "warmup_epochs": 2, "ramp_epochs": 2})
    for seed in range(4):
        j = 0.01 * (seed - 1.5)
        common = dict(seed=seed, mia_loss_auc=0.6, mia_logit_tpr1=0.02, inv_member_distance=1.5,
                      test_accuracy=0.95 + j)  # fmt: skip
        recs.append(dict(common, method="hard", param=None, mia_best_auc=0.6 + j, inv_attack_accuracy=1.0,
                         inv_eval_confidence=0.95 + j))  # fmt: skip
        recs.append(dict(common, method="ls", param=0.1, mia_best_auc=0.65 + j + j * j, inv_attack_accuracy=1.0,
                         inv_eval_confidence=0.95 + j))  # fmt: skip
        recs.append(
            dict(
                common,
                method="negative-schedule",
                param=sched,
                mia_best_auc=0.6 + j,
                inv_attack_accuracy=0.7 + j,
                inv_eval_confidence=0.7,
                test_accuracy=0.85 + j / 2,
            )
        )
    mia, pos, neg = P.judge(recs)
    assert (
        mia.outcome == "adverse: the attack AUC rose with positive smoothing"
        and "rose (more leakage) for a=0.1" in mia.text
    )
    assert pos.outcome == "not measurable (attack saturated)" and "little room" in pos.text
    assert neg.outcome == "reproduced" and "test accuracy fell" in neg.text


@pytest.mark.parametrize(
    "over, match",
    [({"fairness": {"problems": ["groupz"]}}, "fairness.problems"),
     ({"fairness": {"epoch": 3}}, r"did you mean `fairness.epochs`"),
     ({"privacy": {"smoothing": [1.5]}}, "privacy.smoothing"),
     ({"methods": {"classwise": [[0.0]]}}, r"methods.classwise.*\[low, high\]"),
     ({"methods": {"classwise": [[0.0, 1.0]]}}, r"methods.classwise.*\[0, 1\)"),
     ({"methods": {"negative_schedule": [{"final": -0.1, "warmup": 3}]}}, "methods.negative_schedule"),
     ({"methods": {"negative_schedule": [{"final": -0.1, "ramp_epochs": -1}]}},
      r"methods.negative_schedule.ramp_epochs"),
     ({"methods": {"negative_schedule": [-0.1]}}, "to hold tables")],
)  # fmt: skip
def test_bad_config_is_an_error_naming_the_key(tmp_path, over, match):
    task = next(iter(over)) if next(iter(over)) in ("fairness", "privacy") else "classification"
    cfg = {"task": task, **over} if task != "classification" else tiny(**over)
    with pytest.raises((ValueError, TypeError), match=match):
        run(cfg, out=tmp_path / "x", report=False)
    assert not (tmp_path / "x").exists()


def test_classification_runs_the_two_methods_and_stores_the_schedule(tmp_path):
    sched = {"final": -0.1, "warmup_epochs": 4, "ramp_epochs": 4}
    cfg = tiny(
        seeds=1,
        noise={"rates": [0.0]},
        methods={"label_smoothing": [], "focal": [], "classwise": [[0.0, 0.1]], "negative_schedule": [sched]},
    )
    res = run(cfg, out=tmp_path / "c", report=True)
    by = {r["method"]: r for r in res}
    assert set(by) == {"hard", "classwise", "negative-schedule"}
    assert by["classwise"]["param"] == (0.0, 0.1) and by["classwise"]["label"] == "classwise a=0..0.1"
    assert dict(by["negative-schedule"]["param"]) == sched
    stored = {r.spec["method"]: r for r in load_results_runs(tmp_path / "c")}
    assert stored["negative-schedule"].spec["param"] == sched  # stored with the run
    # eval every 4 epochs of 12: epoch 4 is hard, 8 and 12 at the final a
    assert stored["negative-schedule"].curves["label_smoothing"] == [
        0.0,
        pytest.approx(-0.1),
        pytest.approx(-0.1),
    ]
    assert "label_smoothing" not in stored["hard"].curves
    # part of the hash: another warm-up is another run
    other = dict(sched, warmup_epochs=5)
    cfg2 = tiny(
        seeds=1,
        noise={"rates": [0.0]},
        methods={"hard": False, "label_smoothing": [], "focal": [], "negative_schedule": [other]},
    )
    trained = []
    run(cfg2, out=tmp_path / "c", on_run=trained.append, report=False, extend=True)
    assert len(trained) == 1
    # the loss changes after the warm-up, and only then
    loss = loss_of("negative-schedule", freeze_param(sched), torch.tensor([0, 1]), 2)
    z, y = torch.tensor([[2.0, 0.0], [0.5, 1.0]]), torch.tensor([0, 1])
    values = []
    for epoch in (1, 4, 5, 8):
        loss.set_epoch(epoch)
        values.append(float(loss(z, y)))
    assert values[0] == values[1] and values[1] != values[2] != values[3]
    assert get_method("classwise").label_of((0.0, 0.2)) == "classwise a=0..0.2"
    assert get_task("fairness").label({"method": "classwise", "param": [0.0, 0.2]}) == "classwise a=0..0.2"


def load_results_runs(folder):
    from labelsmooth.study.store import Store

    with Store.open(folder, create=False, readonly=True) as store:
        return list(store.runs())
