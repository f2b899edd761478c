"""The method registry of the study: name -> :class:`Method` (label, parameter, objective factory).

Adding a method is one :func:`register_method` call. The report and the verdict look runs up by
``(method, param)``, never by the display label. A task may keep its own registry (``Task.methods``),
looked up before the shared :data:`METHODS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass
from typing import Any

from labelsmooth._deprecation import warn_renamed
from labelsmooth._validation import expected


def _no_smoothing_axis(param: Any) -> float | None:
    """The default of :attr:`Method.label_smoothing`: the method is not on the smoothing axis."""
    return None


@dataclass(frozen=True)
class Method:
    """One training method of the registry: adding a method is one :func:`register_method` call.

    ``name`` is stored in each run's axes; ``param_name`` names its parameter (``"a"``, ``"beta"``,
    ``"gamma"``; None for a method without one); ``label(param)`` is the display label (never used to look
    runs up: the report and verdict look up ``(method, param)``); ``objective(param, **context)`` builds
    the training loss (the task decides the context; classification passes ``train_target`` and
    ``num_classes``); ``label_smoothing(param)`` is the method's position on the uniform-smoothing axis,
    the factor a stored in the records as ``alpha`` (None when it has none; the old keyword ``alpha=`` and
    attribute ``.alpha`` still work, with a DeprecationWarning, for one release). ``config_key`` is the
    key of the task's method section listing its parameter values (classification:
    ``methods.<config_key>``), ``default`` those values, ``check(dotted, param)`` raises for a bad value.
    """

    name: str
    param_name: str | None
    objective: Callable[..., Any]
    label: Callable[[Any], str] | None = None
    label_smoothing: Callable[[Any], float | None] = _no_smoothing_axis
    config_key: str | None = None
    default: tuple = ()
    check: Callable[[str, Any], None] | None = None
    description: str = ""
    coerce: Callable[[str, Any], Any] | None = None
    """Parses one raw config value (a TOML list or table) into the method's canonical, hashable parameter
    (raising for a bad one); None for a plain number or string, checked by ``check``."""
    alpha: InitVar[Callable[[Any], float | None] | None] = None
    """Deprecated spelling of ``label_smoothing`` (one release)."""

    def __post_init__(self, alpha: Callable[[Any], float | None] | None) -> None:
        if alpha is not None:
            warn_renamed("Method(alpha=...)", "Method(label_smoothing=...)", stacklevel=4)
            object.__setattr__(self, "label_smoothing", alpha)

    def label_of(self, param: Any) -> str:
        """The display label of this method with ``param`` (``"ls a=0.1"``)."""
        if self.label is not None:
            return self.label(param)
        if param is None or self.param_name is None:
            return self.name
        return (
            f"{self.name} {self.param_name}={param:g}" if isinstance(param, float) else f"{self.name} {param}"
        )


def _method_alpha(self: Method) -> Callable[[Any], float | None]:
    """Deprecated spelling of :attr:`Method.label_smoothing` (one release)."""
    warn_renamed("Method.alpha", "Method.label_smoothing")
    return self.label_smoothing


# The InitVar's class attribute (its default) would shadow a property; the dataclass has read it already.
Method.alpha = property(_method_alpha)  # type: ignore[attr-defined]


class FrozenParam(dict):
    """A method parameter that is a table (a schedule): a dict that hashes, so runs can be grouped by
    ``(method, param)``; JSON-ready like any dict. Do not mutate it."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, freeze_param(v)) for k, v in self.items())))


def freeze_param(param: Any) -> Any:
    """A parameter as read back from JSON, made hashable: lists become tuples, tables
    :class:`FrozenParam` (recursively); numbers, strings and None unchanged.

    >>> freeze_param([0.0, 0.1]), hash(freeze_param({"final": -0.1})) == hash(freeze_param({"final": -0.1}))
    ((0.0, 0.1), True)
    """
    if isinstance(param, Mapping):
        return FrozenParam({str(k): freeze_param(v) for k, v in param.items()})
    if isinstance(param, (list, tuple)):
        return tuple(freeze_param(v) for v in param)
    return param


METHODS: dict[str, Method] = {}
"""The shared method registry, name -> :class:`Method` (tasks may add their own in ``Task.methods``)."""


def register_method(method: Method, registry: dict[str, Method] | None = None) -> Method:
    """Add a method to ``registry`` (default: the shared :data:`METHODS`); returns it. A name already
    registered raises ValueError."""
    reg = METHODS if registry is None else registry
    if method.name in reg and reg[method.name] is not method:
        raise ValueError(expected("method.name", "to be a name not yet registered", method.name))
    reg[method.name] = method
    return method


def get_method(name: str, registry: Mapping[str, Method] | None = None) -> Method:
    """A method by name from ``registry`` (then the shared one); unknown names raise ValueError with the
    closest known name."""
    for reg in (registry or {}, METHODS):
        if name in reg:
            return reg[name]
    known = sorted({*(registry or {}), *METHODS})
    hint = difflib.get_close_matches(name, known, n=1)
    raise ValueError(
        expected("method", "to be a registered method" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                 + "; known: " + ", ".join(known), name)
    )  # fmt: skip
