"""Does a match score mean the same in an index of 1 video as in one of 200? (bench/search.py)

Small indexes are drawn from the corpus's references (half of the draws from its real footage only,
what a new user indexes first). Against an index, every query whose reference is not in it must
not match: the corpus's negatives, and the queries of the references left out (for pieces of the
film, other pieces of the same film: the hardest negatives there are). The threshold is calibrated
on the calibration split's such queries over every index size together, so that at most
`rate` of them match; the tables then count, on the test split, at each size: the corpus's
negatives matched, the left-out references' queries matched, and recall@1 at the threshold.

The query-length run cuts every query to its first L seconds and counts the same at a few sizes:
what sets the shortest query worth searching (`framegram.search.matcher.MIN_QUERY_SECONDS`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.progress import track

from framegram.framegram import Framegram
from framegram.search import MatchSettings, VideoIndex, match
from framegram.search.basis import default_basis
from framegram.search.matcher import false_match_threshold
from search_corpus import SearchCorpus, SearchQuery

SIZES = {1: 5, 2: 4, 4: 3, 8: 2, 24: 2}  #: index size -> how many indexes of that size are drawn
LENGTHS = (0.6, 1.0, 1.5, 2.0, 3.0)  #: query prefixes of the length run, seconds
LENGTH_SIZES = (1, 4)  #: small index sizes the length run uses (beside the full index)


@dataclass(frozen=True)
class SizeRun:
    """The best match of every query against one index: tops[query_id] = (ref_id, score), or None."""

    size: int
    refs: frozenset[str]
    tops: dict[str, tuple[str, float] | None]

    def negative(self, q: SearchQuery) -> bool:
        """The query's reference is not in this index: a match would be false."""
        return q.ref_id is None or q.ref_id not in self.refs

    def score(self, q: SearchQuery) -> float:
        top = self.tops[q.query_id]
        return top[1] if top else -1.0  # no candidate at all: the lowest score there is

    def correct(self, q: SearchQuery) -> bool:
        top = self.tops[q.query_id]
        return top is not None and top[0] == q.ref_id


def draw_indexes(corpus: SearchCorpus, sizes: dict[int, int] = SIZES, seed: int = 0) -> list[frozenset[str]]:
    """Reference sets: for each size, its count of draws, alternately from real footage and from all."""
    rng = np.random.default_rng(seed)
    real = [r.ref_id for r in corpus.references if r.kind != "distractor"]
    every = [r.ref_id for r in corpus.references]
    return [frozenset(rng.choice(real if d % 2 == 0 else every, size, replace=False).tolist())
            for size, draws in sizes.items() for d in range(draws)]


def run_index(refs: frozenset[str], framegrams: dict[str, Framegram], queries: Sequence[SearchQuery],
              views: Callable[[SearchQuery], dict[str, Framegram]], settings: MatchSettings = MatchSettings()) -> SizeRun:
    """Index `refs` (in a temporary folder) and search every query there."""
    folder = Path(tempfile.mkdtemp(prefix="framegram-bench-index-"))
    try:
        index = VideoIndex.create(folder / "index", default_basis(next(iter(framegrams.values())).meta.encoder.name))
        index.add(((r, framegrams[r]) for r in sorted(refs)), commit_every=1000)
        tops = {}
        for q in queries:
            found = match(index, views(q), q.query_id, threshold=None, settings=settings)
            tops[q.query_id] = (found[0].ref_id, found[0].score) if found else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return SizeRun(len(refs), refs, tops)


def calibrate_over_sizes(runs: Sequence[SizeRun], queries: Sequence[SearchQuery], rate: float) -> float:
    """The threshold at which at most `rate` of the calibration queries that must not match do, over
    every run together."""
    return false_match_threshold(
        [run.score(q) for run in runs for q in queries if q.split == "calibration" and run.negative(q)], rate)


def size_rows(runs: Sequence[SizeRun], queries: Sequence[SearchQuery], threshold: float) -> list[dict]:
    """Per index size, on the test split: corpus negatives matched, left-out references' queries
    matched, recall@1 (no threshold) and at the threshold, over the size's draws together."""
    test = [q for q in queries if q.split == "test"]
    out = []
    for size in sorted({r.size for r in runs}):
        same = [r for r in runs if r.size == size]
        corpus_negatives = [(r, q) for r in same for q in test if q.ref_id is None]
        left_out = [(r, q) for r in same for q in test if q.ref_id is not None and r.negative(q)]
        positives = [(r, q) for r in same for q in test if not r.negative(q)]
        out.append({
            "size": size, "indexes": len(same),
            "corpus_negatives": len(corpus_negatives),
            "corpus_negatives_matched": sum(r.score(q) >= threshold for r, q in corpus_negatives),
            "left_out_queries": len(left_out),
            "left_out_matched": sum(r.score(q) >= threshold for r, q in left_out),
            "positives": len(positives),
            "recall_at_1": float(np.mean([r.correct(q) for r, q in positives])) if positives else float("nan"),
            "recall_at_1_thresholded": float(np.mean([r.correct(q) and r.score(q) >= threshold for r, q in positives]))
            if positives else float("nan"),
        })
    return out


def cut(views: dict[str, Framegram], seconds: float) -> dict[str, Framegram]:
    """The first `seconds` of every view of a query."""
    return {name: v.slice_time(v.times[0], v.times[0] + seconds) for name, v in views.items()}


def length_rows(corpus: SearchCorpus, framegrams: dict[str, Framegram], full_index: frozenset[str],
                drawn: Sequence[frozenset[str]], views: Callable[[SearchQuery], dict[str, Framegram]],
                threshold: float, lengths: Sequence[float] = LENGTHS) -> list[dict]:
    """For each query length: the size rows of the full index and of the first drawn index of each
    of LENGTH_SIZES, every test query cut to that length (the matcher's minimum length set aside)."""
    settings = replace(MatchSettings(), min_query_seconds=0.0)
    small = [next(refs for refs in drawn if len(refs) == size) for size in LENGTH_SIZES]
    test = corpus.test_queries
    out = []
    for seconds in lengths:
        runs = [run_index(refs, framegrams, test, lambda q: cut(views(q), seconds), settings)
                for refs in track([full_index, *small], description=f"{seconds:g}-s queries")]
        out += [{"seconds": seconds, **row} for row in size_rows(runs, test, threshold)]
    return out
