"""The registry of exercise checks, and the three functions a notebook calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from labelsmooth._validation import check_number, expected, is_number


class WrongAnswer(AssertionError):
    """An exercise's answer is wrong; the message says what is off."""


class NotAnswered(Exception):
    """Raised by a check when the answer is still the notebook's placeholder (a function returning None)."""


@dataclass(frozen=True)
class Exercise:
    """One checkable question.

    ``verify(answer)`` returns the confirmation shown for a right answer and raises :class:`WrongAnswer`
    (with a diagnosis) for a wrong one. ``wrong`` lists typical wrong answers, which the test suite feeds
    to ``verify`` to make sure each is rejected.
    """

    name: str
    question: str
    verify: Callable[[Any], str]
    hints: tuple[str, ...]
    wrong: tuple[Any, ...] = field(default=())
    solution: Callable[[], Any] | None = None


EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.name in EXERCISES:
        raise ValueError(expected("exercise.name", "to be new", exercise.name))
    EXERCISES[exercise.name] = exercise
    return exercise


def names() -> list[str]:
    """Every exercise check, in the order of the notebooks."""
    return list(EXERCISES)


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        import difflib

        close = difflib.get_close_matches(str(name), EXERCISES, n=1)
        extra = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(expected("name", f"to name an exercise{extra}; see exercises.names()", name))
    return EXERCISES[name]


def check(name: str, answer: Any) -> None:
    """Check an answer: print a confirmation, or raise :class:`WrongAnswer` saying what is off.

    ``answer = ...`` (the notebook's placeholder), or a function whose body is still ``...`` (it returns
    None), prints a reminder and the first hint instead of failing.
    """
    ex = _get(name)
    if answer is Ellipsis:
        print(f"Not answered yet: {ex.question}\nHint: {ex.hints[0]}")
        return
    try:
        message = ex.verify(answer)
    except NotAnswered:
        print(f"Not answered yet: {ex.question}\nHint: {ex.hints[0]}")
        return
    except WrongAnswer as exc:
        raise WrongAnswer(f"{exc} (hint: exercises.hint({name!r}))") from None
    print(f"Correct: {message}")


def hint(name: str, level: int = 0) -> str:
    """The ``level``-th hint of an exercise (0 = the gentlest; the last one nearly gives it away)."""
    ex = _get(name)
    last = len(ex.hints) - 1
    return ex.hints[check_number("level", level, lo=0, hi=last, integer=True, what=f"an int in [0, {last}]")]


# ---------------------------------------------------------------- helpers for the checks
def as_floats(answer: Any, n: int | None, what: str) -> list[float]:
    """An answer given as a list, tuple, array or tensor of numbers, as floats (WrongAnswer otherwise)."""
    try:
        import torch

        if isinstance(answer, torch.Tensor):
            answer = answer.detach().double().flatten().tolist()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if hasattr(answer, "tolist") and not isinstance(answer, (list, tuple)):
        answer = answer.tolist()
    if is_number(answer):
        answer = [answer]
    if not isinstance(answer, Sequence) or isinstance(answer, str):
        raise WrongAnswer(f"Expected {what} as a list of numbers, got {type(answer).__name__}.")
    flat: list[float] = []
    for v in answer:
        if not is_number(v):
            raise WrongAnswer(f"Expected {what} as a flat list of numbers, got an element {v!r}.")
        flat.append(float(v))
    if n is not None and len(flat) != n:
        raise WrongAnswer(f"Expected {what} with {n} numbers, got {len(flat)}.")
    return flat


def as_float(answer: Any, what: str) -> float:
    try:
        import torch

        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(answer, "item") and not isinstance(answer, (int, float)):
        answer = answer.item()
    if not is_number(answer):
        raise WrongAnswer(f"Expected {what} as a number, got {type(answer).__name__}.")
    return float(answer)


def diagnose(got: float, slips: Sequence[tuple[float, str]], otherwise: str, *, tol: float) -> NoReturn:
    """Raise :class:`WrongAnswer` with the message of the first known slip whose value is within ``tol`` of
    ``got``, else with ``otherwise``: the diagnosis of a wrong number answer."""
    for value, message in slips:
        if abs(got - value) <= tol:
            raise WrongAnswer(message)
    raise WrongAnswer(otherwise)


def close(a: Sequence[float], b: Sequence[float], tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))
