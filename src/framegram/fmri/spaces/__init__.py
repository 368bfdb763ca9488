"""Stimulus feature spaces for brain encoding: named, cached descriptions of a film on its own clock.

Brain encoding averages a film's features per volume (`framegram.fmri.stimulus.frames_to_tr`).
The framegram (ImageNet features pooled over the frame) cannot see what early visual cortex
answers to (luminance, colour, contrast, motion) nor what auditory cortex answers to (sound);
these spaces can:

    from framegram.fmri.spaces import space_features, spaces_per_tr
    stats = space_features("film.mp4", "image-stats")      # TimedFeatures: values [T, 85], times [T] s
    design = spaces_per_tr("film.mp4", ["framegram", "motion-energy"], tr=0.608, n_volumes=641)

| name | module | values | rate |
|---|---|---|---|
| framegram | `framegram_space` | EfficientNet-Lite0 pooled [T, 1280] | 5 fps |
| lite0-blocks | `lite0_blocks` | Lite0 blocks 4/7/10 on a 2x2 grid [T, 928] | 5 fps |
| image-stats | `image_stats` | luminance, contrast, colour opponents, saturation, 4x4 grid + frame [T, 85] | 5 fps |
| motion-energy | `motion_energy` | pymoten Gabor motion energy [T, 1840] | 15 fps |
| sound | `sound` | loudness + 32-band log-mel + spectral shape [T, 38] | 20 rows/s |

Each space but "framegram" (which `framegram.cache.framegram_for` caches) is computed once per
film content and settings and kept under `<cache>/spaces/` (`cache`). `describe_spaces()` gives
each space's shape, rate and cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np

from framegram.io.decode import probe_video
from framegram.io.hashing import sha256_file
from framegram.fmri.spaces import framegram_space, image_stats, lite0_blocks, motion_energy, sound
from framegram.fmri.spaces.base import TimedFeatures
from framegram.fmri.spaces.cache import cached_features
from framegram.fmri.spaces.errors import NoAudioError, UnknownSpaceError
from framegram.fmri.stimulus import frames_to_tr

SPACE_NAMES: tuple[str, ...] = ("framegram", "lite0-blocks", "image-stats", "motion-energy", "sound")

#: name → the module computing it (NAME, DESCRIPTION, compute; VERSION and PARAMS where cached here)
_MODULES: dict[str, ModuleType] = {
    "framegram": framegram_space,
    "lite0-blocks": lite0_blocks,
    "image-stats": image_stats,
    "motion-energy": motion_energy,
    "sound": sound,
}

__all__ = ["SPACE_NAMES", "NoAudioError", "TimedFeatures", "UnknownSpaceError", "describe_spaces", "space_features",
           "spaces_per_tr"]


def describe_spaces() -> dict[str, str]:
    """name → one line: what the space is, its shape, rate, and its cost on 2 cores for the 390-s film."""
    return {name: _MODULES[name].DESCRIPTION for name in SPACE_NAMES}


def _module(name: str) -> ModuleType:
    if name not in SPACE_NAMES:
        raise UnknownSpaceError(name, SPACE_NAMES)
    return _MODULES[name]


def space_features(film: str | Path, name: str, show_progress: bool = False) -> TimedFeatures:
    """The features of `film` (a video file; with a soundtrack for "sound") in the space `name`.

    Computed once per film content (SHA-256) and space settings, then read from the cache.
    Raises UnknownSpaceError for a name not in SPACE_NAMES, the decoder's InputError subclasses
    (VideoNotFoundError, NotAVideoError, ...) for a file that is missing or no video, and
    NoAudioError for "sound" on a file without an audio stream.
    """
    module = _module(name)
    film = Path(film)
    if module is framegram_space:  # framegram_for caches it already
        return module.compute(film, show_progress)
    probe_video(film)  # the decoder's clear errors before hashing a file that may not exist
    features, _ = cached_features(sha256_file(film), name, module.VERSION, module.PARAMS,
                                  lambda: module.compute(film, show_progress))
    return features


def spaces_per_tr(
    film: str | Path,
    names: Iterable[str],
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """name → float32 [n_volumes, D]: each space's rows averaged per volume by `frames_to_tr`
    (the film starts `offset_s` seconds after the first scan). Every name is checked before
    anything is computed (UnknownSpaceError); a film shorter than the run raises
    StimulusTooShortError as `frames_to_tr` does."""
    names = list(names)
    for name in names:
        _module(name)
    out = {}
    for name in names:
        features = space_features(film, name, show_progress)
        out[name] = frames_to_tr(features.values, features.times, tr, n_volumes, offset_s,
                                 frame_period=features.period or None, source=str(film))
    return out
