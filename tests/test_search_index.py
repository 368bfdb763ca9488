"""Content search: fingerprints, the index directory (generations, crash safety, readers), the
matcher on generated framegrams with a known answer, and real videos end to end."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest

from framegram.align import unit_rows
from framegram.encoders.base import EncoderSpec
from framegram.errors import FramegramError, TooShortError
from framegram.framegram import Framegram, FramegramMeta, SourceInfo
from framegram.io.decode import probe_video, sample_frames
from framegram.media import fetch_media
from framegram.search import (
    DEFAULT_THRESHOLD,
    SearchIndexError,
    VideoIndex,
    add_videos,
    match,
    open_or_create,
    search,
)
from framegram.search.fingerprint import (
    FINGERPRINT_DIMS,
    SHRINKAGE,
    fit_basis,
    query_descriptors,
    reference_descriptors,
)
from framegram.search.query import content_box, inset_box
from framegram.datasets.distort import render_query

FPS = 5.0
#: narrower than EfficientNet-Lite0's 1280 so that fitting a basis (an eigendecomposition of D x D)
#: stays quick; the fingerprints keep their real size (256 dims)
DIM = 384
SPEC = EncoderSpec("synthetic", "1", DIM, (224, 224), "none")
LATENT = 64

# ---- generated framegrams -------------------------------------------------------------------
# Rows are a shared non-negative base plus a mean-reverting random walk (AR(1), correlation time
# ~4 s) in a 64-dim latent space mapped to DIM dims by a fixed mixing matrix with decaying scales,
# plus a little white noise: a spectrum with leading directions, like pooled CNN features.

_world = np.random.default_rng(2024)
BASE = (np.abs(_world.standard_normal(DIM)) * 1.5).astype(np.float32)
MIX = (_world.standard_normal((LATENT, DIM)) / np.sqrt(np.arange(1, LATENT + 1))[:, None]).astype(np.float32)


def random_walk(rng: np.random.Generator, rows: int) -> np.ndarray:
    a = 0.95
    steps = rng.standard_normal((rows, LATENT)) * np.sqrt(1 - a * a)
    latent = np.empty_like(steps)
    latent[0] = rng.standard_normal(LATENT)
    for t in range(1, rows):
        latent[t] = a * latent[t - 1] + steps[t]
    return (BASE + latent @ MIX + 0.3 * rng.standard_normal((rows, DIM))).astype(np.float32)


def make_framegram(features: np.ndarray, name: str, spec: EncoderSpec = SPEC, fps: float = FPS) -> Framegram:
    """A framegram of `features` whose source content hash is that of the features."""
    times = np.arange(len(features)) / fps
    sha = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes()).hexdigest()
    source = SourceInfo(name, sha, 0, len(features) / fps, 0, 0, None, "none")
    return Framegram(features.astype(np.float32), times, FramegramMeta(source, spec, fps, False))


def excerpt(framegram: Framegram, start_row: int, rows: int, speed: float = 1.0, noise: float = 0.3, seed: int = 0) -> Framegram:
    """`rows` query rows showing the reference from `start_row` on played at `speed` (rows taken at
    `speed` times the reference's rate, interpolated), plus noise; the query's clock starts at 0."""
    rng = np.random.default_rng(seed)
    positions = start_row + np.arange(rows) * speed
    low = np.floor(positions).astype(int)
    frac = (positions - low)[:, None]
    f = framegram.features
    features = f[low] * (1 - frac) + f[np.minimum(low + 1, len(f) - 1)] * frac
    return make_framegram(features + noise * rng.standard_normal(features.shape), name="query")


@pytest.fixture(scope="module")
def fitting() -> list[Framegram]:
    """Framegrams the basis is fitted on; never indexed nor queried."""
    rng = np.random.default_rng(1)
    return [make_framegram(random_walk(rng, 300), f"fit{i}") for i in range(8)]


@pytest.fixture(scope="module")
def basis(fitting):
    return fit_basis(fitting, fitted_on="generated random walks")


@pytest.fixture(scope="module")
def refs() -> dict[str, Framegram]:
    """20 references of 80 to 120 s (about 2000 s in all), different lengths."""
    rng = np.random.default_rng(7)
    return {f"ref{i:02d}": make_framegram(random_walk(rng, int(rng.integers(400, 600))), f"ref{i:02d}") for i in range(20)}


@pytest.fixture(scope="module")
def extra() -> list[Framegram]:
    """Framegrams that are not in the fixture index (new videos, unrelated queries)."""
    rng = np.random.default_rng(99)
    return [make_framegram(random_walk(rng, int(rng.integers(150, 250))), f"new{i}") for i in range(4)]


def build(folder, basis, refs) -> VideoIndex:
    ix = VideoIndex.create(folder, basis)
    assert ix.add(refs.items()) == list(refs)
    return ix


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)


# ---- fingerprints ---------------------------------------------------------------------------


def test_reference_descriptors_one_unit_vector_per_second(basis, refs):
    framegram = refs["ref00"]
    whitened = basis.whiten(framegram.features)
    for rows in [1, 2, 3, 4, 5, 7, 8, 50, 51, 52, 53, 54, 57, 58]:
        part = Framegram(framegram.features[:rows], framegram.times[:rows], framegram.meta)
        d = reference_descriptors(part, basis)
        # a last partial window is kept when it holds at least half a second: round(duration)
        assert len(d.vectors) == len(d.starts) == max(1, round(part.duration)), rows
        assert d.vectors.shape[1] == basis.dims == FINGERPRINT_DIMS
        np.testing.assert_allclose(np.linalg.norm(d.vectors, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(d.starts, np.arange(len(d.vectors)), atol=1e-9)
        for i, start in enumerate(d.starts):  # each is the normalised mean of its second's rows
            first = round(start * FPS)
            window = whitened[first : min(first + 5, rows)]
            np.testing.assert_allclose(d.vectors[i], unit_rows(window.mean(axis=0)), atol=1e-5)


def test_query_descriptors_one_window_per_frame(basis, refs):
    framegram = refs["ref01"]
    shifted = Framegram(framegram.features[:40], framegram.times[:40] + 3.0, framegram.meta)  # clock not at 0
    d = query_descriptors(shifted, basis)
    assert len(d.vectors) == 40 - 5 + 1  # every row that starts a full one-second window
    np.testing.assert_allclose(np.linalg.norm(d.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(d.starts, np.arange(36) / FPS, atol=1e-9)
    whitened = basis.whiten(shifted.features)
    np.testing.assert_allclose(d.vectors[17], unit_rows(whitened[17:22].mean(axis=0)), atol=1e-5)
    # the stored per-second descriptors are the query windows that start on whole seconds
    np.testing.assert_allclose(reference_descriptors(shifted, basis).vectors[:7], d.vectors[::5][:7], atol=1e-5)
    short = Framegram(framegram.features[:3], framegram.times[:3], framegram.meta)
    assert len(query_descriptors(short, basis).vectors) == 1  # under a second: one shorter window


def test_fit_basis_is_deterministic_and_whitens(fitting, basis):
    again = fit_basis(fitting, fitted_on="generated random walks")
    assert again.digest == basis.digest
    for name in ("mean", "projection", "quant_min", "quant_range"):
        assert np.array_equal(getattr(again, name), getattr(basis, name)), name
    assert basis.encoder == "synthetic;1" and basis.fps == FPS and basis.dims == FINGERPRINT_DIMS

    rows = unit_rows(np.concatenate([f.features for f in fitting]))
    z = (rows - basis.mean) @ basis.projection  # whitened, before the final normalisation
    cov = np.cov(z.T.astype(np.float64))
    # computed independently: shrinkage makes component k's variance lambda_k / (lambda_k + s * mean lambda)
    eigval = np.sort(np.linalg.eigvalsh(np.cov(rows.T.astype(np.float64))))[::-1][: basis.dims]
    expected = eigval / (eigval + SHRINKAGE * eigval.mean())
    np.testing.assert_allclose(np.diag(cov), expected, atol=2e-3)
    lead = cov[:16, :16]
    np.testing.assert_allclose(lead, np.eye(16), atol=0.1)  # ~identity where the signal is
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 2e-3  # decorrelated everywhere
    # the descriptors of the fitting footage fall (almost all) inside the 8-bit range
    described = np.concatenate([reference_descriptors(f, basis).vectors for f in fitting])
    inside = (described >= basis.quant_min - 1e-6) & (described <= basis.quant_min + basis.quant_range + 1e-6)
    assert inside.mean() > 0.99


def test_fit_basis_refuses_too_few_rows_and_mixed_encoders(fitting):
    with pytest.raises(FramegramError, match="at least 512 rows"):
        fit_basis(fitting[:1])
    other = make_framegram(fitting[1].features, "other", spec=EncoderSpec("other-net", "2", DIM, (224, 224), "none"))
    with pytest.raises(FramegramError, match="one encoder and frame rate"):
        fit_basis([fitting[0], other])


def test_basis_refuses_another_encoder_or_frame_rate(basis, refs, tmp_path):
    features = refs["ref02"].features[:50]
    other_net = make_framegram(features, "net.mp4", spec=EncoderSpec("other-net", "2", DIM, (224, 224), "none"))
    with pytest.raises(FramegramError, match="encoder other-net") as info:
        basis.check(other_net)
    assert "net.mp4" in str(info.value) and "synthetic" in str(info.value)
    other_version = make_framegram(features, "v.mp4", spec=EncoderSpec("synthetic", "3", DIM, (224, 224), "none"))
    with pytest.raises(FramegramError, match="encoder synthetic"):
        basis.check(other_version)
    ten_fps = make_framegram(features, "fast.mp4", fps=10.0)
    with pytest.raises(FramegramError, match="10 fps.*5 fps"):
        basis.check(ten_fps)
    # the index and the matcher apply the check: nothing is added, no query is answered
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:2]))
    with pytest.raises(FramegramError, match="10 fps"):
        ix.add([("fast", ten_fps)])
    assert VideoIndex.open(ix.folder).videos.keys() == {"ref00", "ref01"}
    with pytest.raises(FramegramError, match="other-net"):
        match(ix, {"as-is": other_net}, "q", threshold=None)


# ---- the index directory (more in test_search_segments) ---------------------------------------


def test_index_skips_known_content_and_refuses_a_taken_id(basis, refs, extra, tmp_path):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:3]))
    generation = ix.generation
    assert ix.add([("ref01", refs["ref01"])]) == []  # same id, same content
    assert ix.add([("copy-of-ref02", refs["ref02"])]) == []  # same content under another name
    assert ix.add([("a", extra[0]), ("b", extra[0])]) == ["a"]  # twice within one call
    assert VideoIndex.open(ix.folder).generation == generation + 1
    assert set(VideoIndex.open(ix.folder).videos) == {"ref00", "ref01", "ref02", "a"}

    state = VideoIndex.open(ix.folder)
    with pytest.raises(SearchIndexError, match="another video named 'ref01'"):
        ix.add([("ref01", extra[1])])
    after = VideoIndex.open(ix.folder)
    assert after.videos == state.videos and after.generation == state.generation
    with pytest.raises(SearchIndexError, match="another video named 'c'"):
        ix.add([("c", extra[2]), ("c", extra[3])])
    after = VideoIndex.open(ix.folder)  # what came before the refused item is kept
    assert set(after.videos) == set(state.videos) | {"c"} and after.generation == state.generation + 1
    # the object that refused stays a consistent snapshot of what is committed
    assert ix.videos == after.videos and ix.total_rows == after.total_rows
    best = match(ix, {"as-is": excerpt(extra[0], 20, 50)}, "q", threshold=None)[0]
    assert best.ref_id == "a"


def test_readers_open_consistent_states_during_concurrent_writes(basis, refs, tmp_path):
    items = list(refs.items())
    ix = build(tmp_path / "ix", basis, dict(items[:2]))
    errors = []

    def write():
        try:
            VideoIndex.open(ix.folder).add(items[2:12], commit_every=1)  # ten generations
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=write)
    thread.start()
    seen = []
    while thread.is_alive() or not seen:
        snapshot = VideoIndex.open(ix.folder)  # checks rows against records itself
        ids = snapshot.ref_ids
        assert ids == [r for r, _ in items[: len(ids)]]  # always a committed prefix
        seen.append(len(ids))
    thread.join()
    assert not errors
    assert seen == sorted(seen)
    assert len(VideoIndex.open(ix.folder)) == 12


def _create_in_process(folder, basis, barrier, results) -> None:
    barrier.wait()
    try:
        open_or_create(folder, fingerprint=basis)
        results.put("created or opened")
    except SearchIndexError as e:
        results.put(f"refused: {e}")


@pytest.mark.parametrize("same_fingerprint", [False, True])
def test_two_processes_creating_one_index_leave_a_readable_one(basis, refs, same_fingerprint, tmp_path):
    other = basis if same_fingerprint else fit_basis([make_framegram(f.features, r) for r, f in list(refs.items())[:3]])
    context = multiprocessing.get_context("fork")  # the parent's imports carry over: the two start together
    for trial in range(6):
        folder = tmp_path / f"ix{trial}"
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_create_in_process, args=(folder, b, barrier, results)) for b in (basis, other)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        outcomes = sorted(results.get(timeout=5) for _ in workers)
        opened = VideoIndex.open(folder)  # readable whatever the interleaving
        assert opened.fingerprint.digest in (basis.digest, other.digest)
        if same_fingerprint:
            assert outcomes == ["created or opened"] * 2
        else:  # the second creator sees the first's index and is refused: it asked for another fingerprint
            assert outcomes[0] == "created or opened" and outcomes[1].startswith("refused") and "another fitted basis" in outcomes[1]


def test_one_bad_item_does_not_stop_an_add(basis, refs, extra, tmp_path):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:2]))
    ten_fps = make_framegram(extra[1].features, "fast.mp4", fps=10.0)
    failed = {}
    added = ix.add([("a", extra[0]), ("ref00", extra[2]), ("fast", ten_fps), ("b", extra[3])],
                   on_error=lambda ref_id, e: failed.setdefault(ref_id, str(e)))
    assert added == ["a", "b"]
    assert set(failed) == {"ref00", "fast"}
    assert "another video named 'ref00'" in failed["ref00"] and "10 fps" in failed["fast"]
    assert set(VideoIndex.open(ix.folder).videos) == {"ref00", "ref01", "a", "b"}
    # without on_error the first bad item stops the add, and what came before it is kept
    with pytest.raises(FramegramError, match="10 fps"):
        ix.add([("c", refs["ref05"]), ("fast", ten_fps), ("d", refs["ref06"])])
    assert set(VideoIndex.open(ix.folder).videos) == {"ref00", "ref01", "a", "b", "c"}


# ---- the matcher, with a known answer -------------------------------------------------------

# (reference, start row, rows, speed): 10-12 s queries
QUERIES = [("ref03", 40, 50, 1.0), ("ref11", 333, 60, 1.0), ("ref17", 121, 50, 1.25), ("ref06", 250, 60, 1.25)]


def test_matcher_finds_and_places_the_source(basis, refs, extra, tmp_path):
    ix = build(tmp_path / "ix", basis, refs)
    true_scores = []
    for n, (ref, start_row, rows, speed) in enumerate(QUERIES):
        query = excerpt(refs[ref], start_row, rows, speed=speed, seed=n)
        matches = match(ix, {"as-is": query}, f"q{n}", threshold=None)
        best = matches[0]
        assert best.ref_id == ref, matches
        assert best.query_id == f"q{n}"
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
        assert best.score - matches[1].score > 0.3  # the runner-up is far behind
        tolerance = 0.5 if speed == 1.0 else 1.0
        assert abs(best.ref_start - start_row / FPS) <= tolerance, best
        assert abs(best.ref_end - (start_row + rows * speed) / FPS) <= 2 * tolerance, best
        assert best.query_start == pytest.approx(0.0, abs=0.2) and best.query_end == pytest.approx(rows / FPS, abs=0.2)
        true_scores.append(best.score)
    unrelated = [
        match(ix, {"as-is": excerpt(f, 30, 50, seed=10 + i)}, "unrelated", threshold=None)[0].score
        for i, f in enumerate(extra)
    ]
    assert max(unrelated) < 0.5 * min(true_scores), (unrelated, true_scores)
    assert min(true_scores) >= DEFAULT_THRESHOLD > max(unrelated)
    # with the threshold, an unrelated query gets no answer and top_k is respected
    assert match(ix, {"as-is": excerpt(extra[0], 30, 50)}, "u") == []


def test_matcher_keeps_each_references_best_view(basis, refs, tmp_path):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:6]))
    query = excerpt(refs["ref04"], 200, 50)
    rng = np.random.default_rng(5)
    noise = make_framegram(random_walk(rng, 50), "noise")
    alone = match(ix, {"as-is": query}, "q", threshold=None)[0]
    both = match(ix, {"junk": noise, "as-is": query}, "q", threshold=None)[0]  # a useless view changes nothing
    assert alone.ref_id == "ref04" and abs(alone.ref_start - 40.0) <= 0.5
    assert both == alone
    assert match(VideoIndex.create(tmp_path / "empty", basis), {"as-is": query}, "q", threshold=None) == []


# ---- real videos end to end -----------------------------------------------------------------

START = 12.0


def test_real_videos_indexed_and_searched(tmp_path, encoder):
    videos = [fetch_media(name) for name in ("world.mp4", "tree.avi", "box.mp4")]
    assert add_videos(videos, tmp_path / "ix") == ["world.mp4", "tree.avi", "box.mp4"]
    ix = VideoIndex.open(tmp_path / "ix")
    assert ix.info().seconds == sum(round(v.duration) for v in ix.videos.values())
    for distortion in ("none", "hflip"):
        query = render_query(videos[0], START, 5.0, distortion, tmp_path / f"{distortion}.mp4")
        matches = search(query.path, tmp_path / "ix")
        assert matches and matches[0].ref_id == "world.mp4", (distortion, matches)
        assert abs(matches[0].ref_start - query.source_start) <= 1.0, (distortion, matches[0])
        assert all(m.score >= DEFAULT_THRESHOLD for m in matches)
        assert len(matches) == 1, matches  # neither other video reaches the threshold

    h, w = encoder.spec.input_size

    def frames(path):
        return np.concatenate([b.frames for b in sample_frames(path, FPS, (h, w), 16)])

    plain = frames(tmp_path / "none.mp4")
    assert inset_box(plain) is None
    # world.mp4 is a globe on black: the clip's own dark border already counts as bars
    top0, bottom0, left0, right0 = content_box(plain)
    letterbox = render_query(videos[0], START, 5.0, "letterbox", tmp_path / "letterbox.mp4")
    # 480x270 padded to 480x360: the picture covers rows 45..315 of 360
    scale = 270 / 360
    pad = (360 - 270) / 2 / 360 * h
    top, bottom, left, right = content_box(frames(letterbox.path))
    assert top >= pad - 1 and bottom <= h - pad + 1
    assert abs(top - (pad + top0 * scale)) <= 2 and abs(bottom - (pad + bottom0 * scale)) <= 2
    assert abs(left - left0) <= 2 and abs(right - right0) <= 2

    pip = render_query(videos[0], START, 5.0, "picture-in-picture", tmp_path / "pip.mp4")
    # 640x360 output; the 256x144 picture at x = 0.55 W, y = 0.35 H
    expected = (0.35 * 360 / 360 * h, (0.35 * 360 + 144) / 360 * h, 0.55 * 640 / 640 * w, (0.55 * 640 + 256) / 640 * w)
    box = inset_box(frames(pip.path))
    assert box is not None
    assert np.abs(np.array(box) - np.array(expected)).max() <= 4, (box, expected)


# ---- the score means the same in a small index ------------------------------------------------

#: real videos a new user might index first, and real footage none of those indexes holds
SMALL_INDEXES = {1: ("bikes.mp4",), 2: ("world.mp4", "tree.avi"), 4: ("world.mp4", "tree.avi", "box.mp4", "cup.mp4")}
UNRELATED = ("carphone_pristine.mp4", "bigbuckbunny.mp4", "megamind.avi", "vtest.avi", "bikes.mp4", "box.mp4", "cup.mp4")


@pytest.fixture(scope="module")
def small_index_media(videos) -> dict[str, Path]:
    paths = {name: videos[name] for name in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")}
    for name in ("world.mp4", "tree.avi", "box.mp4", "cup.mp4", "megamind.avi", "vtest.avi"):
        paths[name] = fetch_media(name)
    return paths


def pieces(views: dict[str, Framegram], seconds: float, every: float) -> list[dict[str, Framegram]]:
    """`seconds`-long pieces of every view, one starting every `every` seconds (the query views of a
    piece but for the bars and inset found on the whole clip)."""
    whole = views["as-is"]
    starts = np.arange(0.0, whole.duration - seconds + 1e-9, every) + whole.times[0]
    return [{name: v.slice_time(t, t + seconds) for name, v in views.items()} for t in starts]


def test_unrelated_real_clips_do_not_match_in_small_indexes(small_index_media, tmp_path):
    """With 1, 2 or 4 indexed videos (the background comes from the fingerprint's bank, not from an
    index too small to have one), 3-s pieces of unindexed real footage stay below the calibrated
    threshold, while distorted excerpts of the indexed videos are found above it."""
    from framegram.search.query import query_views

    unrelated = {name: pieces(query_views(small_index_media[name]), 3.0, 1.5)[:12] for name in UNRELATED}
    for n, names in SMALL_INDEXES.items():
        folder = tmp_path / f"ix{n}"
        add_videos([small_index_media[name] for name in names], folder)
        ix = VideoIndex.open(folder)
        threshold = ix.fingerprint.threshold
        scores = [match(ix, p, "unrelated", threshold=None) for name in UNRELATED if name not in names for p in unrelated[name]]
        top = [found[0].score for found in scores if found]
        assert len(scores) >= 25 and max(top) < threshold, (n, sorted(top)[-3:])
        for name in names:
            start = min(2.0, probe_video(small_index_media[name]).duration - 6.0)
            query = render_query(small_index_media[name], start, 5.0, "brightness-contrast", tmp_path / f"{n}-{name}.mp4")
            found = search(query.path, ix)
            assert found and found[0].ref_id == name and abs(found[0].ref_start - start) <= 1.0, (n, name, found)


def test_too_short_a_query_is_refused(tmp_path, small_index_media):
    add_videos([small_index_media["world.mp4"]], tmp_path / "ix")
    clip = render_query(small_index_media["world.mp4"], START, 1.0, "none", tmp_path / "short.mp4").path
    with pytest.raises(TooShortError, match=f"{clip}.*too short to search"):
        search(clip, tmp_path / "ix")
