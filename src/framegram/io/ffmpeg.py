"""Where the FFmpeg command-line binary is, for the few jobs PyAV cannot do (filter graphs with
overlays and text for distorted queries, re-encoding generated footage, tools that shell out)."""

from __future__ import annotations

import shutil

from framegram.errors import FramegramError


def ffmpeg_executable(purpose: str) -> str:
    """The binary of the imageio-ffmpeg wheel, else an `ffmpeg` on PATH.

    purpose: what needs it, for the error, e.g. "rendering queries".
    """
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise FramegramError(
                f"{purpose} needs FFmpeg: pip install imageio-ffmpeg, or put ffmpeg on PATH"
            ) from None
        return found
