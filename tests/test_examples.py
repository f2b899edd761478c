"""Every script in examples/ runs to completion (a smoke test; each is written to finish in seconds).

Each runs as ``__main__`` (``runpy``) in a process of its own, in a temporary working directory with
``MPLBACKEND=Agg``, forked by the study engine's forkserver (:func:`study_fixtures.start_python`), which has
torch imported already: ``python script.py`` would spend seconds importing it again for each script."""

from pathlib import Path

import pytest

from study_fixtures import start_python

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    code = f"""
import os, runpy, sys
os.chdir({str(tmp_path)!r})
os.environ["MPLBACKEND"] = "Agg"
sys.argv = [{str(script)!r}]
for fd, path in ((1, {str(stdout)!r}), (2, {str(stderr)!r})):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
runpy.run_path({str(script)!r}, run_name="__main__")
"""
    proc = start_python(code)
    proc.join(300)
    assert proc.exitcode == 0, stderr.read_text()[-3000:] if stderr.exists() else proc.exitcode
    assert stdout.read_text().strip(), f"{script.name} printed nothing"
