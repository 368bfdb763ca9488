"""Where framegram keeps files it can rebuild: exported ONNX models, fetched sample media."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache folder: $FRAMEGRAM_CACHE, else $XDG_CACHE_HOME/framegram, else ~/.cache/framegram."""
    if env := os.environ.get("FRAMEGRAM_CACHE"):
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framegram"
    root.mkdir(parents=True, exist_ok=True)
    return root
