"""The index directory: segments, tombstones, compaction, the trained tiers, crash safety (kill -9 at
any moment of add, remove and compact), readers during writes, damaged files and older formats.

Generated framegrams with a known answer (the random walks of test_search_index)."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import framegram.search.index as index_module
from framegram.errors import FramegramError
from framegram.search import SearchIndexError, VideoIndex, match
from framegram.search.codec import TierSettings
from framegram.search.fingerprint import reference_descriptors
from test_search_index import basis, excerpt, extra, fitting, refs  # noqa: F401  (fixtures)

#: the default fine codes, trained as soon as a test index passes 1500 s
SMALL_TIERS = TierSettings(window=5, nprobe=8, train_at=1500, sample=20_000)


def build(folder: Path, basis, items: dict, tiers: TierSettings = TierSettings(), commit_every: int = 50) -> VideoIndex:
    ix = VideoIndex.create(folder, basis, tiers=tiers)
    assert ix.add(items.items(), commit_every=commit_every) == list(items)
    return ix


def segment_files(folder: Path) -> set[str]:
    return {p.name for p in (folder / "segments").iterdir()}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_adds_write_segments_removes_write_tombstones_compaction_merges(basis, refs, tmp_path):
    ids = list(refs)
    ix = build(tmp_path / "ix", basis, refs, commit_every=5)  # four adds' worth: four segments
    descriptors = {r: reference_descriptors(f, basis).vectors for r, f in refs.items()}
    info = ix.info()
    assert (info.videos, info.segments, info.flat_segments, info.tombstoned_seconds) == (20, 4, 4, 0)
    assert info.seconds == sum(len(d) for d in descriptors.values()) >= 2000
    assert info.vector_bytes_per_second == 256  # 8 bits x 256 dims, until the index is trained
    assert "not trained" in info.tiers and ix.codec is None
    before = {r: ix.video_vectors(r) for r in ids}
    for r, d in descriptors.items():  # 8-bit codes (clipped to the basis' range) lose little
        similarity = cosine_rows(before[r], d)
        assert before[r].shape == d.shape and np.median(similarity) > 0.995 and similarity.min() > 0.95
        assert np.array_equal(ix.video_vectors(r, 3, 9), before[r][3:9])  # a range reads the same rows
    files = segment_files(ix.folder)

    gone = [ids[2], ids[11], ids[12]]
    assert ix.remove(gone) == gone
    assert segment_files(ix.folder) == files  # a removal writes no vector
    for snapshot in (ix, VideoIndex.open(ix.folder)):
        info = snapshot.info()
        assert len(snapshot) == 17 and info.tombstoned_seconds == sum(len(descriptors[r]) for r in gone)
        assert info.seconds == sum(len(descriptors[r]) for r in ids if r not in gone)
        for r in gone:
            assert r not in snapshot
            with pytest.raises(KeyError):
                snapshot.video_vectors(r)
        # a query from a removed video finds none of its rows
        found = match(snapshot, {"as-is": excerpt(refs[gone[0]], 100, 50)}, "q", threshold=None)
        assert all(m.ref_id not in gone for m in found)
    with pytest.raises(SearchIndexError, match="not in the index: nope"):
        ix.remove(["ref00", "nope"])
    assert "ref00" in VideoIndex.open(ix.folder)  # nothing removed

    done = ix.compact()
    assert done["segments_before"] == 4 and done["tombstoned_seconds_dropped"] == sum(len(descriptors[r]) for r in gone)
    for snapshot in (ix, VideoIndex.open(ix.folder)):
        info = snapshot.info()
        assert (info.segments, info.tombstoned_seconds, len(snapshot)) == (1, 0, 17)
        assert snapshot.ref_ids == [r for r in ids if r not in gone]  # storage order kept
        for r in snapshot.ref_ids:
            assert np.array_equal(snapshot.video_vectors(r), before[r]), r  # flat codes are copied, not re-encoded
    assert len(segment_files(ix.folder)) == 5  # the four retired files stay until the next write ...
    ix.add([("again", refs[gone[0]])])
    assert len(segment_files(ix.folder)) == 2  # ... which removes them: the compacted one and the new one

    # everything removed, then compacted: no segment is left, and the index still takes videos
    ix.remove(ix.ref_ids)
    assert ix.compact()["seconds"] == 0 and ix.info().segments == 0 and len(ix) == 0
    assert match(ix, {"as-is": excerpt(refs["ref00"], 10, 50)}, "q", threshold=None) == []
    assert ix.add([("back", refs["ref00"])]) == ["back"] and segment_files(ix.folder) == {
        f"{ix.segments[next(iter(ix.segments))].record.seg_id:08d}.codes"}


def test_compaction_of_tiered_segments_keeps_every_answer(basis, refs, tmp_path):
    """Whole segments are copied (their codes as one block, coarse lists rebuilt): every query second finds the same
    neighbours before and after, at the same places; a segment with a removed video is re-derived
    without the video's windows."""
    items = list(refs.items())
    ix = build(tmp_path / "ix", basis, dict(items[:8]), tiers=SMALL_TIERS, commit_every=4)
    ix.train()
    ix.compact()  # one tiered segment
    ix.add([(f"{r}-b", f) for r, f in items[8:16]], commit_every=4)  # two more
    assert ix.info().segments == 3 and ix.info().flat_segments == 0
    queries = [reference_descriptors(excerpt(refs[r], start, 50, seed=n), basis).vectors
               for n, (r, start) in enumerate([("ref01", 30), ("ref09", 200), ("ref13", 90), ("ref10", 40)])]

    def answers(index: VideoIndex) -> list:
        out = []
        for sims, keys in index.neighbours(queries, 16):
            who, at = index.locate(keys)
            out.append((sims, [index.ref_ids[w] if w >= 0 else None for w in who.ravel()], at))
        return out

    before = answers(ix)
    assert ix.compact()["segments_before"] == 3 and ix.info().segments == 1
    for (s0, w0, a0), (s1, w1, a1) in zip(before, answers(ix)):
        assert np.array_equal(s0, s1) and w0 == w1 and np.array_equal(a0, a1)

    ix.add([("ref00-c", refs["ref00"])])
    ix.remove(["ref10-b"])
    ix.compact()
    assert ix.info().segments == 1 and "ref10-b" not in ix
    windows = sum(-(-v.n_rows // SMALL_TIERS.window) for v in ix.videos.values())
    assert next(iter(ix.segments.values())).coarse.ntotal == windows  # the removed video's windows are gone
    assert match(ix, {"as-is": excerpt(refs["ref12"], 40, 50)}, "q", threshold=None)[0].ref_id == "ref12-b"  # re-derived
    assert all(m.ref_id != "ref10-b" for m in match(ix, {"as-is": excerpt(refs["ref10"], 40, 50)}, "q", threshold=None))


def test_a_trained_index_finds_what_the_flat_one_finds(basis, refs, extra, tmp_path):
    flat = build(tmp_path / "flat", basis, refs)
    tiered = build(tmp_path / "tiered", basis, refs, tiers=SMALL_TIERS, commit_every=10)
    info = tiered.info()
    # it trained by itself when it passed 1500 s: the first segment is flat, the next tiered
    assert tiered.codec is not None and info.flat_segments == 1 and info.segments == 2
    assert "PQ64x6" in info.tiers and "trained on" in info.tiers
    tiered.compact()
    info = tiered.info()
    assert (info.segments, info.flat_segments) == (1, 0)
    assert info.vector_bytes_per_second == 48  # 64 codes of 6 bits
    assert info.memory_bytes_per_second < 10  # the coarse lists; the fine codes stay on disk
    for n, (ref, start) in enumerate([("ref03", 40), ("ref11", 333), ("ref17", 121), ("ref06", 250), ("ref19", 10)]):
        query = {"as-is": excerpt(refs[ref], start, 50, seed=n)}
        best_flat = match(flat, query, f"q{n}", threshold=None)[0]
        best_tiered = match(tiered, query, f"q{n}", threshold=None)[0]
        assert best_flat.ref_id == best_tiered.ref_id == ref
        assert abs(best_tiered.ref_start - start / 5) < 0.5
        assert abs(best_tiered.score - best_flat.score) < 0.15  # coarser codes, the same evidence
    # an unrelated clip matches nothing strongly in either
    unrelated = {"as-is": excerpt(extra[1], 30, 50)}
    assert match(tiered, unrelated, "u", threshold=None)[0].score < 0.5
    # training is once per index
    with pytest.raises(SearchIndexError, match="already trained"):
        tiered.train()


def test_the_neighbours_of_a_stored_second_are_itself_first(basis, refs, tmp_path):
    tiered = build(tmp_path / "tiered", basis, refs, tiers=SMALL_TIERS, commit_every=10)
    tiered.compact()
    for ref in ("ref00", "ref07", "ref15"):
        stored = tiered.video_vectors(ref)
        (sims, keys), = tiered.neighbours([stored[10:20]], 8)
        who, at = tiered.locate(keys)
        assert (who[:, 0] == tiered.ref_ids.index(ref)).all() and (at[:, 0] == np.arange(10, 20)).all()
        assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first
        np.testing.assert_allclose(sims[:, 0], (stored[10:20] ** 2).sum(axis=1), rtol=1e-4)


# ---- crash safety ------------------------------------------------------------------------------

WRITER = """
import sys, time, json
import numpy as np
from framegram.search import VideoIndex
folder, start = sys.argv[1], int(sys.argv[2])
ix = VideoIndex.open(folder)
def video(k):  # what video k holds: the test recomputes it
    x = np.random.default_rng(k).standard_normal((400, ix.fingerprint.dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
k = start
while True:
    ix.add_descriptors([(f"v{k:04d}", "gen", f"sha{k}", 400.0, video(k)), (f"v{k+1:04d}", "gen", f"sha{k+1}", 400.0, video(k+1))])
    print("added", k, k + 1, flush=True)
    ix.remove([f"v{k:04d}"])
    print("removed", k, flush=True)
    if k % 3 == 1:
        ix.compact()
        print("compacted", flush=True)
    k += 2
"""


def expected_video(k: int, dims: int) -> np.ndarray:
    x = np.random.default_rng(k).standard_normal((400, dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("tiers", ["flat", "tiered"])
def test_kill_9_at_any_moment_leaves_the_last_committed_state(basis, refs, tmp_path, tiers):
    settings = TierSettings(fine="PQ32x4", nprobe=4, train_at=1000, sample=4000) if tiers == "tiered" else TierSettings()
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:3]), tiers=settings)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(3)
    kills = 0
    for trial in range(8):
        writer = subprocess.Popen([sys.executable, str(script), str(ix.folder), str(1000 * trial)], stdout=subprocess.PIPE, text=True)
        # let it start and work a little, then kill it at a random moment of its adds, removes and compactions
        assert writer.stdout.readline().startswith("added")
        time.sleep(float(rng.uniform(0.0, 0.6)))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        kills += 1
        state = VideoIndex.open(ix.folder)  # loadable
        assert state.verify() == [], state.verify()
        # all or nothing: a video is present with every one of its rows, or absent
        ks = sorted(int(r[1:]) for r in state.videos if r.startswith("v"))
        for k in ks:  # every row as its segment's codes encode what the writer gave
            video = state.videos[f"v{k:04d}"]
            codec = state.segments[video.segment].codec
            expected = codec.decode(codec.encode(expected_video(k, basis.dims)))
            assert np.array_equal(state.video_vectors(video.ref_id), expected), video
        for r in list(refs)[:3]:
            assert r in state
    assert kills == 8
    final = VideoIndex.open(ix.folder)
    # the next writer cleans what the killed ones left: only recorded files stay
    final.add_descriptors([("last", "gen", "sha-last", 400.0, expected_video(10_000, basis.dims))])
    recorded = {p.name for seg_id, seg in final.segments.items()
                for p in index_module._segment_paths(final.folder, seg_id)[: 2 if seg.coarse is not None else 1]}
    assert segment_files(final.folder) == recorded
    assert not [p for p in final.folder.iterdir() if p.name.endswith(".partial")]


def test_an_io_error_while_writing_leaves_the_previous_state(basis, refs, extra, tmp_path, monkeypatch):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:4]))
    before = VideoIndex.open(ix.folder)
    real_write = index_module._write_segment

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_module, "_write_segment", full_disk)
    with pytest.raises(SearchIndexError, match="No space left"):
        ix.add([("new", extra[0])])
    with pytest.raises(SearchIndexError, match="No space left"):
        ix.compact()
    monkeypatch.setattr(index_module, "_write_segment", real_write)
    for state in (ix, VideoIndex.open(ix.folder)):  # the writer that failed stays on the committed state
        assert state.videos == before.videos and state.generation == before.generation

    # a commit that fails after the segment is on disk: the file is an orphan, the records unchanged
    real_connect = index_module._connect
    failed = []

    @contextlib.contextmanager
    def connect(folder):
        with real_connect(folder) as db:
            yield db
            if db.total_changes and not failed:  # the commit's transaction, not a read
                failed.append(folder)
                raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(index_module, "_connect", connect)
    with pytest.raises(SearchIndexError, match="simulated"):
        ix.add([("new", extra[0])])
    monkeypatch.undo()
    assert len(segment_files(ix.folder)) == len(before.segments) + 1  # the orphan
    after = VideoIndex.open(ix.folder)
    assert after.videos == before.videos and after.generation == before.generation
    assert ix.add([("new", extra[0])]) == ["new"]  # the next write recovers and removes the orphan
    final = VideoIndex.open(ix.folder)
    assert set(final.videos) == set(before.videos) | {"new"} and len(segment_files(ix.folder)) == len(final.segments)


