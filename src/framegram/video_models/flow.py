"""Optical flow of a video's frames (OpenCV's Farneback), computed once and cached on disk.

The flow of frame t is the motion from frame t to frame t + 1 in pixels per video frame, (dx, dy)
with x to the right and y down; the last frame repeats the one before (as `inputs.py` says), and a
one-frame video has zero flow. It is computed on the grayscale frames at the size the dataset
decodes them, and cached as float16 [T, H, W, 2] under the cache folder keyed by the video's
SHA-256 and that size. OpenCV (`opencv-python-headless`) is imported only here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path
from framegram.io.hashing import sha256_file
from framegram.paths import cache_dir

FLOW_VERSION = 1  #: bump when the flow's parameters change: cached files of other versions are not read
#: cv2.calcOpticalFlowFarneback's parameters: OpenCV's documented example (3-level pyramid, 15-px window).
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}


def farneback_flow(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames [T, H, W, 3] -> float32 flow [T, H, W, 2] (pixels per frame)."""
    cv2 = _opencv()
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]
    flow = np.zeros((*frames.shape[:3], 2), np.float32)
    for t in range(len(grey) - 1):
        flow[t] = cv2.calcOpticalFlowFarneback(grey[t], grey[t + 1], None, **FARNEBACK)
    if len(grey) > 1:
        flow[-1] = flow[-2]
    return flow


def cached_flow(video: str | Path, frames: np.ndarray, folder: Path | None = None) -> tuple[np.ndarray, bool]:
    """Flow of `frames` (the decoded frames of `video`, uint8 [T, H, W, 3]) as float16 [T, H, W, 2].

    Read from the cache when a file for this video's content and frame size is there, else computed
    and written (atomically). Returns (flow, came_from_cache). folder: the cache folder (None: the
    user cache's "flow" folder).
    """
    folder = folder if folder is not None else cache_dir() / "flow"
    height, width = frames.shape[1:3]
    path = folder / f"{sha256_file(video)[:32]}-{height}x{width}-farneback-v{FLOW_VERSION}.npy"
    if path.is_file():
        try:
            flow = np.load(path)
        except (OSError, ValueError):
            flow = None  # damaged file: compute again
        if flow is not None and flow.shape == (*frames.shape[:3], 2) and flow.dtype == np.float16:
            return flow, True
    flow = farneback_flow(frames).astype(np.float16)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy would append ".npy" to the name
        np.save(fh, flow)
    return flow, False


def _opencv():
    try:
        import cv2
    except ImportError:
        raise FramegramError("optical flow needs OpenCV: pip install opencv-python-headless") from None
    return cv2
