"""Feature spaces cached in the user cache folder, keyed by the film's content and the space's settings.

Layout: `<cache>/spaces/<film sha256>/<name>-v<version>-<params hash>.npz` holding `values`
(float32 [T, D]), `times` (float64 [T], s) and `columns` (unicode [D]); no pickle. The params hash
is a short SHA-1 of the space's settings as sorted JSON, so changing a rate or a size writes a new
file beside the old one instead of reading stale features. Files are written atomically; a file
that does not load or breaks the `TimedFeatures` contract is recomputed and overwritten, never
trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from framegram.errors import NPZ_READ_ERRORS
from framegram.io.atomic import atomic_path
from framegram.paths import cache_dir
from framegram.fmri.spaces.base import TimedFeatures, shape_problem


def params_hash(params: dict) -> str:
    """10 hex digits identifying a space's settings (JSON with sorted keys)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def cache_path(film_sha256: str, name: str, version: int, params: dict) -> Path:
    return cache_dir() / "spaces" / film_sha256 / f"{name}-v{version}-{params_hash(params)}.npz"


def load_features(path: Path, name: str) -> TimedFeatures | None:
    """The cached features at `path`, or None when the file is missing, unreadable or malformed."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            values, times, columns = data["values"], data["times"], data["columns"]
    except NPZ_READ_ERRORS:
        return None
    if values.dtype.kind != "f" or times.dtype.kind != "f" or columns.dtype.kind != "U" or columns.ndim != 1:
        return None
    columns = tuple(columns.tolist())
    if shape_problem(values, times, columns):
        return None
    return TimedFeatures(name, values, times, columns)


def save_features(path: Path, features: TimedFeatures) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to the temporary name
            np.savez(fh, values=features.values.astype(np.float32), times=features.times.astype(np.float64),
                     columns=np.asarray(features.columns, dtype=str))


def cached_features(
    film_sha256: str, name: str, version: int, params: dict, compute: Callable[[], TimedFeatures]
) -> tuple[TimedFeatures, bool]:
    """(features, came_from_cache): the cached file when it is sound, else `compute()` saved there."""
    path = cache_path(film_sha256, name, version, params)
    found = load_features(path, name)
    if found is not None:
        return found, True
    features = compute()
    save_features(path, features)
    return features, False
