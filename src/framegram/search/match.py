"""`Match`, what `framegram.search.search` returns: where a query clip shows an indexed video.

A match is a row (query_id, ref_id, query_start, query_end, ref_start, ref_end, score), the layout
of the Meta Video Similarity Challenge 2022, so results can be scored by its tools too (match files
and the metric: `framegram.search.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    """The query's [query_start, query_end] shows the reference's [ref_start, ref_end] (seconds);
    higher `score` is more confident."""

    query_id: str
    ref_id: str
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    score: float
