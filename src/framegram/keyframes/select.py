"""Keyframes: one representative, sharp frame per shot (or `n` frames spread over the shots).

Each shot's keyframe is its most representative row: the one closest (cosine) to the shot's mean
feature, pulled towards the middle of the shot (the classic midpoint between change points), and
never a flash row or a row next to a boundary when the shot has others. Asking for more keyframes than shots
splits the longest shots at their own change points (KernelCPD) and takes one per part; asking
for fewer drops the weakest boundaries first, merging shots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.errors import TooShortError
from framegram.framegram import Framegram
from framegram.align import unit_rows
from framegram.keyframes.shots import ShotList


@dataclass(frozen=True)
class Keyframe:
    """A chosen frame: its time (s), framegram row, shot index and the rows it may be swapped with for sharpness."""

    time: float
    row: int
    shot: int
    candidates: tuple[int, ...]  #: near-equally representative rows, best first (row among them)


#: how much closeness to the part's middle counts against closeness to its mean feature (cosine units)
MIDDLE_PULL = 0.1
#: how much a row's likeness to its neighbours counts (cosine units)
STEADY_PULL = 0.5


def select_keyframes(fg: Framegram, shots: ShotList, n: int | None = None) -> list[Keyframe]:
    """`n` keyframes (None: one per detected shot), in time order."""
    if n is not None and n < 1:
        raise ValueError(f"the number of keyframes must be at least 1, got {n}")
    if n is not None and n > len(fg):
        raise TooShortError(
            fg.meta.source.path, f"asked for {n} keyframes but the framegram has only {len(fg)} frames at {fg.meta.fps:g}/s"
        )
    rows = unit_rows(fg.features.astype(np.float64))
    parts = _parts(rows, shots, n)
    avoid = set(shots.flash_rows) | set(shots.dark_rows) | _near_boundaries(shots, len(fg))
    keyframes = []
    for shot_index, (first, stop) in parts:
        candidates = _ranked_rows(rows, first, stop, avoid)
        keyframes.append(Keyframe(float(fg.times[candidates[0]]), int(candidates[0]), shot_index, tuple(candidates[:3])))
    return keyframes


def _parts(rows: np.ndarray, shots: ShotList, n: int | None) -> list[tuple[int, tuple[int, int]]]:
    """(shot index, (first row, stop row)) of each part that gets one keyframe."""
    spans = [(s.first_row, s.stop_row) for s in shots.shots]
    owner = list(range(len(spans)))
    if n is None or n == len(spans):
        return list(zip(owner, spans))
    if n < len(spans):
        strengths = [b.strength for b in shots.boundaries]
        while len(spans) > n:  # merge across the weakest boundary
            k = int(np.argmin(strengths))
            spans[k : k + 2] = [(spans[k][0], spans[k + 1][1])]
            owner[k : k + 2] = [owner[k]]
            del strengths[k]
        return list(zip(owner, spans))
    # more keyframes than shots: share them out by length, split each shot at its change points
    lengths = np.array([b - a for a, b in spans], dtype=float)
    counts = np.ones(len(spans), dtype=int)
    for _ in range(n - len(spans)):
        room = lengths / (counts + 1)
        room[counts >= lengths] = -1  # a part needs at least one row
        counts[int(np.argmax(room))] += 1
    parts = []
    for index, ((a, b), k) in enumerate(zip(spans, counts)):
        for lo, hi in _split(rows[a:b], k):
            parts.append((index, (a + lo, a + hi)))
    return parts


def _split(rows: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Split a shot's rows into k parts at its strongest change points (exact dynamic programming)."""
    if k == 1:
        return [(0, len(rows))]
    import ruptures

    if len(rows) >= 2 * k:
        ends = ruptures.KernelCPD(kernel="linear", min_size=2).fit(rows).predict(n_bkps=k - 1)
    else:
        ends = list(np.linspace(0, len(rows), k + 1).round().astype(int)[1:])
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends))


def _steadiness(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Mean cosine of each row in `index` with its two neighbours in the framegram."""
    before = rows[np.maximum(index - 1, 0)]
    after = rows[np.minimum(index + 1, len(rows) - 1)]
    return 0.5 * (np.sum(rows[index] * before, axis=1) + np.sum(rows[index] * after, axis=1))


def _near_boundaries(shots: ShotList, n_rows: int) -> set[int]:
    """Rows next to a boundary: 2 on each side of a gradual transition (whose detected extent can
    fall short of the real one by a row or two), 1 on each side of a cut."""
    near = set()
    for b in shots.boundaries:
        margin = 1 if b.kind == "cut" else 2
        near.update(range(max(0, b.rows[0] - margin), b.rows[0]))
        near.update(range(b.rows[1], min(n_rows, b.rows[1] + margin)))
    return near


def _ranked_rows(rows: np.ndarray, first: int, stop: int, avoid: set[int]) -> list[int]:
    """Rows of [first, stop) by closeness to the part's mean; rows to avoid only as a last resort."""
    index = np.arange(first, stop)
    usable = np.array([i for i in index if i not in avoid], dtype=int)
    if len(usable) == 0:
        usable = index
    centre = unit_rows(rows[usable].mean(0))
    # closeness to the mean, with a pull towards the middle of the part (edges are where a
    # transition's last frames hide when its detected extent falls short) and towards rows that
    # look like their neighbours (not mid-dissolve, not blurred by fast motion)
    offset = (usable - (first + stop - 1) / 2) / max((stop - first) / 2, 1)
    score = rows[usable] @ centre - MIDDLE_PULL * offset**2 + STEADY_PULL * _steadiness(rows, usable)
    order = np.argsort(-score, kind="stable")
    return [int(i) for i in usable[order]]

