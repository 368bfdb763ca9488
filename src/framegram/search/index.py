"""The video index: a directory of immutable segment files and a manifest in SQLite.

    DIR/index.sqlite                 the manifest: videos (ref_id, path, sha256, duration, segment,
                                     rows), segments, tombstones, settings and the generation
    DIR/basis.npz                    the fingerprint every vector was made with (a FingerprintBasis or a
                                     LearnedFingerprint: the file name predates learned ones)
    DIR/codec-<generation>.npz       the trained tiers (`codec.TieredCodec`), once the index is trained
    DIR/segments/<id>.codes          one code row per indexed second (.npy, memory-mapped, never loaded)
    DIR/segments/<id>.coarse         the segment's coarse inverted file (tiered segments only)

A video's seconds are contiguous rows of one segment. Searching a tiered segment asks its coarse
inverted file for the windows nearest each query second and each query window, then re-ranks the
seconds of those windows exactly against the decoded fine codes; a flat segment (8-bit codes, before
the index is trained) is searched exhaustively. Either way the matcher gets each query second's
nearest stored seconds (`neighbours`) and reads the candidates' seconds from disk (`video_vectors`).

Writes never modify a file: `add` writes a new segment (its files atomically, then one SQLite
transaction records it with its videos), `remove` records tombstones (rows that stay in their
segment until `compact` merges the segments into one without them), `compact` writes the merged
segment and swaps it in, in one transaction. A crash at any moment leaves the last committed state;
files no record names are removed by the next writer. Readers open the segments their snapshot
names (SQLite in WAL mode) and keep them open, so a compaction that retires files does not disturb
them (a reader that loses the race to open a retired file reads the manifest again). Writers
exclude each other with an advisory lock on DIR/.write-lock; creation happens under the same lock
and renames a finished `index.sqlite` into place last.

Checksums: every segment file's SHA-256 is recorded; `open` checks sizes and shapes (cheap at any
size), `verify` (`framegram index check`) reads every byte against the checksums.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import mmap
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np
from rich.progress import track

from framegram.errors import FramegramError
from framegram.framegram import Framegram
from framegram.io.atomic import atomic_path
from framegram.io.hashing import sha256_file
from framegram.search.codec import FlatCodec, TieredCodec, TierSettings, coarse_vectors, train_codec
from framegram.search.fingerprint import load_fingerprint, reference_descriptors
from framegram.search.fingerprint_protocol import Fingerprint, require_fingerprint

INDEX_FORMAT = 2
_DB = "index.sqlite"
_BASIS = "basis.npz"
_LOCK = ".write-lock"
_SEGMENTS = "segments"
#: a stored second's key: segment id in the high bits, row in the segment below
_ROW_BITS = 40
_ROW_MASK = (1 << _ROW_BITS) - 1
#: coarse windows asked for per query vector before the exact re-ranking
COARSE_NEIGHBOURS = 32
_SCHEMA = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE segments (
        seg_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, rows INTEGER NOT NULL, code_size INTEGER NOT NULL,
        codes_sha256 TEXT NOT NULL, coarse_sha256 TEXT, created_at TEXT NOT NULL);
    CREATE TABLE videos (
        ref_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, duration REAL NOT NULL,
        seg_id INTEGER NOT NULL, first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL, added_at TEXT NOT NULL);
    CREATE INDEX videos_sha ON videos (sha256);
    CREATE TABLE tombstones (
        seg_id INTEGER NOT NULL, first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL,
        ref_id TEXT NOT NULL, removed_at TEXT NOT NULL);
"""


class SearchIndexError(FramegramError):
    """A missing, damaged or incompatible index directory."""


@dataclass(frozen=True)
class IndexedVideo:
    """A reference video: rows first_row .. first_row + n_rows - 1 of segment `segment`."""

    ref_id: str
    path: str
    sha256: str
    duration: float  #: seconds
    segment: int
    first_row: int
    n_rows: int  #: descriptors stored (one per second)
    added_at: str


@dataclass(frozen=True)
class SegmentRecord:
    seg_id: int
    kind: str  #: "flat" or "tiered"
    rows: int
    code_size: int  #: bytes per row of the .codes file
    codes_sha256: str
    coarse_sha256: str | None
    created_at: str


@dataclass(frozen=True)
class IndexInfo:
    folder: Path
    videos: int
    seconds: int  #: live descriptors, one per indexed second
    tombstoned_seconds: int  #: rows of removed videos still in segments (until `compact`)
    segments: int
    flat_segments: int
    bytes_on_disk: int  #: every file of the current state: segments, codec, records, fingerprint
    disk_bytes_per_second: float  #: bytes_on_disk per live indexed second
    memory_bytes_per_second: float  #: what an open index keeps in memory (coarse lists, flat codes) per second
    vector_bytes_per_second: float  #: code bytes per stored second, fine tier (flat: the 8-bit codes)
    encoder: str
    fps: float
    generation: int
    fingerprint: str  #: what describes the videos, in words
    tiers: str  #: the trained codec in words, or why there is none yet


