"""Issue 10 §4/§5: divergence defined, stored and shown; the report's statistics next to each verdict."""

from __future__ import annotations

import math

from test_study_verdict import _records

from labelsmooth.cli import summary_table
from labelsmooth.study.figures import needs_log_scale
from labelsmooth.study.report import ReportData, render_html, render_markdown
from labelsmooth.study.tasks import get_task
from labelsmooth.study.train import divergence
from labelsmooth.study.verdict import judge


def test_divergence_is_non_finite_exploded_or_temperature_at_bound():
    ok = {"diverged": False, "nll": 0.3, "num_classes": 10, "temperature_at_bound": None}
    assert divergence(ok) is None
    # the default grid's negative smoothing: NLL 606 and T at its upper bound, stored as diverged: False
    assert divergence({**ok, "nll": 606.0, "temperature_at_bound": "upper"}) == (
        "test NLL 606 > 10 log K; temperature at its upper bound"
    )
    assert divergence({**ok, "temperature_at_bound": "lower"}) == "temperature at its lower bound"
    assert divergence({**ok, "nll": 10 * math.log(10) + 0.1}).startswith("test NLL")
    assert divergence({**ok, "diverged": True}) == "non-finite loss or logits"
    assert divergence({"diverged": False, "nll": None, "num_classes": 3}) == "non-finite loss or logits"


class _Run:
    def __init__(self, metrics):
        self.spec = {"dataset": "toy", "noise_kind": "symmetric", "noise_rate": 0.0, "method": "negative",
                     "param": -0.1, "seed": 0}  # fmt: skip
        self.metrics = metrics
        self.run_hash, self.library_version = "abc", "0.1.0"


def test_runs_stored_before_the_definition_are_judged_by_it():
    task = get_task("classification")
    old = task.record(
        _Run({"diverged": False, "nll": 606.0, "num_classes": 10, "temperature_at_bound": "upper"})
    )
    assert old["diverged"] is True and "upper bound" in old["diverged_reason"]
    new = task.record(_Run({"diverged": False, "diverged_reason": None, "nll": 0.3, "num_classes": 10}))
    assert new["diverged"] is False


def _diverged_records():
    recs = _records(0.03, -0.1)
    for r in recs[1:6:2]:  # three of the five a = 0.1 runs
        r["diverged"], r["diverged_reason"] = True, "temperature at its upper bound"
    return recs


def test_cli_table_and_report_count_diverged_runs():
    task = get_task("classification")
    table = summary_table(_diverged_records(), task)
    header, _, hard, ls = table.splitlines()[:4]
    assert header.rstrip().endswith("diverged") and ls.rstrip().endswith("3 of 5") and "of" not in hard
    assert "diverged" not in summary_table(_records(0.03, -0.1), task).splitlines()[0]
    recs = _diverged_records()
    rd = ReportData(None, "0.1.0", [], recs, judge(recs), [], task)
    md, page = render_markdown(rd), render_html(rd)
    assert "Diverged runs: ls a=0.1 3 of 5" in md
    assert "<th>diverged</th>" in page and "temperature at its upper bound" in page  # all-runs table


def test_report_shows_the_a_curve_selection_and_correction_next_to_the_verdict():
    recs = _records(0.03, -0.1)
    rd = ReportData(None, "0.1.0", [], recs, judge(recs), [], get_task("classification"))
    md = render_markdown(rd)
    assert "each seed choosing alone picks a = 0.1 in 5 (of 5 seeds; stable" in md
    assert "Holm–Bonferroni adjustment over the family of 2 comparisons" in md
    assert "| ls a=0.1 (chosen) | +3.0 ± 0.4 |" in md
    page = render_html(rd)
    assert "<p class='stats'>Choice of a" in page and "<th>Holm</th>" in page


def test_figure_scale_survives_a_diverged_method():
    assert needs_log_scale([0.3, 0.25, 606.0]) and not needs_log_scale([0.3, 0.25, 0.6])
    assert not needs_log_scale([-0.2, 0.1, 40.0]) and not needs_log_scale([math.nan])


def test_report_tables_scroll_in_their_box_and_images_carry_their_caption():
    from labelsmooth.study.tasks.base import Figure

    recs = _records(0.03, -0.1)
    fig = Figure("f", "toy: a caption that describes the figure", b"\x89PNG")
    page = render_html(ReportData(None, "0.1.0", [], recs, judge(recs), [fig], get_task("classification")))
    assert page.count("<div class='table'><table") == page.count("<table")  # every table in a scroll box
    assert ".table{overflow-x:auto;max-width:100%}" in page
    assert "<img alt='toy: a caption that describes the figure'" in page


def test_docs_quote_the_measured_smece_relplot_difference():
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parents[2] / "docs" / "calibration.md").read_text().split())
    assert "agree within 3·10⁻⁴ (largest at N = 200: 2.9·10⁻⁴" in text and "within 2.5·10⁻⁴" not in text
