"""`framegram vid2vid train | generate`: video-to-video synthesis from label-map videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import fail

vid2vid_app = typer.Typer(no_args_is_help=True, help="Turn label-map videos into videos consistent in time (a conditional GAN, trained on CPU).")


@vid2vid_app.command("train")
def train(
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoint every epoch; a rerun resumes).")],
    variant: Annotated[str, typer.Option(help="vid2vid, per-frame (the baseline), no-video-discriminator or no-flow-warp.")] = "vid2vid",
    steps: Annotated[int, typer.Option(help="Generator updates in all.")] = 1500,
    size: Annotated[int, typer.Option(help="Frame side of the generated training scenes (64 or 128).")] = 64,
    scenes: Annotated[int, typer.Option(help="Training scenes to generate (the renderer is the ground truth).")] = 240,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train on generated label-map videos (shapes textured with real footage, camera motion)."""
    from framegram.datasets.label_videos import build_label_videos
    from framegram.vid2vid.train import VARIANTS, Vid2VidConfig, train_vid2vid

    if variant not in VARIANTS:
        raise fail(f"--variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if size not in (64, 128) or steps < 1 or scenes < 1:
        raise fail("--size must be 64 or 128, --steps and --scenes at least 1")
    data = build_label_videos(size, train=scenes, test=48, show_progress=not quiet)
    result = train_vid2vid(Vid2VidConfig(variant=variant, steps=steps, seed=seed), data.train, out, show_progress=not quiet)
    typer.echo(f"{variant}: {result['params']:,} parameters, {result['train_s']:.0f} s of training -> {out}")


@vid2vid_app.command("generate")
def generate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="A run folder of `framegram vid2vid train`.")],
    labels: Annotated[Path, typer.Argument(help="Label-map video: .npz with 'labels' [T, H, W], or a folder of PNG class-index images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Video file to write (.mp4).")],
    fps: Annotated[float, typer.Option(help="Frame rate of the written video.")] = 8.0,
    scale: Annotated[int, typer.Option(help="Enlarge each side this many times (nearest) when writing.")] = 1,
) -> None:
    """Generate a video from a label-map video."""
    from framegram.vid2vid.evaluate import generate_video
    from framegram.vid2vid.files import read_label_video, write_video
    from framegram.vid2vid.train import load_generator

    if not checkpoint.exists():
        raise fail(f"{checkpoint}: no such run folder")
    if fps <= 0 or scale < 1:
        raise fail("--fps must be positive and --scale at least 1")
    video = generate_video(load_generator(checkpoint), read_label_video(labels))
    write_video(video, out, fps, scale)
    typer.echo(f"{len(video)} frames -> {out}")
