"""Generated distractor videos and the cached corpus of the search benchmark (on a tiny configuration)."""

import json
import shutil

import numpy as np
import pytest

from framegram.errors import FramegramError
from framegram.io import probe_video, sample_frames
from framegram.datasets.distort import distortions
from framegram.datasets.distractors import render_distractor
from search_corpus import (
    SearchCorpusError,
    build_search_corpus,
    load_search_corpus,
)

TINY = {  # 2 film pieces of ~12 s and 3 small distractors; 1 query per distortion, length and split
    "queries_per_distortion": 1,
    "negatives": 1,
    "workers": 2,
    "show_progress": False,
    "min_references": 5,
    "min_hours": 0.0,
    "film_pieces": 2,
    "piece_seconds": 12.0,
    "clips": (),
    "negative_clips": {},
    "negative_distractors": 2,
    "distortions": ("none", "speed-1.25"),
    "lengths": (5.0,),
    "distractor_seconds": (12.0, 14.0),
    "distractor_size": (160, 90),
}


def frames_of(path, fps=2.0):
    return np.concatenate([b.frames for b in sample_frames(path, fps=fps, size=(36, 64), skip_nonref=False)])


def test_distractor_is_deterministic_distinct_and_sized(tmp_path):
    a = render_distractor(7, 6.0, tmp_path / "a.mp4", size=(160, 90), fps=12)
    b = render_distractor(7, 6.0, tmp_path / "b.mp4", size=(160, 90), fps=12)
    c = render_distractor(8, 6.0, tmp_path / "c.mp4", size=(160, 90), fps=12)
    info = probe_video(a)
    assert (info.width, info.height, info.codec) == (160, 90, "h264")
    assert info.duration == pytest.approx(6.0, abs=0.01) and info.frame_rate == pytest.approx(12)
    fa, fb, fc = frames_of(a), frames_of(b), frames_of(c)
    assert np.array_equal(fa, fb)
    assert np.abs(fa.astype(int) - fc.astype(int)).mean() > 20  # another seed: another video
    assert fa.std(axis=(1, 2, 3)).min() > 5  # every sampled frame shows something


def test_a_distractor_has_the_same_bytes_after_other_renders(tmp_path):
    """Encoded in-process with PyAV, about half of these came out as other bytes (and a seed's video
    differed between processes, which made small trainings on distractors vary)."""
    encoded = set()
    for k in range(8):
        render_distractor(2, 12.0, tmp_path / f"other-{k}.mp4", size=(240, 136), fps=10)
        encoded.add(render_distractor(4, 12.0, tmp_path / f"same-{k}.mp4", size=(240, 136), fps=10).read_bytes())
    assert len(encoded) == 1


def test_distractor_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="even"):
        render_distractor(1, 2.0, tmp_path / "x.mp4", size=(161, 90))
    with pytest.raises(ValueError, match="unknown photos"):
        render_distractor(1, 2.0, tmp_path / "x.mp4", photos=["not-a-photo"])
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_search_corpus(tmp_path_factory.mktemp("search") / "corpus", seed=5, **TINY)


def test_tiny_corpus_has_the_asked_shape(corpus):
    kinds = [r.kind for r in corpus.references]
    assert kinds == ["film", "film", "distractor", "distractor", "distractor"]
    assert [r.ref_id for r in corpus.references][:3] == ["bbb-000", "bbb-001", "dist-000"]
    for split in ("test", "calibration"):
        queries = [q for q in corpus.queries if q.split == split]
        assert sorted((q.distortion, q.is_positive) for q in queries if q.is_positive) == [("none", True), ("speed-1.25", True)]
        assert sum(not q.is_positive for q in queries) == 1
        assert len(corpus.negative_sources_of(split)) == 1
    assert corpus.total_seconds == pytest.approx(sum(probe_video(r.path).duration for r in corpus.references))


def test_ground_truth_lies_inside_the_reference_and_shows_it(corpus):
    refs = {r.ref_id: r for r in corpus.references}
    for q in corpus.queries:
        assert q.path.is_file() and q.query_duration == pytest.approx(q.length, abs=0.2)
        if not q.is_positive:
            assert q.ref_start is None and corpus.folder / q.source in corpus.negative_sources_of(q.split)
            continue
        ref = refs[q.ref_id]
        assert 0 <= q.ref_start < q.ref_end <= ref.duration
        assert q.ref_end - q.ref_start == pytest.approx(q.length * distortions()[q.distortion].speed)
        if q.distortion == "none":  # the query's pixels are the reference's from ref_start on
            assert abs(best_offset(q.path, ref.path) - q.ref_start) < 1.5 / probe_video(ref.path).frame_rate


