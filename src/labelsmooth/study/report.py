"""The study report: one self-contained HTML file (PNG figures inline, base64) and a Markdown summary.

A pure function of the database: :func:`write_report` reads ``study.sqlite`` and nothing else, and writes
the same bytes each time for the same database (no clock, stable ordering, PNGs without metadata).
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelsmooth.study import figures
from labelsmooth.study.config import StudyConfig, from_mapping, to_toml
from labelsmooth.study.results import flatten
from labelsmooth.study.stats import estimate, group
from labelsmooth.study.store import SCHEMA_VERSION, Store, StoredRun, grid_runs
from labelsmooth.study.verdict import SETTING_KEYS, SettingVerdict, judge, noise_phrase

SUMMARY_COLUMNS = (
    ("accuracy", "accuracy", 1),
    ("nll", "NLL", 1),
    ("ece", "ECE", 1),
    ("smece", "smECE", 1),
    ("calibration_gap", "gap", 1),
    ("temperature", "T", 1),
    ("ts_ece", "ECE after T", 1),
    ("ts_calibration_gap", "gap after T", 1),
    ("train_logit_gap", "train logit gap", 1),
    ("optimal_logit_gap", "optimal gap", 1),
    ("memorised", "memorised", 1),
)
RUN_COLUMNS = (
    "dataset", "noise_rate", "label", "seed", "accuracy", "nll", "brier", "ece", "smece", "calibration_gap",
    "temperature", "ts_accuracy", "ts_nll", "ts_ece", "ts_calibration_gap", "train_logit_gap",
    "test_logit_gap",
    "optimal_logit_gap", "memorised", "train_accuracy", "val_accuracy", "wall_time", "run_hash",
)  # fmt: skip


@dataclass
class Figure:
    name: str
    caption: str
    png: bytes


@dataclass
class ReportData:
    """Everything the report shows, computed from the database."""

    config: StudyConfig | None
    library_version: str
    runs: list[StoredRun]
    records: list[dict[str, Any]]
    verdicts: list[SettingVerdict]
    figures: list[Figure]


def build(folder: str | Path) -> ReportData:
    """Read a study folder's database and compute the report's content."""
    with Store.open(folder, create=False) as store:
        runs = grid_runs(store)
        cfg_dict = store.config()
        version = store.get_meta("library_version", "?") or "?"
    cfg = from_mapping(cfg_dict) if cfg_dict else None
    records = [flatten(r) for r in runs]
    verdicts = judge(records)
    return ReportData(cfg, version, runs, records, verdicts, _figures(runs, records, verdicts))


def _figures(runs: list[StoredRun], records: list[dict], verdicts: list[SettingVerdict]) -> list[Figure]:
    """Every figure of the report: metrics against a per dataset, then four figures per setting."""
    if not runs:
        return []
    out = [
        Figure(
            f"metrics_vs_alpha_{_slug(dataset)}",
            f"{dataset}: accuracy, NLL, ECE and the signed gap against a (a = 0: hard targets; a < 0: "
            "negative smoothing), one curve per noise level; error bars: 95% t-intervals over seeds; "
            "dashed: after temperature scaling.",
            figures.metrics_vs_alpha(records, dataset),
        )
        for dataset in dict.fromkeys(r["dataset"] for r in records)
    ]
    by_hash = {r.run_hash: r for r in runs}
    for v in verdicts:
        s = _SettingRuns.of(v, records, by_hash)
        for make in (_reliability_figure, _logit_gap_figure, _projection_figure, _curves_figure):
            fig = make(s)
            if fig is not None:
                out.append(fig)
    return out


@dataclass
class _SettingRuns:
    """The runs of one setting, arranged for its figures: hard targets and the verdict's chosen a."""

    slug: str
    where: str
    by_label: dict[str, list[dict]]
    by_hash: dict[str, StoredRun]
    best_label: str | None
    first_seed: int | None

    @classmethod
    def of(cls, v: SettingVerdict, records: list[dict], by_hash: dict[str, StoredRun]) -> _SettingRuns:
        key = (v.dataset, v.noise_kind, v.noise_rate)
        recs = [r for r in records if (r["dataset"], r["noise_kind"], r["noise_rate"]) == key]
        return cls(
            slug=_slug(f"{v.dataset}_{v.noise_kind}_{v.noise_rate:g}"),
            where=f"{v.dataset}, {noise_phrase(v.noise_kind, v.noise_rate)}",
            by_label={k[0]: rs for k, rs in group(recs, ("label",)).items()},
            by_hash=by_hash,
            best_label=f"ls a={v.alpha:g}" if v.alpha is not None else None,
            first_seed=min((r["seed"] for r in recs), default=None),
        )

    def runs(self, label: str | None) -> list[StoredRun]:
        return [self.by_hash[r["run_hash"]] for r in self.by_label.get(label, [])] if label else []

    def first(self, label: str | None) -> StoredRun | None:
        return next((r for r in self.runs(label) if r.spec["seed"] == self.first_seed), None)

    def pair(self) -> list[tuple[str, StoredRun]]:
        """(label, first-seed run) for hard targets and the chosen a, where present."""
        out = []
        for label in ("hard (a=0)", self.best_label):
            run = self.first(label)
            if label and run is not None:
                out.append((label, run))
        return out


