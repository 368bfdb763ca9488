"""`make demo`: framegrams of the real sample videos, rendered into one self-contained HTML report.

Capabilities add report sections with `@demo_section(order)`: a function that takes the
`DemoContext` (videos, their framegrams, timings, output folder) and returns a `Section`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framegram.batch import extract_folder
from framegram.encoders import FrameEncoder, get_encoder
from framegram.errors import FramegramError
from framegram.extract import DEFAULT_FPS, ExtractTiming
from framegram.framegram import Framegram
from framegram.io.decode import probe_video, sample_strip
from framegram.media import sample_videos
from framegram.plotting import frame_strip_figure, save_figure
from framegram.report import Report, Section, figure_img, paragraph, table


@dataclass
class DemoContext:
    """What every demo section can draw on."""

    out_dir: Path
    encoder: FrameEncoder
    videos: list[Path]
    framegrams: dict[Path, Framegram]
    timings: dict[Path, ExtractTiming]  #: only for videos extracted in this run (not cached ones)
    failed: dict[Path, str] = field(default_factory=dict)
    show_progress: bool = True


SectionBuilder = Callable[[DemoContext], Section]
_SECTIONS: list[SectionBuilder] = []


def demo_section(builder: SectionBuilder) -> SectionBuilder:
    """Register `builder` to contribute a section to the demo report."""
    _SECTIONS.append(builder)
    return builder


def run_demo(out_dir: str | Path = "demo-output", show_progress: bool = True) -> Path:
    """Extract, render and report; returns the path of report.html. Reruns reuse finished framegrams."""
    out_dir = Path(out_dir)
    videos = sample_videos()
    encoder = get_encoder()
    started = time.perf_counter()
    batch = extract_folder(videos, out_dir / "framegrams", encoder=encoder, show_progress=show_progress)
    framegrams = {v: Framegram.load(p) for v, p in {**batch.skipped, **batch.done}.items()}
    if not framegrams:
        raise FramegramError(f"no sample video could be extracted: {batch.failed}")
    ctx = DemoContext(out_dir, encoder, videos, framegrams, batch.timings, batch.failed, show_progress)
    report = Report("framegram demo")
    for builder in _SECTIONS:
        report.add(builder(ctx))
    report.add(Section("Run", paragraph(f"Whole demo took {time.perf_counter() - started:.1f} s."), order=1000))
    return report.write(out_dir / "report.html")


@demo_section
def _framegrams_section(ctx: DemoContext) -> Section:
    parts = [
        paragraph(
            f"Each video is sampled at {DEFAULT_FPS:g} frames/s and every frame passes through "
            f"{ctx.encoder.spec.name} ({ctx.encoder.spec.dim}-d ImageNet features). The picture shows the "
            "[T x D] feature matrix min-max scaled to [0, 1]: time runs left to right, one row per feature. "
            "A steady shot is a band of near-identical columns; a cut is a vertical seam."
        )
    ]
    pictures = ctx.out_dir / "pictures"
    for video, fg in ctx.framegrams.items():
        info = probe_video(video)
        strip = sample_strip(video, count=8)
        parts.append(f"<h3>{video.name}</h3>")
        parts.append(
            paragraph(
                f"{info.width}x{info.height} {info.codec}, {info.duration or 0:.1f} s at "
                f"{info.frame_rate or 0:.2f} fps -> framegram {len(fg)} x {fg.dim}"
            )
        )
        parts.append(figure_img(frame_strip_figure(strip.frames, strip.times), alt=f"frames of {video.name}"))
        save_figure(fg.render(), pictures / f"{video.stem}.png")
        parts.append(figure_img(fg.render(height_in=3.0), alt=f"framegram of {video.name}"))
    for video, reason in ctx.failed.items():
        parts.append(paragraph(f"{video.name}: failed: {reason}"))
    return Section("Framegrams of the sample videos", "\n".join(parts), order=10)


@demo_section
def _timings_section(ctx: DemoContext) -> Section:
    rows = []
    for video, fg in ctx.framegrams.items():
        timing = ctx.timings.get(video)
        if timing is None:
            rows.append([video.name, fg.duration, len(fg), "cached", "", ""])
        else:
            rows.append(
                [video.name, fg.duration, timing.frames, timing.wall_seconds, timing.frames_per_second, timing.times_real_time]
            )
    body = table(["video", "seconds", "frames", "wall s", "frames/s", "x real time"], rows) + paragraph(
        f"Encoder backend: {ctx.encoder.backend}. Timings cover decoding, resizing and the encoder, "
        "overlapped; 'cached' means the framegram was made by an earlier run and reused."
    )
    return Section("Extraction timings", body, order=20)
