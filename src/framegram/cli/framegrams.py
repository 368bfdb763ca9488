"""`framegram extract | show | info | shots | keyframes | encoders`: framegram files and what is read from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import ActorsOption, AddressOption, EngineOption, extract_many, fail


def extract(
    inputs: Annotated[list[Path], typer.Argument(help="Video files and/or folders (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .framegram.npz files.")],
    fps: Annotated[float, typer.Option(help="Samples per second.")] = 5.0,
    encoder: Annotated[str, typer.Option(help="Frame encoder (see `framegram encoders`).")] = "efficientnet-lite0",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    engine: EngineOption = "local",
    address: AddressOption = None,
    actors: ActorsOption = None,
) -> None:
    """Extract framegrams; videos already done are skipped, bad files are listed at the end."""
    if fps <= 0:
        raise fail(f"--fps must be positive, got {fps}")
    result = extract_many(inputs, out, encoder, fps, quiet, engine, address, actors)
    if not quiet or result.failed:
        typer.echo(
            f"{len(result.done)} extracted, {len(result.skipped)} already done, {len(result.failed)} failed",
            err=bool(result.failed),
        )
    for video, reason in result.failed.items():
        typer.echo(f"failed: {video}: {reason}", err=True)
    if result.failed:
        raise typer.Exit(1)


def show(
    file: Annotated[Path, typer.Argument(help="A .framegram.npz file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write (.png, .svg, .pdf).")],
) -> None:
    """Draw the framegram picture: features min-max scaled, time in seconds along x."""
    from framegram.framegram import Framegram

    Framegram.load(file).render(out)
    typer.echo(str(out))


def info(
    file: Annotated[Path, typer.Argument(help="A .framegram.npz file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
) -> None:
    """Print a framegram's shape, time span, source and encoder."""
    from framegram.framegram import Framegram

    fg = Framegram.load(file)
    meta = fg.meta
    if as_json:
        typer.echo(json.dumps({"frames": len(fg), "dim": fg.dim, **json.loads(meta.to_json())}, indent=2))
        return
    src = meta.source
    lines = [
        f"file       {file}",
        f"shape      {len(fg)} x {fg.dim} (T x D)",
        f"times      {fg.times[0]:.2f} .. {fg.times[-1]:.2f} s at {meta.fps:g} samples/s",
        f"source     {src.path}  ({src.width}x{src.height}, {src.codec}, "
        f"{src.duration if src.duration is not None else float('nan'):.2f} s, sha256 {src.sha256[:16]}...)",
        f"encoder    {meta.encoder.name} ({meta.encoder.version})",
        f"preproc    {meta.encoder.preprocessing}",
        f"schema     {meta.schema_version} (framegram {meta.framegram_version})",
    ]
    typer.echo("\n".join(lines))


def shots(
    source: Annotated[Path, typer.Argument(help="A video, or a .framegram.npz file.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for <name>.scenes.csv and .json (default: beside the input).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect shot boundaries: cuts and gradual transitions (fades, dissolves); writes CSV and JSON."""
    from framegram.cache import framegram_for
    from framegram.keyframes import detect_shots
    from framegram.keyframes.output import write_shot_list

    fg, cached = framegram_for(source, show_progress=not quiet)
    shot_list = detect_shots(fg)
    stem = (out or source.parent) / source.name.removesuffix(".framegram.npz").rsplit(".", 1)[0]
    csv_path, json_path = write_shot_list(fg, shot_list, stem)
    for b in shot_list.boundaries:
        span = f"{b.start:8.2f} s" if b.kind == "cut" else f"{b.start:8.2f} - {b.end:.2f} s"
        typer.echo(f"{b.kind:8s} {span}")
    typer.echo(
        f"{len(shot_list.shots)} shots, {len(shot_list.boundaries)} boundaries "
        f"({'cached' if cached else 'new'} framegram) -> {csv_path}, {json_path}"
    )


def keyframes(
    source: Annotated[Path, typer.Argument(help="A video, or a .framegram.npz file whose source video still exists (found by content if moved beside it).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for keyframe images, contact_sheet.png, keyframes.json.")],
    n: Annotated[int | None, typer.Option("-n", help="Number of keyframes (default: one per shot).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Pick one sharp, representative keyframe per shot (or -n of them) and write images and a contact sheet."""
    from framegram.cache import framegram_for, is_framegram_file
    from framegram.framegram import find_source_video
    from framegram.keyframes import detect_shots, select_keyframes
    from framegram.keyframes.output import write_keyframes

    if n is not None and n < 1:
        raise fail(f"-n must be at least 1, got {n}")
    fg, _ = framegram_for(source, show_progress=not quiet)
    video = find_source_video(fg, source) if is_framegram_file(source) else source
    chosen = select_keyframes(fg, detect_shots(fg), n)
    index = write_keyframes(video, fg, chosen, out)
    typer.echo(f"{len(chosen)} keyframes -> {out} (contact_sheet.png, {index.name})")


def encoders() -> None:
    """List the registered frame encoders."""
    from framegram.encoders import list_encoders

    typer.echo("\n".join(list_encoders()))
