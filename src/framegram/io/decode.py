"""Video decoding and sampling with PyAV (FFmpeg's libraries, bundled in the wheel).

Frames are sampled inside FFmpeg's filter graph (`fps`, then `scale`, then `format=rgb24`), so
only the kept frames are scaled and converted, and the sampling follows the stream's
presentation timestamps: a variable-frame-rate file gets the frame actually on screen at each
sample time. Pictures stored turned (phone video) are turned upright, as FFmpeg's command line does.
Frames come out lazily in small uint8 batches, so memory stays flat for any length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from framegram.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoNotFoundError,
)

#: Extensions picked up when a folder is given; files named explicitly are tried whatever their name.
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .mts .wmv .flv .ogv .3gp .gif".split()
)

#: Skip non-reference frames only when the source has at least this many frames per sample:
#: reference frames then come at least every few source frames, so the frame picked for a
#: sample time is at most ~2 source frames (~80 ms at 24 fps) from it, while decoding costs halve.
SKIP_NONREF_MIN_RATIO = 4.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    path: Path
    width: int  #: as displayed, after rotation
    height: int
    duration: float | None  #: seconds; None when neither stream nor container declares it
    frame_rate: float | None  #: average frames per second as declared; None when unknown
    codec: str
    has_audio: bool
    rotation: int = 0  #: degrees counter-clockwise the stored picture is turned for display (0, 90, 180, 270)


@dataclass(frozen=True)
class FrameBatch:
    """A run of consecutive sampled frames."""

    frames: np.ndarray  #: uint8 [B, H, W, 3], RGB
    times: np.ndarray  #: float64 [B], seconds from the start of the video stream


def probe_video(path: str | Path) -> VideoInfo:
    """Open `path` and describe its first video stream; raises an `InputError` subclass if it has none.

    Decodes the first frame, which carries the display rotation (phones store portrait video turned).
    """
    path = Path(path)
    with _open_container(path) as container:
        stream = _video_stream(container, path)
        info = _describe(container, stream, path)
        frames = _decode_video(container, stream, path)
        first = next(frames, None)
        frames.close()
    if first is None:
        raise EmptyVideoError(path, "the video stream decodes to zero frames")
    rotation = round(first.rotation) % 360
    if rotation in (90, 270):
        return replace(info, width=info.height, height=info.width, rotation=rotation)
    return replace(info, rotation=rotation)


def sample_frames(
    path: str | Path,
    fps: float = 5.0,
    size: tuple[int, int] = (224, 224),
    batch_size: int = 16,
    skip_nonref: bool | None = None,
    threads: int = 1,
    start: float = 0.0,
    end: float | None = None,
) -> Iterator[FrameBatch]:
    """Decode `path` in order and yield frames sampled at `fps`, resized to `size` = (height, width).

    Sample k shows the frame on screen at time start + k / fps (seconds from the stream start),
    picked by FFmpeg's `fps` filter from presentation timestamps. The aspect ratio is not kept: the
    whole picture is resized to `size`, as the encoders expect.

    start, end: the part of the video to sample, in seconds from the stream start; decoding seeks
        to the keyframe before `start` and stops after `end` (None: the end of the stream).

    skip_nonref: tell the decoder to drop non-reference frames (B-frames), which halves decoding
        on typical H.264. None decides from the declared frame rate (`SKIP_NONREF_MIN_RATIO`).
    threads: decoder threads; 1 leaves the other cores to the encoder running beside it.

    Raises `VideoNotFoundError`, `NotAVideoError`, `NoVideoStreamError`, `CorruptVideoError`
    (decoding fails, or the stream stops well before its declared end) or `EmptyVideoError`.
    """
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
    path = Path(path)
    with _open_container(path) as container:
        stream = _video_stream(container, path)
        info = _describe(container, stream, path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        if skip_nonref is None:
            skip_nonref = should_skip_nonref(info.frame_rate, fps)
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"

        stream_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if start > 0:
            container.seek(round((stream_start + start) / stream.time_base), stream=stream, backward=True)
        stop = math.inf if end is None else stream_start + end + 1.0 / fps  # decode a little past `end`
        sampler: _Sampler | None = None
        frames: list[np.ndarray] = []
        times: list[float] = []
        last_time = -math.inf
        for frame in _decode_video(container, stream, path):
            if frame.time is not None and frame.time > stop:
                break
            if sampler is None:  # built on the first frame, which carries the rotation to undo
                sampler = _Sampler(stream, fps, size, stream_start, start, frame.rotation)
            for image, t in sampler.push(frame):
                if end is not None and t >= end - 1e-6:
                    continue
                frames.append(image)
                times.append(t)
                if len(frames) == batch_size:
                    last_time = times[-1]
                    yield _batch(frames, times)
                    frames, times = [], []
        if sampler is not None:
            for image, t in sampler.push(None):  # flush the filter graph
                if end is not None and t >= end - 1e-6:
                    continue
                frames.append(image)
                times.append(t)
        if frames:
            last_time = times[-1]
            yield _batch(frames, times)
    if last_time == -math.inf:
        raise EmptyVideoError(path, "the video stream decodes to zero frames")
    _check_complete(path, info, last_time, fps, end)


def should_skip_nonref(frame_rate: float | None, fps: float) -> bool:
    """Whether sampling at `fps` from a stream of `frame_rate` may drop non-reference frames."""
    return frame_rate is not None and frame_rate >= SKIP_NONREF_MIN_RATIO * fps


def _batch(frames: list[np.ndarray], times: list[float]) -> FrameBatch:
    return FrameBatch(np.stack(frames), np.asarray(times, dtype=np.float64))


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if path.is_dir():
        raise NotAVideoError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise NotAVideoError(path, "the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        if _looks_like_iso_media(path):
            raise CorruptVideoError(
                path, "an MP4/MOV file whose index cannot be read: truncated or corrupt"
            ) from exc
        raise NotAVideoError(path, f"not a video FFmpeg can read ({_ffmpeg_reason(exc)})") from exc


def _looks_like_iso_media(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def _ffmpeg_reason(exc: av.error.FFmpegError) -> str:
    return (getattr(exc, "strerror", None) or str(exc)).rstrip(".").lower()


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if moving:
        return moving[0]
    if container.streams.video:
        raise NoVideoStreamError(path, "has no video stream, only a still cover picture")
    kinds = sorted({s.type for s in container.streams}) or ["no"]
    raise NoVideoStreamError(path, f"has no video stream ({', '.join(kinds)} streams only)")


def _describe(container, stream, path: Path) -> VideoInfo:
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    rate = stream.average_rate or stream.base_rate
    return VideoInfo(
        path=path,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration=duration,
        frame_rate=float(rate) if rate else None,
        codec=stream.codec_context.name,
        has_audio=bool(container.streams.audio),
    )


#: FFmpeg filters that turn a frame stored with a display rotation (degrees counter-clockwise,
#: as phones record) upright, as FFmpeg's own command line does.
_UPRIGHT = {90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}


class _Sampler:
    """FFmpeg filter graph buffer -> fps -> [rotation] -> scale -> rgb24 -> sink."""

    def __init__(self, stream, fps: float, size: tuple[int, int], stream_start: float, start: float, rotation: float):
        height, width = size
        self._start = stream_start
        self._graph = graph = av.filter.Graph()
        filters = [
            # start_time anchors the sample grid (and trims frames before it): sample k sits at start + k / fps.
            # eof_action=pass keeps the last frame when the stream ends between two sample times
            # (otherwise a 1-frame video gives no sample at all).
            ("fps", f"fps={fps}:start_time={stream_start + start}:eof_action=pass"),
            *_UPRIGHT.get(round(rotation) % 360, []),
            ("scale", f"{width}:{height}:flags=bilinear"),
            ("format", "rgb24"),
        ]
        chain = [graph.add_buffer(template=stream), *(graph.add(name, args) for name, args in filters)]
        chain.append(graph.add("buffersink"))
        for upstream, downstream in zip(chain, chain[1:]):
            upstream.link_to(downstream)
        graph.configure()

    def push(self, frame: av.VideoFrame | None) -> Iterator[tuple[np.ndarray, float]]:
        """Feed one decoded frame (None at the end); yield the (rgb [H, W, 3], seconds) samples it releases."""
        self._graph.vpush(frame)
        while True:
            try:
                out = self._graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            yield out.to_ndarray(), float(out.time) - self._start


def _decode_video(container, stream, path: Path) -> Iterator[av.VideoFrame]:
    last = 0.0
    try:
        for frame in container.decode(stream):
            if frame.time is not None:
                last = frame.time
            yield frame
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(path, f"decoding failed near {last:.1f} s ({_ffmpeg_reason(exc)})") from exc


def _check_complete(path: Path, info: VideoInfo, last_time: float, fps: float, end: float | None) -> None:
    # A truncated file often decodes cleanly up to the cut: compare with the declared length.
    if info.duration is None:
        return
    expected_end = info.duration if end is None else min(end, info.duration)
    missing = expected_end - (last_time + 1.0 / fps)
    if missing > max(1.0, 0.05 * info.duration):
        raise CorruptVideoError(
            path,
            f"the video stream stops at {last_time:.1f} s but the file declares {info.duration:.1f} s: truncated?",
        )


def sample_strip(
    path: str | Path, count: int = 8, height: int = 96, start: float = 0.0, end: float | None = None
) -> FrameBatch:
    """About `count` frames spread evenly over [start, end) seconds of the video (end None: its
    end), `height` pixels high with the aspect kept.

    For previews (contact strips); decodes that stretch once, like `sample_frames`.
    """
    info = probe_video(path)
    stop = end if end is not None else (info.duration or 10.0)
    width = max(2, round(height * info.width / max(info.height, 1) / 2) * 2)
    fps = count / max(stop - start, 0.5)
    batches = list(sample_frames(path, fps=fps, size=(height, width), batch_size=count, start=start, end=end))
    frames = np.concatenate([b.frames for b in batches])[:count]
    times = np.concatenate([b.times for b in batches])[:count]
    return FrameBatch(frames, times)
