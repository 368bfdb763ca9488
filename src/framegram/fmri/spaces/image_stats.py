"""The "image-stats" space: low-level image statistics on a coarse grid, which early visual cortex
follows and ImageNet-pooled features barely see.

Frames are sampled at 5 fps inside FFmpeg's filter graph at 128 px wide with the film's aspect
kept (128x96 for a 640x480 film). Each frame is cut into a 4x4 grid of cells (r0c0 top left ...
r3c3 bottom right) plus the whole frame ("all"); per region, on sRGB values in [0, 1]:

    lum       mean luminance, Rec.709 weights on the sRGB values (luma): 0.2126 R + 0.7152 G + 0.0722 B
    contrast  RMS contrast: standard deviation of that luminance inside the region
    rg        red-green opponent, mean of R - G (-1..1)
    by        blue-yellow opponent, mean of B - (R + G) / 2 (-1..1)
    sat       mean HSV saturation, (max - min) / max per pixel (0 where max is 0)

→ values float32 [T, 85] at 5 rows/s, columns "<stat>_r<row>c<col>" and "<stat>_all".
Cost for the 390-s 640x480 stimulus film on 2 cores: 7 s (measured alone), nearly all of it decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.io.decode import probe_video, sample_frames
from framegram.progress import extraction_progress
from framegram.fmri.spaces.base import TimedFeatures, aspect_size, expected_samples

NAME = "image-stats"
VERSION = 1
FPS = 5.0
WIDTH = 128  #: pixels; coarse statistics need no more, and decoding small is cheap
GRID = 4
STATS = ("lum", "contrast", "rg", "by", "sat")
PARAMS = {"fps": FPS, "width": WIDTH, "grid": GRID, "stats": STATS, "luma": "rec709-on-srgb"}
DESCRIPTION = (f"luminance, RMS contrast, R-G, B-Y and saturation on a {GRID}x{GRID} grid + whole frame: "
               f"[T, 85] at {FPS:g} fps, {WIDTH} px wide; ~7 s for the 390-s film on 2 cores")
REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def columns() -> tuple[str, ...]:
    regions = [f"r{r}c{c}" for r in range(GRID) for c in range(GRID)] + ["all"]
    return tuple(f"{stat}_{region}" for stat in STATS for region in regions)


def compute(film: Path, show_progress: bool = False) -> TimedFeatures:
    info = probe_video(film)
    size = aspect_size(info.width, info.height, WIDTH)
    rows, times = [], []
    with extraction_progress(show_progress) as bars:
        task = bars.add_task(f"{film.name}: {NAME}", total=expected_samples(info.duration, FPS), fps=FPS)
        for batch in sample_frames(film, fps=FPS, size=size, batch_size=64, threads=2):
            rows.append(frame_stats(batch.frames))
            times.append(batch.times)
            bars.advance(task, len(batch.times))
    return TimedFeatures(NAME, np.concatenate(rows), np.concatenate(times), columns())


def frame_stats(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [B, H, W, 3] → float32 [B, 85] in the order of `columns()`."""
    rgb = frames.astype(np.float32) / 255.0
    lum = rgb @ REC709
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    rg = rgb[..., 0] - rgb[..., 1]
    by = rgb[..., 2] - (rgb[..., 0] + rgb[..., 1]) / 2
    mean_lum = region_means(lum)
    # variance as E[x²] - E[x]² in float64: the cells' sums come from one pass (reduceat)
    var = np.maximum(region_means(lum.astype(np.float64) ** 2) - mean_lum.astype(np.float64) ** 2, 0.0)
    out = [mean_lum, np.sqrt(var), region_means(rg), region_means(by), region_means(sat)]
    return np.concatenate(out, axis=1).astype(np.float32)


def region_means(x: np.ndarray) -> np.ndarray:
    """Means of [B, H, W] over the GRID x GRID cells (row-major) and the whole frame → [B, GRID² + 1].

    Cell edges are spread evenly (the last cells take the remainder when H or W does not divide);
    the whole-frame mean weights cells by their pixel counts.
    """
    _, h, w = x.shape
    row_edges = np.linspace(0, h, GRID + 1).round().astype(int)
    col_edges = np.linspace(0, w, GRID + 1).round().astype(int)
    sums = np.add.reduceat(np.add.reduceat(x.astype(np.float64), row_edges[:-1], axis=1), col_edges[:-1], axis=2)
    counts = np.outer(np.diff(row_edges), np.diff(col_edges))
    cells = (sums / counts).reshape(len(x), -1)
    whole = sums.reshape(len(x), -1).sum(axis=1) / (h * w)
    return np.concatenate([cells, whole[:, None]], axis=1)
