"""`framegram index add|info|remove|compact|check` and `framegram search` end to end, on real videos."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from framegram.media import fetch_media
from framegram.datasets.distort import render_query

START = 12.0


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framegram", *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=300)


def ok(*args: str) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def media() -> dict[str, Path]:
    return {name: fetch_media(name) for name in ("world.mp4", "tree.avi", "box.mp4")}


@pytest.fixture(scope="module")
def clip(media, tmp_path_factory) -> Path:
    """5 s of world.mp4 from START, re-encoded."""
    return render_query(media["world.mp4"], START, 5.0, "none", tmp_path_factory.mktemp("clip") / "clip.mp4").path


@pytest.fixture(scope="module")
def index(media, tmp_path_factory) -> Path:
    """An index of the three videos, made with the CLI (used read-only by the error tests)."""
    folder = tmp_path_factory.mktemp("shared") / "ix"
    ok("index", "add", *map(str, media.values()), "--index", str(folder), "--quiet")
    return folder


def test_index_add_info_search_remove(media, clip, tmp_path):
    ix = str(tmp_path / "ix")
    out = ok("index", "add", str(media["world.mp4"]), str(media["tree.avi"]), "--index", ix, "--quiet")
    assert out.strip() == f"2 added, 0 already indexed, 0 failed -> {ix}"
    copy = tmp_path / "world-copy.mp4"  # the same content under another name
    copy.write_bytes(media["world.mp4"].read_bytes())
    out = ok("index", "add", str(media["tree.avi"]), str(copy), str(media["box.mp4"]), "--index", ix, "--quiet")
    assert out.strip() == f"1 added, 2 already indexed, 0 failed -> {ix}"

    text = ok("index", "info", "--index", ix)
    assert "videos    3" in text and "bytes per indexed second" in text and "efficientnet-lite0 at 5 fps" in text
    info = json.loads(ok("index", "info", "--index", ix, "--json"))
    assert info["videos"] == 3 and info["encoder"] == "efficientnet-lite0" and info["fps"] == 5.0
    listed = info["videos_list"]
    assert [v["ref_id"] for v in listed] == ["world.mp4", "tree.avi", "box.mp4"]
    assert info["seconds"] == sum(v["n_rows"] for v in listed) == sum(round(v["duration"]) for v in listed)
    assert f"indexed   {info['seconds']} s" in text

    matches = json.loads(ok("search", str(clip), "--index", ix, "--json"))
    assert matches and matches[0]["ref_id"] == "world.mp4" and matches[0]["query_id"] == "clip.mp4"
    assert abs(matches[0]["ref_start"] - START) <= 1.0
    assert set(matches[0]) == {"query_id", "ref_id", "query_start", "query_end", "ref_start", "ref_end", "score"}
    first = re.match(r"1\. world\.mp4  0:(\d\d\.\d\d)-0:(\d\d\.\d\d)  \(clip 0\.0-5\.0 s\)  score ", ok("search", str(clip), "--index", ix))
    assert first and abs(float(first[1]) - START) <= 1.0, first

    assert ok("index", "remove", "tree.avi", "--index", ix).strip() == f"1 removed from {ix}"
    info = json.loads(ok("index", "info", "--index", ix, "--json"))
    assert [v["ref_id"] for v in info["videos_list"]] == ["world.mp4", "box.mp4"]
    ok("index", "remove", "world.mp4", "--index", ix)
    assert "no match for clip.mp4" in ok("search", str(clip), "--index", ix)
    assert json.loads(ok("search", str(clip), "--index", ix, "--json")) == []


def test_framegrams_extracted_elsewhere_are_indexed_without_their_videos(media, clip, tmp_path):
    """A folder of .framegram.npz files made on another machine: the videos are not here, and not needed."""
    elsewhere = tmp_path / "elsewhere"
    for name in ("world.mp4", "box.mp4"):
        (elsewhere / name).parent.mkdir(exist_ok=True)
        (elsewhere / name).write_bytes(media[name].read_bytes())
    extracted = tmp_path / "framegrams"
    ok("extract", str(elsewhere), "-o", str(extracted), "--quiet")
    for video in elsewhere.iterdir():
        video.unlink()  # only the framegrams travel
    (extracted / "broken.framegram.npz").write_bytes(b"not a framegram")
    ix = str(tmp_path / "ix")
    assert ok("index", "add", str(extracted / "box.framegram.npz"), "--index", ix, "--quiet").strip() == f"1 added, 0 already indexed, 0 failed -> {ix}"
    proc = run_cli("index", "add", str(extracted), "--index", ix, "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == f"1 added, 1 already indexed, 1 failed -> {ix}"
    assert "broken.framegram.npz" in proc.stderr
    # resumable: a second run adds nothing again
    assert run_cli("index", "add", str(extracted), "--index", ix, "--quiet").stdout.strip() == f"0 added, 2 already indexed, 1 failed -> {ix}"
    matches = json.loads(ok("search", str(clip), "--index", ix, "--json"))
    assert matches[0]["ref_id"] == "world" and abs(matches[0]["ref_start"] - START) <= 1.0

    ok("index", "remove", "box", "--index", ix)
    text = ok("index", "info", "--index", ix)
    assert "s of removed videos await `framegram index compact`" in text and "segments  2 (2 flat)" in text
    out = ok("index", "compact", "--index", ix, "--quiet")
    assert re.match(rf"{re.escape(ix)}: 2 segments -> 1, \d+ s of removed videos dropped, \d+ s indexed", out), out
    assert "segments  1 (1 flat)" in ok("index", "info", "--index", ix)
    assert "sound (1 videos" in ok("index", "check", "--index", ix)
    assert json.loads(ok("search", str(clip), "--index", ix, "--json"))[0]["ref_id"] == "world"


def test_index_add_lists_a_bad_file_and_keeps_the_others(media, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    ix = str(tmp_path / "ix")
    proc = run_cli("index", "add", str(bad), str(media["box.mp4"]), "--index", ix, "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == f"1 added, 0 already indexed, 1 failed -> {ix}"
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and str(bad) in failed[0]
    assert [v["ref_id"] for v in json.loads(ok("index", "info", "--index", ix, "--json"))["videos_list"]] == ["box.mp4"]


def test_index_add_goes_past_bad_items_with_ids_that_stay_unique(media, tmp_path):
    clips = tmp_path / "clips"
    for sub, name in (("a", "box.mp4"), ("b", "tree.avi")):  # two different videos, one file name
        (clips / sub).mkdir(parents=True)
        (clips / sub / "x.mp4").write_bytes(media[name].read_bytes())
    slow = tmp_path / "slow"
    ok("extract", str(media["world.mp4"]), "-o", str(slow), "--fps", "2", "--quiet")
    other_rate = next(slow.glob("*.framegram.npz"))
    ix = str(tmp_path / "ix")
    # a framegram of another rate comes first: the videos after it are still added
    proc = run_cli("index", "add", str(other_rate), str(clips), "--index", ix, "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() == f"2 added, 0 already indexed, 1 failed -> {ix}"
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith(f"failed: {other_rate}: ") and "2 fps" in failed[0]
    listed = json.loads(ok("index", "info", "--index", ix, "--json"))["videos_list"]
    assert [v["ref_id"] for v in listed] == ["a/x.mp4", "b/x.mp4"]  # the path inside the folder given

    # given directly, files are named by their file name: the second x.mp4 is refused, the rest go on
    ix2 = str(tmp_path / "ix2")
    proc = run_cli("index", "add", str(clips / "a" / "x.mp4"), str(clips / "b" / "x.mp4"), str(media["world.mp4"]),
                   "--index", ix2, "--quiet")
    assert proc.returncode == 1 and proc.stdout.strip() == f"2 added, 0 already indexed, 1 failed -> {ix2}"
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and str(clips / "b" / "x.mp4") in failed[0] and "another video named 'x.mp4'" in failed[0]
    listed = json.loads(ok("index", "info", "--index", ix2, "--json"))["videos_list"]
    assert [v["ref_id"] for v in listed] == ["x.mp4", "world.mp4"]


@pytest.mark.parametrize("case", ["search-no-index", "info-no-index", "remove-unknown", "search-not-a-video", "search-top-0"])
def test_user_errors_are_one_line(case, index, clip, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n")
    missing = tmp_path / "no-index-here"
    args, named = {
        "search-no-index": (["search", str(clip), "--index", str(missing)], str(missing)),
        "info-no-index": (["index", "info", "--index", str(missing)], str(missing)),
        "remove-unknown": (["index", "remove", "nope.mp4", "--index", str(index)], "nope.mp4"),
        "search-not-a-video": (["search", str(text), "--index", str(index)], str(text)),
        "search-top-0": (["search", str(clip), "--index", str(index), "--top", "0"], "--top"),
    }[case]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("framegram: error: ") and named in proc.stderr
    assert not missing.exists()  # a failed search does not create an index
    if case == "remove-unknown":  # nothing was removed
        assert len(json.loads(ok("index", "info", "--index", str(index), "--json"))["videos_list"]) == 3
