"""The background a match score is measured against: how similar a query second is to unrelated video.

A query second that resembles everything (black, a title card, a blank sky) says little about where
it comes from, so the matcher takes every similarity relative to that second's background: the mean
best similarity of a few *other* videos than the candidate (see `framegram.search.matcher`). Drawn
from the index alone, the background depends on what the index holds: with one or two indexed
videos there is nothing to draw it from and unrelated clips pass as matches. So every fingerprint
carries a `BackgroundBank`: per-second descriptors of footage that no index is expected to hold
(the videos its basis was fitted on), split into pieces that each count as one video. The matcher
pools the bank's videos with the index's own, so the score means the same at 1 indexed video and
at 100,000: the bank stands in where the index is small, the index's nearer neighbours take over
where it is large.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from framegram.search.fingerprint_protocol import Fingerprint

#: seconds per bank piece: a piece counts as one unrelated video (a 45-s fitting video gives three)
PIECE_SECONDS = 15


@dataclass(frozen=True, eq=False)
class BackgroundBank:
    """vectors: float32 [N, K] unit descriptors, one per second, in the fingerprint's space;
    piece: int64 [N], which bank video (piece) each second belongs to, 0 .. pieces - 1."""

    vectors: np.ndarray
    piece: np.ndarray

    def __post_init__(self):
        if self.vectors.ndim != 2 or self.piece.shape != (len(self.vectors),):
            raise ValueError(f"bank vectors must be [N, K] and pieces [N], got {self.vectors.shape} and {self.piece.shape}")
        if len(self.piece) and (self.piece[0] != 0 or not np.isin(np.diff(self.piece), (0, 1)).all()):
            raise ValueError("bank pieces must be contiguous runs of rows numbered 0, 1, 2, ...")

    @property
    def pieces(self) -> int:
        return int(self.piece.max()) + 1 if len(self.piece) else 0

    def best_similarity(self, queries: np.ndarray) -> np.ndarray:
        """float32 [S, pieces]: each query descriptor's ([S, K]) best similarity within each piece."""
        starts = np.flatnonzero(np.diff(self.piece, prepend=-1))  # first row of each piece
        return np.maximum.reduceat(queries @ self.vectors.T, starts, axis=1)

    @classmethod
    def from_descriptors(cls, videos: list[np.ndarray], piece_seconds: int = PIECE_SECONDS) -> BackgroundBank:
        """A bank from per-second descriptors of whole videos ([seconds, K] each), cut into pieces of
        `piece_seconds` (a last piece shorter than half of that joins the one before)."""
        vectors, piece = [], []
        for v in videos:
            cuts = list(range(0, len(v), piece_seconds))
            if len(cuts) > 1 and len(v) - cuts[-1] < piece_seconds / 2:
                cuts.pop()
            for k, start in enumerate(cuts):
                end = cuts[k + 1] if k + 1 < len(cuts) else len(v)
                vectors.append(v[start:end])
                piece.append(np.full(end - start, len(piece), np.int64))
        return cls(np.concatenate(vectors).astype(np.float32), np.concatenate(piece))

    def arrays(self, prefix: str = "background_") -> dict[str, np.ndarray]:
        """The arrays that store the bank in a fingerprint's .npz (float16: a similarity's third
        decimal is all the background needs)."""
        return {f"{prefix}vectors": self.vectors.astype(np.float16), f"{prefix}piece": self.piece.astype(np.int32)}

    @classmethod
    def from_arrays(cls, z, prefix: str = "background_") -> BackgroundBank | None:
        """The bank stored in an open .npz `z`, or None for a file written before banks existed."""
        if f"{prefix}vectors" not in z.files:
            return None
        return cls(z[f"{prefix}vectors"].astype(np.float32), z[f"{prefix}piece"].astype(np.int64))


def background_bank(fingerprint: Fingerprint) -> BackgroundBank | None:
    """The bank of a fingerprint; for a hand-designed basis stored before banks existed (an older
    index's copy), the packaged basis's bank when it is the same basis."""
    if fingerprint.background is not None:
        return fingerprint.background
    if fingerprint.kind == "basis":
        packaged = _packaged_bank(fingerprint.encoder_name, fingerprint.fps)
        if packaged is not None and packaged[0] == fingerprint.digest:
            return packaged[1]
    return None


@functools.lru_cache(maxsize=4)
def _packaged_bank(encoder: str, fps: float) -> tuple[str, BackgroundBank | None] | None:
    from framegram.errors import FramegramError
    from framegram.search.basis import default_basis

    try:
        basis = default_basis(encoder, fps)
    except FramegramError:
        return None
    return basis.digest, basis.background
