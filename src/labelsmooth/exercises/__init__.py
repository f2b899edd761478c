"""Checks for the chapter's exercises (``docs/exercises/``): is an answer right, and if not, what is off.

Each exercise notebook asks a question, leaves a cell for the learner's answer and then calls
:func:`check`::

    >>> from labelsmooth import exercises
    >>> exercises.check("smoothed_target", [0.02, 0.02, 0.92, 0.02, 0.02])
    Correct: p = (1 - a) onehot(y) + a/K puts 1 - a + a/K = 0.92 on the true class and a/K = 0.02
    on the others.

A wrong answer raises :class:`WrongAnswer` (an ``AssertionError``) whose message says what is off — the
convention mixed up, an index off by one, a sign flipped — and points at a hint; an unanswered cell
(``answer = ...``) prints a reminder instead of failing, so a notebook runs top to bottom before it is
solved::

    >>> exercises.check("smoothed_target", [0.025, 0.025, 0.9, 0.025, 0.025])
    Traceback (most recent call last):
    ...
    labelsmooth.exercises.WrongAnswer: This is the off-target convention (Megatron, NeMo, OpenNMT): ...

:func:`hint` gives the hints one at a time; :func:`names` lists every check. The reference answers are
computed with labelsmooth itself (:mod:`labelsmooth.targets`, :mod:`labelsmooth.theory`,
:mod:`labelsmooth.metrics`), so a check can never disagree with the library it teaches.
"""

from __future__ import annotations

from . import _applications, _practice, _principles  # noqa: F401  (register the checks)
from ._practice import Split, digits, train_mlp
from ._registry import EXERCISES, Exercise, WrongAnswer, check, hint, names

WrongAnswer.__module__ = __name__  # shown as labelsmooth.exercises.WrongAnswer in tracebacks

__all__ = ["EXERCISES", "Exercise", "Split", "WrongAnswer", "check", "digits", "hint", "names", "train_mlp"]
