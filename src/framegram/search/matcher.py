"""Which indexed video a query shows, and where: candidates by vector search, then temporal alignment.

1. Candidates. Each second of the query (every view) asks FAISS for its nearest stored seconds;
   a video's vote is the sum, over query seconds, of its best similarity. The best few videos go on.
2. Background. A query second that resembles many videos (black, blank, a shared intro) says little.
   Its background is how similar it is to *other* videos than the candidate (their best neighbours,
   the closest two left out in case they are copies of the candidate); every similarity is taken
   relative to it, so such seconds contribute about nothing.
3. Alignment. For each candidate, the dense query windows (one starting at every frame) are compared
   with all of its stored seconds; a straight line ref_time = offset + speed * query_time is searched
   exhaustively over offsets (one frame apart) and speeds 0.8-1.25. The score is the mean
   background-relative similarity along the line (windows falling outside the video count zero).
   The line gives query_start/query_end and ref_start/ref_end.

The score is compared with a threshold calibrated on queries from videos that are not indexed
(bench/search.py): below it the answer is "no match".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.framegram import Framegram
from framegram.search.fingerprint import (
    BASIS_THRESHOLD,
    WINDOW_SECONDS,
    Descriptors,
    frames_per_second,
    query_descriptors,
)
from framegram.search.index import VideoIndex
from framegram.search.metrics import Match

#: background-relative similarity from which a match is reported: bench/search.py's calibration split
#: (30 queries from unindexed videos: 0 reach it; on the test split 1 of 120 did)
DEFAULT_THRESHOLD = BASIS_THRESHOLD  #: the hand-designed fingerprint's; a learned one carries its own
SPEEDS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25)


@dataclass(frozen=True)
class MatchSettings:
    top_k: int = 5  #: matches returned at most
    candidates: int = 10  #: videos aligned in full
    neighbours: int = 64  #: nearest stored seconds per query second
    background: int = 5  #: other videos whose best similarity is averaged into the background
    background_skip: int = 2  #: most similar other videos left out of it (copies of the candidate)
    speeds: tuple[float, ...] = SPEEDS
    #: score penalty per unit |log speed| / log 1.25: prefers normal speed when content cannot tell
    speed_penalty: float = 0.01
    #: alignment only tries offsets near those of the candidate's strongest neighbour hits
    hint_offsets: int = 24
    hint_radius: float = 2.0  #: seconds around a hinted offset (plus the drift a speed change allows)


def match(
    index: VideoIndex,
    views: dict[str, Framegram],
    query_id: str,
    threshold: float | None = DEFAULT_THRESHOLD,
    settings: MatchSettings = MatchSettings(),
) -> list[Match]:
    """Matches of the query (one framegram per view, see `query_views`) in `index`, best first.

    threshold: minimum score to report; None reports the best `top_k` whatever their score.
    """
    if index.total_rows == 0:
        return []
    owner, ids = index.row_owner()
    for framegram in views.values():
        index.fingerprint.check(framegram, what="query")
    dense = {name: query_descriptors(f, index.fingerprint) for name, f in views.items()}
    per_second = frames_per_second(index.fingerprint.fps)
    # one FAISS call for the seconds of every view: the scan over stored vectors dominates at scale
    seconds = {name: d.vectors[::per_second] for name, d in dense.items()}
    k = min(settings.neighbours, index.total_rows)
    sims, rows = index.vectors.search(np.ascontiguousarray(np.concatenate(list(seconds.values()))), k)
    who = np.where(rows >= 0, owner[np.maximum(rows, 0)], -1)
    best: dict[str, Match] = {}
    decoded: dict[int, np.ndarray] = {}  # a candidate's stored seconds, decoded once for all views
    at = 0
    for name, d in dense.items():
        n = len(seconds[name])
        part = slice(at, at + n)
        found = _match_view(
            index, d, views[name].duration, sims[part], rows[part], who[part], query_id, ids, settings, decoded
        )
        at += n
        for m in found:
            if m.ref_id not in best or m.score > best[m.ref_id].score:
                best[m.ref_id] = m
    ranked = sorted(best.values(), key=lambda m: -m.score)
    if threshold is not None:
        ranked = [m for m in ranked if m.score >= threshold]
    return ranked[: settings.top_k]


def _match_view(
    index: VideoIndex, dense: Descriptors, query_duration: float, sims: np.ndarray, rows: np.ndarray, who: np.ndarray,
    query_id: str, ids: list[str], settings: MatchSettings, decoded: dict[int, np.ndarray],
) -> list[Match]:
    """Align one view: dense windows [M, K]; sims, rows, who [S, k]: its seconds' neighbours (similarity,
    stored row, owning video)."""
    per_second = frames_per_second(index.fingerprint.fps)
    candidates = _candidates(sims, who, len(ids), settings.candidates)
    # which query second each dense window belongs to, for its background
    second_of_window = np.minimum(np.arange(len(dense.vectors)) // per_second, len(sims) - 1)
    query_second = np.broadcast_to(np.arange(len(sims))[:, None] * WINDOW_SECONDS, sims.shape)
    out = []
    for c in candidates:
        background = _background(sims, who, c, settings)[second_of_window]  # [M]
        if c not in decoded:
            decoded[c] = index.video_vectors(ids[c])  # [N, K], second j starts at j s
        reference = decoded[c]
        relative = dense.vectors @ reference.T - background[:, None]  # [M, N]
        # offsets the neighbour hits point to (stored second - query second), strongest first
        hit = who == c
        order = np.argsort(-sims[hit])[: settings.hint_offsets]
        first_row = index.videos[ids[c]].first_row
        hints = (rows[hit][order] - first_row) * WINDOW_SECONDS - query_second[hit][order]
        out.append(_align(relative, dense.starts, query_duration, query_id, ids[c], settings, hints))
    return out


def _candidates(sims: np.ndarray, who: np.ndarray, n_videos: int, n: int) -> list[int]:
    """Videos ranked by the sum over query seconds of their best neighbour similarity."""
    votes = np.zeros(n_videos)
    for s_row, w_row in zip(sims, who):
        seen = w_row >= 0
        best = np.full(n_videos, -np.inf)
        np.maximum.at(best, w_row[seen], s_row[seen])
        hit = np.isfinite(best)
        votes[hit] += best[hit]
    order = np.argsort(-votes, kind="stable")
    return [int(c) for c in order[:n] if votes[c] > 0]


def _background(sims: np.ndarray, who: np.ndarray, candidate: int, settings: MatchSettings) -> np.ndarray:
    """Per query second: how similar it is to unrelated videos, [S].

    Each other video counts once (its best neighbour), and the few most similar other videos are
    skipped, so that copies of the candidate elsewhere in the index do not cancel its match."""
    out = np.zeros(len(sims))
    for i, (s_row, w_row) in enumerate(zip(sims, who)):
        keep = (w_row >= 0) & (w_row != candidate)
        # FAISS sorts neighbours best first: the first hit of each video is its best
        _, first = np.unique(w_row[keep], return_index=True)
        per_video = np.sort(s_row[keep][first])[::-1][settings.background_skip : settings.background_skip + settings.background]
        out[i] = per_video.mean() if len(per_video) else 0.0
    return out


def _align(
    relative: np.ndarray, starts: np.ndarray, query_duration: float, query_id: str, ref_id: str,
    settings: MatchSettings, hints: np.ndarray,
) -> Match:
    """Best line ref_time = offset + speed * query_time through `relative` [M windows, N seconds],
    trying offsets within `hint_radius` (plus speed drift) of the `hints` [H] seconds."""
    m, n = relative.shape
    step = float(np.median(np.diff(starts))) if m > 1 else WINDOW_SECONDS
    best = (-np.inf, 0.0, 1.0, np.zeros(m, bool))
    for speed in settings.speeds:
        # offsets (ref time of query time 0) such that some window lands inside the video
        offsets = np.arange(-speed * starts[-1], n - 1 + step, step)
        # a hint assumes speed 1 at its query second; another speed drifts by up to |1 - speed| x query length
        radius = settings.hint_radius + abs(1 - speed) * starts[-1]
        near = np.zeros(len(offsets), bool)
        for h in hints:
            near[np.searchsorted(offsets, h - radius) : np.searchsorted(offsets, h + radius, side="right")] = True
        offsets = offsets[near]
        if len(offsets) == 0:
            continue
        x = offsets[:, None] + speed * starts[None, :]  # [A, M] ref position of each window
        inside = (x >= 0) & (x <= n - 1)
        xc = np.clip(x, 0, n - 1)
        j0 = np.minimum(np.floor(xc).astype(np.int64), max(n - 2, 0))
        frac = xc - j0
        rows = np.arange(m)[None, :]
        j1 = np.minimum(j0 + 1, n - 1)
        value = (1 - frac) * relative[rows, j0] + frac * relative[rows, j1]
        score = np.where(inside, value, 0.0).sum(axis=1) / m
        score -= settings.speed_penalty * abs(np.log(speed)) / np.log(1.25)
        a = int(np.argmax(score))
        if score[a] > best[0]:
            best = (float(score[a]), float(offsets[a]), speed, inside[a])
    score, offset, speed, inside = best
    used = np.flatnonzero(inside)
    if len(used) == 0:
        return Match(query_id, ref_id, 0.0, 0.0, 0.0, 0.0, -1.0)
    q_start = float(starts[used[0]])
    q_end = min(float(starts[used[-1]]) + WINDOW_SECONDS, query_duration)
    return Match(
        query_id, ref_id, round(q_start, 3), round(q_end, 3),
        round(max(offset + speed * q_start, 0.0), 3), round(offset + speed * q_end, 3), round(score, 4),
    )
