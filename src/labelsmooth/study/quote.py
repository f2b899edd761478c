"""The verdicts that README.md and docs/study.md quote, generated from a study's database, never typed.

``python -m labelsmooth.study.quote FOLDER`` reads a finished study (the default one:
``labelsmooth study --out FOLDER``), rewrites every block between ``<!-- study-verdict:begin -->`` and
``<!-- study-verdict:end -->`` in README.md and docs/study.md with :func:`quote` of its verdicts, and saves
the records the verdict reads in ``tests/fixtures/default_study_records.json``. The test suite checks that
the quoted block is :func:`quote` of those records, and that rerunning one of their runs gives the stored
numbers, so a quote cannot drift from what the code prints.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- study-verdict:begin -->", "<!-- study-verdict:end -->"
FILES = ("README.md", "docs/study.md")
FIXTURE = "tests/fixtures/default_study_records.json"
KEYS = (
    "dataset", "noise_kind", "noise_rate", "method", "param", "label", "alpha", "seed", "run_hash",
    "accuracy", "nll", "ece", "calibration_gap", "temperature", "ts_calibration_gap", "ts_ece", "memorised",
    "val_accuracy", "val_nll", "diverged", "diverged_reason",
)  # fmt: skip
"""The record keys the verdict reads (the fixture keeps only these)."""


def quote(verdicts: list[Any], width: int = 110) -> str:
    """The quoted block: per setting, its title and outcome, the first sentence (the chosen a and the
    accuracy), the NLL sentence, and the verdict sentence, as a Markdown block quote."""
    paras = []
    for v in verdicts:
        s = v.sentences
        body = " ".join([*s[:2], "…", s[-1]]) if len(s) > 3 else " ".join(s)
        text = f"**{v.title}** ({v.outcome}): {body}"
        paras.append("\n".join("> " + line for line in textwrap.wrap(text, width - 2)))
    return "\n>\n".join(paras)


def slim(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with only the keys the verdict reads."""
    return [{k: r.get(k) for k in KEYS} for r in records]


def replace_block(text: str, block: str) -> str:
    """``text`` with every marked block replaced by ``block`` (markers kept)."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(expected_markers())
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text)


def expected_markers() -> str:
    return f"Expected the markers {BEGIN} ... {END} in the file."


def marked_block(text: str) -> str:
    """The first marked block of ``text`` (without the markers)."""
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if m is None:
        raise ValueError(expected_markers())
    return m.group(1)


def main(argv: list[str] | None = None) -> int:
    from labelsmooth.study.runner import load_results
    from labelsmooth.study.verdict import judge

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m labelsmooth.study.quote FOLDER (a finished default study)", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[3]
    records = slim(list(load_results(args[0])))
    block = quote(judge(records))
    for name in FILES:
        path = root / name
        path.write_text(replace_block(path.read_text(encoding="utf-8"), block), encoding="utf-8")
    (root / FIXTURE).write_text(json.dumps(records, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