def best_offset(query, reference) -> float:
    """Seconds into `reference` where the frames of `query` fit best (frame by frame at the native rate)."""
    rate = probe_video(reference).frame_rate
    q, tq = decoded(query, rate)
    r, tr = decoded(reference, rate)
    errors = [np.abs(q - r[k : k + len(q)]).mean() for k in range(len(r) - len(q) + 1)]
    k = int(np.argmin(errors))
    far = [e for j, e in enumerate(errors) if abs(tr[j] - tr[k]) > 1.0]
    assert errors[k] < 4 and (not far or min(far) > 3 * errors[k] + 4)  # a clear, unique fit
    return float(tr[k] - tq[0])


def decoded(path, rate):
    batches = list(sample_frames(path, fps=rate, size=(36, 64), skip_nonref=False))
    return np.concatenate([b.frames for b in batches]).astype(np.float32), np.concatenate([b.times for b in batches])


def test_rerun_reuses_files_and_resumes(corpus):
    folder = corpus.folder
    videos = sorted(folder.rglob("*.mp4"))
    mtimes = {p: p.stat().st_mtime_ns for p in videos}
    manifest = (folder / "manifest.json").read_text()
    again = build_search_corpus(folder, seed=5, **TINY)
    assert again.queries == corpus.queries and again.references == corpus.references
    assert {p: p.stat().st_mtime_ns for p in videos} == mtimes

    # an interrupted build: no manifest yet, one query missing
    lost = corpus.queries[0].path
    lost.unlink()
    (folder / "manifest.json").unlink()
    resumed = build_search_corpus(folder, seed=5, **TINY)
    assert lost.is_file() and resumed.queries == corpus.queries
    assert (folder / "manifest.json").read_text() == manifest
    assert {p: p.stat().st_mtime_ns for p in videos if p != lost} == {p: t for p, t in mtimes.items() if p != lost}


def test_a_file_whose_plan_changed_is_made_again(corpus):
    folder = corpus.folder
    plan_path = folder / "plans" / "queries.json"
    plan = json.loads(plan_path.read_text())
    changed, kept = corpus.queries[1].path, corpus.queries[2].path
    key = changed.relative_to(folder).as_posix()
    plan[key] = plan[key].replace('"start": ', '"start": 1')  # as if an earlier build had cut it elsewhere
    plan_path.write_text(json.dumps(plan))
    (folder / "manifest.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in (changed, kept)}
    again = build_search_corpus(folder, seed=5, **TINY)
    assert changed.stat().st_mtime_ns != before[changed] and kept.stat().st_mtime_ns == before[kept]
    assert again.queries == corpus.queries and json.loads(plan_path.read_text()) != plan


def test_other_settings_are_refused(corpus):
    with pytest.raises(SearchCorpusError, match="seed"):
        build_search_corpus(corpus.folder, seed=6, **TINY)


def test_missing_or_damaged_manifest_is_a_clear_error(corpus, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(corpus.folder, folder)
    manifest = folder / "manifest.json"
    assert load_search_corpus(folder).queries[0].path.parent.parent.parent == folder

    manifest.write_text('{"format": "framegram-search-corpus", "corpus_vers')
    with pytest.raises(SearchCorpusError, match="damaged") as info:
        load_search_corpus(folder)
    assert str(manifest) in str(info.value) and isinstance(info.value, FramegramError)

    data = json.loads((corpus.folder / "manifest.json").read_text())
    del data["queries"][0]["ref_id"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(SearchCorpusError, match="missing field"):
        load_search_corpus(folder)

    shutil.copy(corpus.folder / "manifest.json", manifest)
    (folder / "references" / "dist-001.mp4").unlink()
    with pytest.raises(SearchCorpusError, match="dist-001.mp4, which is missing"):
        load_search_corpus(folder)

    manifest.unlink()
    with pytest.raises(SearchCorpusError, match="no search corpus manifest") as info:
        load_search_corpus(folder)
    assert str(manifest) in str(info.value)
