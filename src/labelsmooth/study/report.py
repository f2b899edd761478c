"""The study report: one self-contained HTML file (PNG figures inline, base64) and a Markdown summary.

A pure function of the database: :func:`write_report` reads ``study.sqlite`` and nothing else, and writes
the same bytes each time for the same database (no clock, stable ordering, PNGs without metadata).
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelsmooth.study.config import StudyConfig, from_mapping, to_toml
from labelsmooth.study.stats import estimate, group
from labelsmooth.study.store import SCHEMA_VERSION, Store, StoredRun, grid_runs, outside_grid
from labelsmooth.study.tasks import Task, get_task
from labelsmooth.study.tasks.base import Figure, metric_columns


@dataclass
class ReportData:
    """Everything the report shows, computed from the database."""

    config: StudyConfig | None
    library_version: str
    runs: list[StoredRun]
    records: list[dict[str, Any]]
    verdicts: list[Any]
    figures: list[Figure]
    task: Task | None = None
    hidden: int = 0  # stored runs outside the grid (not shown)
    failed: list[StoredRun] = field(default_factory=list)  # runs stored as failed (not shown; named)


def build(folder: str | Path) -> ReportData:
    """Read a study folder's database (read-only) and compute the report's content with its task's
    verdict and figures."""
    with Store.open(folder, create=False, readonly=True) as store:
        task = get_task(store.task())
        runs = grid_runs(store)
        hidden = len(outside_grid(store))
        failed = store.failed_runs()
        cfg_dict = store.config()
        version = store.get_meta("library_version", "?") or "?"
    cfg = from_mapping(cfg_dict) if cfg_dict else None
    records = [task.record(r) for r in runs]
    verdicts = task.verdict(records)
    figs = task.figures(runs, records, verdicts) if runs else []
    return ReportData(cfg, version, runs, records, verdicts, figs, task, hidden, failed)


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


def summary_rows(records: list[dict], task: Task | None = None, where: str = "summary") -> list[list[str]]:
    """The aggregated table: one row per setting and (method, param), mean ± 95% t-interval half-width
    of each metric of the task's table shown ``where`` (``"summary"`` or ``"cli"``)."""
    task = task or get_task("classification")
    table = {m.key: m for m in task.metrics} | {m.scaled_key: m for m in task.metrics if m.scaled}
    rows = []
    flag = any_diverged(records)
    for key, recs in group(records, (*task.setting_axes, "method", "param")).items():
        row = [*task.setting_cells(key[: len(task.setting_axes)]), recs[0].get("label", ""), str(len(recs))]
        for metric, _ in metric_columns(task.metrics, where=where):
            row.append(table[metric].format_estimate(estimate(r.get(metric) for r in recs)))
        if flag:
            k = sum(bool(r.get("diverged")) for r in recs)
            row.append(f"{k} of {len(recs)}" if k else "")
        rows.append(row)
    return rows


def any_diverged(records: list[dict]) -> bool:
    """Whether any run diverged (then the summary tables get a column "diverged": k of n runs)."""
    return any(bool(r.get("diverged")) for r in records)


def summary_header(
    task: Task | None = None, where: str = "summary", records: list[dict] | None = None
) -> list[str]:
    """The header of :func:`summary_rows` (pass the same ``records`` to get its "diverged" column)."""
    task = task or get_task("classification")
    return (
        [*task.setting_header(), "method", "seeds"]
        + [h for _, h in metric_columns(task.metrics, where=where)]
        + (["diverged"] if records is not None and any_diverged(records) else [])
    )