# ---- readers ------------------------------------------------------------------------------------


def test_a_reader_keeps_its_snapshot_while_a_writer_adds_and_compacts(basis, refs, extra, tmp_path):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:5]))
    reader = VideoIndex.open(ix.folder)
    writer = VideoIndex.open(ix.folder)
    for i in range(3):
        assert writer.add([(f"new{i}", extra[i])]) == [f"new{i}"]
    writer.remove(["ref01"])
    writer.compact()
    writer.add([("new3", extra[3])])  # removes the files the compaction retired
    assert not all((ix.folder / "segments" / p).exists() for p in
                   [q.name for s in reader.segments for q in index_module._segment_paths(ix.folder, s)])

    old_query = {"as-is": excerpt(refs["ref03"], 100, 50)}
    new_query = {"as-is": excerpt(extra[1], 60, 50)}
    assert set(reader.videos) == set(list(refs)[:5])  # its snapshot, read from the files it holds open
    assert match(reader, old_query, "q", threshold=None)[0].ref_id == "ref03"
    assert all(m.ref_id != "new1" for m in match(reader, new_query, "q", threshold=None))
    assert "ref01" in reader and reader.video_vectors("ref01").shape[0] == reader.videos["ref01"].n_rows

    reopened = VideoIndex.open(ix.folder)
    assert set(reopened.videos) == (set(list(refs)[:5]) - {"ref01"}) | {"new0", "new1", "new2", "new3"}
    assert match(reopened, new_query, "q", threshold=None)[0].ref_id == "new1"


