"""A griffe extension for the API reference: the docstrings' reStructuredText maths, rendered by MathJax.

The docstrings are written for Sphinx and numpydoc (``.. math::`` blocks and ``:math:`x``` roles, as in
PyTorch and scikit-learn); mkdocstrings renders Markdown. This rewrites the two constructs into the
``\\[ ... \\]`` and ``\\( ... \\)`` delimiters that pymdownx.arithmatex passes to MathJax, before griffe
parses the docstring, and leaves everything else alone.
"""

from __future__ import annotations

import re
import textwrap

import griffe

ROLE = re.compile(r":math:`([^`]+)`")
XREF = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|obj|exc|const):`~?([^`]+)`")


def _inside(line: str, indent: int) -> bool:
    """A line of a directive's body: blank, or indented more than the directive."""
    return not line.strip() or len(line) - len(line.lstrip()) > indent


def rst_math_to_markdown(text: str) -> str:
    """``.. math::`` blocks -> ``\\[...\\]`` paragraphs; ``:math:`x``` -> ``\\(x\\)``; cross-reference roles
    (``:func:`x```, ``:class:`x```, ...) -> inline code."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", line)
        if not m:
            out.append(line)
            i += 1
            continue
        indent, inline = m.group(1), m.group(2).strip()
        body: list[str] = [inline] if inline else []
        i += 1
        while i < len(lines) and _inside(lines[i], len(indent)):
            body.append(lines[i])
            i += 1
        content = textwrap.dedent("\n".join(body)).strip("\n")
        while out and not out[-1].strip():
            out.pop()
        out += ["", indent + "\\[", *[indent + c if c.strip() else "" for c in content.splitlines()],
                indent + "\\]", ""]  # fmt: skip
    text = ROLE.sub(lambda r: "\\(" + r.group(1) + "\\)", "\n".join(out))
    return XREF.sub(lambda r: "`" + r.group(1) + "`", text)


class RstMath(griffe.Extension):
    """Rewrite every docstring's RST maths before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_math_to_markdown(obj.docstring.value)
