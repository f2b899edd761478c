"""The public surface is pinned: a change to a public name or signature must be deliberate."""

from __future__ import annotations

import json

import pytest

from public_surface import PINNED, PUBLIC_MODULES, _surface, collect, diff


def test_the_public_surface_matches_the_pinned_copy():
    changes = diff(json.loads(PINNED.read_text()), collect())
    assert not changes, (
        "The public surface changed. If that is intended, run `python tests/public_surface.py --update` and "
        "review the diff of tests/fixtures/public_surface.json:\n" + "\n".join(changes)
    )


def test_every_public_module_is_pinned_and_lists_only_names_it_has():
    pinned = json.loads(PINNED.read_text())
    assert sorted(pinned) == sorted(PUBLIC_MODULES)
    import importlib

    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{modname}.__all__ names what it does not define: {missing}"
        assert len(set(module.__all__)) == len(module.__all__), f"{modname}.__all__ repeats a name"


def test_private_names_are_not_public():
    for mod, names in collect().items():
        private = [n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
        assert not private, f"{mod}.__all__ lists private names: {private}"


def test_the_diff_names_each_kind_of_change():
    def f(a, b=1):
        return a

    def g(a, *, b=1):
        return a

    old = {"m": {"f": _surface(f), "gone": _surface(f)}}
    new = {"m": {"f": _surface(g), "new": _surface(f)}, "m2": {}}
    lines = diff(old, new)
    assert any(line.startswith("m.f: was") and "*, b=1" in line for line in lines)
    assert "m.gone: removed" in lines
    assert any(line.startswith("m.new: added") for line in lines)
    assert "m2: new public module" in lines
    assert diff(old, old) == []


@pytest.mark.parametrize("obj", [dict, print])
def test_objects_without_signatures_still_have_a_surface(obj):
    assert _surface(obj)["kind"] in {"class", "function"}
