"""Every script in examples/ runs to completion (a smoke test; each is written to finish in seconds).

Each runs as ``__main__`` (``runpy``) in a process of its own, in a temporary working directory with
``MPLBACKEND=Agg``, forked by the study engine's forkserver (:func:`study_fixtures.run_python`), which has
torch imported already: ``python script.py`` would spend seconds importing it again for each script."""

from pathlib import Path

import pytest

from study_fixtures import run_python

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    code = f"""
import os, runpy, sys
os.chdir({str(tmp_path)!r})
os.environ["MPLBACKEND"] = "Agg"
sys.argv = [{str(script)!r}]
runpy.run_path({str(script)!r}, run_name="__main__")
"""
    exitcode, stdout, stderr = run_python(code, tmp_path)
    assert exitcode == 0, stderr[-3000:] or exitcode
    assert stdout.strip(), f"{script.name} printed nothing"
