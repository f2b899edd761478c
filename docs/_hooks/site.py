"""mkdocs hook: ship MathJax with the site so that the maths renders offline.

MathJax comes from the ``jupyter-server-mathjax`` package (Project Jupyter's offline MathJax 2.7 build),
installed by the ``docs`` extra; nothing is fetched from a CDN, so the built site works without a network.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _mathjax_dir() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as exc:  # pragma: no cover - the docs extra installs it
        raise RuntimeError(
            'The documentation needs MathJax from jupyter-server-mathjax: pip install -e ".[docs]"'
        ) from exc
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def on_post_build(config, **kwargs) -> None:
    shutil.copytree(_mathjax_dir(), Path(config["site_dir"]) / "assets" / "mathjax", dirs_exist_ok=True)
