"""Bad input: one clear line at the CLI, a typed exception in the API, and the batch goes on."""

import json
import shutil
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


def assert_one_line_error(proc: subprocess.CompletedProcess, path: Path, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("framegram: error: ") and str(path) in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def good_framegram(tmp_path_factory, bunny_framegram) -> Path:
    """A real framegram file: the first two seconds of Big Buck Bunny."""
    return bunny_framegram.slice_time(0.0, 2.0).save(tmp_path_factory.mktemp("good") / "bunny.framegram.npz")


def write_npz(path: Path, features: np.ndarray, times: np.ndarray, meta: bytes) -> Path:
    np.savez(path, features=features, times=times, meta=np.frombuffer(meta, np.uint8))
    return path


@pytest.fixture(scope="module")
def bad_framegrams(tmp_path_factory, good_framegram) -> dict[str, Path]:
    """Framegram files that open as npz but whose content breaks the contract."""
    folder = tmp_path_factory.mktemp("bad-framegrams")
    with np.load(good_framegram) as npz:
        features, times, meta = npz["features"], npz["times"], json.loads(npz["meta"].tobytes())
    return {
        "meta_list": write_npz(folder / "list.framegram.npz", features, times, json.dumps([meta]).encode()),
        "meta_number": write_npz(folder / "number.framegram.npz", features, times, b"5"),
        "no_rows": write_npz(folder / "empty.framegram.npz", features[:0], times[:0], json.dumps(meta).encode()),
        "fps_zero": write_npz(folder / "fps0.framegram.npz", features, times, json.dumps({**meta, "fps": 0}).encode()),
    }


@pytest.mark.parametrize("damage", ["meta_list", "meta_number", "no_rows", "fps_zero"])
@pytest.mark.parametrize("command", [["info"], ["show", "-o", "x.png"], ["shots", "--quiet"]])
def test_cli_bad_framegram_files_are_one_line(command, damage, bad_framegrams, tmp_path):
    path = bad_framegrams[damage]
    proc = run_cli(command[0], str(path), *command[1:], cwd=tmp_path)
    assert_one_line_error(proc, path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_index_add_lists_bad_framegram_files_and_adds_the_good_one(bad_framegrams, good_framegram, tmp_path):
    index = tmp_path / "ix"
    bad = [bad_framegrams[d] for d in ("meta_list", "no_rows", "fps_zero")]
    proc = run_cli("index", "add", *map(str, bad), str(good_framegram), "--index", str(index), "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() == f"1 added, 0 already indexed, 3 failed -> {index}"
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert [line.split(": ")[1] for line in failed] == [str(p) for p in bad]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, good_framegram) -> Path:
    index = tmp_path_factory.mktemp("index") / "ix"
    assert run_cli("index", "add", str(good_framegram), "--index", str(index), "--quiet").returncode == 0
    return index


@pytest.mark.parametrize("command", [["index", "info"], ["index", "check"], ["search", "clip.mp4"]])
def test_cli_a_garbled_fingerprint_file_is_one_line(command, small_index, tmp_path):
    index = tmp_path / "ix"
    shutil.copytree(small_index, index)
    basis = index / "basis.npz"
    data = bytearray(basis.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2000] = bytes(2000)  # the zip's directory stays: a member is garbled
    basis.write_bytes(bytes(data))
    proc = run_cli(*command, "--index", str(index), cwd=tmp_path)
    assert_one_line_error(proc, basis)


def test_cli_index_check_names_a_damaged_segment_file(small_index, tmp_path):
    index = tmp_path / "ix"
    shutil.copytree(small_index, index)
    assert run_cli("index", "check", "--index", str(index)).returncode == 0
    vectors = sorted((index / "segments").glob("*.codes"))[-1]
    data = bytearray(vectors.read_bytes())
    data[-100:-50] = bytes(range(50))
    vectors.write_bytes(bytes(data))
    proc = run_cli("index", "check", "--index", str(index))
    assert_one_line_error(proc, vectors, "checksum", "damaged")


@pytest.mark.parametrize("target", ["format", "folder", "under_a_file"])
def test_cli_show_refuses_an_unwritable_picture_in_one_line(target, good_framegram, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("in the way")
    out = {"format": tmp_path / "x.xyz", "folder": tmp_path / "folder", "under_a_file": tmp_path / "file.txt" / "x.png"}[target]
    proc = run_cli("show", str(good_framegram), "-o", str(out))
    assert_one_line_error(proc, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder"]  # no picture, no temporary file
    assert not list((tmp_path / "folder").iterdir())


@pytest.mark.parametrize("command, value", [("brain", '"fast"'), ("vae", "[0.608]"), ("brain", "-0.608")])
def test_cli_bad_repetition_time_is_one_line_naming_the_sidecar(command, value, tmp_path):
    from test_brain_toydata import write_toy_bids

    root = tmp_path / "bids"
    write_toy_bids(root, subjects=("01",), n_volumes=40)
    sidecar = root / "sub-01" / "ses-mri3t" / "func" / "sub-01_ses-mri3t_task-film_run-1_bold.json"
    sidecar.write_text('{"TaskName": "film", "RepetitionTime": %s}' % value)
    args = ["--bids", str(root), "--stimulus", str(tmp_path / "film.mp4"), "--out", str(tmp_path / "out"), "--quiet"]
    if command == "brain":
        proc = run_cli("brain", "fit", *args)
    else:
        proc = run_cli("vae", "train", "--target", "fmri", *args)
    assert_one_line_error(proc, sidecar, f"RepetitionTime is {value}")


@pytest.mark.parametrize("name, damage", [("sub-01/scores.npz", "missing"), ("sub-01/r.nii.gz", "truncated")])
def test_cli_brain_report_of_a_damaged_fit_folder_is_one_line(name, damage, synth, tmp_path_factory, tmp_path):
    import shutil

    from test_brain_toydata import damage_fit_file, quick_fit

    out = tmp_path / "fit"
    shutil.copytree(quick_fit(synth, tmp_path_factory), out)
    path = damage_fit_file(out, name, damage)
    proc = run_cli("brain", "report", str(out))
    assert_one_line_error(proc, path, "framegram brain fit", f"--out {out}")


@pytest.mark.parametrize("command", ["brain", "vae"])
def test_cli_an_empty_epi_mask_is_one_line_naming_the_run_and_the_mask_option(command, synth, tmp_path_factory, tmp_path):
    from test_brain_toydata import BOLD_01, detrended_copy

    root = detrended_copy(synth, tmp_path_factory)  # skull-stripped and detrended: nilearn's EPI mask is empty
    args = ["--bids", str(root), "--stimulus", str(synth / "stimuli" / "film.mp4"), "--out", str(tmp_path / "out"), "--quiet"]
    if command == "brain":
        proc = run_cli("brain", "fit", "--no-controls", *args)
    else:
        proc = run_cli("vae", "train", "--target", "fmri", *args)
    assert_one_line_error(proc, root / BOLD_01, "EPI mask", "holds 0 voxels", "--mask FILE")


@pytest.mark.parametrize("command, mask, problem", [
    ("brain", "other grid", "shape (10, 20, 12), but the BOLD"), ("brain", "empty", "holds no voxel"),
    ("brain", "text", "not a readable NIfTI image"), ("vae", "other grid", "shape (10, 20, 12), but the BOLD"),
])
def test_cli_a_mask_file_no_fit_can_use_is_one_line_naming_it(command, mask, problem, synth, tmp_path_factory, tmp_path):
    import nibabel as nib
    from test_brain_toydata import detrended_copy, synth_brain_mask

    root = detrended_copy(synth, tmp_path_factory)
    brain = nib.load(synth_brain_mask(synth))
    path = tmp_path / "mask.nii.gz"
    if mask == "other grid":
        nib.save(nib.Nifti1Image(np.ones((10, 20, 12), np.uint8), brain.affine), path)
    elif mask == "empty":
        nib.save(nib.Nifti1Image(np.zeros(brain.shape, np.uint8), brain.affine), path)
    else:
        path.write_text("a brain mask, honest\n")
    args = ["--bids", str(root), "--stimulus", str(synth / "stimuli" / "film.mp4"), "--out", str(tmp_path / "out"),
            "--mask", str(path), "--quiet"]
    proc = run_cli("brain", "fit", *args) if command == "brain" else run_cli("vae", "train", "--target", "fmri", *args)
    assert_one_line_error(proc, path, problem)
