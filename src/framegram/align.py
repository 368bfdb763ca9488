"""Finding where a short framegram sits inside a longer one, by sliding cosine similarity.

The framegram of an excerpt lines up with a strip of its source's framegram even after
re-encoding, because the features describe content rather than pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.errors import EncoderMismatchError
from framegram.framegram import Framegram


@dataclass(frozen=True)
class Alignment:
    """Best placement of a query inside a reference."""

    offset: float  #: seconds into the reference where the query's first sample lands
    score: float  #: mean cosine similarity of the aligned rows at that offset, in [-1, 1]
    scores: np.ndarray  #: float32 [T_ref - T_query + 1], the score at every row offset


def sliding_cosine(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean row-wise cosine similarity of `query` [Tq, D] against every Tq-row window of
    `reference` [Tr, D]; returns float32 [Tr - Tq + 1]. Requires Tq <= Tr."""
    if query.shape[0] > reference.shape[0]:
        raise ValueError(f"query has {query.shape[0]} rows, more than the reference's {reference.shape[0]}")
    q = unit_rows(np.asarray(query, dtype=np.float32))
    r = unit_rows(np.asarray(reference, dtype=np.float32))
    similarity = r @ q.T  # [Tr, Tq]: every reference row against every query row
    tq = q.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(similarity, (tq, tq))[:, 0]  # [Tr-Tq+1, Tq, Tq]
    return np.trace(windows, axis1=1, axis2=2).astype(np.float32) / tq


def locate(query: Framegram, reference: Framegram) -> Alignment:
    """Where `query` best fits inside `reference` (same encoder and sampling rate required)."""
    if not query.meta.encoder.same_model(reference.meta.encoder):
        raise EncoderMismatchError(
            query.meta.source.path,
            f"made with {query.meta.encoder.name}, the reference with {reference.meta.encoder.name}",
        )
    if query.meta.fps != reference.meta.fps:
        raise ValueError(f"sampling rates differ: query {query.meta.fps}/s, reference {reference.meta.fps}/s")
    scores = sliding_cosine(query.features, reference.features)
    best = int(np.argmax(scores))
    return Alignment(float(reference.times[best] - query.times[0]), float(scores[best]), scores)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row (last axis) scaled to unit length; zero rows stay zero. Keeps the dtype."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
