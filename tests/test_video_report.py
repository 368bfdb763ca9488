"""The demo's classification section: built from a benchmark result file (generated here)."""

from __future__ import annotations

import json

import numpy as np

from framegram.video_models.report import classification_section, learning_curves_figure


def _record(model: str, benchmark: str, accuracy: float) -> dict:
    classes = [f"class-{i}" for i in range(8)]
    confusion = [[2 if i == j else 0 for j in range(8)] for i in range(8)]
    return {"model": model, "benchmark": benchmark, "accuracy": accuracy, "parameters": 1_500_000, "gmacs": 0.25,
            "train_seconds": 60.0, "clips_per_s": 100.0, "confusion": confusion, "classes": classes,
            "curve": [{"epoch": e, "val_acc": accuracy * e / 3} for e in (1, 2, 3)]}


def test_section_shows_every_model_and_the_best_motion_confusion(tmp_path):
    path = tmp_path / "classify.json"
    records = [_record("c3d", "motion", 0.93), _record("c3d", "appearance", 0.99),
               _record("single-frame", "motion", 0.14), _record("single-frame", "appearance", 0.98)]
    path.write_text(json.dumps({"clip_len": 8, "size": [64, 64], "test_clips": 3, "records": records}))
    html = classification_section(path).body
    assert "c3d" in html and "single-frame" in html and "0.930" in html and "0.140" in html
    assert "Confusion matrix: c3d on motion" in html and html.count("<img") == 2  # learning curves + confusion


def test_learning_curves_have_one_panel_per_benchmark_and_a_line_per_model():
    records = [_record("c3d", "motion", 0.93), _record("single-frame", "motion", 0.14), _record("c3d", "appearance", 0.99)]
    fig = learning_curves_figure(records)
    motion, appearance = fig.axes
    assert motion.get_title() == "motion" and appearance.get_title() == "appearance"
    lines = [line for line in motion.get_lines() if line.get_linestyle() != "--"]
    assert [line.get_label() for line in lines] == ["c3d (0.93)", "single-frame (0.14)"]
    assert np.allclose(lines[0].get_ydata(), [0.31, 0.62, 0.93])


def test_section_without_a_result_names_the_command(tmp_path):
    html = classification_section(tmp_path / "missing.json").body
    assert "bench/classify.py" in html and "<img" not in html


def test_model_names_are_escaped(tmp_path):
    path = tmp_path / "classify.json"
    records = [_record("<b>c3d</b>", "motion", 0.93), _record("<b>c3d</b>", "appearance", 0.99)]
    path.write_text(json.dumps({"clip_len": 8, "size": [64, 64], "test_clips": 3, "records": records}))
    html = classification_section(path).body
    assert "<b>" not in html and "Confusion matrix: &lt;b&gt;c3d&lt;/b&gt; on motion" in html