class _Segment:
    """An open segment: its codes memory-mapped, its coarse inverted file in memory (tiered)."""

    def __init__(self, folder: Path, record: SegmentRecord, codec: FlatCodec | TieredCodec):
        self.record, self.codec = record, codec
        codes_path, coarse_path = _segment_paths(folder, record.seg_id)
        self.codes = np.load(codes_path, mmap_mode="r", allow_pickle=False)  # FileNotFoundError: retired meanwhile
        if self.codes.shape != (record.rows, record.code_size) or self.codes.dtype != np.uint8:
            raise SearchIndexError(f"{codes_path}: holds {self.codes.shape} {self.codes.dtype}, the records say "
                                   f"({record.rows}, {record.code_size}) uint8 (damaged)")
        self.coarse = None
        if record.kind == "tiered":
            self.coarse = faiss.read_index(str(coarse_path))
            self.coarse.nprobe = codec.settings.nprobe
            # a query reads a few hundred scattered windows of 5 x 48 bytes: the kernel's read-ahead
            # (128 kB or more per fault) would read far more than that from an index larger than RAM
            if isinstance(self.codes, np.memmap) and self.codes.size:
                self.codes._mmap.madvise(mmap.MADV_RANDOM)
        self._flat: faiss.Index | None = None

    def flat_index(self) -> faiss.Index:
        if self._flat is None:
            self._flat = self.codec.searchable(np.asarray(self.codes))
        return self._flat

    def decode(self, rows: np.ndarray | slice) -> np.ndarray:
        return self.codec.decode(np.asarray(self.codes[rows]))

    def memory_bytes(self) -> int:
        if self.coarse is not None:
            invlists = self.coarse.invlists
            return int(self.coarse.ntotal * (self.coarse.code_size + 8) + invlists.nlist * 16)
        return self.record.rows * self.record.code_size  # searched in memory once used


