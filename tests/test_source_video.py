"""A framegram finds its source video from any working folder: absolute paths, then the content hash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from framegram.cache import framegram_for
from framegram.errors import VideoNotFoundError
from framegram.extract import extract
from framegram.framegram import Framegram, find_source_video


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framegram", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def clip(tmp_path, videos) -> Path:
    """A real video copied into its own folder."""
    path = tmp_path / "made" / "clip.mp4"
    path.parent.mkdir()
    shutil.copy(videos["carphone_pristine.mp4"], path)
    return path


def test_extract_and_the_cache_store_the_absolute_path(clip, encoder, monkeypatch, tmp_path):
    monkeypatch.chdir(clip.parent)
    monkeypatch.setenv("FRAMEGRAM_CACHE", str(tmp_path / "cache"))
    framegram, _ = extract(Path("clip.mp4"), encoder)
    assert framegram.meta.source.path == str(clip)
    first, cached = framegram_for("clip.mp4", encoder)
    again, cached_again = framegram_for("./clip.mp4", encoder)
    assert (cached, cached_again) == (False, True)
    assert first.meta.source.path == again.meta.source.path == str(clip)


def test_keyframes_of_a_framegram_made_with_a_relative_path_from_another_folder(clip, tmp_path):
    made = cli("extract", "clip.mp4", "-o", "grams", "--quiet", cwd=clip.parent)
    assert made.returncode == 0, made.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("keyframes", str(clip.parent / "grams" / "clip.framegram.npz"), "-o", "kf", "--quiet", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((elsewhere / "kf" / "keyframes.json").read_text())["source"] == str(clip)


def test_a_moved_video_is_found_by_its_content(clip, encoder, tmp_path):
    grams = tmp_path / "grams"
    path = extract(clip, encoder)[0].save(grams / "clip.framegram.npz")
    framegram = Framegram.load(path)
    assert find_source_video(framegram, path) == clip

    decoy = grams / "decoy.mp4"  # the same size, other bytes: not taken
    decoy.write_bytes(b"\0" * clip.stat().st_size)
    renamed = grams / "renamed.mp4"  # moved beside its framegram under another name
    clip.rename(renamed)
    assert find_source_video(framegram, path) == renamed
    renamed.rename(clip.parent / "other-name.mp4")  # renamed in its own folder
    assert find_source_video(framegram, path) == clip.parent / "other-name.mp4"

    os.unlink(clip.parent / "other-name.mp4")
    with pytest.raises(VideoNotFoundError) as info:
        find_source_video(framegram, path)
    message = str(info.value)
    assert str(clip) in message and str(grams / "clip.mp4") in message and framegram.meta.source.sha256[:16] in message
    proc = cli("keyframes", str(path), "-o", "kf", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(clip) in proc.stderr and "not found" in proc.stderr
