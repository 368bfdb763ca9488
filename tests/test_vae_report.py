"""The demo's signals-from-video section: built from a benchmark result and example files (generated here)."""

from __future__ import annotations

import json

import numpy as np

from framegram.datasets.audio_visual import write_wav
from framegram.vae.predict import plot_spectrograms
from framegram.vae.report import vae_section


def _result(folder) -> dict:
    rng = np.random.default_rng(0)
    course = lambda: rng.standard_normal((2, 50)).round(3).tolist()  # noqa: E731
    fmri = {"subjects": 3, "components": 16, "responsive_voxels": 120, "ratio_to_ridge": 0.97,
            "means": {"conditional VAE": 0.81, "pooled VAE": 0.43, "regression": 0.75, "ridge": 0.84, "PCA ceiling": 0.88},
            "example": {"subject": "01", "tr": 0.608, "first_volume": 449, "voxels": [5, 9], "measured": course(),
                        "vae_mean": course(), "vae_samples": [course(), course()], "ridge": course()}}
    write_wav(np.sin(np.arange(16000) / 5).astype(np.float32) * 0.1, folder / "clip-200-true.wav")
    plot_spectrograms({"true": rng.standard_normal((100, 64)), "VAE mean": rng.standard_normal((100, 64))}, 0.04,
                      folder / "clip-200-spectrograms.png")
    audio = {"clips": {"train": 200, "test": 40}, "spread_db": {"clear": 0.5, "ambiguous": 3.0}, "spread_ratio": 6.0,
             "lsd": {"VAE mean": {"all": 5.0, "clear": 4.0, "ambiguous": 9.0}, "regression": {"all": 5.5, "clear": 4.2, "ambiguous": 9.5}},
             "stoi": {"VAE mean": 0.4, "regression": 0.38},
             "example": {"clip": "clip-200", "wav": {"true": "clip-200-true.wav", "missing": "clip-200-gone.wav"},
                         "spectrograms": "clip-200-spectrograms.png"}}
    return {"fmri": fmri, "audio": audio}


def test_section_shows_both_targets_time_courses_spectrograms_and_players(tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae.json").write_text(json.dumps(_result(tmp_path / "vae")))
    html = vae_section(tmp_path).body
    assert "0.810" in html and "0.430" in html and "0.97" in html  # the fMRI table and the ratio to ridge
    assert "x6.0" in html and "9.00" in html  # spread ratio, ambiguous-frame LSD
    assert html.count("<img") == 2  # time courses + spectrograms
    assert html.count("<audio") == 1  # one player per example file that exists


def test_section_without_a_result_names_the_command(tmp_path):
    html = vae_section(tmp_path).body
    assert "bench/vae.py" in html and "<img" not in html
