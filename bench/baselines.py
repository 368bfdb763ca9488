"""Baselines the video-search benchmark runs beside framegram's own index, on the same corpus.

Each baseline is one small class with the same face:

    baseline.add(ref_id, framegram_or_path)          # a reference video
    baseline.search(query_id, query) -> list[Match]  # best first, at most `top_k` rows
    baseline.bytes_per_second()                      # what it stores per indexed second

- `NaiveFrameIndex`: what users start from. One raw 1280-d frame vector every 4 s in a flat FAISS
  index; each query frame votes for the video of its nearest neighbour.
- `VideoHashBaseline`: a whole-video perceptual hash (the `videohash` package, 64 bits a video):
  near-duplicates of whole files only, no localisation.
- `SlidingCorrelation`: the accuracy ceiling. Every query is slid over every reference at every
  frame offset (and at a few playback speeds), scored by mean cosine; exhaustive, stores everything.

The framegram-based baselines take a `Framegram`, a `.framegram.npz` file or a video path (its
framegram is extracted once and cached, `framegram.cache.framegram_for`). All references and
queries of one baseline must share an encoder and a sampling rate.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from framegram.align import unit_rows
from framegram.errors import EncoderMismatchError, NotAVideoError, VideoNotFoundError
from framegram.framegram import Framegram
from framegram.io.ffmpeg import ffmpeg_executable
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


class VideoHashBaseline:
    """Whole-video perceptual hash: the `videohash` package (3.0.1), 64 bits per video file.

    videohash samples a frame a second with FFmpeg, tiles the frames into a collage and combines a
    wavelet hash of the collage with the dominant colours of its tiles. A query matches the
    references with the smallest Hamming distance; score = 1 - distance / 64, and the match spans
    the whole query and the whole reference (a whole-file hash cannot localise).

    videohash calls the `ffmpeg` found on PATH; while hashing, a temporary folder holding an
    `ffmpeg` link to imageio-ffmpeg's binary is put first on PATH (process-wide, restored after:
    do not hash from two threads at once). It also uses `PIL.Image.ANTIALIAS`, removed in
    Pillow 10; the alias (LANCZOS, which it named) is added for the duration of a hash.
    """

    bits = 64

    def __init__(self, frame_interval: float = 1.0, top_k: int = 5):
        self.frame_interval = frame_interval  #: frames per second videohash samples
        self.top_k = top_k
        self._ref_ids: list[str] = []
        self._hashes: list[np.ndarray] = []  # uint8 [64] bits per reference
        self._durations: list[float] = []  # seconds per reference

    def add(self, ref_id: str, path: str | Path) -> None:
        """Hash one reference video file."""
        self.add_hash(ref_id, *self.hash_video(path))

    def add_hash(self, ref_id: str, bits: np.ndarray, duration: float) -> None:
        """Add a reference whose hash was computed already (see `hash_video`)."""
        if ref_id in self._ref_ids:
            raise ValueError(f"reference {ref_id!r} is already hashed")
        self._ref_ids.append(ref_id)
        self._hashes.append(bits)
        self._durations.append(duration)

    def bytes_per_second(self) -> float:
        """Bytes stored per second of reference video: 8 per video over the videos' total duration."""
        total = sum(self._durations)
        return len(self._hashes) * self.bits / 8 / total if total > 0 else 0.0

    def search(self, query_id: str, query: str | Path, top_k: int | None = None) -> list[Match]:
        """The references whose hash is nearest the query's (Hamming distance), best first."""
        return self.search_hash(query_id, *self.hash_video(query), top_k=top_k)

    def search_hash(self, query_id: str, bits: np.ndarray, duration: float, top_k: int | None = None) -> list[Match]:
        """`search` for a query whose hash was computed already."""
        if not self._ref_ids:
            return []
        distances = np.count_nonzero(np.stack(self._hashes) != bits, axis=1)
        order = np.argsort(distances, kind="stable")[: top_k or self.top_k]
        return [
            Match(query_id, self._ref_ids[r], 0.0, duration, 0.0, self._durations[r], float(1.0 - distances[r] / self.bits))
            for r in order
        ]

    def hash_video(self, path: str | Path) -> tuple[np.ndarray, float]:
        """(bits uint8 [64], duration in seconds as FFmpeg reports it) of one video file."""
        if isinstance(path, Framegram):
            raise TypeError("VideoHashBaseline hashes video files, not framegrams: pass the video's path")
        path = Path(path)
        if not path.is_file():
            raise VideoNotFoundError(path, "no such file")
        with _videohash() as (VideoHash, VideoHashError, workdir):
            # videohash copies its input beside its work files; a link with a plain name spares it
            # paths it would quote wrongly in its shell commands
            link = workdir / f"input{path.suffix or '.video'}"
            link.symlink_to(path.resolve())
            try:
                video_hash = VideoHash(path=str(link), storage_path=str(workdir) + os.sep, frame_interval=self.frame_interval)
            except VideoHashError as exc:
                raise NotAVideoError(path, f"videohash could not hash it ({type(exc).__name__})") from exc
            return np.array(video_hash.bitlist, dtype=np.uint8), float(video_hash.video_duration)


@contextmanager
def _videohash() -> Iterator[tuple[type, type, Path]]:
    """(VideoHash class, its base exception, an empty work folder), with FFmpeg on PATH, Pillow's
    old ANTIALIAS name present and imagedominantcolor's Pillow deprecation warning hushed until the
    block ends."""
    try:
        from videohash import VideoHash
        from videohash.exceptions import VideoHashError
    except ImportError as exc:
        raise ImportError(
            "VideoHashBaseline needs the videohash package: pip install videohash==3.0.1 "
            "(it is in framegram's `test` extra)"
        ) from exc
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="framegram-videohash-") as tmp:
        tools = Path(tmp) / "bin"
        tools.mkdir()
        (tools / "ffmpeg").symlink_to(ffmpeg_executable("VideoHashBaseline"))
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        old_path = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{tools}{os.pathsep}{old_path}"
        added_alias = not hasattr(Image, "ANTIALIAS")
        if added_alias:
            Image.ANTIALIAS = Image.Resampling.LANCZOS
        try:
            with warnings.catch_warnings():
                # imagedominantcolor 1.0.1 calls Image.getdata, deprecated (removal due in Pillow 14)
                warnings.filterwarnings("ignore", message=".*getdata", category=DeprecationWarning)
                yield VideoHash, VideoHashError, workdir
        finally:
            os.environ["PATH"] = old_path
            if added_alias:
                del Image.ANTIALIAS
