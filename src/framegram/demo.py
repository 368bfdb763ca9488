"""`make demo`: framegrams of the real sample videos, rendered into one self-contained HTML report.

Each capability's report module offers a section builder (`framegram.report.sections.DemoContext`
in, a `Section` out); `SECTIONS` at the end of this module lists every builder the demo runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from framegram.align import locate
from framegram.brain.report import brain_demo_section
from framegram.encoders import get_encoder
from framegram.errors import FramegramError
from framegram.extract import DEFAULT_FPS, extract
from framegram.framegram import FILE_SUFFIX
from framegram.io.decode import probe_video, sample_strip
from framegram.keyframes.report import keyframes_section
from framegram.media import sample_videos
from framegram.io.atomic import atomic_write_bytes
from framegram.plotting import frame_strip_figure
from framegram.report import Report, Section, figure_img, heading, paragraph, png_img, table
from framegram.report.html import figure_png
from framegram.report.results import default_results_dir
from framegram.report.sections import DemoContext, SectionBuilder
from framegram.search.report import search_section
from framegram.connectome.report import connectome_demo_section
from framegram.vae.report import vae_demo_section
from framegram.vid2vid.report import vid2vid_demo_section
from framegram.video_models.report import classification_demo_section


def run_demo(out_dir: str | Path = "demo-output", show_progress: bool = True, results: str | Path | None = None) -> Path:
    """Extract, render and report; returns the path of report.html. `results`: the folder of recorded
    benchmark results (classify.json, vae.json, vae/), default `framegram.report.results.default_results_dir()`."""
    out_dir = Path(out_dir)
    results = default_results_dir() if results is None else Path(results)
    videos = sample_videos()
    encoder = get_encoder()
    started = time.perf_counter()
    framegrams, timings, failed = {}, {}, {}
    # The sample videos are short: extract them every run so the timings are always this run's.
    for video in videos:
        try:
            framegrams[video], timings[video] = extract(video, encoder)
        except FramegramError as exc:
            failed[video] = str(exc)
            continue
        framegrams[video].save(out_dir / "framegrams" / f"{video.stem}{FILE_SUFFIX}")
        if show_progress:
            t = timings[video]
            print(f"{video.name}: {t.frames} frames, {t.frames_per_second:.0f} frames/s, {t.times_real_time:.1f}x real time")
    if not framegrams:
        raise FramegramError(f"no sample video could be extracted: {failed}")
    ctx = DemoContext(out_dir, encoder, videos, framegrams, timings, failed, show_progress, results)
    report = Report("framegram demo")
    for builder in SECTIONS:
        report.add(builder(ctx))
    report.add(Section("Run", [paragraph(f"Whole demo took {time.perf_counter() - started:.1f} s.")], order=1000))
    return report.write(out_dir / "report.html")


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
        parts.append(heading(video.name))
        parts.append(
            paragraph(
                f"{info.width}x{info.height} {info.codec}, {info.duration or 0:.1f} s at "
                f"{info.frame_rate or 0:.2f} fps -> framegram {len(fg)} x {fg.dim}"
            )
        )
        parts.append(figure_img(frame_strip_figure(strip.frames, strip.times), alt=f"frames of {video.name}"))
        png = figure_png(fg.render())
        atomic_write_bytes(pictures / f"{video.stem}.png", png)
        parts.append(png_img(png, alt=f"framegram of {video.name}"))
    for video, reason in ctx.failed.items():
        parts.append(paragraph(f"{video.name}: failed: {reason}"))
    return Section("Framegrams of the sample videos", parts, order=10)


def _similarity_section(ctx: DemoContext) -> Section:
    """Best sliding alignment score between every pair: copies of the same content stand out."""
    import matplotlib.pyplot as plt

    names = [v.name for v in ctx.framegrams]
    fgs = list(ctx.framegrams.values())
    scores = np.zeros((len(fgs), len(fgs)), dtype=np.float32)
    for i, a in enumerate(fgs):
        for j, b in enumerate(fgs):
            short, long = (a, b) if len(a) <= len(b) else (b, a)
            scores[i, j] = locate(short, long).score
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    image = ax.imshow(scores, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center", fontsize=8, color="w" if scores[i, j] < 0.6 else "k")
    fig.colorbar(image, ax=ax, label="mean cosine at best offset")
    fig.tight_layout()
    text = (
        "Each pair of framegrams is aligned by sliding the shorter along the longer; the number is the mean "
        "cosine similarity of the aligned rows at the best offset."
    )
    if {"carphone_pristine.mp4", "carphone_distorted.mp4"} <= set(names):
        i, j = names.index("carphone_pristine.mp4"), names.index("carphone_distorted.mp4")
        others = [scores[a, b] for a in range(len(names)) for b in range(len(names)) if a != b and {a, b} != {i, j}]
        text += (
            f" carphone_distorted is a heavily compressed copy of carphone_pristine: its pixels are ruined, yet the "
            f"pair scores {scores[i, j]:.2f}"
            + (f", against at most {max(others):.2f} for pairs of different videos." if others else ".")
        )
    body = [paragraph(text), figure_img(fig, alt="pairwise framegram similarity")]
    return Section("Same content, different pixels", body, order=15)


def _timings_section(ctx: DemoContext) -> Section:
    rows = [
        [video.name, fg.duration, t.frames, t.wall_seconds, t.frames_per_second, t.times_real_time]
        for (video, fg), t in zip(ctx.framegrams.items(), ctx.timings.values())
    ]
    body = [
        table(["video", "seconds", "frames", "wall s", "frames/s", "x real time"], rows),
        paragraph(
            f"Encoder backend: {ctx.encoder.backend}. Timings cover decoding, resizing and the encoder, "
            "overlapped (see bench/extract.py for throughput on a 10-minute film)."
        ),
    ]
    return Section("Extraction timings", body, order=20)


#: every section of the demo report, in the order they are built (`Section.order` places them in the page)
SECTIONS: tuple[SectionBuilder, ...] = (
    keyframes_section, search_section, brain_demo_section, connectome_demo_section, classification_demo_section, vae_demo_section,
    vid2vid_demo_section,
    _framegrams_section, _similarity_section, _timings_section,
)
