"""The study tasks ``sequence`` and ``gan`` on the engine (issue 9 §2, §3): CLI and API runs on tiny grids,
dry-run, report and export, resume (also after kill -9), equal numbers for 1 and 2 workers, the verdict
logic on hand-made records (a zero-spread interval is degenerate, not significant), and bad configs."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from labelsmooth.cli import main
from labelsmooth.study import run
from labelsmooth.study.config import from_mapping
from labelsmooth.study.runner import plan, prepare_context
from labelsmooth.study.stats import Estimate
from labelsmooth.study.tasks import BUILTIN, gan, get_task, sequence
from labelsmooth.study.tasks import _common as common
from study_fixtures import (
    assert_figures_are_not_clipped,
    assert_resume_trains_only_the_missing_runs,
    sigkill_once_a_run_is_stored,
    stored_numbers,
)

TINY_SEQ = {"datasets": ["reverse"], "label_smoothing": [0.1], "penalty": [], "d_model": 8, "n_layers": 1,
            "n_heads": 2, "steps": 3, "batch_size": 4, "n_train": 24, "n_eval": 8, "max_len": 4}  # fmt: skip
TINY_GAN = {"datasets": ["ring"], "one_sided": [0.1], "two_sided": [0.2], "hidden": 8, "steps": 4,
            "batch_size": 16, "n_eval": 40}  # fmt: skip


def _cfg(task: str, seeds: int = 2, **section) -> dict:
    return {"task": task, "seeds": seeds, task: {**(TINY_SEQ if task == "sequence" else TINY_GAN), **section}}


def _numbers(results) -> dict:
    return stored_numbers(results, ("dataset", "method", "param", "seed"))


# ------------------------------------------------------------------------------------------- registry, CLI


def test_both_tasks_are_builtin_and_listed_with_what_they_answer_and_their_runtime():
    assert {"sequence", "gan"} <= set(BUILTIN)
    out = CliRunner().invoke(main, ["tasks"]).output
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "perplexity, accuracy and calibration" in lines["sequence"] and "24 runs" in lines["sequence"]
    assert "one-sided label smoothing" in lines["gan"] and "32 runs" in lines["gan"]
    assert from_mapping({"task": "sequence"}).seeds == (0, 1, 2)  # each task's own default seed count
    assert from_mapping({"task": "gan"}).seeds == (0, 1, 2, 3)
    assert from_mapping({"task": "gan", "seeds": 2}).seeds == (0, 1)


def test_sequence_from_the_cli_dry_run_study_report_export(tmp_path):
    out = str(tmp_path / "s")
    sets = [x for k, v in TINY_SEQ.items() for x in ("--set", f"sequence.{k}={json.dumps(v)}")]
    args = ["study", "--task", "sequence", "--seeds", "2", "--out", out, *sets]
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("4 runs (task sequence), 4 to train") and "smoothing (a=0.1)" in dry.output
    assert not os.path.exists(out)
    result = CliRunner().invoke(main, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "* reverse: Bottom line at a = 0.1: perplexity" in result.output
    for name in ("perplexity_reverse", "reliability_reverse"):
        assert os.path.getsize(os.path.join(out, "figures", f"{name}.png")) > 1000
    md = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "Vaswani et al. 2017" in md and "Müller et al. 2019" in md and "ECE after T" in md
    before = open(os.path.join(out, "report.html"), "rb").read()
    assert CliRunner().invoke(main, ["report", out]).exit_code == 0
    assert open(os.path.join(out, "report.html"), "rb").read() == before
    exported = json.loads(CliRunner().invoke(main, ["export", out, "--format", "json"]).output)
    assert len(exported) == 4 and {r["label"] for r in exported} == {"hard", "smoothing (a=0.1)"}
    assert all({"ts_ece", "ts_nll", "ts_perplexity", "exact_match"} <= set(r) for r in exported)
    assert "0 to train" in CliRunner().invoke(main, [*args, "--dry-run"]).output


def test_gan_from_the_api_reports_figures_resumes(tmp_path):
    out = tmp_path / "g"
    res = run(_cfg("gan"), out=out, workers=1)
    assert len(res) == 6 and {r["label"] for r in res} == {
        "no smoothing (1/0)", "one-sided (0.9/0)", "two-sided (0.9/0.1)"}  # fmt: skip
    assert all(r["dataset"] == "ring" and r["energy_distance"] == r["energy_distance"] for r in res)
    assert (out / "figures" / "samples_ring.png").stat().st_size > 1000
    assert_figures_are_not_clipped(out)
    assert "Salimans et al. 2016" in (out / "report.md").read_text()
    trained = []
    again = run(_cfg("gan"), out=out, workers=1, on_run=trained.append, report=False)
    assert trained == [] and _numbers(again) == _numbers(res)


def test_one_and_two_workers_store_the_same_numbers(tmp_path):
    cfg = _cfg("gan", seeds=1)
    one = run(cfg, out=tmp_path / "one", workers=1, report=False)
    two = run(cfg, out=tmp_path / "two", workers=2, report=False)
    assert len(one) == len(two) == 3 and _numbers(one) == _numbers(two)
    seq_cfg = _cfg("sequence", seeds=1)
    seq_one = run(seq_cfg, out=tmp_path / "s1", workers=1, report=False)
    assert _numbers(seq_one) == _numbers(run(seq_cfg, out=tmp_path / "s2", workers=2, report=False))


def test_a_study_killed_with_sigkill_resumes_without_retraining(tmp_path):
    out = tmp_path / "k"
    cfg = _cfg("gan", seeds=3, steps=50)
    code = f"from labelsmooth.study import run; run({cfg!r}, out={str(out)!r}, workers=1, report=False)"
    stored = sigkill_once_a_run_is_stored(code, out)
    assert 1 <= len(stored) < 9
    assert_resume_trains_only_the_missing_runs(cfg, out, stored, 9, workers=1)


def test_a_grid_change_keeps_the_other_runs_hashes():
    few = {s.run_hash for s in plan(prepare_context(_cfg("sequence", label_smoothing=[0.1])))}
    more = {s.run_hash for s in plan(prepare_context(_cfg("sequence", label_smoothing=[0.1, 0.2])))}
    assert few < more and len(more - few) == 2


# ------------------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("cfg", "exc", "match"),
    [
        ({"task": "sequence", "gan": {"steps": 3}}, ValueError, "`gan` to be a section of task 'sequence'"),
        ({"task": "gan", "train": {"epochs": 3}}, ValueError, "it belongs to task 'classification'"),
        ({"task": "sequence", "sequence": {"step": 3}}, ValueError, "did you mean `sequence.steps`"),
        ({"task": "sequence", "sequence": {"context": 0}}, ValueError, "`sequence.context` >= 1, got 0"),
        ({"task": "sequence", "sequence": {"max_len": 0}}, ValueError, "`sequence.max_len` >= 3, got 0"),
        ({"task": "sequence", "sequence": {"vocab": 1}}, ValueError, "`sequence.vocab` >= 2, got 1"),
        ({"task": "sequence", "sequence": {"datasets": ["stdlb"]}}, ValueError, "did you mean 'stdlib'"),
        ({"task": "sequence", "sequence": {"label_smoothing": [1.0]}}, ValueError, r"in \[0, 1\)"),
        ({"task": "sequence", "sequence": {"d_model": 10, "n_heads": 4}}, ValueError, "divisible"),
        ({"task": "gan", "gan": {"datasets": []}}, ValueError, "`gan.datasets` to name at least one"),
        ({"task": "gan", "gan": {"two_sided": [1.5]}}, ValueError, r"`gan.two_sided\[0\]` in \[0, 1\]"),
        ({"task": "gan", "gan": {"steps": 0}}, ValueError, "`gan.steps` >= 1, got 0"),
        ({"task": "gan", "gan": {"steps": "many"}}, TypeError, "`gan.steps` to be an int"),
        ({"task": "gann"}, ValueError, "did you mean 'gan'"),
    ],
)
def test_bad_configs_are_errors_naming_the_key_before_anything_is_written(cfg, exc, match, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(exc, match=match):
        run(cfg, out=out, workers=1)
    assert not out.exists()


def test_user_data_or_model_is_refused(tmp_path):
    with pytest.raises(TypeError, match="task 'gan' samples its own mixtures"):
        run(_cfg("gan"), data=([[0.0]], [0]), out=tmp_path / "d", workers=1)
    with pytest.raises(TypeError, match="builds its own CausalTransformer"):
        run(_cfg("sequence"), model_fn=dict, out=tmp_path / "m", workers=1)
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------------- verdicts


def _seq(method, param, seed, **m):
    base = {"perplexity": 4.0, "accuracy": 0.5, "ece": 0.05, "ts_ece": 0.01, "temperature": 1.0}
    return {"dataset": "toy", "method": method, "param": param, "seed": seed, **base, **m}


def test_sequence_verdict_reports_each_direction_against_the_published_one():
    recs = []
    for s in range(4):
        recs.append(_seq("hard", None, s, perplexity=4.0 + s / 10, accuracy=0.50 + s / 100, ece=0.02 + s / 1000,
                         temperature=0.9))  # fmt: skip
        recs.append(_seq("smoothing", 0.1, s, perplexity=4.5 + s / 9, accuracy=0.50 + (s % 2) / 50 + s / 100,
                         ece=0.05 + s / 900, temperature=0.7))  # fmt: skip
    (v,) = get_task("sequence").verdict(recs)
    assert v.title == "toy" and v.outcome == "perplexity up, accuracy within noise, ECE up"
    assert "report it up (4.67 -> 4.92): reproduced" in v.text
    assert "(BLEU 25.3 -> 25.8): not detectable" in v.text
    assert "(0.056 -> 0.019): contradicted" in v.text and "not overconfident (fitted T = 0.90" in v.text
    assert v.sentences[-1].startswith("Bottom line at a = 0.1: perplexity up (published: up, reproduced)")
    recs2 = [dict(r, ece=0.05 + r["seed"] / (800 if r["method"] == "smoothing" else 1000)
                  - 0.01 * (r["method"] == "smoothing")) for r in recs]  # fmt: skip
    (v2,) = get_task("sequence").verdict(recs2)
    assert v2.outcome.endswith("ECE down") and "(0.056 -> 0.019): reproduced" in v2.text
    assert "not overconfident" not in v2.text
    assert get_task("sequence").verdict([_seq("smoothing", 0.1, 0)])[0].outcome == "no baseline"


def _gan(method, param, seed, **m):
    base = {"modes": 8.0, "high_quality": 0.5, "energy_distance": 0.05, "d_real": 0.6}
    return {"dataset": "ring", "method": method, "param": param, "seed": seed, **base, **m}


def test_gan_verdict_never_calls_a_zero_spread_difference_over_three_seeds_significant():
    recs = [_gan("none", None, s, modes=6.0, energy_distance=0.05 + s / 100) for s in range(3)]
    recs += [_gan("one_sided", 0.1, s, modes=7.0, energy_distance=0.05 + (s % 2) / 50) for s in range(3)]
    recs += [_gan("two_sided", 0.2, s, modes=7.0, energy_distance=(0.08, 0.05, 0.075)[s]) for s in range(3)]
    (v,) = get_task("gan").verdict(recs)
    assert v.outcome == "no detectable difference"
    assert (
        "the same difference on all 3 seeds, a degenerate zero-width interval; sign test p = 0.25" in v.text
    )
    assert "No difference between any smoothing and no smoothing is detectable here" in v.text
    # the same one-mode gain on 6 seeds passes a sign test (p = 0.031): a difference, said with its test
    recs6 = [_gan("none", None, s, modes=6.0) for s in range(6)] + [
        _gan("one_sided", 0.1, s, modes=7.0) for s in range(6)]  # fmt: skip
    (v6,) = get_task("gan").verdict(recs6)
    assert v6.outcome == "difference: one-sided (0.9/0): modes more" and "sign test p = 0.0312" in v6.text


def test_degenerate_estimates_and_sign_test():
    assert common.degenerate(Estimate(1.0, 0.0, 3)) and not common.degenerate(Estimate(1.0, 0.5, 3))
    assert common.sign_test_p(3) == 0.25 and common.sign_test_p(6) == 0.03125
    assert common.claim_status(Estimate(1.0, 0.0, 3), +1) == "not detectable"
    assert common.claim_status(Estimate(1.0, 0.0, 6), -1) == "contradicted"
    assert common.claim_status(Estimate(1.0, 0.5, 3), +1) == "reproduced"
    assert common.direction(Estimate(0.0, 0.0, 3), up="u", down="d") == "no difference on any of 3 seeds"


def test_the_methods_are_task_local_registry_entries():
    seq, g = get_task("sequence"), get_task("gan")
    assert seq.method("smoothing").config_key == "label_smoothing" and seq.label({"method": "hard"}) == "hard"
    assert g.method("two_sided").label_of(0.2) == "two-sided (0.9/0.1)"
    with pytest.raises(ValueError, match="did you mean 'one_sided'"):
        g.method("one_side")
    assert {m.key for m in sequence.METRICS if m.scaled} == {"nll", "perplexity", "ece", "smece"}
    assert not any(m.scaled for m in gan.METRICS)
