"""The VSC22 descriptor-track metric (micro average precision over video pairs) and match files.

Match rows (`framegram.search.match.Match`) follow the Meta Video Similarity Challenge 2022's layout,
so results can be scored by its tools too; `write_matches` / `read_matches` keep them as its CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path

from framegram.io.atomic import atomic_write_bytes
from framegram.search.match import Match

__all__ = ["micro_average_precision", "read_matches", "write_matches"]  # Match: framegram.search.match


def write_matches(path: str | Path, matches: Iterable[Match]) -> None:
    """CSV with a header row, VSC22's column names, written atomically."""
    names = [f.name for f in fields(Match)]
    lines = [",".join(names)]
    for m in matches:
        row = asdict(m)
        lines.append(",".join(str(row[n]) for n in names))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def read_matches(path: str | Path) -> list[Match]:
    with open(path, newline="") as fh:
        return [
            Match(
                r["query_id"], r["ref_id"], float(r["query_start"]), float(r["query_end"]),
                float(r["ref_start"]), float(r["ref_end"]), float(r["score"]),
            )
            for r in csv.DictReader(fh)
        ]


def micro_average_precision(predictions: Iterable[Match], truth: Iterable[tuple[str, str]]) -> float:
    """VSC22 µAP: rank all predicted (query, reference) pairs by score, each pair once at its best
    score; µAP = sum over the ranked list of precision@k at every correct pair, divided by the
    number of true pairs (a true pair never predicted adds nothing: it lowers recall).

    Pairs with equal scores are ranked by (query_id, ref_id) so the figure is reproducible.
    Negative queries have no true pair: any prediction for them only costs precision.
    """
    true_pairs = set(truth)
    if not true_pairs:
        raise ValueError("micro average precision needs at least one true pair")
    best: dict[tuple[str, str], float] = {}
    for m in predictions:
        key = (m.query_id, m.ref_id)
        best[key] = max(best.get(key, float("-inf")), m.score)
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    correct = 0
    total = 0.0
    for k, (pair, _) in enumerate(ranked, start=1):
        if pair in true_pairs:
            correct += 1
            total += correct / k
    return total / len(true_pairs)
