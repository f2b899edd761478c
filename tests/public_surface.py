"""The public surface of labelsmooth: every public name and its signature, as data.

``tests/test_public_surface.py`` compares :func:`collect` with the pinned copy in
``tests/fixtures/public_surface.json``, so that any change to a public name or signature is deliberate
(optax pins its API the same way). After an intended change, regenerate the pinned copy and review its
diff like code::

    python tests/public_surface.py --update

A module's public names are its ``__all__``. For a function the surface is its signature; for a class,
its constructor's signature, its public methods' and properties' signatures, and its bases; for anything
else, its type. Default values are written as ``repr`` with memory addresses removed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

#: The modules whose ``__all__`` is public: the top level, each public subpackage, and the public modules.
PUBLIC_MODULES = (
    "labelsmooth",
    "labelsmooth.calibration",
    "labelsmooth.distributed",
    "labelsmooth.exercises",
    "labelsmooth.integrations.transformers",
    "labelsmooth.kernels",
    "labelsmooth.losses",
    "labelsmooth.metrics",
    "labelsmooth.plots",
    "labelsmooth.privacy",
    "labelsmooth.study",
    "labelsmooth.study.tasks",
    "labelsmooth.targets",
    "labelsmooth.theory",
)

PINNED = Path(__file__).parent / "fixtures" / "public_surface.json"

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _signature(obj: Any) -> str:
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):  # builtins and some C types have no signature
        return "(...)"
    return _ADDRESS.sub("", text)


def _class_surface(cls: type) -> dict[str, Any]:
    members: dict[str, str] = {}
    for name, value in sorted(vars(cls).items()):
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(value, property):
            members[name] = "property"
        elif isinstance(value, (staticmethod, classmethod)):
            members[name] = f"{type(value).__name__} {_signature(value.__func__)}"
        elif inspect.isfunction(value):
            members[name] = _signature(value)
        elif inspect.isclass(value):
            members[name] = "class"
        else:
            members[name] = type(value).__name__
    fields = getattr(cls, "__dataclass_fields__", None)
    return {
        "kind": "class",
        "bases": [b.__qualname__ for b in cls.__bases__],
        "signature": _signature(cls),
        "members": members,
        **({"fields": sorted(fields)} if fields else {}),
    }


def _surface(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        return _class_surface(obj)
    if callable(obj):
        return {"kind": "function", "signature": _signature(obj)}
    if inspect.ismodule(obj):
        return {"kind": "module", "name": obj.__name__}
    return {"kind": type(obj).__name__}


def collect() -> dict[str, dict[str, Any]]:
    """``{module: {name: surface}}`` for every module in :data:`PUBLIC_MODULES`."""
    out: dict[str, dict[str, Any]] = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None)
        if names is None:
            raise RuntimeError(f"{modname} has no __all__: a public module must list its public names")
        out[modname] = {name: _surface(getattr(module, name)) for name in sorted(names)}
    return out


def diff(pinned: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences, one line each (empty when the surfaces agree)."""
    lines: list[str] = []
    for mod in sorted(set(pinned) | set(current)):
        if mod not in current:
            lines.append(f"{mod}: module no longer public")
            continue
        if mod not in pinned:
            lines.append(f"{mod}: new public module")
            continue
        old, new = pinned[mod], current[mod]
        for name in sorted(set(old) | set(new)):
            if name not in new:
                lines.append(f"{mod}.{name}: removed")
            elif name not in old:
                lines.append(f"{mod}.{name}: added {json.dumps(new[name])}")
            elif old[name] != new[name]:
                lines.append(f"{mod}.{name}: was {json.dumps(old[name])}, now {json.dumps(new[name])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help=f"rewrite {PINNED.name} from the code")
    args = parser.parse_args(argv)
    current = collect()
    if args.update:
        PINNED.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"wrote {PINNED}")
        return 0
    changes = diff(json.loads(PINNED.read_text()), current)
    print("\n".join(changes) if changes else "the public surface matches the pinned copy")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