READER = """
import sys, json
import numpy as np
from framegram.search import VideoIndex
folder, rounds = sys.argv[1], int(sys.argv[2])
seen = []
for _ in range(rounds):
    ix = VideoIndex.open(folder)
    assert ix.verify() == [], ix.verify()
    ids = sorted(ix.videos)
    for r in ids:
        assert ix.video_vectors(r).shape == (ix.videos[r].n_rows, ix.fingerprint.dims)
    q = ix.video_vectors(ids[0])[:8]
    (sims, keys), = ix.neighbours([q], 4)
    who, at = ix.locate(keys)
    assert (who[:, 0] >= 0).all()
    seen.append(ids)
print(json.dumps(seen))
"""


def test_readers_in_another_process_never_see_a_half_state(basis, refs, tmp_path):
    items = list(refs.items())
    ix = build(tmp_path / "ix", basis, dict(items[:2]), tiers=replace(SMALL_TIERS, train_at=800))
    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen([sys.executable, str(script), str(ix.folder), "60"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    errors = []

    def write():
        try:
            writer = VideoIndex.open(ix.folder)
            for k in range(2, 14):
                writer.add(items[k : k + 1])
                if k % 4 == 0:
                    writer.remove([items[k - 1][0]])
                    writer.compact()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=write)
    thread.start()
    out, err = reader.communicate(timeout=600)
    thread.join()
    assert reader.returncode == 0, err
    assert not errors
    removed = {items[k - 1][0] for k in range(2, 14) if k % 4 == 0}
    for ids in json.loads(out):  # every snapshot is a committed state: the first videos, minus removals done
        assert {"ref00", "ref01"} <= set(ids) and set(ids) <= {r for r, _ in items[:14]}
    assert VideoIndex.open(ix.folder).codec is not None  # it trained while the reader read
    assert set(VideoIndex.open(ix.folder).videos) == {r for r, _ in items[:14]} - removed


# ---- damaged files, other formats ---------------------------------------------------------------


def test_missing_or_damaged_files_are_named(basis, refs, tmp_path):
    with pytest.raises(SearchIndexError, match=str(tmp_path / "nowhere")):
        VideoIndex.open(tmp_path / "nowhere")
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:3]))
    with pytest.raises(SearchIndexError, match="already exists"):
        VideoIndex.create(ix.folder, basis)
    (seg_id,) = ix.segments
    codes, _ = index_module._segment_paths(ix.folder, seg_id)
    good = codes.read_bytes()

    codes.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(SearchIndexError, match=f"{ix.folder}.*damaged"):
        VideoIndex.open(ix.folder)
    codes.write_bytes(b"not codes" * 10)
    with pytest.raises(SearchIndexError, match=f"{ix.folder}.*damaged"):
        VideoIndex.open(ix.folder)
    codes.unlink()
    with pytest.raises(SearchIndexError, match=f"{ix.folder}.*missing"):
        VideoIndex.open(ix.folder)
    # garbled bytes of the right size open (a memory map cannot tell) but fail the checksum check
    garbled = bytearray(good)
    garbled[len(good) // 2 : len(good) // 2 + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    codes.write_bytes(bytes(garbled))
    problems = VideoIndex.open(ix.folder).verify()
    assert len(problems) == 1 and str(codes) in problems[0] and "checksum" in problems[0]
    codes.write_bytes(good)
    assert VideoIndex.open(ix.folder).verify() == []

    (ix.folder / "index.sqlite").write_bytes(b"garbage" * 1000)
    with pytest.raises(SearchIndexError, match=str(ix.folder)):
        VideoIndex.open(ix.folder)


def test_an_index_of_the_previous_format_is_refused_with_how_to_rebuild(basis, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    basis.save(folder / "basis.npz")
    db = sqlite3.connect(folder / "index.sqlite")  # the records of format 1: one vectors file per generation
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE videos (ref_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, duration REAL NOT NULL,
                             first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL, added_at TEXT NOT NULL);""")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "1"), ("basis", basis.digest), ("generation", "3")])
    db.commit()
    db.close()
    with pytest.raises(SearchIndexError, match=f"{folder}: index format 1.*framegram index add") as info:
        VideoIndex.open(folder)
    assert "format 2" in str(info.value)


def test_tier_settings_are_checked():
    with pytest.raises(ValueError, match="window"):
        TierSettings(window=0)
    with pytest.raises(ValueError, match="nlist"):
        TierSettings(nlist=-1)
    assert TierSettings.from_json(TierSettings(fine="PQ16").to_json()) == TierSettings(fine="PQ16")


def test_bad_descriptors_are_refused_by_name(basis, refs, tmp_path):
    ix = build(tmp_path / "ix", basis, dict(list(refs.items())[:1]))
    with pytest.raises(FramegramError, match="x.mp4: descriptors of shape"):
        ix.add_descriptors([("x", "x.mp4", "sha-x", 3.0, np.zeros((3, 7), np.float32))])
    assert set(VideoIndex.open(ix.folder).videos) == {"ref00"}
