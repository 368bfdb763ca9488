"""`framegram index ... | search | fingerprint train`: the video search index, queries and learned fingerprints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import ActorsOption, AddressOption, EngineOption, extract_many, fail
from framegram.errors import FramegramError


index_app = typer.Typer(no_args_is_help=True, help="Build and inspect a video search index (a directory).")
IndexOption = Annotated[Path, typer.Option("--index", "-i", help="The index directory.")]


@index_app.command("add")
def index_add(
    videos: Annotated[list[Path], typer.Argument(help="Video files, .framegram.npz files and/or folders (searched recursively).")],
    index: IndexOption,
    fingerprint: Annotated[str, typer.Option(help="For a new index: 'hand' (the hand-designed fingerprint) or "
                                             "'learned:RUN' (a run of `framegram fingerprint train`).")] = "hand",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    engine: EngineOption = "local",
    address: AddressOption = None,
    actors: ActorsOption = None,
    framegrams: Annotated[Path | None, typer.Option("--framegrams", help="With --engine ray: folder for the videos' framegrams "
                                                    "(shared by the cluster's nodes; default: INDEX-framegrams beside the index).")] = None,
) -> None:
    """Add videos; creates the index if needed, skips content already in it, lists the items it could
    not add and goes on. Ids: the path inside a folder given (clips/a/x.mp4 from clips: a/x.mp4), or
    the file name of a file given directly. With --engine ray the videos are extracted on the
    cluster into --framegrams first, then those framegrams are added."""
    from framegram.batch import find_videos_with_ids
    from framegram.framegram import FILE_SUFFIX
    from framegram.search import VideoIndex, add_videos
    from framegram.search.basis import default_basis
    from framegram.search.learned import fingerprint_from_spec

    failed: dict[Path, str] = {}
    found = find_videos_with_ids(videos, framegrams=True)
    not_extracted = 0
    if engine != "local" or address is not None or actors is not None:
        to_extract = [v for v, _ in found if not v.name.endswith(FILE_SUFFIX)]
        out = framegrams or index.parent / f"{index.name}-framegrams"
        # the framegrams the index describes: its own encoder and rate, or the new index's fingerprint's
        describer = VideoIndex.open(index).fingerprint if (index / "index.sqlite").exists() else (
            fingerprint_from_spec(fingerprint) or default_basis())
        result = extract_many(to_extract, out, describer.encoder_name, describer.fps, quiet, engine, address, actors)
        failed.update(result.failed)
        not_extracted = len(result.failed)
        extracted = {**result.done, **result.skipped}
        found = [(extracted.get(v, v), ref_id) for v, ref_id in found if v not in result.failed]
    added = add_videos([v for v, _ in found], index, ref_ids=[i for _, i in found], show_progress=not quiet,
                       on_error=lambda v, e: failed.setdefault(v, str(e)), fingerprint=fingerprint_from_spec(fingerprint))
    typer.echo(f"{len(added)} added, {len(found) - len(added) - len(failed) + not_extracted} already indexed, {len(failed)} failed -> {index}")
    for video, reason in failed.items():
        typer.echo(f"failed: {reason if str(video) in reason else f'{video}: {reason}'}", err=True)
    if failed:
        raise typer.Exit(1)


@index_app.command("info")
def index_info(
    index: IndexOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON, with the list of videos.")] = False,
) -> None:
    """How many videos and seconds the index holds, its size, and what the fingerprints are."""
    from dataclasses import asdict

    from framegram.search import VideoIndex

    ix = VideoIndex.open(index)
    info = ix.info()
    if as_json:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
        data["videos_list"] = [asdict(ix.videos[r]) for r in ix.ref_ids]
        typer.echo(json.dumps(data, indent=2))
        return
    removed = f"; {info.tombstoned_seconds} s of removed videos await `framegram index compact`" if info.tombstoned_seconds else ""
    typer.echo("\n".join([
        f"index     {info.folder}",
        f"videos    {info.videos}",
        f"indexed   {info.seconds} s ({info.seconds / 3600:.2f} h){removed}",
        f"segments  {info.segments} ({info.flat_segments} flat), generation {info.generation}",
        f"storage   {info.bytes_on_disk / 1e6:.2f} MB on disk: {info.disk_bytes_per_second:.1f} bytes per indexed second "
        f"({info.vector_bytes_per_second:.0f} of fine codes); {info.memory_bytes_per_second:.1f} in memory when open",
        f"tiers     {info.tiers}",
        f"encoder   {info.encoder} at {info.fps:g} fps; {ix.fingerprint.dims}-dim fingerprints, one per second",
        f"describer {info.fingerprint}",
    ]))


@index_app.command("compact")
def index_compact(
    index: IndexOption,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Merge the index's segments into one, dropping removed videos' rows (and encoding flat segments
    with the trained tiers). Readers keep working meanwhile; an interrupted compaction changes nothing."""
    from framegram.search import VideoIndex

    done = VideoIndex.open(index).compact(show_progress=not quiet)
    typer.echo(f"{index}: {done['segments_before']} segments -> 1, {done['tombstoned_seconds_dropped']} s of removed "
               f"videos dropped, {done['seconds']} s indexed ({done['s']:.1f} s)")


