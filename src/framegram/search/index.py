"""The video index: one directory holding fingerprints in FAISS and everything else in SQLite.

    DIR/index.sqlite          videos (ref_id, path, sha256, duration, rows) and state (generation)
    DIR/basis.npz             the fingerprint every vector was made with: a fitted FingerprintBasis
                              or a LearnedFingerprint (the file name predates learned ones)
    DIR/vectors-000042.faiss  IndexScalarQuantizer (8 bits x dims per second: 256 bytes for the basis)

Vectors of one video are contiguous rows; SQLite records each video's first row and count, and
the SHA-256 of the current vectors file: a file damaged on disk is refused when it is opened
(`VideoIndex.open`, `framegram index check`) instead of answering with changed scores.

Crash safety and concurrent readers: a write never modifies a vectors file. It writes the next
generation's file next to the current one (atomically), then in one SQLite transaction records the
new videos and the new generation number. A crash before that commit leaves the previous
generation current (the orphan file is removed by the next write); readers take a consistent
snapshot (SQLite in WAL mode) and load the file of the generation they saw, which the writer keeps
until two generations later. Writers exclude each other with an advisory lock on DIR/.write-lock.
Creation happens under the same lock and `index.sqlite` is renamed into place last, so a folder
with that file holds a whole index, and of two processes creating one index at once the second
opens what the first made (or is refused when it asked for another fingerprint).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from framegram.errors import FramegramError
from framegram.framegram import Framegram
from framegram.io.atomic import atomic_path
from framegram.search.fingerprint import load_fingerprint, reference_descriptors
from framegram.search.fingerprint_protocol import Fingerprint, require_fingerprint

INDEX_FORMAT = 1
_DB = "index.sqlite"
_BASIS = "basis.npz"
_LOCK = ".write-lock"
_SCHEMA = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE videos (
        ref_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        duration REAL NOT NULL, first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL,
        added_at TEXT NOT NULL);
    CREATE INDEX videos_sha ON videos (sha256);
"""


class SearchIndexError(FramegramError):
    """A missing, damaged or incompatible index directory."""


@dataclass(frozen=True)
class IndexedVideo:
    """A reference video in the index: its rows are first_row .. first_row + n_rows - 1."""

    ref_id: str
    path: str
    sha256: str
    duration: float  #: seconds
    first_row: int
    n_rows: int  #: descriptors stored (one per second)
    added_at: str


@dataclass(frozen=True)
class IndexInfo:
    folder: Path
    videos: int
    seconds: int  #: descriptors stored, one per indexed second
    bytes_on_disk: int  #: the current vectors file, the SQLite file and the fingerprint
    vector_bytes_per_second: float  #: bytes of the vectors file per indexed second
    encoder: str
    fps: float
    generation: int
    fingerprint: str  #: what describes the videos, in words


