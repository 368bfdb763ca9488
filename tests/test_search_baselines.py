"""The search benchmark's baselines find the right reference (and place the query) when the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from framegram.encoders.base import EncoderSpec
from framegram.errors import NotAVideoError
from framegram.framegram import Framegram, FramegramMeta, SourceInfo
from baselines import NaiveFrameIndex, SlidingCorrelation, VPDQBaseline, VPDQHashes, resample_rows

FPS = 5.0
DIM = 1280
SPEC = EncoderSpec("synthetic", "1", DIM, (224, 224), "none")


def make_framegram(features: np.ndarray, start: float = 0.0, name: str = "synthetic") -> Framegram:
    times = start + np.arange(len(features)) / FPS
    source = SourceInfo(name, "0" * 64, 0, None, 0, 0, None, "none")
    return Framegram(features.astype(np.float32), times, FramegramMeta(source, SPEC, FPS, False))


def drifting_features(rng: np.random.Generator, rows: int, base: np.ndarray) -> np.ndarray:
    """A mean-reverting random walk (AR(1), correlation time ~4 s) on top of a shared non-negative
    base, like real pooled CNN features that all look somewhat alike."""
    a = 0.95
    steps = rng.standard_normal((rows, DIM)).astype(np.float32) * np.sqrt(1 - a * a)
    walk = np.empty_like(steps)
    walk[0] = rng.standard_normal(DIM)
    for t in range(1, rows):
        walk[t] = a * walk[t - 1] + steps[t]
    return base + walk


@pytest.fixture(scope="module")
def corpus():
    """20 references of 60 to 180 s at 5 fps; returns (ids, framegrams)."""
    rng = np.random.default_rng(7)
    base = np.abs(rng.standard_normal(DIM)).astype(np.float32) * 1.5
    ids = [f"ref{i:02d}" for i in range(20)]
    framegrams = [make_framegram(drifting_features(rng, int(rng.integers(300, 900)), base), name=i) for i in ids]
    return ids, framegrams


def excerpt(framegram: Framegram, start_row: int, rows: int, noise: float, seed: int, speed: float = 1.0) -> Framegram:
    """`rows` query rows showing the reference from `start_row` on, played at `speed`, plus noise;
    the query's own clock starts at 0."""
    rng = np.random.default_rng(seed)
    positions = start_row + np.arange(rows) * speed
    low = np.floor(positions).astype(int)
    frac = (positions - low)[:, None]
    features = framegram.features[low] * (1 - frac) + framegram.features[np.minimum(low + 1, len(framegram) - 1)] * frac
    scale = np.linalg.norm(features, axis=1, keepdims=True) / np.sqrt(DIM)
    return make_framegram(features + noise * scale * rng.standard_normal(features.shape), name="query")


QUERIES = [(3, 40, 50), (11, 333, 50), (17, 120, 75)]  # (reference, start row, rows): 10 to 15 s clips


@pytest.mark.parametrize("baseline", [NaiveFrameIndex, SlidingCorrelation])
def test_feature_baselines_find_and_place_the_source(corpus, baseline):
    ids, framegrams = corpus
    index = baseline()
    for ref_id, framegram in zip(ids, framegrams):
        index.add(ref_id, framegram)
    for n, (ref, start_row, rows) in enumerate(QUERIES):
        query = excerpt(framegrams[ref], start_row, rows, noise=0.5, seed=n)
        matches = index.search("q", query)
        best = matches[0]
        assert best.ref_id == ids[ref]
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
        assert len(matches) == 1 or best.score > matches[1].score
        assert (best.query_start, best.query_end) == pytest.approx((0.0, rows / FPS))
        assert abs(best.ref_start - start_row / FPS) <= 1.0
        assert abs(best.ref_end - (start_row + rows) / FPS) <= 1.0


def test_sliding_correlation_covers_a_faster_query(corpus):
    ids, framegrams = corpus
    index = SlidingCorrelation(speeds=(0.8, 1.0, 1.25))
    plain = SlidingCorrelation(speeds=(1.0,))
    for ref_id, framegram in zip(ids, framegrams):
        index.add(ref_id, framegram)
        plain.add(ref_id, framegram)
    query = excerpt(framegrams[5], 200, 50, noise=0.5, seed=11, speed=1.25)  # 10 s showing 12.5 s
    best = index.search("q", query)[0]
    assert best.ref_id == ids[5]
    assert abs(best.ref_start - 200 / FPS) <= 1.0
    assert abs(best.ref_end - (200 + 50 * 1.25) / FPS) <= 1.0
    assert best.score > plain.search("q", query)[0].score + 0.05  # speed 1 alone fits worse


