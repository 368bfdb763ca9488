"""Framegrams cached in the user cache folder, keyed by video content, encoder and sampling rate.

Commands that start from a video (`shots`, `keyframes`, ...) call `framegram_for`, so a video is
decoded and encoded once and later runs read the cached file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from framegram.encoders import FrameEncoder
from framegram.errors import FramegramError
from framegram.extract import DEFAULT_FPS, extract, resolve_encoder
from framegram.framegram import FILE_SUFFIX, Framegram
from framegram.io.hashing import sha256_file
from framegram.paths import cache_dir
from framegram.progress import extraction_progress


def is_framegram_file(path: str | Path) -> bool:
    return str(path).endswith(FILE_SUFFIX)


def cached_path(video_sha256: str, encoder: FrameEncoder, fps: float) -> Path:
    version = hashlib.sha1(encoder.spec.version.encode()).hexdigest()[:8]
    return cache_dir() / "framegrams" / f"{video_sha256[:32]}-{encoder.spec.name}-{version}-{fps:g}fps{FILE_SUFFIX}"


def framegram_for(
    path: str | Path, encoder: FrameEncoder | str | None = None, fps: float = DEFAULT_FPS, show_progress: bool = False
) -> tuple[Framegram, bool]:
    """The framegram of a video (extracted once, then cached) or of a .framegram.npz file.

    Returns (framegram, came_from_cache). A framegram file made with another encoder than the
    requested one raises EncoderMismatchError. `show_progress` draws a bar while extracting.
    """
    path = Path(path)
    encoder = resolve_encoder(encoder)
    if is_framegram_file(path):
        return Framegram.load(path, expect_encoder=encoder.spec), True
    if not path.is_file():
        from framegram.errors import VideoNotFoundError

        raise VideoNotFoundError(path, "no such file")
    digest = sha256_file(path)
    cached = cached_path(digest, encoder, fps)
    if cached.exists():
        try:
            framegram = Framegram.load(cached, expect_encoder=encoder.spec)
        except FramegramError:
            cached.unlink(missing_ok=True)  # damaged cache entry: extract again
        else:
            # same content, perhaps under another name: report the path the caller gave (absolute, as extract does)
            source = dataclasses.replace(framegram.meta.source, path=os.path.abspath(path))
            return dataclasses.replace(framegram, meta=dataclasses.replace(framegram.meta, source=source)), True
    with extraction_progress(show_progress) as bars:
        task = bars.add_task(f"{path.name} (first time: extracting)", total=None, fps=fps)
        framegram, _ = extract(
            path, encoder, fps, source_sha256=digest,
            progress=lambda n, total: bars.update(task, completed=n, total=total),
        )
    framegram.save(cached)
    return framegram, False
