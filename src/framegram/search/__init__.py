"""Content-based video search: which indexed video a clip comes from, and where.

    from framegram.search import add_videos, search
    add_videos(["film.mp4", "talk.mp4"], index="my-index")      # framegram index add ... --index
    for m in search("clip.mp4", index="my-index"):               # framegram search clip.mp4 --index
        print(m.ref_id, m.ref_start, m.ref_end, m.score)

Pieces: `fingerprint` (per-second descriptors), `basis` (the packaged whitening), `index` (FAISS +
SQLite directory), `query` (the views of a query clip), `matcher` (candidates, background,
temporal alignment), `match` (the result row), `fingerprint_protocol` (what a fingerprint
provides), `metrics` (VSC22 µAP and match files); the benchmark's baselines live in bench/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from framegram.errors import FramegramError
from framegram.search.fingerprint_protocol import Fingerprint
from framegram.search.index import IndexedVideo, IndexInfo, SearchIndexError, VideoIndex, check_same_fingerprint
from framegram.search.match import Match
from framegram.search.matcher import DEFAULT_THRESHOLD, MatchSettings, match

__all__ = [
    "DEFAULT_THRESHOLD", "IndexInfo", "IndexedVideo", "Match", "MatchSettings", "SearchIndexError", "VideoIndex",
    "add_videos", "open_or_create", "search",
]


def open_or_create(index: str | Path, encoder: str = "efficientnet-lite0", fps: float = 5.0,
                   fingerprint: Fingerprint | None = None) -> VideoIndex:
    """Open the index directory, or create it with `fingerprint` (default: the packaged basis for
    `encoder` at `fps`). An existing index made with another fingerprint than a given one is refused."""
    from framegram.search.basis import default_basis

    folder = Path(index)
    if (folder / "index.sqlite").exists():
        opened = VideoIndex.open(folder)
        if fingerprint is not None:
            check_same_fingerprint(opened, fingerprint)
        return opened
    return VideoIndex.create(folder, fingerprint if fingerprint is not None else default_basis(encoder, fps), exist_ok=True)


def add_videos(
    videos: Iterable[str | Path],
    index: str | Path | VideoIndex,
    ref_ids: Iterable[str] | None = None,
    show_progress: bool = False,
    on_error: Callable[[Path, Exception], None] | None = None,
    fingerprint: Fingerprint | None = None,
) -> list[str]:
    """Add videos or .framegram.npz files (extracted elsewhere: they are read, never decoded again) to
    the index, creating it if needed; returns the ids added. Framegrams already in memory go to
    `VideoIndex.add` as (ref_id, framegram) pairs.

    fingerprint: what describes the videos in a new index (default: the packaged hand-designed
    basis); an existing index made with another one is refused.
    ref_ids: one id per video (default: the file name; `framegram.batch.find_videos_with_ids`
    gives ids that stay unique under a folder). Framegrams are extracted once and cached, and
    videos are committed in small groups, so an interrupted run resumes where it stopped; content
    already in the index is skipped. on_error(path, error): called for an item that cannot be
    added (unreadable, a framegram of another encoder or rate, an id taken by other content), which
    is then skipped while the others go on; without it the first error propagates, after what came
    before it is committed.
    """
    from rich.progress import track

    from framegram.cache import framegram_for

    videos = [Path(v) for v in videos]
    ids = list(ref_ids) if ref_ids is not None else [v.name.removesuffix(".framegram.npz") for v in videos]
    if len(ids) != len(videos):
        raise ValueError(f"{len(ids)} ids for {len(videos)} videos")
    target = index if isinstance(index, VideoIndex) else open_or_create(index, fingerprint=fingerprint)
    given = {}  # ref_id -> the path the caller gave, for messages

    def report(video: Path, error: FramegramError) -> None:
        if on_error is None:
            raise error
        on_error(video, error)

    def framegrams():
        # one bar over the items; a single video shows its extraction's own bar instead (rich draws one
        # live display at a time)
        items = zip(ids, videos)
        if show_progress and len(videos) > 1:
            items = track(items, total=len(videos), description="indexing")
        for ref_id, video in items:
            try:
                framegram, _ = framegram_for(video, target.fingerprint.encoder_name, target.fingerprint.fps,
                                             show_progress and len(videos) == 1)
                target.fingerprint.check(framegram, path=video)
            except FramegramError as e:
                report(video, e)
                continue
            given.setdefault(ref_id, video)
            yield ref_id, framegram

    def index_error(ref_id: str, error: FramegramError) -> None:
        report(given[ref_id], error)

    return target.add(framegrams(), commit_every=10, on_error=index_error if on_error else None)


def search(
    clip: str | Path,
    index: str | Path | VideoIndex,
    top_k: int = 5,
    threshold: float | None | str = "calibrated",
    query_id: str | None = None,
    encoder=None,
) -> list[Match]:
    """Where the clip (a video file) appears in the index, best first; [] means no match.

    threshold: minimum score; "calibrated": the index fingerprint's calibrated threshold;
    None: the best `top_k` whatever their score, as for µAP.
    encoder: a loaded FrameEncoder of the index's encoder, to reuse (default: load it).
    """
    from dataclasses import replace

    from framegram.search.query import query_views

    target = index if isinstance(index, VideoIndex) else VideoIndex.open(index)
    if threshold == "calibrated":
        threshold = target.fingerprint.threshold
    views = query_views(clip, encoder or target.fingerprint.encoder_name, target.fingerprint.fps)
    settings = replace(MatchSettings(), top_k=top_k)
    return match(target, views, query_id or Path(clip).name, threshold, settings)
