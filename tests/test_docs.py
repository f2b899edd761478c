"""The tutorials run: every ```python block in docs/*.md executes, in order, in one namespace per page.

A block whose first line is ``# doc: no-run`` is shown but not executed (for code that needs a GPU or a
download). Examples in ``examples/`` are run by the tests of the module they illustrate.
"""

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _pages():
    return sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_doc_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = [b for b in BLOCK.findall(page.read_text()) if not b.lstrip().startswith("# doc: no-run")]
    if not blocks:
        pytest.skip(f"{page.name} has no runnable python block")
    namespace = {"__name__": f"doc_{page.stem}"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.name}, code block {i} failed: {exc!r}\n{block}") from exc
    assert os.getcwd() == str(tmp_path)
