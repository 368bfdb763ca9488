"""Bad input: one clear line at the CLI, a typed exception in the API, and the batch goes on."""

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from framegram.errors import CorruptVideoError, NotAVideoError, NoVideoStreamError, VideoNotFoundError
from framegram.extract import extract

from conftest import run_ffmpeg


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        t = np.arange(44100 * 2) / 44100
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, videos, ffmpeg) -> dict[str, tuple[Path, type]]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.mp4"
    text.write_text("this is a text file, not a video\n")
    empty = folder / "empty.mp4"
    empty.touch()
    audio = folder / "audio_only.m4a"
    write_audio_only(audio)
    source = videos["bigbuckbunny.mp4"].read_bytes()  # index at the end: truncation loses it
    cut_index = folder / "truncated.mp4"
    cut_index.write_bytes(source[: len(source) * 2 // 5])
    faststart = folder / "faststart.mp4"  # index first: truncation cuts the frames instead
    run_ffmpeg(ffmpeg, "-i", str(videos["bigbuckbunny.mp4"]), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cut_frames = folder / "truncated_faststart.mp4"
    cut_frames.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    return {
        "missing": (folder / "no_such_video.mp4", VideoNotFoundError),
        "text": (text, NotAVideoError),
        "empty": (empty, NotAVideoError),
        "audio": (audio, NoVideoStreamError),
        "truncated": (cut_index, CorruptVideoError),
        "truncated_faststart": (cut_frames, CorruptVideoError),
    }


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "audio", "truncated", "truncated_faststart"])
def test_api_raises_a_typed_error_naming_the_file(kind, bad_files, encoder):
    path, error = bad_files[kind]
    with pytest.raises(error) as info:
        extract(path, encoder)
    assert info.value.path == path
    assert str(path) in str(info.value)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framegram", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_cli_batch_lists_each_bad_file_in_one_line_and_goes_on(bad_files, videos, tmp_path):
    bad = [str(path) for path, _ in bad_files.values()]
    good = str(videos["carphone_pristine.mp4"])
    proc = run_cli("extract", *bad[:3], good, *bad[3:], "-o", str(tmp_path), "--quiet")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    failed_lines = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == len(bad)
    for path in bad:
        assert sum(path in line for line in failed_lines) == 1
    assert (tmp_path / "carphone_pristine.framegram.npz").is_file()  # the good video after the bad ones
    assert not list(tmp_path.glob("notes*")) and not list(tmp_path.glob("empty*"))


@pytest.mark.parametrize("command", [["info"], ["show", "-o", "x.png"]])
def test_cli_single_file_errors_are_one_line(command, bad_files, tmp_path):
    path, _ = bad_files["text"]
    proc = run_cli(command[0], str(path), *command[1:], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("framegram: error: ") and str(path) in proc.stderr
