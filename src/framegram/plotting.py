"""Pictures of framegrams (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # framegram draws into files; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from framegram.errors import OutputError  # noqa: E402
from framegram.io.atomic import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from framegram.framegram import Framegram


def render_framegram(fg: Framegram, path: str | Path | None = None, title: str | None = None, height_in: float = 4.0):
    """The framegram picture: one row per feature, time in seconds along x, gray in [0, 1].

    Returns the Figure; with `path`, writes it atomically and closes it.
    """
    picture = fg.to_picture()  # [D, T]
    period = 1.0 / fg.meta.fps
    start = float(fg.times[0]) if len(fg) else 0.0
    end = float(fg.times[-1]) + period if len(fg) else period
    width_in = min(16.0, max(6.0, 0.02 * len(fg) + 3.0))
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=110)
    image = ax.imshow(
        picture,
        aspect="auto",
        cmap="gray",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=(start, end, picture.shape[0] - 0.5, -0.5),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"feature (of {picture.shape[0]})")
    ax.set_title(title or Path(fg.meta.source.path).name, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="min-max scaled")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` atomically (format from the extension, PNG without one) and close it.

    Raises OutputError for a format matplotlib cannot write, or a path that cannot be written.
    """
    path = Path(path)
    try:
        picture_format = path.suffix.lstrip(".").lower() or "png"
        supported = fig.canvas.get_supported_filetypes()
        if picture_format not in supported:
            raise OutputError(path, f"cannot write .{picture_format} pictures; use one of .{', .'.join(sorted(supported))}")
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, format=picture_format)
    finally:
        plt.close(fig)
    return path


def frame_strip_figure(frames, times, title: str | None = None):
    """A row of frames (uint8 [N, H, W, 3]) each labelled with its time in seconds."""
    n = len(frames)
    aspect = frames.shape[2] / frames.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(min(16.0, 1.6 * aspect * n), 1.9), dpi=110, squeeze=False)
    for ax, frame, t in zip(axes[0], frames, times):
        ax.imshow(frame)
        ax.set_title(f"{t:.1f} s", fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def contact_sheet_figure(images, labels, title: str | None = None, columns: int = 5):
    """A grid of images (uint8 [H, W, 3]) with a caption under each."""
    import math

    rows = max(1, math.ceil(len(images) / columns))
    cols = min(columns, max(1, len(images)))
    aspect = images[0].shape[1] / images[0].shape[0] if images else 16 / 9
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows / aspect + 0.5), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels):
        ax.imshow(image)
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
