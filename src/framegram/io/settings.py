"""A folder claimed by the settings that made it: benchmarks, corpora and fits resume only into a
folder made with the same settings, and refuse one made with others."""

from __future__ import annotations

import json
from pathlib import Path

from framegram.errors import InputError
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


def claim_generated_folder(root: Path, settings: dict, what: str, name: str = "settings.json") -> None:
    """Claim `root` for a generated data set (`what`, e.g. "a benchmark"): InputError for a folder
    that holds other files but no settings file (never write into someone's folder), or one made
    with other settings (naming each differing value)."""
    root = Path(root)
    if not (root / name).is_file() and root.is_dir() and any(root.iterdir()):
        raise InputError(root, f"is not empty and has no {name}: not {what} folder, refusing to write into it")
    differ = claim_folder(root, settings, name)
    if differ:
        previous = read_settings(root, name)
        raise InputError(root, f"holds {what} made with other settings ("
                         + ", ".join(f"{k}: {previous.get(k)} here, {settings.get(k)} asked" for k in differ)
                         + "); pass another folder or delete it")