@index_app.command("check")
def index_check(index: IndexOption) -> None:
    """Verify the index: its fingerprint against the records, every segment file against its checksum,
    every video's rows. Exit 0 when sound; one line naming what is damaged otherwise."""
    from framegram.search import VideoIndex

    ix = VideoIndex.open(index)  # the fingerprint, checksum and row checks
    problems = ix.verify()
    if problems:
        raise FramegramError(f"{index}: damaged: " + "; ".join(problems))
    typer.echo(f"{index}: sound ({len(ix)} videos, {ix.total_rows} indexed seconds in {len(ix.segments)} segments, "
               f"generation {ix.generation}; every file's checksum verified)")


@index_app.command("remove")
def index_remove(
    ref_ids: Annotated[list[str], typer.Argument(help="Ids of the videos to remove (see `index info --json`).")],
    index: IndexOption,
) -> None:
    """Remove videos from the index: their rows become tombstones, dropped by `framegram index compact`."""
    from framegram.search import VideoIndex

    removed = VideoIndex.open(index).remove(ref_ids)
    typer.echo(f"{len(removed)} removed from {index}")


def search_command(
    clip: Annotated[Path, typer.Argument(help="The query clip (a video file).")],
    index: IndexOption,
    top: Annotated[int, typer.Option("--top", "-k", help="Matches to print at most.")] = 5,
    threshold: Annotated[float | None, typer.Option(help="Minimum score (default: the calibrated one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matches as JSON.")] = False,
) -> None:
    """Which indexed video the clip comes from and where: ranked matches with timestamps."""
    from dataclasses import asdict

    from framegram.search import search

    if top < 1:
        raise fail(f"--top must be at least 1, got {top}")
    matches = search(clip, index, top_k=top, threshold="calibrated" if threshold is None else threshold)
    if as_json:
        typer.echo(json.dumps([asdict(m) for m in matches], indent=2))
        return
    if not matches:
        typer.echo(f"no match for {clip.name} (no score reaches the threshold)")
        return
    for rank, m in enumerate(matches, 1):
        typer.echo(
            f"{rank}. {m.ref_id}  {_clock(m.ref_start)}-{_clock(m.ref_end)}  "
            f"(clip {m.query_start:.1f}-{m.query_end:.1f} s)  score {m.score:.3f}"
        )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:05.2f}"


fingerprint_app = typer.Typer(no_args_is_help=True, help="Learned fingerprints: a network over framegram windows for the index.")


@fingerprint_app.command("train")
def fingerprint_train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (rerun the same command to resume).")],
    epochs: Annotated[int, typer.Option(help="Passes of steps-per-epoch batches.")] = 30,
    window: Annotated[float, typer.Option(help="Window length in seconds.")] = 2.0,
    dims: Annotated[int, typer.Option(help="Embedding size: bytes per indexed second.")] = 64,
    extra_sources: Annotated[int, typer.Option(help="Extra generated training videos (a multiple of 160; 2 distorted copies each).")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a learned fingerprint on distorted copies of generated videos (rendered and cached the
    first time); writes RUN/fingerprint.npz for `framegram index add --fingerprint learned:RUN`."""
    from framegram.search.contrastive import ContrastiveConfig, default_training_data, train_fingerprint

    try:
        train_set, val_set = default_training_data(extra_sources, show_progress=not quiet)
        config = ContrastiveConfig(window_frames=max(1, round(window * train_set.fps)), dims=dims, epochs=epochs, seed=seed)
    except ValueError as e:
        raise FramegramError(str(e)) from None
    fingerprint = train_fingerprint(config, train_set, val_set, out, show_progress=not quiet)
    typer.echo(f"{fingerprint.summary}; threshold {fingerprint.threshold:.3f} -> {out / 'fingerprint.npz'}")
