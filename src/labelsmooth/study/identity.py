"""A run's identity: the hash of everything that determines its numbers (shared by every task)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def config_hash(run_cfg: Mapping[str, Any]) -> str:
    """A short, stable hash of a run's config (canonical JSON, sorted keys)."""
    text = json.dumps(run_cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
