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
from scipy.ndimage import binary_closing, maximum_filter1d

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
    frames, times = [], []
    for batch in sample_frames(path, fps, encoder.spec.input_size, 16, skip_nonref=skip_nonref, end=MAX_QUERY_SECONDS):
        frames.append(batch.frames)
        times.append(batch.times)
    if not frames:
        raise TooShortError(path, "no frames to search with")
    pixels, stamps = np.concatenate(frames), np.concatenate(times)
    meta = framegram_meta(path, info, encoder, fps, skip_nonref)
    views = {"as-is": pixels}
    if mirrored:
        views["mirrored"] = pixels[:, :, ::-1]
    for name, find in (("unbarred", content_box), ("inset", inset_box)):
        box = find(pixels)
        if box is not None:
            views[name] = crop_resized(pixels, box)
    return {name: Framegram(_encode(encoder, p), stamps, replace(meta)) for name, p in views.items()}


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

    frames: uint8 [N, H, W, 3]. The inset's border is a rectangle of edges that stay put while the
    content on both sides changes: edges present in at least half the frames (median over time of
    the gray-level step), whose runs along a column (row) span the rectangle's side. A static
    camera can produce such a rectangle too; then the matcher merely gets one more view.
    """
    gray = frames.astype(np.float32).mean(axis=3)
    h, w = gray.shape[1:]
    step_x = np.median(np.abs(np.diff(gray, axis=2)), axis=0)  # [H, W-1] persistent vertical edges
    step_y = np.median(np.abs(np.diff(gray, axis=1)), axis=0)  # [H-1, W]
    # an edge blurred over 2-3 pixels by scaling, with short gaps closed
    vertical = binary_closing(maximum_filter1d(step_x, 3, axis=1) > INSET_EDGE_LEVEL, np.ones((5, 1)))
    horizontal = binary_closing(maximum_filter1d(step_y, 3, axis=0) > INSET_EDGE_LEVEL, np.ones((1, 5)))
    col_len, col_start = _longest_runs(vertical.T)  # per column x: its longest vertical run
    row_len, row_start = _longest_runs(horizontal)
    margin, tol = 3, 4
    cols = np.flatnonzero(col_len >= INSET_MIN_SIDE * h)
    cols = cols[(cols >= margin) & (cols < w - 1 - margin)]
    rows = np.flatnonzero(row_len >= INSET_MIN_SIDE * w)
    rows = rows[(rows >= margin) & (rows < h - 1 - margin)]
    best, best_area = None, 0
    for i, y0 in enumerate(rows):
        for y1 in rows[i + 1 :]:
            if y1 - y0 < INSET_MIN_SIDE * h:
                continue
            lo = max(row_start[y0], row_start[y1]) - tol
            hi = min(row_start[y0] + row_len[y0], row_start[y1] + row_len[y1]) + tol
            spans = (col_start[cols] <= y0 + tol) & (col_start[cols] + col_len[cols] >= y1 - tol)
            sides = cols[spans & (cols >= lo) & (cols <= hi)]
            if len(sides) < 2 or sides[-1] - sides[0] < INSET_MIN_SIDE * w:
                continue
            area = (sides[-1] - sides[0]) * (y1 - y0)
            if area > best_area:
                best, best_area = (int(y0) + 1, int(y1) + 1, int(sides[0]) + 1, int(sides[-1]) + 1), area
    return best


def _longest_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of bool [K, L]: (length, start) of its longest run of True."""
    best = np.zeros(len(mask), np.int64)
    start = np.zeros(len(mask), np.int64)
    current = np.zeros(len(mask), np.int64)
    for i in range(mask.shape[1]):
        current = np.where(mask[:, i], current + 1, 0)
        longer = current > best
        best = np.where(longer, current, best)
        start = np.where(longer, i - current + 1, start)
    return best, start


def crop_resized(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop uint8 [N, H, W, 3] frames to `box` and resize back to H x W (bilinear)."""
    top, bottom, left, right = box
    h, w = frames.shape[1:3]
    return np.stack([
        np.asarray(Image.fromarray(f[top:bottom, left:right]).resize((w, h), Image.BILINEAR)) for f in frames
    ])


def _encode(encoder: FrameEncoder, pixels: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([encoder.encode(np.ascontiguousarray(pixels[i : i + batch])) for i in range(0, len(pixels), batch)])
