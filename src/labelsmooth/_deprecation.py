"""Old spellings of renamed keyword arguments, kept working for one release.

A public keyword that is renamed keeps its old spelling for one release: :func:`renamed_keywords`
maps it onto the new one and emits a :class:`DeprecationWarning` that names the new spelling. Passing
both spellings in one call is a :class:`TypeError`, as Python's own "got multiple values for argument".
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keywords(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept ``old=...`` for each ``old="new"`` pair, warn, and call with ``new=...``.

    The wrapped function keeps its name, docstring and signature (``functools.wraps``), so
    ``inspect.signature`` and the documentation show the new spellings only.

    Examples
    --------
    >>> import warnings
    >>> @renamed_keywords(value="label_smoothing")
    ... def half(label_smoothing):
    ...     return label_smoothing / 2
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     half(value=0.2)
    0.1
    >>> print(caught[0].message)
    `value` is deprecated in half(): use `label_smoothing` (the old spelling goes in the next release).
    >>> half(value=0.2, label_smoothing=0.2)
    Traceback (most recent call last):
        ...
    TypeError: Expected `label_smoothing` or its deprecated spelling `value` in half(), got both.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                where = f"{func.__qualname__}()"
                if new in kwargs:
                    raise TypeError(
                        f"Expected `{new}` or its deprecated spelling `{old}` in {where}, got both."
                    )
                warn_renamed(old, new, where=where, stacklevel=3)
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def warn_renamed(old: str, new: str, *, where: str | None = None, stacklevel: int = 3) -> None:
    """Warn that ``old`` is spelled ``new`` now: the one deprecation message of the library.

    A :class:`DeprecationWarning` pointing, by default, at the caller's caller (the code that used the
    old spelling). :func:`renamed_keywords` uses it for keywords; renamed attributes, functions and
    properties call it directly.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_renamed("Method.alpha", "Method.label_smoothing", stacklevel=1)
    >>> print(w[0].category.__name__)
    DeprecationWarning
    >>> print(w[0].message)  # doctest: +NORMALIZE_WHITESPACE
    `Method.alpha` is deprecated: use `Method.label_smoothing`
    (the old spelling goes in the next release).
    """
    place = f" in {where}" if where else ""
    warnings.warn(
        f"`{old}` is deprecated{place}: use `{new}` (the old spelling goes in the next release).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
