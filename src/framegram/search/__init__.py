"""Content-based video search: which indexed video a clip comes from, and where.

    from framegram.search import add_videos, search
    add_videos(["film.mp4", "talk.mp4"], index="my-index")      # framegram index add ... --index
    for m in search("clip.mp4", index="my-index"):               # framegram search clip.mp4 --index
        print(m.ref_id, m.ref_start, m.ref_end, m.score)

Pieces: `fingerprint` (per-second descriptors), `basis` (the packaged whitening), `index` (FAISS +
SQLite directory), `query` (the views of a query clip), `matcher` (candidates, background,
temporal alignment), `metrics` (VSC22 match rows and µAP), `baselines` (for the benchmark).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from framegram.search.index import IndexedVideo, IndexInfo, SearchIndexError, VideoIndex
from framegram.search.matcher import DEFAULT_THRESHOLD, MatchSettings, match
from framegram.search.metrics import Match

__all__ = [
    "DEFAULT_THRESHOLD", "IndexInfo", "IndexedVideo", "Match", "MatchSettings", "SearchIndexError", "VideoIndex",
    "add_videos", "open_or_create", "search",
]


def open_or_create(index: str | Path, encoder: str = "efficientnet-lite0", fps: float = 5.0,
                   fingerprint=None) -> VideoIndex:
    """Open the index directory, or create it with `fingerprint` (default: the packaged basis for
    `encoder` at `fps`). An existing index made with another fingerprint than a given one is refused."""
    from framegram.search.basis import default_basis

    folder = Path(index)
    if (folder / "index.sqlite").exists():
        opened = VideoIndex.open(folder)
        if fingerprint is not None and fingerprint.digest != opened.fingerprint.digest:
            raise SearchIndexError(f"{folder}: the index describes videos with {opened.fingerprint.summary}; "
                                   f"the fingerprint given is {fingerprint.summary}"
                                   + _why_incompatible(opened.fingerprint, fingerprint)
                                   + " (use another index directory)")
        return opened
    if folder.exists() and not folder.is_dir():
        raise SearchIndexError(f"{folder}: exists and is not a directory")
    return VideoIndex.create(folder, fingerprint if fingerprint is not None else default_basis(encoder, fps))


def _why_incompatible(indexed, given) -> str:
    differences = indexed.differences(given) if hasattr(indexed, "differences") else []
    return f": {', '.join(differences)}" if differences else ""


def add_videos(
    videos: Iterable[str | Path],
    index: str | Path | VideoIndex,
    ref_ids: Iterable[str] | None = None,
    show_progress: bool = False,
    on_error: Callable[[Path, Exception], None] | None = None,
    fingerprint=None,
) -> list[str]:
    """Add videos (or .framegram.npz files) to the index, creating it if needed; returns the ids added.

    fingerprint: what describes the videos in a new index (default: the packaged hand-designed
    basis); an existing index made with another one is refused.
    ref_ids: one id per video (default: the file name). Framegrams are extracted once and cached,
    and videos are committed in small groups, so an interrupted run resumes where it stopped;
    content already in the index is skipped. on_error(path, error): called for a video that cannot
    be read, which is then skipped; without it the error propagates.
    """
    from framegram.cache import framegram_for
    from framegram.errors import InputError

    videos = [Path(v) for v in videos]
    ids = list(ref_ids) if ref_ids is not None else [v.name.removesuffix(".framegram.npz") for v in videos]
    if len(ids) != len(videos):
        raise ValueError(f"{len(ids)} ids for {len(videos)} videos")
    target = index if isinstance(index, VideoIndex) else open_or_create(index, fingerprint=fingerprint)

    def framegrams():
        for ref_id, video in zip(ids, videos):
            try:
                framegram, _ = framegram_for(video, target.fingerprint.encoder_name, target.fingerprint.fps, show_progress)
            except InputError as e:
                if on_error is None:
                    raise
                on_error(video, e)
                continue
            yield ref_id, framegram

    return target.add(framegrams(), commit_every=10)


def search(
    clip: str | Path,
    index: str | Path | VideoIndex,
    top_k: int = 5,
    threshold: float | None | str = "calibrated",
    query_id: str | None = None,
) -> list[Match]:
    """Where the clip (a video file) appears in the index, best first; [] means no match.

    threshold: minimum score; "calibrated": the index fingerprint's calibrated threshold;
    None: the best `top_k` whatever their score, as for µAP.
    """
    from dataclasses import replace

    from framegram.search.query import query_views

    target = index if isinstance(index, VideoIndex) else VideoIndex.open(index)
    if threshold == "calibrated":
        threshold = target.fingerprint.threshold
    views = query_views(clip, target.fingerprint.encoder_name, target.fingerprint.fps)
    settings = replace(MatchSettings(), top_k=top_k)
    return match(target, views, query_id or Path(clip).name, threshold, settings)
