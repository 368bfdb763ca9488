"""A query clip seen several ways: the framegrams the matcher compares against the index.

Re-uploads are often mirrored or letterboxed. Rather than make every stored fingerprint invariant
to that (which would double extraction for the whole collection), the query is described as it is,
mirrored, and with its black bars cropped away; the matcher keeps each reference's best view.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter1d

from framegram.encoders import FrameEncoder
from framegram.errors import TooShortError
from framegram.extract import DEFAULT_FPS, framegram_meta, resolve_encoder
from framegram.framegram import Framegram
from framegram.io.decode import probe_video, sample_frames, should_skip_nonref

#: longer queries are cut here: the matcher needs seconds, not minutes, and frames stay in memory
MAX_QUERY_SECONDS = 120.0
#: a row or column is "black bar" when its brightest value over the whole clip stays below this (0-255)
BAR_LEVEL = 24
#: bars thinner than this fraction of the picture (both sides together) are left alone
MIN_BAR_FRACTION = 0.06
#: an inset picture's border: a gray-level step (0-255) present in at least half the frames
INSET_EDGE_LEVEL = 12.0
#: an inset picture's sides span at least this fraction of the frame's
INSET_MIN_SIDE = 0.2
#: share of each side of an inset's border that must lie on persistent edges
INSET_BORDER_COVERAGE = 0.8
#: crops are cut from frames decoded at this multiple of the encoder's input size
CROP_SCALE = 2


def query_views(
    path: str | Path, encoder: FrameEncoder | str | None = None, fps: float = DEFAULT_FPS, mirrored: bool = True
) -> dict[str, Framegram]:
    """Framegrams of the query at `path`: "as-is", "mirrored" (when `mirrored`), "unbarred" when
    the clip has black bars (letterbox or pillarbox) wider than MIN_BAR_FRACTION, and "inset" when
    it shows a picture inside the picture (see `inset_box`).

    Each is float32 [T, D] at `fps`, like `extract`. Raises `TooShortError` for a clip with no frame.
    """
    path = Path(path)
    encoder = resolve_encoder(encoder)
    info = probe_video(path)
    skip_nonref = should_skip_nonref(info.frame_rate, fps)
    size = encoder.spec.input_size
    pixels, stamps = _decode(path, fps, size, skip_nonref)
    meta = framegram_meta(path, info, encoder, fps, skip_nonref)
    views = {"as-is": pixels}
    if mirrored:
        views["mirrored"] = pixels[:, :, ::-1]
    boxes = {name: box for name, find in (("unbarred", content_box), ("inset", inset_box)) if (box := find(pixels))}
    if boxes:
        # crops come from a decode at CROP_SCALE x the encoder's size, so a small inset keeps its detail
        fine, _ = _decode(path, fps, (size[0] * CROP_SCALE, size[1] * CROP_SCALE), skip_nonref)
        fine = fine[: len(pixels)]
        for name, box in boxes.items():
            views[name] = crop_resized(fine, tuple(v * CROP_SCALE for v in box), size)
    return {name: Framegram(_encode(encoder, p), stamps[: len(p)], replace(meta)) for name, p in views.items()}


def _decode(path: Path, fps: float, size: tuple[int, int], skip_nonref: bool) -> tuple[np.ndarray, np.ndarray]:
    frames, times = [], []
    for batch in sample_frames(path, fps, size, 16, skip_nonref=skip_nonref, end=MAX_QUERY_SECONDS):
        frames.append(batch.frames)
        times.append(batch.times)
    if not frames:
        raise TooShortError(path, "no frames to search with")
    return np.concatenate(frames), np.concatenate(times)


def content_box(frames: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the picture inside black bars, or None without bars.

    frames: uint8 [N, H, W, 3]. A bar is a run of rows (columns) at an edge whose brightest pixel
    over the whole clip stays below BAR_LEVEL, so dark scenes are not mistaken for bars.
    """
    brightest = frames.max(axis=(0, 3))  # [H, W]
    rows = np.flatnonzero(brightest.max(axis=1) >= BAR_LEVEL)
    cols = np.flatnonzero(brightest.max(axis=0) >= BAR_LEVEL)
    if len(rows) == 0 or len(cols) == 0:
        return None
    h, w = brightest.shape
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    cut_rows, cut_cols = (h - (bottom - top)) / h, (w - (right - left)) / w
    if cut_rows < MIN_BAR_FRACTION and cut_cols < MIN_BAR_FRACTION:
        return None
    return top, bottom, left, right


