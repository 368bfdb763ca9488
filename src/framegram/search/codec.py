"""How an index stores its per-second descriptors: the codes of its two tiers.

    flat   8-bit scalar codes with the fingerprint's own ranges (`dims` bytes a second: 256 for the
           hand-designed fingerprint), searched exhaustively: what an index uses until it is trained,
           and all a small index needs (the 2-hour benchmark answers in milliseconds).
    tiered once an index holds `TierSettings.train_at` seconds (or `VideoIndex.train` is called) it
           trains, on a sample of what it holds, a `TieredCodec`:
             fine    product-quantised codes of every second (FAISS, `fine` factory string: 48 bytes
                     for "PQ64x6"), kept on disk and memory-mapped, read for the shortlist only;
             coarse  one vector per `window` seconds of a video (the normalised mean of its decoded
                     fine seconds), in an inverted file with 4-bit fast-scan PQ codes (`coarse`,
                     `nlist` lists), searched first to shortlist videos and time ranges.
           The codec is trained once and kept with the index (`codec-<generation>.npz`); later
           segments are encoded with it, and `compact` re-encodes the flat segments.

Why coarse vectors are made from the decoded fine codes rather than from the exact descriptors:
compaction rebuilds the coarse tier from what is stored, and must give the vectors `add` gave.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np
import scipy.sparse

from framegram.io.atomic import atomic_path


@dataclass(frozen=True)
class TierSettings:
    """What a trained index looks like; kept in the index's records when it is created."""

    fine: str = "PQ64x6"  #: FAISS factory string of the fine codes: 48 bytes a second (bench/search_scale.py --codecs)
    window: int = 5  #: seconds per coarse vector
    coarse: str = "PQ32x4fs"  #: FAISS codes of the coarse vectors (4-bit fast scan: 16 bytes)
    nlist: int = 0  #: inverted lists of the coarse tier; 0: from the training sample's size
    nprobe: int = 16  #: lists searched per query vector
    train_at: int = 36_000  #: seconds (10 h) from which an index trains its tiers by itself
    sample: int = 200_000  #: at most this many seconds are drawn for training

    def __post_init__(self) -> None:
        for name in ("window", "nprobe", "train_at", "sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"TierSettings.{name} must be at least 1, got {getattr(self, name)}")
        if self.nlist < 0:
            raise ValueError(f"TierSettings.nlist must be 0 (automatic) or positive, got {self.nlist}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TierSettings:
        return cls(**json.loads(text))


class FlatCodec:
    """8-bit scalar codes with the fingerprint's quantiser ranges: [n, dims] float32 <-> uint8 [n, dims]."""

    kind = "flat"

    def __init__(self, quant_min: np.ndarray, quant_range: np.ndarray):
        self.dims = len(quant_min)
        self.index = faiss.IndexScalarQuantizer(self.dims, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        # the ranges come with the fingerprint, so every index of one fingerprint encodes alike
        self.index.sq.trained.resize(0)
        faiss.copy_array_to_vector(np.concatenate([quant_min, quant_range]).astype(np.float32), self.index.sq.trained)
        self.index.is_trained = True
        self.code_size = self.dims

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.index.sa_encode(np.ascontiguousarray(vectors, dtype=np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.index.sa_decode(np.ascontiguousarray(codes))

    def searchable(self, codes: np.ndarray) -> faiss.IndexScalarQuantizer:
        """An exact inner-product index over `codes` (copied into memory)."""
        index = faiss.clone_index(self.index)
        if len(codes):
            index.codes.resize(codes.size)
            faiss.copy_array_to_vector(np.ascontiguousarray(codes).ravel(), index.codes)
            index.ntotal = len(codes)
        return index


@dataclass
class TieredCodec:
    """A trained fine codec and coarse inverted file (empty: each segment gets a copy to fill)."""

    settings: TierSettings
    fine: faiss.Index
    coarse: faiss.IndexIVF
    trained_on: dict = field(default_factory=dict)  #: what the sample was: seconds, videos, when, seconds each

    kind = "tiered"

    @property
    def code_size(self) -> int:
        return int(self.fine.sa_code_size())

    @property
    def coarse_code_size(self) -> int:
        return int(self.coarse.code_size)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.fine.sa_encode(np.ascontiguousarray(vectors, dtype=np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.fine.sa_decode(np.ascontiguousarray(codes))

    def empty_coarse(self) -> faiss.IndexIVF:
        index = faiss.clone_index(self.coarse)
        index.nprobe = self.settings.nprobe
        return index

    def assign(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The `nprobe` nearest lists of each query vector: (similarities, list numbers) [Q, nprobe]."""
        return self.coarse.quantizer.search(np.ascontiguousarray(queries, dtype=np.float32), self.settings.nprobe)

    def save(self, path: Path) -> None:
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, settings=np.array(self.settings.to_json()), trained_on=np.array(json.dumps(self.trained_on)),
                     fine=faiss.serialize_index(self.fine), coarse=faiss.serialize_index(self.coarse))

    @classmethod
    def load(cls, path: Path) -> TieredCodec:
        with np.load(path, allow_pickle=False) as z:
            return cls(TierSettings.from_json(z["settings"].item()), faiss.deserialize_index(z["fine"]),
                       faiss.deserialize_index(z["coarse"]), json.loads(z["trained_on"].item()))

    def summary(self) -> str:
        t = self.trained_on
        return (f"fine {self.settings.fine} ({self.code_size} B/s), coarse IVF{self.coarse.nlist},{self.settings.coarse} "
                f"every {self.settings.window} s (nprobe {self.settings.nprobe}); trained on {t.get('seconds', '?')} s "
                f"of {t.get('videos', '?')} videos at {t.get('at', '?')}")


def train_codec(sample: np.ndarray, starts: np.ndarray, settings: TierSettings, trained_on: dict,
                seed: int = 0) -> TieredCodec:
    """Train the fine codes on `sample` (float32 [n, dims] per-second descriptors, videos back to
    back from `starts` [v] rows, so windows do not straddle two videos), then the coarse lists on the
    windows of the decoded sample. nlist (0 in settings): about one list per 40 training windows,
    a power of two between 16 and 4096."""
    dims = sample.shape[1]
    fine = faiss.index_factory(dims, settings.fine, faiss.METRIC_INNER_PRODUCT)
    fine.train(np.ascontiguousarray(sample, dtype=np.float32))
    decoded = fine.sa_decode(fine.sa_encode(np.ascontiguousarray(sample, dtype=np.float32)))
    lengths = np.diff(np.append(starts, len(sample)))
    windows, _ = coarse_vectors(decoded, starts, lengths, settings.window)
    nlist = settings.nlist or int(2 ** np.clip(np.round(np.log2(max(len(windows), 1) / 40)), 4, 12))
    coarse = faiss.index_factory(dims, f"IVF{nlist},{settings.coarse}", faiss.METRIC_INNER_PRODUCT)
    coarse.cp.seed = seed
    coarse.train(windows)
    return TieredCodec(settings, fine, coarse, {**trained_on, "windows": len(windows), "nlist": nlist})


def coarse_vectors(decoded: np.ndarray, starts: np.ndarray, lengths: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """One unit vector per `window` seconds of each video: decoded [n, dims] rows, videos at rows
    `starts` [v] with `lengths` [v] (a video's last window may be shorter). Returns (vectors
    float32 [w, dims], first rows int64 [w])."""
    firsts = np.concatenate([s + np.arange(0, n, window) for s, n in zip(starts, lengths)]) if len(starts) else np.zeros(0, np.int64)
    if len(firsts) == 0:
        return np.zeros((0, decoded.shape[1]), np.float32), firsts.astype(np.int64)
    # the window sums as one sparse product (ten times faster than np.add.reduceat on rows); a
    # window ends where the next begins, and the last window of a video at the next video's start
    ends = np.append(firsts[1:], starts[-1] + lengths[-1])
    membership = scipy.sparse.csr_matrix(
        (np.ones(int((ends - firsts).sum()), np.float32), np.arange(firsts[0], ends[-1]), np.append(0, np.cumsum(ends - firsts))),
        shape=(len(firsts), len(decoded)))
    sums = np.asarray(membership @ decoded)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32), firsts.astype(np.int64)

