"""Video -> Framegram: decoding in a producer thread overlapped with encoder inference.

PyAV and ONNX Runtime both release the GIL while they work, so a thread is enough to keep the
decoder one batch ahead of the encoder. The queue between them is short, so memory stays flat.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.encoders import DEFAULT_ENCODER, FrameEncoder, get_encoder
from framegram.framegram import Framegram, FramegramMeta, SourceInfo
from framegram.io.decode import FrameBatch, VideoInfo, probe_video, sample_frames, should_skip_nonref
from framegram.io.hashing import sha256_file

DEFAULT_FPS = 5.0

#: progress(frames_done, frames_expected or None) after each encoded batch
ProgressCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class ExtractTiming:
    """Wall-clock figures of one extraction."""

    frames: int
    video_seconds: float  #: length of video covered
    wall_seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    @property
    def times_real_time(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def resolve_encoder(encoder: FrameEncoder | str | None) -> FrameEncoder:
    if isinstance(encoder, FrameEncoder):
        return encoder
    return get_encoder(encoder or DEFAULT_ENCODER)


def extract(
    path: str | Path,
    encoder: FrameEncoder | str | None = None,
    fps: float = DEFAULT_FPS,
    batch_size: int | None = None,
    skip_nonref: bool | None = None,
    progress: ProgressCallback | None = None,
    source_sha256: str | None = None,
) -> tuple[Framegram, ExtractTiming]:
    """Extract the framegram of one video.

    encoder: a FrameEncoder, a registry name, or None for the default (efficientnet-lite0).
    fps: samples per second. skip_nonref: see `sample_frames`.
    batch_size: frames per encoder call; None: the encoder's own (`FrameEncoder.batch_size`).
    source_sha256: the file's hash if the caller already has it.
    Returns the Framegram (features float32 [T, D], times in seconds) and its timing.
    Raises the `InputError` subclasses of `sample_frames` for unreadable videos.
    """
    path = Path(path)
    encoder = resolve_encoder(encoder)
    info = probe_video(path)
    if skip_nonref is None:
        skip_nonref = should_skip_nonref(info.frame_rate, fps)
    started = time.perf_counter()
    batches = sample_frames(path, fps, encoder.spec.input_size, batch_size or encoder.batch_size, skip_nonref=skip_nonref)
    expected = round(info.duration * fps) if info.duration else None
    features, times, done = [], [], 0
    for batch in _prefetch(batches):
        features.append(encoder.encode(batch.frames))
        times.append(batch.times)
        done += len(batch.times)
        if progress is not None:
            progress(done, expected)
    wall = time.perf_counter() - started
    times_all = np.concatenate(times)
    meta = framegram_meta(path, info, encoder, fps, skip_nonref, source_sha256)
    framegram = Framegram(np.concatenate(features), times_all, meta)
    return framegram, ExtractTiming(len(times_all), framegram.duration, wall)


def framegram_meta(
    path: Path, info: VideoInfo, encoder: FrameEncoder, fps: float, skip_nonref: bool, source_sha256: str | None = None
) -> FramegramMeta:
    """The metadata of a framegram of `path` (probed as `info`) made by `encoder` at `fps`."""
    return FramegramMeta(
        source=SourceInfo(
            path=os.path.abspath(path),  # absolute: the framegram is read from other working folders
            sha256=source_sha256 or sha256_file(path),
            size_bytes=path.stat().st_size,
            duration=info.duration,
            width=info.width,
            height=info.height,
            frame_rate=info.frame_rate,
            codec=info.codec,
        ),
        encoder=encoder.spec,
        fps=float(fps),
        skip_nonref=bool(skip_nonref),
    )


_DONE = object()


def _prefetch(batches: Iterator[FrameBatch], depth: int = 3) -> Iterator[FrameBatch]:
    """Run `batches` in a producer thread, `depth` batches ahead; re-raise its errors here."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)

    worker = threading.Thread(target=produce, name="framegram-decode", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish closing the file.
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
