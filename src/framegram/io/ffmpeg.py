"""Where the FFmpeg command-line binary is, for the few jobs PyAV cannot do (filter graphs with
overlays and text for distorted queries, re-encoding generated footage, tools that shell out), and
the reproducible H.264 encoder of generated frames."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path


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


def encode_rgb_video(frames: Iterable[np.ndarray], path: str | Path, fps: float, size: tuple[int, int],
                     x264: Sequence[str], purpose: str) -> None:
    """uint8 RGB frames [H, W, 3] (`size` = (width, height)) -> H.264 MP4 at `fps`, written atomically.

    Encoded by the FFmpeg binary from raw frames piped to its input (one x264 thread, bit-exact
    container): the same frames give the same bytes in any process. PyAV's in-process x264 did not:
    about 1 in 10 encodes of identical frames differed, even on one thread, more so after earlier
    encodes in the same process. x264: rate and GOP options, e.g. ("-crf", "18", "-preset", "medium").
    purpose: what is being encoded, for the error.
    """
    path = Path(path)
    width, height = size
    command = [
        ffmpeg_executable(purpose), "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", *x264, "-pix_fmt", "yuv420p", "-threads", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "mp4",
    ]  # fmt: skip
    with atomic_path(path, suffix=".mp4") as tmp:
        proc = subprocess.Popen([*command, str(tmp)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for frame in frames:  # streamed: a long video is never held whole
                proc.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # FFmpeg stopped early: its message follows
        stderr = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            reason = (stderr.strip().splitlines() or ["no message"])[-1]
            raise FramegramError(f"{path}: FFmpeg could not encode the video ({reason})")