def run_columns(task: Task) -> list[tuple[str, str]]:
    """(key, header) of the all-runs table: the setting axes, label, seed, the summary metrics with every
    stored scaled variant, the wall time, the run hash."""
    cols = [(a, a) for a in task.setting_axes] + [("label", "method"), ("seed", "seed")]
    for m in task.metrics:
        if m.summary:
            cols.append((m.key, m.header))
            if m.scaled:
                cols.append((m.scaled_key, f"{m.header} after T"))
    return [*cols, ("wall_time", "wall time (s)"), ("run_hash", "run")]


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0;cursor:pointer}td:nth-child(-n+3){text-align:left}img{max-width:100%}
.verdict{background:#f7f7fb;border-left:4px solid #557;padding:.5em 1em;margin:.8em 0}
.helps{border-color:#2a7}.hurts{border-color:#c33}.trade-off{border-color:#d90}
figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}
.table{overflow-x:auto;max-width:100%}.stats{font-size:13px;color:#444}pre{overflow-x:auto}
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
    "(same split, same noisy labels, same initial weights). The smoothing factor a (`label_smoothing` in "
    "the Python API, column `alpha` in the tables) in each verdict is chosen by validation NLL (a proper "
    "scoring rule), never by test numbers; below each verdict, how often each a wins when each seed "
    "chooses alone, and every method against hard targets with Holm–Bonferroni adjusted p-values. "
    "Trade-offs are named both ways (accuracy for calibration, calibration for accuracy). Runs that diverged "
    "(non-finite or exploded loss, or the fitted temperature at a bound of its range) are counted in the "
    "column 'diverged' and named in the verdict. The signed gap is mean confidence minus accuracy: "
    "negative means underconfident. Temperature scaling is fitted on the validation split."
)


def _note(rd: ReportData) -> str:
    note = METHOD_NOTE if rd.task is None or rd.task.name == "classification" else rd.task.report_note
    if rd.hidden:
        note += (f" This folder also stores {rd.hidden} runs outside the study's grid (an earlier config); "
                 "they are not shown (`labelsmooth export --all` lists them).")  # fmt: skip
    if rd.failed:
        errors = "; ".join(f"{r.run_hash}: {r.error}" for r in rd.failed)
        note += (f" {len(rd.failed)} runs failed and are not shown (rerunning the study retries them): "
                 f"{errors}.")  # fmt: skip
    return note


def _statistics(v: Any) -> tuple[str, list[str], list[list[str]]]:
    """A verdict's checkable statistics (note, header, rows), when its task gives them."""
    stats = getattr(v, "statistics", None)
    return stats() if callable(stats) else ("", [], [])


def render_html(rd: ReportData) -> str:
    """The report as one self-contained HTML page (no external assets)."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>labelsmooth study</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Label smoothing study</h1>",
        f"<p>{len(rd.runs)} runs; task {html.escape(rd.task.name if rd.task else '?')}; labelsmooth "
        f"{html.escape(rd.library_version)}; database schema {SCHEMA_VERSION}. {html.escape(_note(rd))}</p>",
        "<h2>Verdict</h2>",
    ]
    for v in rd.verdicts:
        parts.append(
            f"<div class='verdict {v.outcome.split()[0]}'><b>{html.escape(v.title)}</b>: "
            f"{html.escape(v.text)}</div>"
        )
        note, header, rows = _statistics(v)
        if rows:
            parts.append(
                f"<p class='stats'>{html.escape(note)}</p>" + _html_table(header, rows, sortable=False)
            )
    parts += [
        "<h2>Summary (mean ± 95% t-interval)</h2>",
        _html_table(summary_header(rd.task, records=rd.records), summary_rows(rd.records, rd.task)),
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
    cols = run_columns(rd.task or get_task("classification"))
    if any_diverged(rd.records):
        cols.insert(len(cols) - 2, ("diverged_reason", "diverged"))
    rows = [[_cell(r.get(c)) for c, _ in cols] for r in rd.records]
    parts.append(_html_table([h for _, h in cols], rows))
    if rd.config is not None:
        parts.append("<h2>Configuration</h2><pre>" + html.escape(to_toml(rd.config)) + "</pre>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(rd: ReportData, figure_dir: str = "figures") -> str:
    """The Markdown summary: verdicts, the aggregated table, links to the figure files."""
    lines = [
        "# Label smoothing study",
        "",
        f"{len(rd.runs)} runs; task {rd.task.name if rd.task else '?'}; labelsmooth {rd.library_version}.",
        "",
        _note(rd),
        "",
        "## Verdict",
        "",
    ]
    for v in rd.verdicts:
        lines += [f"- **{v.title}** ({v.outcome}): {v.text}", ""]
        note, header, rows = _statistics(v)
        if rows:
            lines += [f"  {note}", "", _md_table(header, rows), ""]
    lines += [
        "## Summary (mean ± 95% t-interval)",
        "",
        _md_table(summary_header(rd.task, records=rd.records), summary_rows(rd.records, rd.task)),
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


def write_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """(Re)draw ``report.html``, ``report.md`` and ``figures/*.png`` from the folder's database (read-only)
    into ``output`` (default: the folder itself). Returns the HTML path. A read-only folder without
    ``output`` is refused before any figure is drawn (drawing takes seconds), once the folder is known to
    hold a study."""
    if output is None and not os.access(folder, os.W_OK):
        Store.open(folder, create=False, readonly=True).close()  # not a study: that error comes first
        raise PermissionError(
            f"Cannot write the report into {folder}: the folder is read-only. Write it elsewhere with "
            f"`labelsmooth report {folder} -o OTHER_DIR`."
        )
    rd = build(folder)
    folder = Path(output) if output is not None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig_dir = folder / "figures"
    fig_dir.mkdir(exist_ok=True)
    names = {f"{f.name}.png" for f in rd.figures}
    for stale in fig_dir.glob("*.png"):  # figures of an earlier grid of this folder
        if stale.name not in names:
            stale.unlink()
    for f in rd.figures:
        (fig_dir / f"{f.name}.png").write_bytes(f.png)
    (folder / "report.md").write_text(render_markdown(rd), encoding="utf-8")
    path = folder / "report.html"
    path.write_text(render_html(rd), encoding="utf-8")
    return path
