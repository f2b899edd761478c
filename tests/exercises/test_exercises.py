"""The exercises: every notebook runs top to bottom with its worked solutions, and every check rejects the
typical wrong answers it was written to catch (and says something useful about them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelsmooth import exercises
from labelsmooth.exercises import WrongAnswer

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "docs" / "exercises").glob("[0-9]*.py"))
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("name", exercises.names())
def test_solution_is_accepted(name, capsys):
    ex = exercises.EXERCISES[name]
    assert ex.solution is not None, f"{name} has no worked solution"
    exercises.check(name, ex.solution())
    assert capsys.readouterr().out.startswith("Correct: ")


@pytest.mark.parametrize("name", exercises.names())
def test_wrong_answers_are_rejected(name):
    ex = exercises.EXERCISES[name]
    assert len(ex.wrong) >= 2, f"{name} should list typical wrong answers"
    for wrong in ex.wrong:
        with pytest.raises(WrongAnswer, match=r"\(hint: exercises\.hint\(") as info:
            exercises.check(name, wrong)
        assert len(str(info.value)) > 40, f"{name}: the message for {wrong!r} says too little"


def test_diagnoses_name_the_mistake():
    cases = {
        ("smoothed_target", (0.025, 0.025, 0.9, 0.025, 0.025)): "off-target convention",
        ("smoothed_target", (0.02, 0.02, 0.02, 0.92, 0.02)): "index 2",
        ("logit_gap", 4.4998): "drops the 1",
        ("minimal_loss", 0.0): "hard targets",
        ("convention_k2", 0.05): "wrong direction",
    }
    for (name, answer), phrase in cases.items():
        with pytest.raises(WrongAnswer, match=phrase):
            exercises.check(name, list(answer) if isinstance(answer, tuple) else answer)


def test_unanswered_prints_a_reminder_and_a_hint(capsys):
    exercises.check("logit_gap", ...)
    out = capsys.readouterr().out
    assert out.startswith("Not answered yet") and "Hint:" in out


def test_answers_of_the_wrong_kind_are_wrong_answers():
    with pytest.raises(WrongAnswer, match="5 numbers"):
        exercises.check("smoothed_target", [0.2, 0.8])
    with pytest.raises(WrongAnswer, match="as a number"):
        exercises.check("logit_gap", "4.5")


def test_hint_and_name_errors():
    assert exercises.hint("logit_gap", 1)
    with pytest.raises(ValueError, match="did you mean 'logit_gap'"):
        exercises.check("logit_gaps", 1.0)
    with pytest.raises(ValueError, match="`level`"):
        exercises.hint("logit_gap", 7)


def test_every_check_is_used_by_a_notebook():
    text = "\n".join(p.read_text() for p in NOTEBOOKS)
    missing = [n for n in exercises.names() if f'"{n}"' not in text]
    assert not missing, f"checks no notebook uses: {missing}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_solutions(notebook, tmp_path, monkeypatch, capsys):
    """Every code cell, in order, in one namespace (the worked solutions included): what "Run all" does.

    The cells run in this process rather than in a Jupyter kernel (a kernel per notebook costs seconds of
    start-up on a 2-core machine); the documentation build (`mkdocs build`, run by .ci/run) executes the
    same notebooks in a real kernel and fails on any error.
    """
    jupytext = pytest.importorskip("jupytext")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = jupytext.read(notebook)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    learner = [c for c in code if "answer = ..." in c or "...  # your code" in c]
    assert learner, "no cell for the learner's answer"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"notebook_{notebook.stem}"}
    try:
        for i, cell in enumerate(code):
            try:
                exec(compile(cell, f"{notebook.name}[cell {i}]", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message is the point
                raise AssertionError(f"{notebook.name}, code cell {i} failed: {exc!r}\n{cell}") from exc
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    assert "Not answered yet" in out, "the unanswered cells should print a reminder, not fail"
    assert "Correct: " in out
