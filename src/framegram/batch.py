"""Extract many videos into a folder of framegram files: resumable, and going on past bad files.

A video counts as done when its framegram file exists, loads, and matches the source content
hash, the encoder and the sampling rate; done videos are skipped on the next run. Files are
written atomically, so a run killed half-way leaves only whole framegrams behind (and temporary
files, which the next write into the folder removes: see `io.atomic`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from framegram.encoders import FrameEncoder
from framegram.errors import FramegramError, InputError, VideoNotFoundError
from framegram.extract import DEFAULT_FPS, ExtractTiming, extract, resolve_encoder
from framegram.framegram import FILE_SUFFIX, Framegram
from framegram.io.decode import VIDEO_EXTENSIONS
from framegram.io.hashing import sha256_file
from framegram.progress import extraction_progress


@dataclass
class BatchResult:
    """What happened to each input of `extract_folder`."""

    done: dict[Path, Path] = field(default_factory=dict)  #: video -> framegram written now
    skipped: dict[Path, Path] = field(default_factory=dict)  #: video -> framegram already there
    failed: dict[Path, str] = field(default_factory=dict)  #: video -> one-line reason
    timings: dict[Path, ExtractTiming] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def record(self, video: Path, target: Path, timing: ExtractTiming | None) -> None:
        """A video extracted now (timing) or found done already (None)."""
        if timing is None:
            self.skipped[video] = target
        else:
            self.done[video], self.timings[video] = target, timing


def find_videos(inputs: Iterable[str | Path], framegrams: bool = False) -> list[Path]:
    """Files as given (whatever their extension) plus the videos found under given folders.

    Folders are searched recursively for `VIDEO_EXTENSIONS` (and `.framegram.npz` files when
    `framegrams`); hidden files are ignored. Order is kept, duplicates dropped. A path that does not
    exist is kept, so it is reported as failed.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(
                p for p in item.rglob("*")
                if p.is_file() and not p.name.startswith(".")
                and (p.suffix.lower() in VIDEO_EXTENSIONS or framegrams and p.name.endswith(FILE_SUFFIX))
            )
        else:
            found.append(item)
    return list(dict.fromkeys(found))


def find_videos_with_ids(inputs: Iterable[str | Path], framegrams: bool = False) -> list[tuple[Path, str]]:
    """`find_videos`, each with an id that stays unique where file names do not: the path inside
    the folder given for videos found under a folder (`clips/a/x.mp4` from `clips` -> "a/x.mp4"),
    the file name for files given directly; a `.framegram.npz` suffix is dropped."""
    found: dict[Path, str] = {}
    for item in map(Path, inputs):
        for video in find_videos([item], framegrams):
            name = video.relative_to(item).as_posix() if item.is_dir() else video.name
            found.setdefault(video, name.removesuffix(FILE_SUFFIX))
    return list(found.items())


def output_paths(videos: list[Path], out_dir: Path) -> dict[Path, Path]:
    """`out_dir/<stem>.framegram.npz`; videos sharing a stem get a short hash of their path added."""
    stems: dict[str, int] = {}
    for video in videos:
        stems[video.stem] = stems.get(video.stem, 0) + 1
    out = {}
    for video in videos:
        name = video.stem
        if stems[name] > 1:
            name += "-" + hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:8]
        out[video] = out_dir / f"{name}{FILE_SUFFIX}"
    return out


def is_up_to_date(framegram_path: Path, video_sha256: str, encoder: FrameEncoder, fps: float) -> bool:
    """True when `framegram_path` is a whole framegram of this content, encoder and rate."""
    if not framegram_path.exists():
        return False
    try:
        meta = Framegram.load(framegram_path, expect_encoder=encoder.spec).meta
    except FramegramError:
        return False  # damaged, foreign or stale: extract again
    return meta.source.sha256 == video_sha256 and meta.fps == fps


def extract_folder(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    encoder: FrameEncoder | str | None = None,
    fps: float = DEFAULT_FPS,
    show_progress: bool = True,
) -> BatchResult:
    """Extract every video in `inputs` (files or folders) to `out_dir`, skipping those already done.

    Bad inputs are recorded in `result.failed` with a one-line reason and the batch goes on.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = resolve_encoder(encoder)
    videos = find_videos(inputs)
    targets = output_paths(videos, out_dir)
    result = BatchResult()
    with extraction_progress(show_progress) as bars:
        overall = bars.add_task("videos", total=len(videos), fps=None)
        for video in videos:
            target = targets[video]
            try:
                timing = extract_video_to(video, target, encoder, fps, bars)
            except EXTRACTION_ERRORS as exc:
                result.failed[video] = failure_reason(exc)
            else:
                result.record(video, target, timing)
                if timing is not None:
                    report_done(bars, video, timing)
            bars.advance(overall)
    return result


#: what one bad video may raise without stopping a batch (the unexpected ones too: OSError from a
#: full disk, RuntimeError or ValueError from a decoder library)
EXTRACTION_ERRORS = (FramegramError, OSError, RuntimeError, ValueError)


def failure_reason(exc: Exception) -> str:
    """One line saying why a video could not be extracted."""
    if isinstance(exc, InputError):
        return exc.reason
    if isinstance(exc, FramegramError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def report_done(bars: Progress, video: Path, timing: ExtractTiming) -> None:
    if not bars.disable:
        bars.console.print(
            f"[green]done[/] {video.name}: {timing.frames} frames, "
            f"{timing.frames_per_second:.1f} frames/s, {timing.times_real_time:.1f}x real time"
        )


def extract_video_to(video: Path, target: Path, encoder: FrameEncoder, fps: float, bars: Progress | None = None) -> ExtractTiming | None:
    """Extract `video` into `target` (atomically) unless it is up to date there (then None).
    bars: where to show the video's own progress bar, if anywhere."""
    if not video.is_file():
        raise VideoNotFoundError(video, "no such file")
    digest = sha256_file(video)
    if is_up_to_date(target, digest, encoder, fps):
        return None
    task = bars.add_task(video.name, total=None, fps=fps) if bars is not None else None
    try:
        framegram, timing = extract(
            video, encoder, fps, source_sha256=digest,
            progress=(lambda n, total: bars.update(task, completed=n, total=total)) if bars is not None else None,
        )
    finally:
        if bars is not None:
            bars.remove_task(task)
    framegram.save(target)
    return timing

