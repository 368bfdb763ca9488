"""Shots and keyframes on an edited video of real footage with known boundaries."""

import csv
import io
import json
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from framegram.encoders import get_encoder
from framegram.errors import EncoderMismatchError, TooShortError
from framegram.extract import extract
from framegram.keyframes import detect_shots, select_keyframes
from framegram.keyframes.output import CSV_COLUMNS, scene_csv
from shot_scoring import match, score
from edits import Clip, Distractor, EditPlan, Transition, render_edit
from framegram.datasets.footage import clean_stretches, footage_paths

SOURCES = ["vtest.avi", "tree.avi", "box.mp4", "cup.mp4", "a.mp4"]


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """Five single-take real clips joined by a cut, a dissolve, a fade and a cut, with a flash and a ramp."""
    stretches = {s.source.name: s for p in footage_paths(SOURCES) for s in clean_stretches(p, min_seconds=6.0)}
    # each clip: 2 s of lead-in, the shot, 2 s of lead-out (see synth.edits.SLACK)
    shots = [Clip(str(stretches[n].source), stretches[n].start, min(8.0, stretches[n].duration)) for n in SOURCES]
    plan = EditPlan(
        shots=shots,
        distractors=[Distractor("flash", 1.5, 0.12), None, Distractor("ramp", 0.8, 1.5), None, None],
        transitions=[Transition("cut", 0), Transition("dissolve", 1.2), Transition("fade", 1.6), Transition("cut", 0)],
    )
    path = tmp_path_factory.mktemp("edit") / "edited.mp4"
    truth = render_edit(plan, path)
    framegram, _ = extract(path, get_encoder())
    return path, truth, framegram


def test_boundaries_found_with_their_kinds(edited):
    _, truth, fg = edited
    found = detect_shots(fg).boundaries
    pairs = match([(b.start, b.end) for b in found], [(b["start"], b["end"]) for b in truth.boundaries])
    assert len(pairs) == len(truth.boundaries) == len(found) == 4
    for i, j in pairs:
        expected = "cut" if truth.boundaries[j]["kind"] == "cut" else "gradual"
        assert found[i].kind == expected, (found[i], truth.boundaries[j])


def test_no_boundary_at_the_flash_or_the_ramp(edited):
    _, truth, fg = edited
    found = detect_shots(fg).boundaries
    for d in truth.distractors:
        assert not any(b.start <= d["end"] + 0.5 and b.end >= d["start"] - 0.5 for b in found), d


def test_one_keyframe_per_shot_and_none_in_transitions(edited):
    _, truth, fg = edited
    n = len(truth.shots)
    keyframes = select_keyframes(fg, detect_shots(fg), n)
    assert len(keyframes) == n
    for k, shot in zip(keyframes, truth.shots):
        assert shot["start"] <= k.time < shot["end"], (k, shot)


def test_keyframe_counts_follow_n(edited):
    _, _, fg = edited
    shots = detect_shots(fg)
    assert len(select_keyframes(fg, shots)) == len(shots.shots)
    more = select_keyframes(fg, shots, 9)
    assert len(more) == 9 and [k.time for k in more] == sorted(k.time for k in more)
    assert len({k.row for k in more}) == 9
    assert len(select_keyframes(fg, shots, 2)) == 2
    with pytest.raises(TooShortError, match=f"only {len(fg)} frames"):
        select_keyframes(fg, shots, len(fg) + 1)


def test_scene_csv_has_pyscenedetect_layout(edited):
    path, truth, fg = edited
    shots = detect_shots(fg)
    rows = list(csv.reader(io.StringIO(scene_csv(fg, shots))))
    assert rows[0][0] == "Timecode List:" and len(rows[0]) == len(shots.boundaries) + 1
    assert rows[1] == CSV_COLUMNS
    scenes = rows[2:]
    assert len(scenes) == len(shots.shots)
    assert scenes[0][1] == "1" and scenes[0][2] == "00:00:00.000"
    assert int(scenes[-1][4]) == round(truth.duration * 25)  # last frame of the video, 25 fps
    for earlier, later in zip(scenes, scenes[1:]):
        assert int(later[1]) == int(earlier[4]) + 1  # contiguous, like PySceneDetect's


def test_scoring_matches_one_to_one_within_tolerance():
    truth = [(1.0, 1.0), (5.0, 6.0), (9.0, 9.0)]
    detected = [(1.3, 1.3), (1.4, 1.4), (6.4, 6.4), (12.0, 12.0)]
    assert sorted(match(detected, truth)) == [(0, 0), (2, 1)]
    s = score(detected, truth)
    assert (s.true_positives, s.false_positives, s.false_negatives) == (2, 2, 1)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "framegram", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_cli_shots_and_keyframes(edited, tmp_path):
    path, truth, _ = edited
    first = cli("shots", str(path), "-o", str(tmp_path))
    assert first.returncode == 0, first.stderr
    data = json.loads((tmp_path / "edited.scenes.json").read_text())
    assert len(data["boundaries"]) == 4 and (tmp_path / "edited.scenes.csv").is_file()
    assert "cached framegram" in cli("shots", str(path), "-o", str(tmp_path)).stdout  # reused, not extracted again

    out = tmp_path / "kf"
    proc = cli("keyframes", str(path), "-n", str(len(truth.shots)), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "keyframes.json").read_text())["keyframes"]
    assert len(index) == len(truth.shots)
    for entry in index:
        assert (out / entry["file"]).stat().st_size > 5000
        assert entry["frame"] == round(entry["time"] * 25)
    assert (out / "contact_sheet.png").stat().st_size > 20000


def test_cli_refuses_too_many_keyframes_and_foreign_framegrams(edited, tmp_path):
    path, _, fg = edited
    proc = cli("keyframes", str(path), "-n", "100000", "-o", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "only" in proc.stderr

    meta = json.loads(fg.meta.to_json())
    meta["encoder"]["name"] = "resnet152"
    foreign = tmp_path / "foreign.framegram.npz"
    np.savez(foreign, features=fg.features.astype(np.float16), times=fg.times, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    proc = cli("shots", str(foreign))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "resnet152" in proc.stderr
    from framegram.cache import framegram_for

    with pytest.raises(EncoderMismatchError):
        framegram_for(foreign)


def test_one_frame_video_gets_a_clear_message(tmp_path):
    path = tmp_path / "still.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        frame.pts, frame.time_base = 0, Fraction(1, 25)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    proc = cli("shots", str(path), "-o", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "too short" in proc.stderr and str(path) in proc.stderr
