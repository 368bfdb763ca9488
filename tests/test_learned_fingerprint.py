"""Learned fingerprints: contrastive training (reproducible, resumable, learns what the distortion
hides), the index using them, the refusals, and the distorted copies they train on.

Training data here is generated with a known answer: sources are random walks in a 48-dim feature
space; a copy is its source (at speed 1 or 1.25) plus a large offset confined to 8 "distortion"
dimensions, different for every copy, plus noise. Raw features are dominated by the offset; a
network that has learned to ignore those dimensions finds the source and the moment.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from framegram.cli import app
from framegram.encoders.base import EncoderSpec
from framegram.errors import FramegramError
from framegram.framegram import Framegram, FramegramMeta, SourceInfo
from framegram.search import SearchIndexError, VideoIndex, open_or_create
from framegram.search.contrastive import (
    ContrastiveConfig,
    CopyFramegrams,
    FingerprintRunError,
    train_fingerprint,
    window_recall_at_1,
)
from framegram.search.contrastive import _as_fingerprint as as_fingerprint
from framegram.search.fingerprint import load_fingerprint, query_descriptors, reference_descriptors
from framegram.search.learned import FINGERPRINT_FILE, LearnedFingerprint
from framegram.search.matcher import match
from framegram.search.window_encoder import WindowEncoder
from framegram.datasets.copy_pairs import CopyPairsError, build_copy_pairs
from framegram.datasets.distractors import render_distractor

FPS = 5.0
DIM = 48
DISTORTION_DIMS = 8
OFFSET = 10.0
SPEC = EncoderSpec("synthetic", "1", DIM, (224, 224), "none")
TINY = ContrastiveConfig(window_frames=10, dims=16, hidden=64, epochs=15, steps_per_epoch=15, videos_per_batch=8,
                         windows_per_video=4, lr=3e-3)


def make_framegram(features: np.ndarray, name: str, spec: EncoderSpec = SPEC) -> Framegram:
    times = np.arange(len(features)) / FPS
    sha = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes()).hexdigest()
    source = SourceInfo(name, sha, 0, len(features) / FPS, 0, 0, None, "none")
    return Framegram(features.astype(np.float32), times, FramegramMeta(source, spec, FPS, False))


def copy_data(n_sources: int = 40, rows: int = 80, seed: int = 0) -> CopyFramegrams:
    rng = np.random.default_rng(seed)
    sources, copies = [], []
    for s in range(n_sources):
        walk = np.cumsum(rng.standard_normal((rows, DIM)), axis=0) / 3 + rng.standard_normal(DIM) * 2
        walk[:, :DISTORTION_DIMS] = 0.0
        sources.append(make_framegram(walk, f"source-{s}"))
        for c, speed in enumerate((1.0, 1.25)):
            shown = np.rint(np.arange(int(rows / speed)) * speed).astype(int)
            offset = np.zeros(DIM)
            offset[:DISTORTION_DIMS] = rng.standard_normal(DISTORTION_DIMS) * OFFSET
            features = walk[shown] + offset + 0.3 * rng.standard_normal((len(shown), DIM))
            copies.append((s, make_framegram(features, f"copy-{s}-{c}"), speed))
    return CopyFramegrams(sources, copies)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train_set, val_set = copy_data().split(val_sources=4)
    out = tmp_path_factory.mktemp("fp-run")
    # synthetic features: no real footage to calibrate on, only the held-out sources' copies
    return train_fingerprint(TINY, train_set, val_set, out, calibration_negatives=()), out, train_set, val_set


def test_training_learns_to_ignore_what_the_distortion_changes(trained):
    fingerprint, out, _, val_set = trained
    torch.manual_seed(0)
    untrained = as_fingerprint(WindowEncoder(DIM, TINY.hidden, TINY.dims), TINY, val_set)
    before, after = window_recall_at_1(untrained, val_set), window_recall_at_1(fingerprint, val_set)
    assert before < 0.35  # raw features: the copy's offset dominates
    assert after > 0.75 and after > before + 0.4  # on sources training never saw
    history = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    assert len(history) == TINY.epochs and (out / "learning_curve.png").stat().st_size > 0


def test_the_same_seed_gives_the_same_embedding_and_an_interrupted_run_resumes_to_it(trained, tmp_path, monkeypatch):
    fingerprint, _, train_set, val_set = trained
    import framegram.search.contrastive as contrastive

    calls = {"n": 0}
    write = contrastive._write_run_files

    def interrupt_after_two_epochs(history, out_dir):
        write(history, out_dir)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(contrastive, "_write_run_files", interrupt_after_two_epochs)
    with pytest.raises(KeyboardInterrupt):
        train_fingerprint(TINY, train_set, val_set, tmp_path)
    monkeypatch.setattr(contrastive, "_write_run_files", write)
    resumed = train_fingerprint(TINY, train_set, val_set, tmp_path, calibration_negatives=())
    probe = val_set.sources[0]
    a = reference_descriptors(probe, fingerprint).vectors
    b = reference_descriptors(probe, resumed).vectors
    np.testing.assert_allclose(a, b, atol=1e-6)
    other = train_fingerprint(ContrastiveConfig(**{**TINY.__dict__, "epochs": 2, "seed": 1}), train_set, val_set,
                              tmp_path / "s1", calibration_negatives=())
    assert not np.allclose(a, reference_descriptors(probe, other).vectors, atol=1e-3)


def test_a_run_folder_of_other_settings_is_refused(trained):
    _, out, train_set, val_set = trained
    with pytest.raises(FingerprintRunError, match="other settings.*dims=16 there, 32 now"):
        train_fingerprint(ContrastiveConfig(**{**TINY.__dict__, "dims": 32}), train_set, val_set, out)


def test_a_run_folder_trained_on_other_videos_is_refused(trained):
    """A widened training set is other data: resuming on it would mix two runs."""
    _, out, train_set, val_set = trained
    wider = train_set.joined(copy_data(n_sources=3, seed=7))
    assert len(wider.sources) == len(train_set.sources) + 3 and len(wider.copies) == len(train_set.copies) + 6
    assert wider.copies[-1][0] == len(wider.sources) - 1  # the joined copies point at their own sources
    with pytest.raises(FingerprintRunError, match="other settings.*training_data="):
        train_fingerprint(TINY, wider, val_set, out)


def test_the_index_searches_with_a_learned_fingerprint_and_keeps_it(trained, tmp_path):
    fingerprint, out, _, val_set = trained
    assert load_fingerprint(out / FINGERPRINT_FILE).digest == fingerprint.digest
    index = open_or_create(tmp_path / "idx", fingerprint=fingerprint)
    index.add((f"v{i}", s) for i, s in enumerate(val_set.sources))
    assert index.info().vector_bytes_per_second == TINY.dims  # 8 bits a dimension
    assert index.total_rows == sum(round(s.duration) for s in val_set.sources)  # a vector a second
    reopened = VideoIndex.open(tmp_path / "idx")
    assert isinstance(reopened.fingerprint, LearnedFingerprint) and reopened.fingerprint.digest == fingerprint.digest
    source, copy, speed = val_set.copies[1]  # the speed-1.25 copy
    piece = copy.slice_time(4.0, 10.0)
    best = match(reopened, {"as-is": piece}, "q", threshold=None)[0]
    assert best.ref_id == f"v{source}"
    assert best.ref_start == pytest.approx(4.0 * speed, abs=0.6)
    dense = query_descriptors(piece, reopened.fingerprint)
    assert dense.vectors.shape == (len(piece) - TINY.window_frames + 1, TINY.dims)


def test_an_index_refuses_a_fingerprint_of_another_window_or_encoder(trained, tmp_path):
    fingerprint, _, train_set, val_set = trained
    open_or_create(tmp_path / "idx", fingerprint=fingerprint)
    longer = as_fingerprint(WindowEncoder(DIM, TINY.hidden, TINY.dims), ContrastiveConfig(**{**TINY.__dict__, "window_frames": 15}), val_set)
    with pytest.raises(SearchIndexError, match="3-s windows instead of 2-s"):
        open_or_create(tmp_path / "idx", fingerprint=longer)
    other_encoder = make_framegram(val_set.sources[0].features, "x", EncoderSpec("other-net", "1", DIM, (224, 224), "none"))
    index = VideoIndex.open(tmp_path / "idx")
    with pytest.raises(FramegramError, match="made with encoder other-net.*describes synthetic"):
        index.add([("x", other_encoder)])


def test_cli_refuses_a_missing_learned_run_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["index", "add", str(tmp_path), "--index", str(tmp_path / "i"),
                                      "--fingerprint", f"learned:{tmp_path / 'nope'}"])
    assert result.exit_code != 0
    assert isinstance(result.exception, FramegramError) and "no learned fingerprint here" in str(result.exception)


def test_cli_refuses_extra_sources_that_are_not_whole_blocks_before_rendering_anything(tmp_path):
    result = CliRunner().invoke(app, ["fingerprint", "train", "--out", str(tmp_path / "run"), "--extra-sources", "100", "-q"])
    assert result.exit_code != 0
    assert isinstance(result.exception, FramegramError) and "multiple of 160" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_distorted_copies_show_their_source_at_the_stated_speed(tmp_path):
    from framegram.io.decode import probe_video

    source = render_distractor(5, 4.0, tmp_path / "src.mp4", size=(160, 90), fps=10)
    pairs = build_copy_pairs([source], tmp_path / "copies", copies_per_source=15, workers=1, show_progress=False)
    assert sorted(p.distortion for p in pairs.pairs)[:3] == ["blur", "brightness-contrast", "combo-3"]
    for pair in pairs.pairs:
        assert probe_video(pair.copy).duration == pytest.approx((4.0 - 0.1) / pair.speed, abs=0.15), pair.distortion
    assert {p.speed for p in pairs.pairs} == {1.0, 1.25}
    with pytest.raises(CopyPairsError, match="other settings"):
        build_copy_pairs([source], tmp_path / "copies", copies_per_source=2, workers=1, show_progress=False)
    assert build_copy_pairs([source], tmp_path / "copies", copies_per_source=15, workers=1, show_progress=False).pairs == pairs.pairs


def test_a_freshly_trained_run_finds_held_out_copies_of_real_footage_at_its_own_threshold(tmp_path):
    """The CLI's path on real features, small: generated sources and their distorted copies, a short
    training, the bank and threshold it writes (calibrated on held-out copies and pieces of real
    footage); then real videos it never saw are indexed, 8-s excerpts of one must match at that
    threshold and unrelated real clips must not. Before the bank and the copies in the calibration
    index, such a run wrote 0.48 while its real copies scored 0.21-0.33. While the distractor sources
    were encoded in-process, their bytes and so this run varied between processes (thresholds
    0.31-0.42, unrelated clips up to 0.32: it failed now and then). Now the sources and copies are
    the same bytes everywhere; the framegrams still differ in their last bits between processes, and
    two processes gave thresholds 0.409 / 0.413, true copies 0.51-0.54, box.mp4 0.302 / 0.308. It
    still misses world.mp4 downscaled to 320 px and tree.avi's copies, and places 5-s
    excerpts of the slowly turning globe up to 3 s off, so where is left to the matcher's tests. The
    CLI's default run is measured on the benchmark by bench/embedding.py."""
    from framegram.media import fetch_media, sample_videos
    from framegram.search import add_videos, search
    from framegram.search.contrastive import real_negatives
    from framegram.datasets.distort import render_query

    sources = [render_distractor(seed, 12.0, tmp_path / f"src-{seed}.mp4", size=(240, 136), fps=10) for seed in range(20)]
    pairs = build_copy_pairs(sources, tmp_path / "copies", copies_per_source=3, workers=2, show_progress=False)
    train_set, val_set = CopyFramegrams.from_pairs(pairs, show_progress=False).split(val_sources=4)
    config = ContrastiveConfig(window_frames=10, dims=32, hidden=256, epochs=20, steps_per_epoch=20, videos_per_batch=12,
                               windows_per_video=4, lr=3e-3)
    fingerprint = train_fingerprint(config, train_set, val_set, tmp_path / "run")
    assert fingerprint.background is not None and fingerprint.background.pieces == len(train_set.sources)
    negatives = real_negatives(fingerprint)
    assert len(negatives) == 6 and set(negatives[0]) >= {"as-is", "mirrored"}  # 5-s pieces of the 10-s bikes.mp4

    index = tmp_path / "index"
    world, tree = fetch_media("world.mp4"), fetch_media("tree.avi")
    add_videos([world, tree], index, fingerprint=fingerprint)
    for distortion in ("none", "brightness-contrast"):
        clip = render_query(world, 12.0, 8.0, distortion, tmp_path / f"world-{distortion}.mp4").path
        found = search(clip, index)  # at the run's own threshold
        assert found and found[0].ref_id == world.name, (distortion, found)
    for unrelated in (fetch_media("box.mp4"), next(p for p in sample_videos() if p.name == "carphone_pristine.mp4")):
        assert search(unrelated, index) == [], unrelated