class VideoIndex:
    """A read snapshot of an index directory, with methods that write a new generation.

    `VideoIndex.create(dir, fingerprint)` makes an empty index (fingerprint: any `Fingerprint`, a
    FingerprintBasis or a LearnedFingerprint, kept for good); `VideoIndex.open(dir)` loads the current
    state. `add` and `remove` take the write lock, apply to the latest committed state (another
    process may have written since this snapshot was opened) and leave this object on the result.
    """

    def __init__(self, folder: Path, fingerprint: Fingerprint, vectors: faiss.IndexScalarQuantizer,
                 videos: dict[str, IndexedVideo], generation: int):
        self.folder = folder
        self.fingerprint = fingerprint
        self.vectors = vectors
        self.videos = videos
        self.generation = generation
        self._owner: tuple[np.ndarray, list[str]] | None = None

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | Path, fingerprint: Fingerprint, exist_ok: bool = False) -> VideoIndex:
        """An empty index in `folder` describing videos with `fingerprint` (kept for good).

        An index already there is an error, unless `exist_ok`: then it is opened, and refused when it
        was made with another fingerprint. Safe against another process creating the same index.
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
            vectors_sha = _write_vectors(folder, 0, _empty_vectors(fingerprint))
            with atomic_path(folder / _DB, suffix=".sqlite") as tmp:
                tmp.unlink()  # sqlite makes its own file
                db = sqlite3.connect(tmp)
                try:
                    with db:
                        db.executescript(_SCHEMA)
                        db.executemany("INSERT INTO meta VALUES (?, ?)", [
                            ("format", str(INDEX_FORMAT)), ("basis", fingerprint.digest), ("generation", "0"),
                            ("vectors_sha256", vectors_sha), ("created_at", _now()),
                        ])
                finally:
                    db.close()
        return cls.open(folder)

    @classmethod
    def open(cls, folder: str | Path) -> VideoIndex:
        folder = Path(folder)
        if not (folder / _DB).is_file():
            raise SearchIndexError(f"{folder}: no index here (create one with `framegram index add VIDEOS --index {folder}`)")
        fingerprint = load_fingerprint(folder / _BASIS)
        for _ in range(5):  # a writer may retire the generation we read between the two steps
            generation, videos, meta = _read_state(folder)
            if meta.get("format") != str(INDEX_FORMAT):
                raise SearchIndexError(f"{folder}: index format {meta.get('format')}; this framegram reads {INDEX_FORMAT}")
            if meta.get("basis") != fingerprint.digest:
                raise SearchIndexError(f"{folder / _BASIS}: does not match the index's records (damaged?)")
            path = _vectors_path(folder, generation)
            try:
                digest = _file_sha256(path)
                vectors = faiss.read_index(str(path))
            except (OSError, RuntimeError):
                time.sleep(0.05)
                continue
            if meta.get("vectors_sha256", digest) != digest:  # indexes made before checksums have none
                raise SearchIndexError(
                    f"{path}: its checksum does not match the index's records: the file is damaged "
                    "(restore it from a backup, or build the index again)")
            expected = sum(v.n_rows for v in videos.values())
            if vectors.ntotal != expected:
                raise SearchIndexError(f"{folder}: vectors file holds {vectors.ntotal} rows, the records say {expected} (damaged)")
            return cls(folder, fingerprint, vectors, videos, generation)
        raise SearchIndexError(f"{folder}: could not read vectors of generation {generation} (missing or damaged)")

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.videos)

    def __contains__(self, ref_id: str) -> bool:
        return ref_id in self.videos

    @property
    def total_rows(self) -> int:
        return int(self.vectors.ntotal)

    def codes(self) -> np.ndarray:
        """The stored 8-bit codes, uint8 [rows, dims] (a view, not a copy)."""
        n, size = self.total_rows, self.vectors.code_size
        if n == 0:
            return np.zeros((0, size), np.uint8)
        return faiss.rev_swig_ptr(self.vectors.codes.data(), n * size).reshape(n, size)

    def video_vectors(self, ref_id: str) -> np.ndarray:
        """Decoded descriptors of one video, float32 [n_rows, dims], one per second from 0 s."""
        v = self.videos[ref_id]
        return self.vectors.sa_decode(self.codes()[v.first_row : v.first_row + v.n_rows])

    def row_owner(self) -> tuple[np.ndarray, list[str]]:
        """(owner [rows] int: position in `ids`, ids): which video each row belongs to."""
        if self._owner is None:  # reset whenever this object moves to another state
            self._owner = self._row_owner()
        return self._owner

    def _row_owner(self) -> tuple[np.ndarray, list[str]]:
        ids = sorted(self.videos, key=lambda r: self.videos[r].first_row)
        owner = np.empty(self.total_rows, np.int64)
        for k, ref_id in enumerate(ids):
            v = self.videos[ref_id]
            owner[v.first_row : v.first_row + v.n_rows] = k
        return owner, ids

    def info(self) -> IndexInfo:
        vectors = _vectors_path(self.folder, self.generation)
        files = [vectors, self.folder / _DB, self.folder / _BASIS]
        seconds = self.total_rows
        vector_bytes = vectors.stat().st_size
        return IndexInfo(
            folder=self.folder,
            videos=len(self.videos),
            seconds=seconds,
            bytes_on_disk=sum(f.stat().st_size for f in files if f.exists()),
            vector_bytes_per_second=vector_bytes / seconds if seconds else float("nan"),
            encoder=self.fingerprint.encoder_name,
            fps=self.fingerprint.fps,
            generation=self.generation,
            fingerprint=self.fingerprint.summary,
        )

    def verify(self) -> list[str]:
        """What `open` does not already check (it checks the fingerprint file against the records and
        the vectors file against its checksum and row count): every video's rows in place, one after
        another, and decodable to finite vectors. Returns the problems found, [] for a sound index."""
        problems = []
        row = 0
        for v in sorted(self.videos.values(), key=lambda v: v.first_row):
            if v.first_row != row or v.n_rows < 1:
                problems.append(f"video {v.ref_id!r}: rows {v.first_row}..{v.first_row + v.n_rows - 1}, expected to start at {row}")
            row = v.first_row + v.n_rows
        for start in range(0, self.total_rows, 100_000):
            decoded = self.vectors.sa_decode(self.codes()[start : start + 100_000])
            if not np.isfinite(decoded).all():
                problems.append(f"rows {start}..{start + len(decoded) - 1}: vectors that are not finite")
        return problems

    # ---- writing -------------------------------------------------------------------------

    def add(self, items: Iterable[tuple[str, Framegram]], commit_every: int = 50,
            on_error: Callable[[str, FramegramError], None] | None = None) -> list[str]:
        """Describe and add (ref_id, framegram) pairs; returns the ref_ids added.

        A framegram whose video content (sha256) is already indexed is skipped, as is a ref_id
        already present with the same content; the same ref_id with other content is an error, as
        is a framegram of another encoder or frame rate than the fingerprint's. Commits every
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
        Same skipping, committing and error rules as `add`."""
        added: list[str] = []
        with self._writing():
            pending: dict[str, IndexedVideo] = {}
            known_sha = {v.sha256 for v in self.videos.values()}
            for ref_id, path, sha, duration, vectors in items:
                known = self.videos.get(ref_id) or pending.get(ref_id)
                if known is not None and known.sha256 == sha or known is None and sha in known_sha:
                    continue
                try:
                    if known is not None:
                        raise SearchIndexError(f"{path}: the index already has another video named {ref_id!r} "
                                               f"({known.path}); give it another id (`framegram index add FOLDER` names videos by their path inside FOLDER)")
                    vectors = vectors() if callable(vectors) else vectors
                    if vectors.ndim != 2 or vectors.shape[1] != self.fingerprint.dims:
                        raise SearchIndexError(f"{path}: descriptors of shape {vectors.shape}, the index stores {self.fingerprint.dims} dims")
                except FramegramError as e:
                    if on_error is None:
                        if pending:  # keep what came before the bad item
                            self._commit(list(pending.values()), removed=())
                        raise
                    on_error(ref_id, e)
                    continue
                pending[ref_id] = IndexedVideo(ref_id, str(path), sha, float(duration), self.total_rows, len(vectors), _now())
                known_sha.add(sha)
                self.vectors.add(np.ascontiguousarray(vectors, dtype=np.float32))
                added.append(ref_id)
                if len(pending) >= commit_every:
                    self._commit(list(pending.values()), removed=())
                    pending = {}
            if pending:
                self._commit(list(pending.values()), removed=())
        return added

    def remove(self, ref_ids: Iterable[str]) -> list[str]:
        """Remove videos by ref_id (unknown ids are an error, nothing removed); returns them."""
        ref_ids = list(dict.fromkeys(ref_ids))
        with self._writing():
            unknown = [r for r in ref_ids if r not in self.videos]
            if unknown:
                raise SearchIndexError(f"{self.folder}: not in the index: {', '.join(unknown)}")
            # highest rows first, so earlier ranges keep their positions while removing
            for ref_id in sorted(ref_ids, key=lambda r: -self.videos[r].first_row):
                v = self.videos[ref_id]
                self.vectors.remove_ids(faiss.IDSelectorRange(v.first_row, v.first_row + v.n_rows))
            self._commit([], removed=ref_ids)
        return ref_ids

    def _reload(self) -> None:
        latest = VideoIndex.open(self.folder)
        self.vectors, self.videos, self.generation = latest.vectors, latest.videos, latest.generation
        self._owner = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The write lock, with this object on the latest committed state. On an error, what was
        not committed is dropped from this object too (vectors added in memory, rows removed), so it
        stays a consistent snapshot of the directory."""
        with _write_lock(self.folder):
            self._reload()
            try:
                yield
            except BaseException:
                with contextlib.suppress(FramegramError):
                    self._reload()
                raise

    def _commit(self, new: list[IndexedVideo], removed: Iterable[str]) -> None:
        """Write the vectors as the next generation, then record it with the video rows."""
        removed = list(removed)
        generation = self.generation + 1
        vectors_sha = _write_vectors(self.folder, generation, self.vectors)
        with _connect(self.folder) as db:
            # highest rows first: each shift then only moves rows that no later removal refers to
            for ref_id in sorted(removed, key=lambda r: -self.videos[r].first_row):
                gone = self.videos[ref_id]
                db.execute("DELETE FROM videos WHERE ref_id = ?", (ref_id,))
                db.execute("UPDATE videos SET first_row = first_row - ? WHERE first_row > ?", (gone.n_rows, gone.first_row))
            db.executemany(
                "INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(v.ref_id, v.path, v.sha256, v.duration, v.first_row, v.n_rows, v.added_at) for v in new],
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors_sha256', ?)", (vectors_sha,))
        self.generation, self.videos, _ = _read_state(self.folder)
        self._owner = None
        _retire_old_generations(self.folder, keep_from=generation - 1)


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


def _empty_vectors(fingerprint: Fingerprint) -> faiss.IndexScalarQuantizer:
    index = faiss.IndexScalarQuantizer(fingerprint.dims, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    # the quantiser's ranges come with the fingerprint, so every index of one fingerprint encodes alike
    index.sq.trained.resize(0)
    ranges = np.concatenate([fingerprint.quant_min, fingerprint.quant_range]).astype(np.float32)
    faiss.copy_array_to_vector(ranges, index.sq.trained)
    index.is_trained = True
    return index


def _vectors_path(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation:06d}.faiss"


def _write_vectors(folder: Path, generation: int, vectors: faiss.Index) -> str:
    """Write a generation's vectors file atomically; returns its SHA-256 (hex), for the records."""
    with atomic_path(_vectors_path(folder, generation), suffix=".faiss") as tmp:
        faiss.write_index(vectors, str(tmp))
        return _file_sha256(tmp)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _retire_old_generations(folder: Path, keep_from: int) -> None:
    for path in folder.glob("vectors-*.faiss"):
        try:
            generation = int(path.stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if generation < keep_from:
            path.unlink(missing_ok=True)
    for partial in folder.glob(".vectors-*.partial"):  # left by a crashed writer (we hold the lock)
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _connect(folder: Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode whose `with` block is one transaction (committed on success)."""
    db = sqlite3.connect(folder / _DB, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            yield db
    except sqlite3.DatabaseError as e:
        raise SearchIndexError(f"{folder / _DB}: {e}") from None
    finally:
        db.close()


def _read_state(folder: Path) -> tuple[int, dict[str, IndexedVideo], dict[str, str]]:
    with _connect(folder) as db:
        db.execute("BEGIN")  # one snapshot for both reads
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute("SELECT ref_id, path, sha256, duration, first_row, n_rows, added_at FROM videos").fetchall()
    videos = {r[0]: IndexedVideo(*r) for r in rows}
    return int(meta["generation"]), videos, meta


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
