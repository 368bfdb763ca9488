"""A folder claimed by the settings that made it: benchmarks, corpora and fits resume only into a
folder made with the same settings, and refuse one made with others."""

from __future__ import annotations

import json
from pathlib import Path

from framegram.io.atomic import atomic_write_bytes


def claim_folder(folder: Path, settings: dict, name: str = "settings.json") -> list[str] | None:
    """Write `settings` (JSON-able) to folder/name, or compare them with the ones already there.

    Returns None when the folder is new or holds the same settings; otherwise the sorted keys that
    differ (every key when the file is unreadable), for the caller's own error message.
    """
    path = Path(folder) / name
    if not path.is_file():
        atomic_write_bytes(path, (json.dumps(settings, indent=2) + "\n").encode())
        return None
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return sorted(settings)
    if previous == settings:
        return None
    return sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))


def read_settings(folder: Path, name: str = "settings.json") -> dict:
    """The settings a folder was claimed with ({} when missing or unreadable)."""
    try:
        return json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return {}
