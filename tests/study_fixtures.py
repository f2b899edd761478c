"""Tiny study grids shared by the study tests (seconds, not minutes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny(**sections) -> dict:
    """A 2-noise x 3-method x 2-seed grid on digits, 12 epochs of a narrow MLP: ~0.15 s per run."""
    cfg = {
        "seeds": 2,
        "workers": 1,
        "noise": {"rates": [0.0, 0.3]},
        "methods": {"label_smoothing": [0.1], "prior": [], "negative": [], "confidence_penalty": [],
                    "focal": [2.0]},
        "model": {"width": 32, "depth": 1},
        "train": {"epochs": 12, "eval_every": 4},
    }  # fmt: skip
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m labelsmooth`` in a subprocess: this checkout's src on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


PYTHON = sys.executable