class VideoIndex:
    """A read snapshot of an index directory, with methods that commit new states.

    `VideoIndex.create(dir, fingerprint)` makes an empty index (fingerprint: a FingerprintBasis or a
    LearnedFingerprint, kept for good); `VideoIndex.open(dir)` opens the current state without
    loading the stored seconds into memory. `add`, `remove`, `train` and `compact` take the write
    lock, apply to the latest committed state (another process may have written since this snapshot
    was opened) and leave this object on the result.
    """

    def __init__(self, folder: Path, fingerprint: Fingerprint, tiers: TierSettings, codec: TieredCodec | None,
                 segments: dict[int, _Segment], videos: dict[str, IndexedVideo], tombstones: list[tuple],
                 generation: int, codec_file: str | None = None):
        self.folder = folder
        self.fingerprint = fingerprint
        self.tiers = tiers
        self.codec = codec
        self.segments = segments
        self.videos = videos
        self.tombstones = tombstones  #: (seg_id, first_row, n_rows, ref_id, removed_at)
        self.generation = generation
        self.codec_file = codec_file  #: the codec's file name in the folder, once trained
        self._locator: _Locator | None = None

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | Path, fingerprint: Fingerprint, exist_ok: bool = False,
               tiers: TierSettings = TierSettings()) -> VideoIndex:
        """An empty index in `folder` describing videos with `fingerprint` (kept for good).

        An index already there is an error, unless `exist_ok`: then it is opened, and refused when it
        was made with another fingerprint. Safe against another process creating the same index.
        `tiers`: how the index trains and searches once it is large (`codec.TierSettings`).
        An object that is not a `Fingerprint` is refused, naming what it lacks, before anything is written."""
        folder = Path(folder)
        require_fingerprint(fingerprint, folder)
        if folder.exists() and not folder.is_dir():
            raise SearchIndexError(f"{folder}: exists and is not a directory")
        with _write_lock(folder):
            if (folder / _DB).exists():
                if not exist_ok:
                    raise SearchIndexError(f"{folder}: an index already exists here")
                opened = cls.open(folder)
                check_same_fingerprint(opened, fingerprint)
                return opened
            # files first, the records last: a crash before the rename leaves no index, only files
            # the next creator overwrites
            fingerprint.save(folder / _BASIS)
            (folder / _SEGMENTS).mkdir(exist_ok=True)
            with atomic_path(folder / _DB, suffix=".sqlite") as tmp:
                tmp.unlink()  # sqlite makes its own file
                db = sqlite3.connect(tmp)
                try:
                    with db:
                        db.executescript(_SCHEMA)
                        db.executemany("INSERT INTO meta VALUES (?, ?)", [
                            ("format", str(INDEX_FORMAT)), ("basis", fingerprint.digest), ("generation", "0"),
                            ("created_at", _now()), ("tiers", tiers.to_json()), ("codec", ""), ("codec_sha256", ""),
                        ])
                finally:
                    db.close()
        return cls.open(folder)

    @classmethod
    def open(cls, folder: str | Path) -> VideoIndex:
        folder = Path(folder)
        if not (folder / _DB).is_file():
            raise SearchIndexError(f"{folder}: no index here (create one with `framegram index add VIDEOS --index {folder}`)")
        for _ in range(20):  # a compaction may retire the files we read of between the two steps
            state = _read_state(folder)
            meta = state.meta
            if meta.get("format") != str(INDEX_FORMAT):
                raise SearchIndexError(
                    f"{folder}: index format {meta.get('format')} (made by an earlier framegram); this framegram reads "
                    f"format {INDEX_FORMAT}: convert it with `framegram index upgrade --index {folder}`, or build it "
                    "again with `framegram index add`")
            fingerprint = load_fingerprint(folder / _BASIS)
            if meta.get("basis") != fingerprint.digest:
                raise SearchIndexError(f"{folder / _BASIS}: does not match the index's records (damaged?)")
            try:
                codec = _load_codec(folder, meta)
                flat = FlatCodec(fingerprint.quant_min, fingerprint.quant_range)
                segments = {r.seg_id: _Segment(folder, r, codec if r.kind == "tiered" else flat) for r in state.segments}
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            except (OSError, RuntimeError, ValueError) as e:
                raise SearchIndexError(f"{folder}: a segment or codec file cannot be read (damaged): {e}") from None
            return cls(folder, fingerprint, TierSettings.from_json(meta["tiers"]), codec, segments, state.videos,
                       state.tombstones, int(meta["generation"]), _codec_name(int(meta["codec"])) if meta["codec"] else None)
        raise SearchIndexError(f"{folder}: files of generation {meta.get('generation')} are missing (damaged)")

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.videos)

    def __contains__(self, ref_id: str) -> bool:
        return ref_id in self.videos

    @property
    def total_rows(self) -> int:
        """Live indexed seconds (tombstoned rows not counted)."""
        return sum(v.n_rows for v in self.videos.values())

    @property
    def ref_ids(self) -> list[str]:
        """The videos in storage order; `locate` answers positions in this list."""
        return self._locate_table().ids

    def video_vectors(self, ref_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Decoded descriptors of one video's seconds start .. stop - 1, float32 [rows, dims] (all by
        default; second j starts at j s). Reads those rows from disk only."""
        v = self.videos[ref_id]
        stop = v.n_rows if stop is None else min(stop, v.n_rows)
        start = max(0, min(start, stop))
        return self.segments[v.segment].decode(slice(v.first_row + start, v.first_row + stop))

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For stored-second keys (from `neighbours`; -1 for none): (video position in `ref_ids` or -1
        for none or a removed video, second within the video), each int64 of the keys' shape."""
        return self._locate_table().locate(keys)

    def neighbours(self, queries: list[np.ndarray], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The `k` stored seconds most similar to each query second, per view: for each float32 [S, dims]
        array of consecutive query seconds, (similarities [S, k] best first, keys [S, k]; -1 where fewer
        were found). Flat segments are searched exhaustively; tiered ones through their coarse tier,
        then the seconds of the windows found are compared exactly (decoded fine codes)."""
        out = []
        flat = [s for s in self.segments.values() if s.coarse is None and s.record.rows]
        tiered = [s for s in self.segments.values() if s.coarse is not None and s.coarse.ntotal]
        queries = [np.ascontiguousarray(q, dtype=np.float32) for q in queries]
        bounds = np.cumsum([0] + [len(q) for q in queries])
        flat_found = []  # one exhaustive scan per segment for every view's seconds: the scan dominates
        for seg in flat:
            d, i = seg.flat_index().search(np.concatenate(queries), min(k, seg.record.rows))
            flat_found.append((d, np.where(i >= 0, (seg.record.seg_id << _ROW_BITS) + i, -1)))
        for view, q in enumerate(queries):
            part = slice(bounds[view], bounds[view + 1])
            sims = [d[part] for d, _ in flat_found]
            keys = [i[part] for _, i in flat_found]
            if tiered:
                with _faiss_threads(1):  # small searches: OpenMP's start-up costs more than it saves
                    d, i = self._tiered_neighbours(q, tiered, k)
                sims.append(d)
                keys.append(i)
            if not sims:
                out.append((np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)))
                continue
            sims_all, keys_all = np.concatenate(sims, axis=1), np.concatenate(keys, axis=1)
            who, _ = self.locate(keys_all)
            sims_all = np.where(who >= 0, sims_all, -np.inf)  # removed videos' rows wait for compaction
            order = np.argsort(-sims_all, axis=1, kind="stable")[:, :k]
            top_sims = np.take_along_axis(sims_all, order, axis=1)
            top_keys = np.where(np.isfinite(top_sims), np.take_along_axis(keys_all, order, axis=1), -1)
            out.append((np.where(np.isfinite(top_sims), top_sims, -1.0).astype(np.float32), top_keys))
        return out

    def _tiered_neighbours(self, q: np.ndarray, segments: list[_Segment], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Coarse search with the query's seconds and its windows of `window` seconds (one starting at
        every second), then every second of the windows found ranked exactly: ([S, k], [S, k])."""
        window = self.codec.settings.window
        if len(q) >= window:
            csum = np.vstack([np.zeros((1, q.shape[1]), np.float32), np.cumsum(q, axis=0)])
            means = csum[window:] - csum[:-window]
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
            coarse_queries = np.vstack([q, means.astype(np.float32)])
        else:
            coarse_queries = q
        assigned_sims, assigned = self.codec.assign(coarse_queries)
        sims, ids = [], []
        for seg in segments:
            d, i = seg.coarse.search_preassigned(coarse_queries, COARSE_NEIGHBOURS, assigned, assigned_sims)
            sims.append(np.where(i >= 0, d, -np.inf))
            ids.append(i)
        if len(segments) > 1:  # the best windows over all segments: as many as one segment would give
            sims_all, ids_all = np.concatenate(sims, axis=1), np.concatenate(ids, axis=1)
            best = np.argsort(-sims_all, axis=1, kind="stable")[:, :COARSE_NEIGHBOURS]
            ids = [np.take_along_axis(ids_all, best, axis=1)]
        windows = np.unique(ids[0][ids[0] >= 0])  # keys of the windows' first seconds
        who, at = self.locate(windows)
        windows, who, at = windows[who >= 0], who[who >= 0], at[who >= 0]
        if len(windows) == 0:
            return np.full((len(q), 0), -1.0, np.float32), np.full((len(q), 0), -1, np.int64)
        # every second of each window, up to the end of its video
        lengths = self._locate_table().n_rows[who]
        span = np.minimum(window, lengths - at)
        keys = np.repeat(windows, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
        vectors = np.empty((len(keys), q.shape[1]), np.float32)
        seg_of = keys >> _ROW_BITS
        for seg_id in np.unique(seg_of):
            mine = np.flatnonzero(seg_of == seg_id)
            vectors[mine] = self.segments[int(seg_id)].decode(keys[mine] & _ROW_MASK)
        sims = q @ vectors.T
        take = min(k, len(keys))
        top = np.argpartition(-sims, take - 1, axis=1)[:, :take] if take < len(keys) else np.tile(np.arange(len(keys)), (len(q), 1))
        top_sims = np.take_along_axis(sims, top, axis=1)
        return top_sims, keys[top]

    def _locate_table(self) -> _Locator:
        if self._locator is None:  # reset whenever this object moves to another state
            self._locator = _Locator(self.videos)
        return self._locator

    def info(self) -> IndexInfo:
        files = [self.folder / _DB, self.folder / _BASIS]
        if self.codec_file is not None:
            files.append(self.folder / self.codec_file)
        for seg_id in self.segments:
            files.extend(_segment_paths(self.folder, seg_id))
        on_disk = sum(f.stat().st_size for f in files if f.exists())
        seconds = self.total_rows
        per = (lambda b: b / seconds) if seconds else (lambda b: float("nan"))
        code_bytes = sum(s.record.rows * s.record.code_size for s in self.segments.values())
        stored = sum(s.record.rows for s in self.segments.values())
        return IndexInfo(
            folder=self.folder, videos=len(self.videos), seconds=seconds,
            tombstoned_seconds=sum(t[2] for t in self.tombstones),
            segments=len(self.segments), flat_segments=sum(s.coarse is None for s in self.segments.values()),
            bytes_on_disk=on_disk, disk_bytes_per_second=per(on_disk),
            memory_bytes_per_second=per(sum(s.memory_bytes() for s in self.segments.values())),
            vector_bytes_per_second=code_bytes / stored if stored else float("nan"),
            encoder=self.fingerprint.encoder_name, fps=self.fingerprint.fps, generation=self.generation,
            fingerprint=self.fingerprint.summary,
            tiers=self.codec.summary() if self.codec is not None else
            f"not trained: flat 8-bit search (trains by itself at {self.tiers.train_at} s, or `VideoIndex.train`)",
        )

    def verify(self) -> list[str]:
        """What `open` does not check (it checks the fingerprint against the records and each segment's
        shape): every segment file against its recorded SHA-256, every video's rows inside its segment
        and apart from the others', codes that decode to finite vectors. Returns the problems found,
        [] for a sound index."""
        problems = []
        for seg_id, seg in sorted(self.segments.items()):
            codes_path, coarse_path = _segment_paths(self.folder, seg_id)
            if sha256_file(codes_path) != seg.record.codes_sha256:
                problems.append(f"{codes_path}: its checksum does not match the index's records")
            if seg.record.coarse_sha256 is not None and sha256_file(coarse_path) != seg.record.coarse_sha256:
                problems.append(f"{coarse_path}: its checksum does not match the index's records")
            for start in range(0, seg.record.rows, 100_000):
                if not np.isfinite(seg.decode(slice(start, start + 100_000))).all():
                    problems.append(f"segment {seg_id}, rows from {start}: vectors that are not finite")
        used = sorted([(v.segment, v.first_row, v.n_rows, v.ref_id) for v in self.videos.values()]
                      + [(t[0], t[1], t[2], f"removed {t[3]}") for t in self.tombstones])
        end: dict[int, int] = {}
        for seg_id, first, n, name in used:
            if seg_id not in self.segments or first < end.get(seg_id, 0) or n < 1 or first + n > self.segments[seg_id].record.rows:
                problems.append(f"video {name!r}: rows {first}..{first + n - 1} of segment {seg_id} are not its own")
            end[seg_id] = first + n
        return problems

    # ---- writing -------------------------------------------------------------------------

    def add(self, items: Iterable[tuple[str, Framegram]], commit_every: int = 50,
            on_error: Callable[[str, FramegramError], None] | None = None) -> list[str]:
        """Describe and add (ref_id, framegram) pairs; returns the ref_ids added.

        A framegram whose video content (sha256) is already indexed is skipped, as is a ref_id
        already present with the same content; the same ref_id with other content is an error, as
        is a framegram of another encoder or frame rate than the fingerprint's. Commits a segment every
        `commit_every` videos, so an interrupted run keeps what it finished. on_error(ref_id, error):
        called for an item that cannot be added, which is then skipped and the others go on;
        without it the first such error propagates (what was committed before it stays).
        """

        def described() -> Iterator[tuple[str, str, str, float, Callable[[], np.ndarray]]]:
            for ref_id, framegram in items:
                source = framegram.meta.source

                def vectors(f=framegram, ref_id=ref_id) -> np.ndarray:  # only for videos that will be added
                    self.fingerprint.check(f, what=f"video {ref_id!r}")
                    return reference_descriptors(f, self.fingerprint).vectors

                yield ref_id, source.path, source.sha256, framegram.duration, vectors

        return self.add_descriptors(described(), commit_every, on_error)

    def add_descriptors(self, items: Iterable[tuple], commit_every: int = 50,
                        on_error: Callable[[str, FramegramError], None] | None = None) -> list[str]:
        """Add videos already described: (ref_id, path, sha256, duration in s, vectors) tuples where
        vectors is float32 [seconds, dims] in this index's fingerprint space, or a callable giving it.
        Same skipping, committing and error rules as `add`; each commit writes one new segment."""
        added: list[str] = []
        with self._writing():
            pending: list[tuple[tuple, np.ndarray]] = []
            pending_ids: dict[str, str] = {}  # ref_id -> sha256 of what is pending
            known_sha = {v.sha256 for v in self.videos.values()}
            for ref_id, path, sha, duration, vectors in items:
                known = self.videos.get(ref_id)
                known_sha256 = known.sha256 if known is not None else pending_ids.get(ref_id)
                if known_sha256 == sha or known_sha256 is None and sha in known_sha:
                    continue
                try:
                    if known_sha256 is not None:
                        where = known.path if known is not None else "added in this run"
                        raise SearchIndexError(f"{path}: the index already has another video named {ref_id!r} "
                                               f"({where}); give it another id (`framegram index add FOLDER` names videos by their path inside FOLDER)")
                    vectors = vectors() if callable(vectors) else vectors
                    if vectors.ndim != 2 or vectors.shape[1] != self.fingerprint.dims or len(vectors) == 0:
                        raise SearchIndexError(f"{path}: descriptors of shape {vectors.shape}, the index stores {self.fingerprint.dims} dims")
                except FramegramError as e:
                    if on_error is None:
                        if pending:  # keep what came before the bad item
                            self._commit_segment(pending)
                        raise
                    on_error(ref_id, e)
                    continue
                pending.append(((ref_id, str(path), sha, float(duration)), np.ascontiguousarray(vectors, dtype=np.float32)))
                pending_ids[ref_id] = sha
                known_sha.add(sha)
                added.append(ref_id)
                if len(pending) >= commit_every:
                    self._commit_segment(pending)
                    pending, pending_ids = [], {}
            if pending:
                self._commit_segment(pending)
        return added

    def remove(self, ref_ids: Iterable[str]) -> list[str]:
        """Remove videos by ref_id (unknown ids are an error, nothing removed); returns them. Their rows
        become tombstones: never returned again, dropped from disk by `compact`."""
        ref_ids = list(dict.fromkeys(ref_ids))
        with self._writing():
            unknown = [r for r in ref_ids if r not in self.videos]
            if unknown:
                raise SearchIndexError(f"{self.folder}: not in the index: {', '.join(unknown)}")
            with _connect(self.folder) as db:
                for ref_id in ref_ids:
                    v = self.videos[ref_id]
                    db.execute("DELETE FROM videos WHERE ref_id = ?", (ref_id,))
                    db.execute("INSERT INTO tombstones VALUES (?, ?, ?, ?, ?)", (v.segment, v.first_row, v.n_rows, ref_id, _now()))
                _bump_generation(db)
            self._reload()
        return ref_ids

    def train(self, sample: np.ndarray | None = None, starts: np.ndarray | None = None,
              settings: TierSettings | None = None) -> TieredCodec:
        """Train the tiers (once per index) on `sample` (float32 [n, dims] seconds of videos placed back
        to back from rows `starts`), by default a sample of what the index holds; later segments are
        tiered and `compact` converts the flat ones. settings: other TierSettings than the index's."""
        with self._writing():
            if self.codec is not None:
                raise SearchIndexError(f"{self.folder}: the index is already trained ({self.codec.summary()})")
            if sample is None:
                sample, starts = self._sample([])
            self._commit_codec(self._train(sample, starts, settings or self.tiers, videos=len(starts)))
        return self.codec

    def compact(self, show_progress: bool = False) -> dict:
        """Merge every segment into one without the tombstoned rows (and encode flat segments with the
        trained codec, if any); one transaction swaps the new segment in. Returns what it did."""
        with self._writing():
            started = time.perf_counter()
            before = (len(self.segments), sum(t[2] for t in self.tombstones))
            videos = sorted(self.videos.values(), key=lambda v: (v.segment, v.first_row))
            if not videos:  # nothing live: the segments and tombstones go, no file is written
                with _connect(self.folder) as db:
                    db.execute("DELETE FROM segments")
                    db.execute("DELETE FROM tombstones")
                    _bump_generation(db)
                self._reload()
                return {"segments_before": before[0], "tombstoned_seconds_dropped": before[1], "seconds": 0,
                        "s": round(time.perf_counter() - started, 2)}
            codec = self.codec if self.codec is not None else self._flat_codec()
            seg_id = self.generation + 1
            firsts = np.cumsum([0] + [v.n_rows for v in videos[:-1]])
            placed = [dataclasses.replace(v, segment=seg_id, first_row=int(row)) for v, row in zip(videos, firsts)]
            parts = self._compaction_parts(videos, placed, codec)
            new = _write_segment(self.folder, seg_id, codec, parts, show_progress)  # OSError: see _writing
            with _connect(self.folder) as db:
                db.execute("DELETE FROM segments")
                db.execute("DELETE FROM tombstones")
                _insert_segment(db, new)
                db.executemany("UPDATE videos SET seg_id = ?, first_row = ? WHERE ref_id = ?",
                               [(seg_id, v.first_row, v.ref_id) for v in placed])
                _bump_generation(db, to=seg_id)
            self._reload()
            return {"segments_before": before[0], "tombstoned_seconds_dropped": before[1], "seconds": self.total_rows,
                    "s": round(time.perf_counter() - started, 2)}

    def _compaction_parts(self, videos: list[IndexedVideo], placed: list[IndexedVideo],
                          codec: FlatCodec | TieredCodec) -> list[_Part]:
        """What a compaction writes, in row order: a whole segment whose rows are all live and coded by
        `codec` as one part whose codes are copied as one block; any other segment video by video
        (decoded and re-encoded when its codec differs). Coarse lists are always rebuilt from the
        decoded codes: FAISS 1.15's `merge_from` of fast-scan inverted lists crashed (SIGSEGV in
        memcpy) merging the 100,000-h benchmark's segments."""
        by_segment: dict[int, list[int]] = {}
        for k, v in enumerate(videos):
            by_segment.setdefault(v.segment, []).append(k)
        parts = []
        for seg_id, members in by_segment.items():
            seg = self.segments[seg_id]
            if sum(videos[k].n_rows for k in members) == seg.record.rows and seg.codec is codec:
                parts.append(_Part([placed[k] for k in members], lambda seg=seg: np.asarray(seg.codes)))
            else:
                parts += [_Part([placed[k]], self._codes_in(videos[k], codec)) for k in members]
        return parts

    def _codes_in(self, v: IndexedVideo, codec: FlatCodec | TieredCodec) -> Callable[[], np.ndarray]:
        """A video's codes under `codec`: copied when its segment already uses it, else decoded and encoded."""
        seg = self.segments[v.segment]
        rows = slice(v.first_row, v.first_row + v.n_rows)
        if seg.codec is codec or seg.record.kind == codec.kind == "flat":
            return lambda: np.asarray(seg.codes[rows])
        return lambda: codec.encode(seg.decode(rows))

    def _flat_codec(self) -> FlatCodec:
        return FlatCodec(self.fingerprint.quant_min, self.fingerprint.quant_range)

    def _sample(self, pending: list[tuple[tuple, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Up to `tiers.sample` seconds for training, drawn as whole videos in a fixed order (a seeded
        shuffle of the stored and pending videos), with the rows where each starts."""
        stored = [(v.ref_id, lambda v=v: self.video_vectors(v.ref_id)) for v in self.videos.values()]
        fresh = [(meta[0], lambda x=x: x) for meta, x in pending]
        everything = sorted(stored + fresh, key=lambda item: item[0])
        order = np.random.default_rng(0).permutation(len(everything))
        parts, total = [], 0
        for i in order:
            x = everything[i][1]()[: self.tiers.sample - total]
            parts.append(x)
            total += len(x)
            if total >= self.tiers.sample:
                break
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]]).astype(np.int64)
        return np.concatenate(parts), starts

    def _train(self, sample: np.ndarray, starts: np.ndarray, settings: TierSettings, videos: int) -> TieredCodec:
        return train_codec(sample, starts, settings, {"seconds": len(sample), "videos": videos, "at": _now()})

    def _commit_codec(self, codec: TieredCodec) -> None:
        generation = self.generation + 1
        path = self.folder / _codec_name(generation)
        codec.save(path)
        with _connect(self.folder) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'codec'", (str(generation),))
            db.execute("UPDATE meta SET value = ? WHERE key = 'codec_sha256'", (sha256_file(path),))
            db.execute("UPDATE meta SET value = ? WHERE key = 'tiers'", (codec.settings.to_json(),))
            _bump_generation(db, to=generation)
        self._reload()

    def _commit_segment(self, pending: list[tuple[tuple, np.ndarray]]) -> None:
        """Write the pending videos as a new segment, then record it with them (one transaction).
        An untrained index that reaches `tiers.train_at` seconds trains first."""
        if self.codec is None and self.total_rows + sum(len(x) for _, x in pending) >= self.tiers.train_at:
            sample, starts = self._sample(pending)
            self._commit_codec(self._train(sample, starts, self.tiers, videos=len(starts)))
        codec = self.codec if self.codec is not None else self._flat_codec()
        seg_id = self.generation + 1
        placed = []
        row = 0
        for (ref_id, path, sha, duration), x in pending:
            placed.append(IndexedVideo(ref_id, path, sha, duration, seg_id, row, len(x), _now()))
            row += len(x)
        record = _write_segment(self.folder, seg_id, codec,
                                [_Part([v], lambda x=x: codec.encode(x)) for v, (_, x) in zip(placed, pending)])
        with _connect(self.folder) as db:
            _insert_segment(db, record)
            db.executemany("INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(v.ref_id, v.path, v.sha256, v.duration, v.segment, v.first_row, v.n_rows, v.added_at) for v in placed])
            _bump_generation(db, to=seg_id)
        self._reload()

    def _reload(self) -> None:
        latest = VideoIndex.open(self.folder)
        self.__dict__.update(latest.__dict__)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock, with this object on the latest committed state and the files no record names
        removed (left by a crashed writer, or retired by a compaction). On an error this object is put
        back on the committed state."""
        with _write_lock(self.folder):
            self._reload()
            _remove_unrecorded_files(self.folder, self)
            try:
                yield
            except OSError as e:  # a full disk, an I/O error: nothing was committed
                with contextlib.suppress(FramegramError):
                    self._reload()
                raise SearchIndexError(f"{self.folder}: could not write ({e}); the index is as it was before") from e
            except BaseException:
                with contextlib.suppress(FramegramError):
                    self._reload()
                raise


class _Locator:
    """Which video a stored second belongs to: per segment, its videos' first rows sorted."""

    def __init__(self, videos: dict[str, IndexedVideo]):
        ordered = sorted(videos.values(), key=lambda v: (v.segment, v.first_row))
        self.ids = [v.ref_id for v in ordered]
        self.segment = np.array([v.segment for v in ordered], np.int64)
        self.first = np.array([v.first_row for v in ordered], np.int64)
        self.n_rows = np.array([v.n_rows for v in ordered], np.int64)
        # sorted (segment, first row) as one key, so one searchsorted places any key
        self.starts = (self.segment << _ROW_BITS) + self.first

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = np.asarray(keys, np.int64)
        if len(self.starts) == 0:
            return np.full(keys.shape, -1, np.int64), np.zeros(keys.shape, np.int64)
        pos = np.searchsorted(self.starts, keys, side="right") - 1
        safe = np.maximum(pos, 0)
        at = keys - self.starts[safe]
        valid = (keys >= 0) & (pos >= 0) & ((keys >> _ROW_BITS) == self.segment[safe]) & (at < self.n_rows[safe])
        return np.where(valid, pos, -1), np.where(valid, at, 0)


def check_same_fingerprint(index: VideoIndex, fingerprint: Fingerprint) -> None:
    """Refuse `fingerprint` for `index` unless it makes the same vectors as the index's own (or
    when it is not a `Fingerprint` at all, naming what it lacks)."""
    require_fingerprint(fingerprint, index.folder)
    if fingerprint.digest != index.fingerprint.digest:
        differences = index.fingerprint.differences(fingerprint)
        raise SearchIndexError(
            f"{index.folder}: the index describes videos with {index.fingerprint.summary}; the fingerprint "
            f"given is {fingerprint.summary}" + (f": {', '.join(differences)}" if differences else "")
            + " (use another index directory)")


# ---- files -------------------------------------------------------------------------------


def _segment_paths(folder: Path, seg_id: int) -> tuple[Path, Path]:
    return folder / _SEGMENTS / f"{seg_id:08d}.codes", folder / _SEGMENTS / f"{seg_id:08d}.coarse"


def _codec_name(generation: int) -> str:
    return f"codec-{generation:08d}.npz"


@dataclass(frozen=True)
class _Part:
    """Consecutive rows of a segment being written: `videos` (placed in it, in row order) and their
    codes, [rows of all of them, code size]."""

    videos: list[IndexedVideo]
    codes: Callable[[], np.ndarray]


def _write_segment(folder: Path, seg_id: int, codec: FlatCodec | TieredCodec, parts: list[_Part],
                   show_progress: bool = False) -> SegmentRecord:
    """Write a segment's files atomically, one part's codes at a time (a compaction of a large index
    never holds it all in memory); returns its record."""
    codes_path, coarse_path = _segment_paths(folder, seg_id)
    rows = sum(v.n_rows for part in parts for v in part.videos)
    coarse = codec.empty_coarse() if isinstance(codec, TieredCodec) else None
    with atomic_path(codes_path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(rows, codec.code_size))
        batch: list[tuple[IndexedVideo, np.ndarray]] = []
        batch_rows = 0
        for part in track(parts, description="writing segment", disable=not show_progress):
            c = part.codes()
            first = part.videos[0].first_row
            out[first : first + len(c)] = c
            if coarse is None:
                continue
            for v in part.videos:
                batch.append((v, c[v.first_row - first : v.first_row - first + v.n_rows]))
                batch_rows += v.n_rows
                if batch_rows >= 200_000:
                    _add_coarse(coarse, codec, batch, seg_id)
                    batch, batch_rows = [], 0
        if coarse is not None and batch:
            _add_coarse(coarse, codec, batch, seg_id)
        out.flush()
        del out
        codes_sha = sha256_file(tmp)
    coarse_sha = None
    if coarse is not None:
        with atomic_path(coarse_path, suffix=".faiss") as tmp:
            faiss.write_index(coarse, str(tmp))
            coarse_sha = sha256_file(tmp)
    return SegmentRecord(seg_id, codec.kind, rows, codec.code_size, codes_sha, coarse_sha, _now())


def _add_coarse(coarse: faiss.IndexIVF, codec: TieredCodec, batch: list[tuple[IndexedVideo, np.ndarray]], seg_id: int) -> None:
    decoded = codec.decode(np.concatenate([c for _, c in batch]))
    lengths = np.array([v.n_rows for v, _ in batch])
    local = np.cumsum(np.append(0, lengths[:-1]))
    vectors, firsts = coarse_vectors(decoded, local, lengths, codec.settings.window)
    # window keys: the segment and the row its first second has in the segment
    offset = np.repeat(np.array([v.first_row for v, _ in batch]) - local, [len(range(0, n, codec.settings.window)) for n in lengths])
    coarse.add_with_ids(vectors, (np.int64(seg_id) << _ROW_BITS) + firsts + offset)


def _insert_segment(db: sqlite3.Connection, r: SegmentRecord) -> None:
    db.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
               (r.seg_id, r.kind, r.rows, r.code_size, r.codes_sha256, r.coarse_sha256, r.created_at))


def _bump_generation(db: sqlite3.Connection, to: int | None = None) -> None:
    current = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(to if to is not None else current + 1),))


def _load_codec(folder: Path, meta: dict[str, str]) -> TieredCodec | None:
    if not meta.get("codec"):
        return None
    path = folder / _codec_name(int(meta["codec"]))
    if sha256_file(path) != meta.get("codec_sha256"):
        raise SearchIndexError(f"{path}: its checksum does not match the index's records (damaged)")
    return TieredCodec.load(path)


def _remove_unrecorded_files(folder: Path, state: VideoIndex) -> None:
    """Segment and codec files the records do not name: a crashed writer's, or retired by a compaction
    (a reader that opened them keeps them open). Called by writers, under the lock."""
    keep = {p.name for seg_id in state.segments for p in _segment_paths(folder, seg_id)}
    for path in (folder / _SEGMENTS).glob("*"):
        if path.name not in keep and not path.name.endswith(".partial"):
            path.unlink(missing_ok=True)
    for path in folder.glob("codec-*.npz"):
        if path.name != state.codec_file:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def _faiss_threads(n: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass(frozen=True)
class _State:
    meta: dict[str, str]
    segments: list[SegmentRecord]
    videos: dict[str, IndexedVideo]
    tombstones: list[tuple]


@contextlib.contextmanager
def _connect(folder: Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode whose `with` block is one transaction (committed on success)."""
    # IMMEDIATE: a write transaction takes the write lock when it begins, under the busy timeout; a
    # deferred one that read first would be refused at once ("database is locked") to avoid deadlock
    db = sqlite3.connect(folder / _DB, timeout=30, isolation_level="IMMEDIATE")
    try:
        _set_wal(db)
        with db:
            yield db
    except sqlite3.DatabaseError as e:
        raise SearchIndexError(f"{folder / _DB}: {e}") from None
    finally:
        db.close()


def _set_wal(db: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch to WAL, waiting while another process creates the file: SQLite answers this pragma
    "database is locked" at once, without its busy timeout, while another connection holds a lock."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _read_state(folder: Path) -> _State:
    with _connect(folder) as db:
        db.execute("BEGIN")  # one snapshot for every read
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != str(INDEX_FORMAT):
            return _State(meta, [], {}, [])
        segments = [SegmentRecord(*r) for r in db.execute("SELECT * FROM segments ORDER BY seg_id")]
        rows = db.execute("SELECT ref_id, path, sha256, duration, seg_id, first_row, n_rows, added_at FROM videos").fetchall()
        tombstones = [tuple(r) for r in db.execute("SELECT * FROM tombstones")]
    return _State(meta, segments, {r[0]: IndexedVideo(*r) for r in rows}, tombstones)


@contextlib.contextmanager
def _write_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / _LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


