"""Batch extraction: resumable, atomic, and safe to kill half-way."""

import os
import shutil
import signal
import subprocess
import sys
import time

from framegram.batch import extract_folder, find_videos, output_paths
from framegram.framegram import FILE_SUFFIX, Framegram


def test_second_run_skips_finished_videos(videos, encoder, tmp_path):
    inputs = [videos["carphone_pristine.mp4"], videos["carphone_distorted.mp4"]]
    first = extract_folder(inputs, tmp_path, encoder=encoder, show_progress=False)
    assert set(first.done) == set(inputs) and first.ok
    stamps = {p: p.stat().st_mtime_ns for p in first.done.values()}
    second = extract_folder(inputs, tmp_path, encoder=encoder, show_progress=False)
    assert set(second.skipped) == set(inputs) and not second.done
    assert {p: p.stat().st_mtime_ns for p in second.skipped.values()} == stamps


def test_stale_or_damaged_output_is_redone(videos, encoder, tmp_path):
    video = videos["carphone_pristine.mp4"]
    target = extract_folder([video], tmp_path, encoder=encoder, show_progress=False).done[video]
    target.write_bytes(target.read_bytes()[:500])  # damaged: must not count as done
    assert video in extract_folder([video], tmp_path, encoder=encoder, show_progress=False).done
    assert video in extract_folder([video], tmp_path, encoder=encoder, fps=2.0, show_progress=False).done


def test_folders_are_searched_and_name_clashes_resolved(videos, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(videos["bikes.mp4"], tmp_path / sub / "clip.mp4")
    (tmp_path / "a" / "readme.txt").write_text("not a video")
    found = find_videos([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/clip.mp4", "b/clip.mp4"]
    names = {p.name for p in output_paths(found, tmp_path / "out").values()}
    assert len(names) == 2 and all(n.startswith("clip-") and n.endswith(FILE_SUFFIX) for n in names)


def test_killed_batch_resumes_without_redoing_finished_videos(videos, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(12):
        shutil.copy(videos["bikes.mp4"], inputs / f"bikes{i:02d}.mp4")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "framegram", "extract", str(inputs), "-o", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob(f"*{FILE_SUFFIX}")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = sorted(out.glob(f"*{FILE_SUFFIX}"))
    assert 1 <= len(finished) < 12, "the kill should land half-way through the batch"
    for path in finished:
        assert len(Framegram.load(path)) == 50  # every file that looks whole is whole
    stamps = {p: p.stat().st_mtime_ns for p in finished}

    rerun = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{12 - len(finished)} extracted, {len(finished)} already done, 0 failed" in rerun.stdout
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps
    assert len(list(out.glob(f"*{FILE_SUFFIX}"))) == 12
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_the_local_engine_never_imports_ray(videos, tmp_path):
    code = ("import sys; from framegram.cli import main; sys.argv = ['framegram', 'extract', sys.argv[1], '-o', sys.argv[2], '-q']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('ray' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, str(videos["carphone_pristine.mp4"]), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.stdout.strip().splitlines()[-1] == "False", run.stderr
    assert list(tmp_path.glob("*.framegram.npz"))
