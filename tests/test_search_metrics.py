"""VSC22 micro average precision and match files, on hand-computed cases."""

import pytest

from framegram.search.match import Match
from framegram.search.metrics import micro_average_precision, read_matches, write_matches


def m(query, ref, score):
    return Match(query, ref, 0.0, 5.0, 10.0, 15.0, score)


def test_perfect_ranking_scores_one():
    truth = [("q1", "r1"), ("q2", "r2")]
    assert micro_average_precision([m("q1", "r1", 0.9), m("q2", "r2", 0.8), m("q3", "r1", 0.1)], truth) == 1.0


def test_false_pair_ranked_first_and_a_missed_pair():
    truth = [("q1", "r1"), ("q2", "r2"), ("q3", "r3")]
    predictions = [m("q9", "r1", 0.95), m("q1", "r1", 0.9), m("q2", "r9", 0.5), m("q2", "r2", 0.4)]
    # ranks: wrong, right (precision 1/2), wrong, right (2/4); q3 never found
    assert micro_average_precision(predictions, truth) == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_each_pair_counts_once_at_its_best_score():
    truth = [("q1", "r1")]
    predictions = [m("q1", "r2", 0.6), m("q1", "r1", 0.2), m("q1", "r1", 0.7), m("q1", "r1", 0.3)]
    assert micro_average_precision(predictions, truth) == 1.0  # (q1, r1) ranks first at 0.7


def test_needs_true_pairs():
    with pytest.raises(ValueError):
        micro_average_precision([m("q", "r", 1.0)], [])


def test_match_file_round_trip(tmp_path):
    rows = [Match("q1", "r7", 0.0, 9.8, 31.2, 41.0, 0.93), Match("q2", "r1", 1.5, 5.0, 0.5, 4.0, 0.41)]
    write_matches(tmp_path / "matches.csv", rows)
    assert (tmp_path / "matches.csv").read_text().splitlines()[0] == "query_id,ref_id,query_start,query_end,ref_start,ref_end,score"
    assert read_matches(tmp_path / "matches.csv") == rows
