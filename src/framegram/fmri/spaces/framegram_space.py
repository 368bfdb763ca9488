"""The "framegram" space: the film's framegram as the brain pipeline has always used it
(EfficientNet-Lite0, 1280-d global-average-pooled features at 5 fps), through
`framegram.cache.framegram_for`, which caches it itself.

→ values float32 [T, 1280] at 5 rows/s, columns "fg0000".."fg1279"; times = the framegram's.
Cost for the 390-s stimulus film on 2 cores: 15 s the first time (ONNX Runtime, measured alone),
then read from the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.cache import framegram_for
from framegram.fmri.spaces.base import TimedFeatures

NAME = "framegram"
DESCRIPTION = "the film's framegram (EfficientNet-Lite0 pooled, the default encoder): [T, 1280] at 5 fps; " \
              "~15 s for the 390-s film on 2 cores the first time, then cached by framegram_for"


def compute(film: Path, show_progress: bool = False) -> TimedFeatures:
    framegram, _ = framegram_for(film, show_progress=show_progress)
    columns = tuple(f"fg{i:04d}" for i in range(framegram.features.shape[1]))
    # the file keeps float16: round a fresh extraction the same way, so the first call and every
    # later (cached) one give the same numbers
    values = framegram.features.astype(np.float16).astype(np.float32)
    return TimedFeatures(NAME, values, framegram.times, columns)
