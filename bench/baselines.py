"""Baselines the video-search benchmark runs beside framegram's own index, on the same corpus.

Each baseline is one small class with the same face:

    baseline.add(ref_id, framegram_or_path)          # a reference video
    baseline.search(query_id, query) -> list[Match]  # best first, at most `top_k` rows
    baseline.bytes_per_second()                      # what it stores per indexed second

- `NaiveFrameIndex`: what users start from. One raw 1280-d frame vector every 4 s in a flat FAISS
  index; each query frame votes for the video of its nearest neighbour.
- `VPDQBaseline`: the production peer, Meta's per-second video hash (vPDQ) with the matching rule of
  its hasher-matcher-actioner.
- `SlidingCorrelation`: the accuracy ceiling. Every query is slid over every reference at every
  frame offset (and at a few playback speeds), scored by mean cosine; exhaustive, stores everything.

The framegram-based baselines take a `Framegram`, a `.framegram.npz` file or a video path (its
framegram is extracted once and cached, `framegram.cache.framegram_for`). All references and
queries of one baseline must share an encoder and a sampling rate.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.align import unit_rows
from framegram.errors import EncoderMismatchError, NotAVideoError, VideoNotFoundError
from framegram.framegram import Framegram
from framegram.search.match import Match

FramegramLike = Framegram | str | Path


def as_framegram(item: FramegramLike) -> Framegram:
    """A Framegram as is; a path to a `.framegram.npz` file or a video through the framegram cache."""
    if isinstance(item, Framegram):
        return item
    from framegram.cache import framegram_for

    return framegram_for(item)[0]


class _SameModel:
    """Remembers the encoder and sampling rate of the first framegram; refuses others."""

    def __init__(self):
        self.encoder = None
        self.fps: float | None = None

    def check(self, framegram: Framegram) -> None:
        meta = framegram.meta
        if self.encoder is None:
            self.encoder, self.fps = meta.encoder, meta.fps
            return
        if not meta.encoder.same_model(self.encoder):
            raise EncoderMismatchError(
                meta.source.path, f"made with {meta.encoder.name} ({meta.encoder.version}), the corpus with "
                f"{self.encoder.name} ({self.encoder.version})",
            )
        if meta.fps != self.fps:
            raise ValueError(f"{meta.source.path}: sampled at {meta.fps}/s, the corpus at {self.fps}/s")


def _span(framegram: Framegram) -> tuple[float, float]:
    """(start, end) seconds the framegram covers: first sample to one sample period past the last."""
    start = float(framegram.times[0])
    return start, start + framegram.duration


class NaiveFrameIndex:
    """Sparse raw frames in a flat inner-product index, majority vote over reference videos.

    Stored: every `stride`-th row of each reference framegram, L2-normalised, float32 [D]; at 5 fps
    with stride 20 that is one 1280-d vector (5120 bytes) per 4 s, 1280 bytes per indexed second.
    Query: every query row's nearest stored vector (cosine) votes for its video. A reference's score
    is the fraction of query rows voting for it; its placement is the median over its votes of
    (stored row's time - query row's time), added to the query's start and end (no speed search:
    a query played 1.25x fast is placed by its middle, a second or so off at its start for 10 s).
    """

    def __init__(self, stride: int = 20, top_k: int = 5):
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}")
        self.stride = stride
        self.top_k = top_k
        self._model = _SameModel()
        self._index = None  # faiss.IndexFlatIP, made at the first add (it needs D)
        self._ref_ids: list[str] = []
        self._vector_ref: list[np.ndarray] = []  # int64 per stored vector: position in _ref_ids
        self._vector_time: list[np.ndarray] = []  # float64 per stored vector: seconds in its reference
        self._indexed_seconds = 0.0

    def add(self, ref_id: str, framegram_or_path: FramegramLike) -> None:
        """Index one reference video (its framegram's every `stride`-th row)."""
        if ref_id in self._ref_ids:
            raise ValueError(f"reference {ref_id!r} is already indexed")
        framegram = as_framegram(framegram_or_path)
        self._model.check(framegram)
        if len(framegram) == 0:
            raise ValueError(f"reference {ref_id!r} has no rows")
        import faiss

        if self._index is None:
            self._index = faiss.IndexFlatIP(framegram.dim)
        kept = np.ascontiguousarray(unit_rows(framegram.features[:: self.stride].astype(np.float32)))
        self._index.add(kept)
        self._vector_ref.append(np.full(len(kept), len(self._ref_ids), dtype=np.int64))
        self._vector_time.append(framegram.times[:: self.stride].astype(np.float64))
        self._ref_ids.append(ref_id)
        self._indexed_seconds += framegram.duration

    def bytes_per_second(self) -> float:
        """Bytes of stored vectors per second of indexed reference video (the FAISS codes: D float32
        per vector; the 12 bytes of reference number and time kept beside each vector are not counted)."""
        if self._index is None or self._indexed_seconds == 0:
            return 0.0
        return self._index.ntotal * self._index.code_size / self._indexed_seconds

    def search(self, query_id: str, query: FramegramLike, top_k: int | None = None) -> list[Match]:
        """The references most query rows vote for, best first; score = vote fraction in [0, 1]."""
        framegram = as_framegram(query)
        self._model.check(framegram)
        if self._index is None or len(framegram) == 0:
            return []
        rows = np.ascontiguousarray(unit_rows(framegram.features.astype(np.float32)))
        _, nearest = self._index.search(rows, 1)
        nearest = nearest[:, 0]
        vector_ref = np.concatenate(self._vector_ref)
        vector_time = np.concatenate(self._vector_time)
        voted = vector_ref[nearest]  # [Tq]: reference number each query row votes for
        votes = np.bincount(voted, minlength=len(self._ref_ids))
        order = np.argsort(-votes, kind="stable")[: top_k or self.top_k]
        query_start, query_end = _span(framegram)
        matches = []
        for ref in order:
            if votes[ref] == 0:
                break
            mine = voted == ref
            offset = float(np.median(vector_time[nearest[mine]] - framegram.times[mine]))
            matches.append(Match(
                query_id, self._ref_ids[ref], query_start, query_end,
                offset + query_start, offset + query_end, float(votes[ref] / len(framegram)),
            ))
        return matches


class SlidingCorrelation:
    """Exhaustive sliding cosine of the query against every reference, at a few playback speeds.

    Stored: every reference row, L2-normalised, float32 [D] (D * 4 * fps bytes per second).
    For each speed s the query is resampled to the reference's clock (s = 1.25: the query plays
    1.25x fast, so its Tq rows become about 1.25 Tq rows covering 1.25x its duration), then scored
    at every row offset of every reference by the mean cosine of aligned rows. A reference's score
    is its best (offset, speed); ref_start is the reference time at that offset and ref_end adds
    s times the query's duration. One matrix product per query: [rows of all speeds, D] x [D, N].
    """

    def __init__(self, speeds: Sequence[float] = (0.8, 1.0, 1.25), top_k: int = 5):
        if not speeds or min(speeds) <= 0:
            raise ValueError(f"speeds must be positive, got {speeds}")
        self.speeds = tuple(float(s) for s in speeds)
        self.top_k = top_k
        self._model = _SameModel()
        self._ref_ids: list[str] = []
        self._rows: list[np.ndarray] = []  # float32 [T_r, D] per reference, unit rows
        self._times: list[np.ndarray] = []  # float64 [T_r] seconds per reference
        self._stacked: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, ref_id: str, framegram_or_path: FramegramLike) -> None:
        """Keep one reference video's framegram (all rows, unit length)."""
        if ref_id in self._ref_ids:
            raise ValueError(f"reference {ref_id!r} is already added")
        framegram = as_framegram(framegram_or_path)
        self._model.check(framegram)
        self._ref_ids.append(ref_id)
        self._rows.append(unit_rows(framegram.features.astype(np.float32)))
        self._times.append(framegram.times.astype(np.float64))
        self._stacked = None

    def bytes_per_second(self) -> float:
        """Bytes of stored rows per second of reference video: D * 4 * fps (25600 for 1280-d at 5 fps)."""
        rows = sum(len(r) for r in self._rows)
        if rows == 0:
            return 0.0
        return rows * self._rows[0].shape[1] * 4 / (rows / self._model.fps)

    def _corpus(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows float32 [N, D], times float64 [N], starts int64 [R + 1]) of all references stacked."""
        if self._stacked is None:
            starts = np.cumsum([0] + [len(r) for r in self._rows]).astype(np.int64)
            self._stacked = (np.concatenate(self._rows), np.concatenate(self._times), starts)
            self._rows = [self._stacked[0][a:b] for a, b in itertools.pairwise(starts)]  # views: no copy
        return self._stacked

    def search(self, query_id: str, query: FramegramLike, top_k: int | None = None) -> list[Match]:
        """The references whose best (offset, speed) has the highest mean cosine, best first."""
        framegram = as_framegram(query)
        self._model.check(framegram)
        if not self._ref_ids or len(framegram) == 0:
            return []
        rows, times, starts = self._corpus()
        q = unit_rows(framegram.features.astype(np.float32))
        resampled = [resample_rows(q, s) for s in self.speeds]
        similarity = np.vstack(resampled) @ rows.T  # [sum of L_s, N]: every query row against every reference row
        best_score = np.full(len(self._ref_ids), -np.inf)
        best_row = np.zeros(len(self._ref_ids), dtype=np.int64)
        best_speed = np.ones(len(self._ref_ids))
        first = 0
        for speed, rs in zip(self.speeds, resampled):
            length = len(rs)
            scores = _diagonal_means(similarity[first:first + length])  # [N - L + 1] by window start
            first += length
            for ref, (a, b) in enumerate(itertools.pairwise(starts)):
                if b - a < length:
                    continue  # the reference is shorter than the query at this speed
                window = scores[a:b - length + 1]  # windows inside this reference only
                at = int(np.argmax(window))
                if window[at] > best_score[ref]:
                    best_score[ref], best_row[ref], best_speed[ref] = window[at], a + at, speed
        query_start, query_end = _span(framegram)
        order = np.argsort(-best_score, kind="stable")[: top_k or self.top_k]
        return [
            Match(
                query_id, self._ref_ids[ref], query_start, query_end, float(times[best_row[ref]]),
                float(times[best_row[ref]] + best_speed[ref] * (query_end - query_start)), float(best_score[ref]),
            )
            for ref in order
            if np.isfinite(best_score[ref])
        ]


def _diagonal_means(similarity: np.ndarray) -> np.ndarray:
    """Mean of each length-L diagonal of `similarity` [L, N]: out[p] = mean_j similarity[j, p + j],
    float32 [N - L + 1] (N >= L)."""
    length, n = similarity.shape
    total = np.zeros(n - length + 1, dtype=np.float32)
    for j in range(length):
        total += similarity[j, j:j + n - length + 1]
    return total / length


def resample_rows(rows: np.ndarray, speed: float) -> np.ndarray:
    """Rows of a query played at `speed`, put back on the reference's clock.

    rows: float32 [T, D], unit rows sampled at the reference's rate. Output row i is the query at
    row position i / speed (linear interpolation, renormalised), for every i with i / speed <= T - 1:
    float32 [floor((T - 1) * speed) + 1, D]. speed 1 returns the rows unchanged.
    """
    if speed == 1.0 or len(rows) < 2:
        return rows
    positions = np.arange(int(np.floor((len(rows) - 1) * speed + 1e-9)) + 1) / speed
    low = np.minimum(np.floor(positions).astype(np.int64), len(rows) - 2)
    frac = (positions - low)[:, None].astype(np.float32)
    return unit_rows(rows[low] * (1 - frac) + rows[low + 1] * frac)


@dataclass(frozen=True)
class VPDQHashes:
    """One video's vPDQ hash: bits uint8 [n, 32] (a 256-bit PDQ hash a row), quality int [n] (0-100,
    how much detail the frame has), times float64 [n] (seconds); duration in seconds."""

    bits: np.ndarray
    quality: np.ndarray
    times: np.ndarray
    duration: float

    def usable(self, min_quality: int) -> VPDQHashes:
        """The rows HMA would index or search: quality >= `min_quality`, and each distinct hash once
        (its first time)."""
        kept = np.flatnonzero(self.quality >= min_quality)
        _, first = np.unique(self.bits[kept], axis=0, return_index=True)
        kept = kept[np.sort(first)]
        return VPDQHashes(self.bits[kept], self.quality[kept], self.times[kept], self.duration)


class VPDQBaseline:
    """Meta's vPDQ (PyPI `vpdq`): a 256-bit PDQ hash of one frame a second, matched with the rule of
    Meta's hasher-matcher-actioner (HMA, python-threatexchange's VPDQIndex).

    Stored: the hashes of quality >= 50, each distinct hash of a video once, in a FAISS binary flat
    index (32 bytes a hash). Query: its usable hashes are range-searched (Hamming distance <= 31);
    a reference's score is the share of the query's hashes with a match in it, and HMA reports it
    as a match when that share is >= 80 % (`HMA_QUERY_SHARE`; the share of the reference's hashes
    matched must be >= 0 %). vPDQ does not place a match in time; here the placement is the median
    of (reference time - query time) over the matched pairs, added to the query's span.

    The `vpdq` package builds against FFmpeg's development libraries (libavcodec-dev and friends
    from apt); without it only `hash_video` fails, matching hashes computed elsewhere still works.
    """

    max_distance = 31  #: VPDQ_DISTANCE_THRESHOLD
    min_quality = 50  #: VPDQ_QUALITY_THRESHOLD
    HMA_QUERY_SHARE = 0.8  #: VPDQ_QUERY_MATCH_THRESHOLD_PERCENT / 100

    def __init__(self, top_k: int = 5, seconds_per_hash: float = 1.0):
        import faiss

        self.top_k = top_k
        self.seconds_per_hash = seconds_per_hash
        self._index = faiss.IndexBinaryFlat(256)
        self._ref_ids: list[str] = []
        self._row_ref: list[np.ndarray] = []  # int64 per stored hash: position in _ref_ids
        self._row_time: list[np.ndarray] = []  # float64 per stored hash: seconds in its reference
        self._indexed_seconds = 0.0

    @property
    def hashes(self) -> int:
        return int(self._index.ntotal)

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored hash's (reference, time), joined once after adds."""
        if len(self._row_ref) > 1:
            self._row_ref, self._row_time = [np.concatenate(self._row_ref)], [np.concatenate(self._row_time)]
        return self._row_ref[0], self._row_time[0]

    def add(self, ref_id: str, path: str | Path) -> None:
        """Hash one reference video file and index it."""
        self.add_hash(ref_id, self.hash_video(path))

    def add_hash(self, ref_id: str, hashes: VPDQHashes) -> None:
        """Index a reference whose hash was computed already (see `hash_video`)."""
        if ref_id in self._ref_ids:
            raise ValueError(f"reference {ref_id!r} is already hashed")
        kept = hashes.usable(self.min_quality)
        self._index.add(np.ascontiguousarray(kept.bits))
        self._row_ref.append(np.full(len(kept.bits), len(self._ref_ids), np.int64))
        self._row_time.append(kept.times.astype(np.float64))
        self._ref_ids.append(ref_id)
        self._indexed_seconds += hashes.duration

    def bytes_per_second(self) -> float:
        """Bytes of stored hashes per second of indexed video (32 a hash; the reference number and
        time kept beside each are not counted, as for the other methods)."""
        return self._index.ntotal * self._index.code_size / self._indexed_seconds if self._indexed_seconds else 0.0

    def search(self, query_id: str, query: str | Path, top_k: int | None = None) -> list[Match]:
        return self.search_hash(query_id, self.hash_video(query), top_k=top_k)

    def search_hash(self, query_id: str, hashes: VPDQHashes, top_k: int | None = None) -> list[Match]:
        """The references matching the largest share of the query's hashes, best first; score = that
        share in [0, 1] (HMA's match: score >= `HMA_QUERY_SHARE`)."""
        query = hashes.usable(self.min_quality)
        if self._index.ntotal == 0 or len(query.bits) == 0:
            return []
        limits, _, found = self._index.range_search(np.ascontiguousarray(query.bits), self.max_distance + 1)
        row_ref, row_time = self._rows()
        query_row = np.repeat(np.arange(len(query.bits)), np.diff(limits.astype(np.int64)))
        ref = row_ref[found]
        pairs = np.unique(np.stack([ref, query_row]), axis=1)  # (reference, query hash) matched at least once
        shares = np.bincount(pairs[0], minlength=len(self._ref_ids)) / len(query.bits)
        ranked = [int(r) for r in np.argsort(-shares, kind="stable")[: top_k or self.top_k] if shares[r] > 0]
        start, end = 0.0, hashes.duration
        out = []
        for r in ranked:
            mine = ref == r
            offset = float(np.median(row_time[found[mine]] - query.times[query_row[mine]]))
            out.append(Match(query_id, self._ref_ids[r], start, end, offset + start, offset + end, float(shares[r])))
        return out

    def hash_video(self, path: str | Path) -> VPDQHashes:
        """vPDQ hash of one video file (one frame every `seconds_per_hash` seconds, decoded by vpdq's
        own FFmpeg libraries, one thread)."""
        path = Path(path)
        if not path.is_file():
            raise VideoNotFoundError(path, "no such file")
        try:
            import vpdq
        except ImportError as exc:
            raise ImportError("VPDQBaseline.hash_video needs the vpdq package, which builds against FFmpeg's "
                              "development libraries: apt-get install libavcodec-dev libavformat-dev "
                              "libavdevice-dev libavfilter-dev libswscale-dev libswresample-dev pkg-config cmake; "
                              "pip install vpdq==0.2.5 (make bench does both)") from exc
        try:
            features = vpdq.computeHash(str(path), seconds_per_hash=self.seconds_per_hash, thread_count=1)
        except Exception as exc:  # vpdq raises a bare Exception when FFmpeg cannot read the file
            raise NotAVideoError(path, f"vpdq could not hash it ({exc})") from exc
        if not features:
            raise NotAVideoError(path, "vpdq found no frames in it")
        bits = np.array([np.frombuffer(bytes.fromhex(f.hex), np.uint8) for f in features])
        times = np.array([f.timestamp for f in features], np.float64)
        return VPDQHashes(bits, np.array([f.quality for f in features], np.int64), times,
                          float(times[-1] + self.seconds_per_hash))