def _reliability_figure(s: _SettingRuns) -> Figure | None:
    panels = []
    best = s.runs(s.best_label)
    for label, runs, key in (("hard (a=0)", s.runs("hard (a=0)"), "reliability"),
                             (s.best_label, best, "reliability"),
                             (f"{s.best_label}, after T", best, "reliability_ts")):  # fmt: skip
        bins = [r.arrays[key] for r in runs if r.arrays.get(key)]
        if bins:
            panels.append((label, bins))
    if not panels:
        return None
    return Figure(
        f"reliability_{s.slug}",
        f"{s.where}: reliability diagrams of hard targets, the chosen a, and the chosen a after temperature "
        "scaling (test split, bins pooled over seeds). Points below the diagonal: overconfident; above: "
        "underconfident.",
        figures.reliability(panels, s.where),
    )


def _logit_gap_figure(s: _SettingRuns) -> Figure | None:
    panels = []
    for label, recs in s.by_label.items():
        run = s.first(label) if recs[0]["method"] in ("hard", "ls") else None
        if run is not None and run.arrays.get("gap_hist_train"):
            k = int(run.metrics.get("num_classes") or 0)
            panels.append(
                (
                    label,
                    run.arrays["gap_hist_train"],
                    recs[0]["alpha"],
                    run.metrics.get("optimal_logit_gap"),
                    k,
                )
            )
    if not panels:
        return None
    return Figure(
        f"logit_gap_{s.slug}",
        f"{s.where}: training logit gaps (seed {s.first_seed}); solid lines mark log(1 + K(1 - a)/a), the "
        "gap at the optimum of the smoothed loss, dashed lines the mean gap. Hard targets have no finite "
        "optimum.",
        figures.logit_gaps(panels, s.where),
    )


def _projection_figure(s: _SettingRuns) -> Figure | None:
    panels = [(label, run.arrays["projection"]) for label, run in s.pair() if run.arrays.get("projection")]
    if not panels:
        return None
    return Figure(
        f"projection_{s.slug}",
        f"{s.where}: penultimate-layer activations of three classes (test split, seed {s.first_seed}) "
        "projected on the plane through their last-layer templates (Müller et al., 2019). Smoothing pulls "
        "each class into a tighter cluster at equal distance from the others.",
        figures.projection(panels, s.where),
    )


