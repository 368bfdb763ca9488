"""Scoring detected shot boundaries against ground truth (one-to-one matching with a tolerance).

A detection is an interval [start, end] in seconds (a cut detector's point has start == end). It
matches a true boundary when the two intervals, the true one widened by `tolerance` on both
sides, overlap; each detection and each true boundary is used once, the closest pairs first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """Counts and the derived precision, recall and F1 (1.0 when there is nothing to find and nothing found)."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
        )


def interval_gap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Seconds between two intervals; 0 when they overlap."""
    return max(0.0, a[0] - b[1], b[0] - a[1])


def match(
    detected: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]], tolerance: float = 0.5
) -> list[tuple[int, int]]:
    """Pairs (detected index, truth index) matched one-to-one, closest first, gap <= tolerance."""
    candidates = sorted(
        (interval_gap(d, t), abs((d[0] + d[1]) - (t[0] + t[1])) / 2, i, j)
        for i, d in enumerate(detected)
        for j, t in enumerate(truth)
        if interval_gap(d, t) <= tolerance
    )
    used_d, used_t, pairs = set(), set(), []
    for _, _, i, j in candidates:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            pairs.append((i, j))
    return pairs


def score(detected: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]], tolerance: float = 0.5) -> Score:
    pairs = match(detected, truth, tolerance)
    return Score(len(pairs), len(detected) - len(pairs), len(truth) - len(pairs))
