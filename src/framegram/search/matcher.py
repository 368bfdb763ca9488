"""Which indexed video a query shows, and where: candidates by vector search, then temporal alignment.

1. Candidates. Each second of the query (every view) asks FAISS for its nearest stored seconds;
   a video's vote is the sum, over query seconds, of its best similarity. The best few videos go on.
2. Background. A query second that resembles many videos (black, blank, a shared intro) says little.
   Its background is how similar it is to *other* videos than the candidate: their best neighbours,
   pooled with the pieces of the fingerprint's background bank (`framegram.search.background`) so
   that it does not depend on how many videos the index holds, the closest two left out in case
   they are copies of the candidate; every similarity is taken relative to it, so such seconds
   contribute about nothing.
3. Alignment. For each candidate, the dense query windows (one starting at every frame) are compared
   with all of its stored seconds; a straight line ref_time = offset + speed * query_time is searched
   over offsets (one frame apart) and speeds 0.8-1.25. Along a line two things are measured: the mean
   background-relative similarity (windows falling outside the video count zero), and the temporal
   correlation: query windows and reference seconds each centred (the query on its mean, the
   reference on its running mean over the query's length), the cosine of the two centred sequences
   taken whole. The first says the pictures look alike; the second that they change together, which
   survives what adds the same thing to every frame (a blend, a tint, a logo) and is blind to a still
   shot. The score is their weighted mean (SIMILARITY_SHARE of the first); the best line gives
   query_start/query_end and ref_start/ref_end. The correlation carries most of the weight because
   it means the same whatever the index holds: the similarity is relative to a background that a
   small index, or a bank of footage unlike the query's, sets too low (bench/search.py's index-size
   run: with the similarity alone, clips of a film match other pieces of it in small indexes).

The score is compared with a threshold calibrated on queries from videos that are not indexed
(bench/search.py): below it the answer is "no match". Queries shorter than MIN_QUERY_SECONDS are
refused (`TooShortError`): a second or two of video matches something unrelated too often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from framegram.errors import TooShortError
from framegram.framegram import Framegram
from framegram.search.background import background_bank
from framegram.search.fingerprint import (
    BASIS_THRESHOLD,
    WINDOW_SECONDS,
    Descriptors,
    frames_per_second,
    query_descriptors,
)
from framegram.search.index import VideoIndex
from framegram.search.match import Match

#: background-relative similarity from which a match is reported: bench/search.py's calibration split
DEFAULT_THRESHOLD = BASIS_THRESHOLD  #: the hand-designed fingerprint's; a learned one carries its own
SPEEDS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25)
#: share of the background-relative similarity in the score, the rest is the temporal correlation's
#: (chosen on bench/search.py's calibration split)
SIMILARITY_SHARE = 0.2
#: shortest query searched, seconds. bench/search.py's query-length run: cut to 1 s or less, no true
#: copy reaches the threshold; at 1.5 s a third do (at 3 s, four fifths)
MIN_QUERY_SECONDS = 1.5
#: squared norm of a descriptor's deviation from its centre below which a sequence counts as still:
#: the correlation's denominators are held at least this high per window, so a still shot (whose
#: deviations are coding noise) correlates with nothing
STILL_VARIATION = 0.01


@dataclass(frozen=True)
class MatchSettings:
    top_k: int = 5  #: matches returned at most
    #: videos aligned in full (10 before: bench/results/search.json; 5 gives the same recall@1 and µAP on
    #: the same queries, bench/search_scale.py --codecs' flat row, at less than half the time)
    candidates: int = 5
    neighbours: int = 64  #: nearest stored seconds per query second
    background: int = 5  #: other videos whose best similarity is averaged into the background
    background_skip: int = 2  #: most similar other videos left out of it (copies of the candidate)
    speeds: tuple[float, ...] = SPEEDS
    #: score penalty per unit |log speed| / log 1.25: prefers normal speed when content cannot tell
    speed_penalty: float = 0.01
    #: alignment only tries offsets near those of the candidate's strongest neighbour hits
    hint_offsets: int = 24
    hint_radius: float = 2.0  #: seconds around a hinted offset (plus the drift a speed change allows)
    #: alignment tries offsets this many query windows apart first, then every window near the best
    #: `refine_lines` lines (at their speed and the two next ones): a fraction of the work of trying
    #: every window at every speed (1: try every one), with the same recall@1 and µAP (as `candidates`)
    coarse_offset_step: int = 8
    refine_lines: int = 3
    similarity_share: float = SIMILARITY_SHARE
    min_query_seconds: float = MIN_QUERY_SECONDS


def match(
    index: VideoIndex,
    views: dict[str, Framegram],
    query_id: str,
    threshold: float | None = DEFAULT_THRESHOLD,
    settings: MatchSettings = MatchSettings(),
) -> list[Match]:
    """Matches of the query (one framegram per view, see `query_views`) in `index`, best first.

    threshold: minimum score to report; None reports the best `top_k` whatever their score.
    Raises TooShortError for a query shorter than `settings.min_query_seconds`.
    """
    first = next(iter(views.values()))
    if first.duration < settings.min_query_seconds:
        raise TooShortError(first.meta.source.path, f"{first.duration:.1f} s is too short to search "
                                                    f"(at least {settings.min_query_seconds:g} s)")
    if index.total_rows == 0:
        return []
    ids = index.ref_ids
    for framegram in views.values():
        index.fingerprint.check(framegram, what="query")
    dense = {name: query_descriptors(f, index.fingerprint) for name, f in views.items()}
    per_second = frames_per_second(index.fingerprint.fps)
    # one search for the seconds of every view: the stored seconds' scan dominates at scale
    seconds = {name: d.vectors[::per_second] for name, d in dense.items()}
    found = index.neighbours(list(seconds.values()), settings.neighbours)
    bank = background_bank(index.fingerprint)
    best: dict[str, Match] = {}
    for (name, d), (sims, keys) in zip(dense.items(), found):
        who, at = index.locate(keys)
        bank_best = bank.best_similarity(seconds[name]) if bank is not None else None
        for m in _match_view(index, d, views[name].duration, _Neighbours(sims, at, who), bank_best, query_id, ids, settings):
            if m.ref_id not in best or m.score > best[m.ref_id].score:
                best[m.ref_id] = m
    ranked = sorted(best.values(), key=lambda m: -m.score)
    if threshold is not None:
        ranked = [m for m in ranked if m.score >= threshold]
    return ranked[: settings.top_k]


@dataclass(frozen=True)
class _Neighbours:
    """The index's answer for one view's query seconds: sims, at, who [S, k] (similarity, second
    within the owning video, owning video's position in `VideoIndex.ref_ids` or -1; best first)."""

    sims: np.ndarray
    at: np.ndarray
    who: np.ndarray

    def hints(self, candidate: int, limit: int) -> np.ndarray:
        """Offsets (stored second - query second) the candidate's strongest hits point to, [<= limit]."""
        hit = self.who == candidate
        order = np.argsort(-self.sims[hit])[:limit]
        query_second = np.broadcast_to(np.arange(len(self.sims))[:, None] * WINDOW_SECONDS, self.sims.shape)
        return self.at[hit][order] * WINDOW_SECONDS - query_second[hit][order]


def false_match_threshold(negative_scores: Sequence[float], rate: float) -> float:
    """The lowest threshold (rounded up to 3 decimals) at which at most `rate` of the `negative_scores`
    (best scores of queries that must not match) reach it: just above the k-th highest, k = floor(rate x n)."""
    scores = sorted(negative_scores, reverse=True)
    allowed = int(rate * len(scores))
    return float(np.ceil((scores[allowed] + 1e-4) * 1000) / 1000) if len(scores) > allowed else 0.0


def _match_view(
    index: VideoIndex, dense: Descriptors, query_duration: float, neighbours: _Neighbours,
    bank_best: np.ndarray | None, query_id: str, ids: list[str], settings: MatchSettings,
) -> list[Match]:
    """Align one view: dense windows [M, K]; the neighbours of its seconds; bank_best [S, pieces]:
    their best similarity to each background-bank piece."""
    per_second = frames_per_second(index.fingerprint.fps)
    candidates = _candidates(neighbours.sims, neighbours.who, len(ids), settings.candidates)
    # which query second each dense window belongs to, for its background
    second_of_window = np.minimum(np.arange(len(dense.vectors)) // per_second, len(neighbours.sims) - 1)
    query_span = max(1, round(query_duration / WINDOW_SECONDS))
    centred_query = dense.vectors - dense.vectors.mean(axis=0)
    query_norms = np.maximum((centred_query * centred_query).sum(axis=1), STILL_VARIATION)  # [M]
    out = []
    for c in candidates:
        background = _background(neighbours.sims, neighbours.who, c, settings, bank_best)[second_of_window]  # [M]
        n = index.videos[ids[c]].n_rows
        hints = neighbours.hints(c, settings.hint_offsets)
        # only the stored seconds some hinted line can reach are compared (an hour-long video has 3600),
        # and only they and their neighbours for the running mean are read from disk
        columns = _reachable_seconds(hints, n, float(dense.starts[-1]), settings)
        if len(columns) == 0:  # every hinted line misses the video
            continue
        reference, running = _reference_at(index, ids[c], n, columns, query_span)  # [C, K] each
        relative = dense.vectors @ reference.T - background[:, None]  # [M, C]
        change = _Change(centred_query, query_norms, reference - running)
        out.append(_align(relative, change, columns, n, dense.starts, query_duration, query_id, ids[c],
                          settings, hints))
    return out


def _reachable_seconds(hints: np.ndarray, n: int, query_span: float, settings: MatchSettings) -> np.ndarray:
    """Sorted stored seconds (of 0..n-1) that a line tried by `_align` can fall between: every speed's
    offsets within its radius of a hint, over the query's span, and the next second."""
    slowest, fastest = min(settings.speeds), max(settings.speeds)
    radius = settings.hint_radius + max(abs(1 - slowest), abs(1 - fastest)) * query_span
    marks = np.zeros(n + 1, np.int64)
    first = np.clip(np.floor(hints - radius + min(0.0, slowest * query_span)).astype(np.int64), 0, n)
    last = np.clip(np.ceil(hints + radius + fastest * query_span).astype(np.int64) + 2, 0, n)
    np.add.at(marks, first, 1)
    np.add.at(marks, last, -1)
    return np.flatnonzero(np.cumsum(marks[:-1]) > 0)


def _reference_at(index: VideoIndex, ref_id: str, n: int, columns: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored seconds `columns` [C] (sorted) of a video of `n` seconds, and their running mean over
    `span` seconds (a line at another speed covers a little more or less: close enough for a centre),
    float32 [C, K] each. Reads from disk only the runs of columns and their running windows."""
    reference = np.empty((len(columns), index.fingerprint.dims), np.float32)
    running = np.empty_like(reference)
    runs = np.split(np.arange(len(columns)), np.flatnonzero(np.diff(columns) > 1) + 1)
    for run in runs:
        at = columns[run]
        lo = np.clip(at - span // 2, 0, n)
        hi = np.clip(at + (span + 1) // 2, 0, n)
        first, last = int(lo.min()), int(max(hi.max(), at.max() + 1))
        part = index.video_vectors(ref_id, first, last)  # seconds first .. last - 1
        csum = np.vstack([np.zeros((1, part.shape[1])), np.cumsum(part, axis=0, dtype=np.float64)])
        reference[run] = part[at - first]
        running[run] = (csum[hi - first] - csum[lo - first]) / (hi - lo)[:, None]
    return reference, running


class _Change:
    """What the temporal correlation of a query with one reference needs: the query windows centred
    on their mean ([M, K], given with their squared norms [M]) and the reference's seconds at the
    columns the alignment reads, centred on their running mean ([C, K]): their products [M, C] and the
    reference's squared norms [C], every squared norm held at least STILL_VARIATION."""

    def __init__(self, centred_query: np.ndarray, query_norms: np.ndarray, centred_reference: np.ndarray):
        self.products = centred_query @ centred_reference.T  # [M, C]
        self.query_norms = query_norms
        self.reference_norms = np.maximum((centred_reference * centred_reference).sum(axis=1), STILL_VARIATION)


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


def _background(sims: np.ndarray, who: np.ndarray, candidate: int, settings: MatchSettings,
                bank: np.ndarray | None = None) -> np.ndarray:
    """Per query second: how similar it is to unrelated videos, [S].

    Each other video counts once (its best neighbour), and so does each piece of the fingerprint's
    background bank (`bank`: [S, pieces] best similarities, see `framegram.search.background`), so
    that the background does not depend on how many videos the index holds. The few most similar
    of them are skipped, so that copies of the candidate elsewhere in the index do not cancel its
    match."""
    out = np.zeros(len(sims))
    for i, (s_row, w_row) in enumerate(zip(sims, who)):
        keep = (w_row >= 0) & (w_row != candidate)
        # FAISS sorts neighbours best first: the first hit of each video is its best
        _, first = np.unique(w_row[keep], return_index=True)
        others = s_row[keep][first]
        if bank is not None:
            others = np.concatenate([others, bank[i]])
        per_video = np.sort(others)[::-1][settings.background_skip : settings.background_skip + settings.background]
        out[i] = per_video.mean() if len(per_video) else 0.0
    return out


def _align(
    relative: np.ndarray, change: _Change, columns: np.ndarray, n: int, starts: np.ndarray, query_duration: float,
    query_id: str, ref_id: str, settings: MatchSettings, hints: np.ndarray,
) -> Match:
    """Best line ref_time = offset + speed * query_time through `relative` [M windows, C seconds] and
    `change` (both at the stored seconds `columns` [C] of a video of `n` seconds), trying offsets
    within `hint_radius` (plus speed drift) of the `hints` [H] seconds."""
    m = len(relative)
    step = float(np.median(np.diff(starts))) if m > 1 else WINDOW_SECONDS
    stacked = np.stack([relative, change.products])  # [2, M, C]

    def lines(offsets: np.ndarray, speeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores [A] and windows inside the video [A, M] of the lines (offsets [A], speeds [A])."""
        x = offsets[:, None] + speeds[:, None] * starts[None, :]  # [A, M] ref position of each window
        inside = (x >= 0) & (x <= n - 1)
        xc = np.clip(x, 0, n - 1)
        j0 = np.minimum(np.floor(xc).astype(np.int64), max(n - 2, 0))
        frac = np.where(inside, xc - j0, 0.0)[None]
        j1 = np.minimum(j0 + 1, n - 1)
        # stored seconds -> columns (a window outside the video, clipped to an edge, may map to any: it is masked)
        j0, j1 = (np.minimum(np.searchsorted(columns, j), len(columns) - 1) for j in (j0, j1))
        rows = np.arange(m)[None, :]
        # the line's sums, inside the video, of the relative similarities and of the centred products
        # and squared norms, each interpolated between the two stored seconds a window falls between
        at0, at1 = stacked[:, rows, j0], stacked[:, rows, j1]  # [2, A, M]
        similarity, products = (((1 - frac) * at0 + frac * at1) * inside[None]).sum(axis=2)
        norms0, norms1 = change.reference_norms[j0], change.reference_norms[j1]  # [A, M]
        reference_norms = (((1 - frac[0]) * norms0 + frac[0] * norms1) * inside).sum(axis=1)
        similarity /= m
        query_norms = (inside * change.query_norms[None, :]).sum(axis=1)
        # the cosine of the centred sequences over the windows inside the video, times their share
        correlation = products / np.sqrt(query_norms * reference_norms + 1e-12) * inside.mean(axis=1)
        score = settings.similarity_share * similarity + (1 - settings.similarity_share) * correlation
        return score - settings.speed_penalty * np.abs(np.log(speeds)) / np.log(1.25), inside

    # coarse to fine: every speed at offsets `coarse` windows apart first, then the neighbourhood
    # (one coarse step, the next speeds) of the best few lines at every window
    speeds_all = np.asarray(settings.speeds, np.float64)
    coarse = max(1, settings.coarse_offset_step)
    tried_offsets, tried_speeds = [], []
    for speed in speeds_all:
        # offsets (ref time of query time 0) such that some window lands inside the video
        offsets = np.arange(-speed * starts[-1], n - 1 + step, step * coarse)
        # a hint assumes speed 1 at its query second; another speed drifts by up to |1 - speed| x query length
        radius = settings.hint_radius + abs(1 - speed) * starts[-1]
        # the offsets within `radius` of some hint: +1 where a hint's window opens, -1 where it closes
        edges = np.zeros(len(offsets) + 1, np.int64)
        np.add.at(edges, np.searchsorted(offsets, hints - radius), 1)
        np.add.at(edges, np.searchsorted(offsets, hints + radius, side="right"), -1)
        offsets = offsets[np.cumsum(edges[:-1]) > 0]
        tried_offsets.append(offsets)
        tried_speeds.append(np.full(len(offsets), speed))
    offsets, speeds = np.concatenate(tried_offsets), np.concatenate(tried_speeds)
    if len(offsets) == 0:
        return Match(query_id, ref_id, 0.0, 0.0, 0.0, 0.0, -1.0)
    score, inside = lines(offsets, speeds)
    if coarse > 1:
        top = np.argsort(-score, kind="stable")[: settings.refine_lines]
        near = np.arange(-coarse + 1, coarse) * step  # [O]
        speed_index = np.searchsorted(speeds_all, speeds[top])
        refined_offsets, refined_speeds = [], []
        for t, si in zip(top, speed_index):
            for sj in range(max(0, si - 1), min(len(speeds_all), si + 2)):
                # the line through the same ref time at the query's middle, at the neighbouring speed
                middle = offsets[t] + (speeds[t] - speeds_all[sj]) * starts[-1] / 2
                refined_offsets.append(middle + near)
                refined_speeds.append(np.full(len(near), speeds_all[sj]))
        refined_offsets, refined_speeds = np.concatenate(refined_offsets), np.concatenate(refined_speeds)
        refined_score, refined_inside = lines(refined_offsets, refined_speeds)
        # the coarse lines first, so that ties go where they went before refining
        offsets, speeds = np.concatenate([offsets, refined_offsets]), np.concatenate([speeds, refined_speeds])
        score, inside = np.concatenate([score, refined_score]), np.concatenate([inside, refined_inside])
    a = int(np.argmax(score))
    best = (float(score[a]), float(offsets[a]), float(speeds[a]), inside[a])
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