def _curves_figure(s: _SettingRuns) -> Figure | None:
    panels = [(label, run.curves) for label, run in s.pair() if run.curves.get("epoch")]
    if not panels:
        return None
    return Figure(
        f"curves_{s.slug}",
        f"{s.where}: per-epoch validation NLL and accuracy (seed {s.first_seed}).",
        figures.curves(panels, s.where),
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _cell(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.{digits}g}"
    return str(v)


def summary_rows(records: list[dict]) -> list[list[str]]:
    """The aggregated table: one row per setting and method, mean ± 95% t-interval half-width."""
    rows = []
    for key, recs in group(records, (*SETTING_KEYS, "label")).items():
        ds, kind, rate, label = key
        row = [ds, noise_phrase(kind, rate), label, str(len(recs))]
        for metric, _, _ in SUMMARY_COLUMNS:
            e = estimate(r.get(metric) for r in recs)
            row.append(e.fmt(digits=3))
        rows.append(row)
    return rows


SUMMARY_HEADER = ["dataset", "noise", "method", "seeds"] + [h for _, h, _ in SUMMARY_COLUMNS]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0;cursor:pointer}td:nth-child(-n+3){text-align:left}img{max-width:100%}
.verdict{background:#f7f7fb;border-left:4px solid #557;padding:.5em 1em;margin:.8em 0}
.helps{border-color:#2a7}.hurts{border-color:#c33}.trade-off{border-color:#d90}
figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}
.table{overflow-x:auto;max-width:100%}pre{overflow-x:auto}
"""
_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var i=th.cellIndex,tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';
th.dataset.asc=asc?'1':'0';
rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;
var fx=parseFloat(x),fy=parseFloat(y);var c=(!isNaN(fx)&&!isNaN(fy))?fx-fy:x.localeCompare(y);
return asc?c:-c;});rows.forEach(function(r){tb.appendChild(r);});});});
"""


def _html_table(header: list[str], rows: list[list[str]], sortable: bool = True) -> str:
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    # wide tables scroll inside their own box, never the page
    return f"<div class='table'><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


METHOD_NOTE = (
    "Intervals are 95% Student-t intervals over seeds; comparisons with hard targets are paired by seed "
    "(same "
    "split, same noisy labels, same initial weights). The smoothing factor in each verdict is chosen by "
    "validation accuracy, never by test numbers. The signed gap is mean confidence minus accuracy: negative "
    "means underconfident. Temperature scaling is fitted on the validation split."
)


def render_html(rd: ReportData) -> str:
    """The report as one self-contained HTML page (no external assets)."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>labelsmooth study</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Label smoothing study</h1>",
        f"<p>{len(rd.runs)} runs; labelsmooth {html.escape(rd.library_version)}; database schema "
        f"{SCHEMA_VERSION}. {html.escape(METHOD_NOTE)}</p>",
        "<h2>Verdict</h2>",
    ]
    for v in rd.verdicts:
        parts.append(
            f"<div class='verdict {v.outcome.split()[0]}'><b>{html.escape(v.title)}</b>: "
            f"{html.escape(v.text)}</div>"
        )
    parts += [
        "<h2>Summary (mean ± 95% t-interval)</h2>",
        _html_table(SUMMARY_HEADER, summary_rows(rd.records)),
    ]
    parts.append("<h2>Figures</h2>")
    for f in rd.figures:
        b64 = base64.b64encode(f.png).decode()
        parts.append(
            f"<figure id='{f.name}'><img alt='{html.escape(f.caption or f.name)}' "
            f"src='data:image/png;base64,{b64}'>"
            f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        )
    parts.append("<h2>All runs (click a header to sort)</h2>")
    rows = [[_cell(r.get(c)) for c in RUN_COLUMNS] for r in rd.records]
    parts.append(_html_table(list(RUN_COLUMNS), rows))
    if rd.config is not None:
        parts.append("<h2>Configuration</h2><pre>" + html.escape(to_toml(rd.config)) + "</pre>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(rd: ReportData, figure_dir: str = "figures") -> str:
    """The Markdown summary: verdicts, the aggregated table, links to the figure files."""
    lines = [
        "# Label smoothing study",
        "",
        f"{len(rd.runs)} runs; labelsmooth {rd.library_version}.",
        "",
        METHOD_NOTE,
        "",
        "## Verdict",
        "",
    ]
    for v in rd.verdicts:
        lines += [f"- **{v.title}** ({v.outcome}): {v.text}", ""]
    lines += [
        "## Summary (mean ± 95% t-interval)",
        "",
        _md_table(SUMMARY_HEADER, summary_rows(rd.records)),
        "",
        "## Figures",
        "",
    ]
    for f in rd.figures:
        lines += [f"![{f.name}]({figure_dir}/{f.name}.png)", "", f"*{f.caption}*", ""]
    lines += [
        "The sortable table of every run is in `report.html`; `labelsmooth export` writes it as CSV or JSON.",
        "",
    ]
    return "\n".join(lines)


def write_report(folder: str | Path) -> Path:
    """(Re)draw ``report.html``, ``report.md`` and ``figures/*.png`` from the folder's database. Returns the
    HTML path."""
    folder = Path(folder)
    rd = build(folder)
    fig_dir = folder / "figures"
    fig_dir.mkdir(exist_ok=True)
    for f in rd.figures:
        (fig_dir / f"{f.name}.png").write_bytes(f.png)
    (folder / "report.md").write_text(render_markdown(rd), encoding="utf-8")
    path = folder / "report.html"
    path.write_text(render_html(rd), encoding="utf-8")
    return path


def verdicts_json(rd: ReportData) -> str:
    """The verdicts as JSON (for scripts)."""
    return json.dumps(
        [{"setting": v.title, "outcome": v.outcome, "alpha": v.alpha, "text": v.text} for v in rd.verdicts],
        indent=2,
    )