def test_resample_rows_puts_a_fast_query_back_on_the_reference_clock():
    rows = np.eye(8, dtype=np.float32)[:5]
    assert resample_rows(rows, 1.0) is rows
    fast = resample_rows(rows, 2.0)  # row i is the query at position i / 2
    assert fast.shape == (9, 8)
    np.testing.assert_allclose(fast[::2], rows, atol=1e-6)
    np.testing.assert_allclose(fast[1], [2 ** -0.5, 2 ** -0.5, 0, 0, 0, 0, 0, 0], atol=1e-6)
    assert resample_rows(rows, 0.8).shape == (4, 8)  # positions 0, 1.25, 2.5, 3.75


def test_naive_index_stores_1280_bytes_per_second_at_5_fps():
    rng = np.random.default_rng(0)
    index = NaiveFrameIndex()
    index.add("a", make_framegram(rng.random((600, DIM))))  # 120 s: 30 vectors of 5120 bytes
    index.add("b", make_framegram(rng.random((200, DIM))))  # 40 s: 10 vectors
    assert index.bytes_per_second() == 1280.0
    assert SlidingCorrelation().bytes_per_second() == 0.0


def test_baselines_refuse_another_encoder(corpus):
    from dataclasses import replace

    from framegram.errors import EncoderMismatchError

    _, framegrams = corpus
    other = replace(framegrams[1], meta=replace(framegrams[1].meta, encoder=replace(SPEC, version="2")))
    for index in (NaiveFrameIndex(), SlidingCorrelation()):
        index.add("a", framegrams[0])
        with pytest.raises(EncoderMismatchError):
            index.search("q", other)
        with pytest.raises(ValueError, match="already"):
            index.add("a", framegrams[0])


def random_hashes(rng: np.random.Generator, seconds: int) -> VPDQHashes:
    """A video's worth of unrelated 256-bit hashes, one a second, all of full quality."""
    return VPDQHashes(rng.integers(0, 256, (seconds, 32), dtype=np.uint8), np.full(seconds, 100),
                      np.arange(seconds, dtype=np.float64), float(seconds))


def flip_bits(rng: np.random.Generator, bits: np.ndarray, n: int) -> np.ndarray:
    """Each row with `n` of its 256 bits flipped."""
    unpacked = np.unpackbits(bits, axis=1)
    for row in unpacked:
        row[rng.choice(256, n, replace=False)] ^= 1
    return np.packbits(unpacked, axis=1)


def test_vpdq_follows_hma_rule_on_hashes_with_a_known_answer():
    rng = np.random.default_rng(3)
    refs = {f"ref{i}": random_hashes(rng, 60) for i in range(5)}
    index = VPDQBaseline()
    for ref_id, hashes in refs.items():
        index.add_hash(ref_id, hashes)
    assert index.bytes_per_second() == 32.0
    source = refs["ref2"]

    def query(matched: int, flips: int) -> VPDQHashes:
        """10 s of ref2 from 20 s: `matched` seconds within `flips` bits, the others replaced."""
        bits = flip_bits(rng, source.bits[20:30], flips)
        bits[matched:] = rng.integers(0, 256, (10 - matched, 32), dtype=np.uint8)
        return VPDQHashes(bits, np.full(10, 100), np.arange(10, dtype=np.float64), 10.0)

    near = index.search_hash("q", query(9, 25))
    assert near[0].ref_id == "ref2" and near[0].score == pytest.approx(0.9)
    assert near[0].score >= VPDQBaseline.HMA_QUERY_SHARE
    assert (near[0].ref_start, near[0].ref_end) == pytest.approx((20.0, 30.0))
    # 7 of 10 seconds: still the best reference, but not a match by HMA's rule
    assert index.search_hash("q", query(7, 25))[0].score == pytest.approx(0.7)
    # 40 flipped bits is beyond the Hamming tolerance of 31: nothing matches
    assert index.search_hash("q", query(10, 40)) == []
    # low-quality frames are neither stored nor searched
    dull = VPDQHashes(source.bits[20:30], np.full(10, 10), np.arange(10, dtype=np.float64), 10.0)
    assert index.search_hash("q", dull) == []


def test_vpdq_finds_a_rescaled_copy_of_a_real_video(videos, ffmpeg, tmp_path):
    pytest.importorskip("vpdq", reason="vpdq builds against FFmpeg's development packages (make test installs them where apt-get can)")
    from conftest import run_ffmpeg

    bunny, bikes = videos["bigbuckbunny.mp4"], videos["bikes.mp4"]
    copy = tmp_path / "bunny small.mp4"
    run_ffmpeg(ffmpeg, "-i", str(bunny), "-ss", "1", "-t", "3", "-vf", "scale=320:-2", "-c:v", "libx264", "-crf", "30", "-an", str(copy))
    index = VPDQBaseline()
    index.add("bunny", bunny)
    index.add("bikes", bikes)
    matches = index.search("copy", copy)
    assert matches[0].ref_id == "bunny" and matches[0].score >= VPDQBaseline.HMA_QUERY_SHARE
    assert matches[0].ref_start == pytest.approx(1.0, abs=0.6)
    assert all(m.ref_id != "bikes" for m in matches)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(NotAVideoError, match="text.mp4"):
        index.search("text", tmp_path / "text.mp4")