def inset_box(frames: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the largest picture shown inside the picture, or None.

    frames: uint8 [N, H, W, 3]. The inset's border is a rectangle of edges that stay put: gray-level
    steps present in at least half the frames (median over time). A rectangle counts when at least
    INSET_BORDER_COVERAGE of each of its four sides lies on such edges. A static camera or a static
    background can produce such a rectangle too; then the matcher merely gets one more view.
    """
    gray = frames.astype(np.float32).mean(axis=3)
    h, w = gray.shape[1:]
    step_x = np.median(np.abs(np.diff(gray, axis=2)), axis=0)  # [H, W-1] persistent vertical edges
    step_y = np.median(np.abs(np.diff(gray, axis=1)), axis=0)  # [H-1, W]
    # an edge blurred over 2-3 pixels by scaling counts at each of them
    vertical = maximum_filter1d(step_x, 3, axis=1) > INSET_EDGE_LEVEL
    horizontal = maximum_filter1d(step_y, 3, axis=0) > INSET_EDGE_LEVEL
    down = np.vstack([np.zeros((1, w - 1)), np.cumsum(vertical, axis=0)])  # [H+1, W-1]: edge pixels above row y
    across = np.hstack([np.zeros((h - 1, 1)), np.cumsum(horizontal, axis=1)])  # [H-1, W+1]
    margin, need = 3, INSET_BORDER_COVERAGE
    cols = _strongest(vertical.sum(axis=0), need * INSET_MIN_SIDE * h, margin)
    rows = _strongest(horizontal.sum(axis=1), need * INSET_MIN_SIDE * w, margin)
    if len(cols) < 2 or len(rows) < 2:
        return None
    x0, x1 = np.meshgrid(cols, cols, indexing="ij")
    wide = x1 - x0 >= INSET_MIN_SIDE * w
    x0, x1 = x0[wide], x1[wide]  # candidate left/right sides
    found = []  # (weakest side's coverage, area, box) of every rectangle that qualifies
    for i, y0 in enumerate(rows):
        for y1 in rows[i + 1 :]:
            span = y1 - y0
            if span < INSET_MIN_SIDE * h:
                continue
            coverage = np.minimum.reduce([
                (down[y1 + 1, x0] - down[y0, x0]) / (span + 1),  # left side
                (down[y1 + 1, x1] - down[y0, x1]) / (span + 1),  # right side
                (across[y0, x1 + 1] - across[y0, x0]) / (x1 - x0 + 1),  # top
                (across[y1, x1 + 1] - across[y1, x0]) / (x1 - x0 + 1),  # bottom
            ])
            for k in np.flatnonzero(coverage >= need):
                found.append((coverage[k], span * (x1[k] - x0[k]), (int(y0) + 1, int(y1) + 1, int(x0[k]) + 1, int(x1[k]) + 1)))
    if not found:
        return None
    # the cleanest border among the large rectangles: a busy static background can extend a
    # side along one of its own edges, which makes a slightly larger but less clean rectangle
    largest = max(area for _, area, _ in found)
    _, area, box = max((c, a, b) for c, a, b in found if a >= 0.5 * largest)
    return None if area > 0.8 * h * w else box  # the whole picture is no inset


def _strongest(counts: np.ndarray, minimum: float, margin: int, keep: int = 32) -> np.ndarray:
    """Positions (ascending) of the `keep` largest `counts` >= `minimum`, away from the edges;
    bounds the rectangle search on busy static pictures."""
    positions = np.flatnonzero(counts >= minimum)
    positions = positions[(positions >= margin) & (positions < len(counts) - margin)]
    return np.sort(positions[np.argsort(-counts[positions], kind="stable")[:keep]])


def crop_resized(frames: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop uint8 [N, H, W, 3] frames to `box` and resize to `size` = (height, width) (bilinear)."""
    top, bottom, left, right = box
    h, w = size
    return np.stack([
        np.asarray(Image.fromarray(f[top:bottom, left:right]).resize((w, h), Image.BILINEAR)) for f in frames
    ])


def _encode(encoder: FrameEncoder, pixels: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([encoder.encode(np.ascontiguousarray(pixels[i : i + batch])) for i in range(0, len(pixels), batch)])
