"""Label-map videos in and generated videos out.

A label-map video is an .npz with `labels` uint8 [T, H, W] (a generated scene file is one), or a folder
of 8-bit PNG images in name order whose pixel values are class indices (0 background, 1 disc, 2 square,
3 triangle). Generated videos are written as H.264 MP4 (PyAV), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.datasets.label_videos import CLASSES
from framegram.errors import InputError


def read_label_video(path: str | Path) -> np.ndarray:
    """uint8 [T, H, W] class indices; InputError naming the file for anything else."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not images:
            raise InputError(path, "no .png label images in this folder")
        try:
            labels = np.stack([np.asarray(Image.open(p)) for p in images])
        except (OSError, ValueError) as exc:
            raise InputError(path, f"label images unreadable or of different sizes ({exc})") from None
    else:
        try:
            with np.load(path) as z:
                labels = z["labels"]
        except (OSError, ValueError, KeyError, EOFError):
            raise InputError(path, "not an .npz holding a 'labels' array [T, H, W] (or a folder of PNG label images)") from None
    if labels.ndim != 3 or len(labels) < 2:
        raise InputError(path, f"a label-map video must be [T >= 2, H, W], this one is {list(labels.shape)}")
    if labels.shape[1] % 4 or labels.shape[2] % 4:
        raise InputError(path, f"frame size {labels.shape[1]}x{labels.shape[2]} must be a multiple of 4")
    if labels.max() >= len(CLASSES) or labels.min() < 0:
        raise InputError(path, f"class indices must lie in 0..{len(CLASSES) - 1} ({', '.join(CLASSES)}); "
                               f"found {int(labels.max())}")
    return labels.astype(np.uint8)


def write_video(frames: np.ndarray, path: str | Path, fps: float = 8.0, scale: int = 1) -> Path:
    """uint8 [T, H, W, 3] → H.264 MP4 (each side `scale` times, nearest), written atomically."""
    import av

    from framegram.io.atomic import atomic_path

    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.options = {"crf": "18"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
