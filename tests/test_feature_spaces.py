"""Stimulus feature spaces (framegram.fmri.spaces): known answers on generated clips, real footage
for the network's blocks, the per-TR averaging, the cache and the errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import run_ffmpeg
from framegram.errors import NotAVideoError, VideoNotFoundError
from framegram.fmri.spaces import (
    SPACE_NAMES, NoAudioError, TimedFeatures, UnknownSpaceError, describe_spaces, space_features, spaces_per_tr,
)
from framegram.fmri.spaces import cache as spaces_cache
from framegram.fmri.spaces import framegram_space, image_stats, lite0_blocks, motion_energy, sound
from framegram.io.hashing import sha256_file


def write_video(path: Path, frames: np.ndarray, fps: int) -> Path:
    """uint8 RGB [T, H, W, 3] → an H.264 file, lossless 4:4:4 (colours come back within a level or two)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.thread_count = 1
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spaces-clips")


# --- image-stats ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def brightening(clips) -> Path:
    """2 s at 10 fps, 128x96: the left half goes from gray 64 to gray 192 at 1 s, the right half stays 128."""
    frames = np.full((20, 96, 128, 3), 128, np.uint8)
    frames[:10, :, :64] = 64
    frames[10:, :, :64] = 192
    return write_video(clips / "brightening.mp4", frames, 10)


def test_image_stats_follow_the_half_that_brightens(brightening):
    features = image_stats.compute(brightening)
    assert features.values.shape == (10, 85) and features.values.dtype == np.float32
    np.testing.assert_allclose(features.times, np.arange(10) / 5.0, atol=1e-6)
    col = {name: i for i, name in enumerate(features.columns)}
    before, after = features.values[:4], features.values[-4:]  # 0-0.8 s and 1.2-2 s
    for r in range(4):
        for c in (0, 1):  # the left cells rise from 64/255 to 192/255
            i = col[f"lum_r{r}c{c}"]
            np.testing.assert_allclose(before[:, i], 64 / 255, atol=0.02)
            np.testing.assert_allclose(after[:, i], 192 / 255, atol=0.02)
        for c in (2, 3):  # the right cells stay
            np.testing.assert_allclose(features.values[:, col[f"lum_r{r}c{c}"]], 128 / 255, atol=0.02)
    # the whole frame's mean lies between; uniform cells have no contrast, the whole frame has some
    np.testing.assert_allclose(after[:, col["lum_all"]], (192 + 128) / 2 / 255, atol=0.02)
    assert np.all(features.values[:, col["contrast_r0c0"]] < 0.02)
    np.testing.assert_allclose(features.values[:, col["contrast_all"]], 32 / 255, atol=0.01)  # half ±32 levels


@pytest.fixture(scope="module")
def turning_red(clips) -> Path:
    """2 s at 10 fps: gray 128, then pure red from 1 s; no audio stream."""
    frames = np.full((20, 96, 128, 3), 128, np.uint8)
    frames[10:] = (255, 0, 0)
    return write_video(clips / "turning-red.mp4", frames, 10)


def test_image_stats_see_gray_turn_red(turning_red):
    features = image_stats.compute(turning_red)
    col = {name: i for i, name in enumerate(features.columns)}
    gray, red = features.values[:4], features.values[-4:]
    assert np.all(gray[:, col["sat_all"]] < 0.03)  # a gray has no saturation
    assert np.all(np.abs(gray[:, col["rg_all"]]) < 0.02) and np.all(np.abs(gray[:, col["by_all"]]) < 0.02)
    assert np.all(red[:, col["sat_all"]] > 0.9) and np.all(red[:, col["rg_all"]] > 0.85)
    assert np.all(red[:, col["by_all"]] < -0.4)  # B - (R + G) / 2 of pure red is -0.5


# --- motion-energy --------------------------------------------------------------------------------

def grating(drift_px_per_frame: float, n: int = 30) -> np.ndarray:
    """A vertical sine grating, 4 cycles across 96x72 px, drifting right (or still)."""
    x = np.arange(96)[None, None, :] - drift_px_per_frame * np.arange(n)[:, None, None]
    image = 128 + 100 * np.sin(2 * np.pi * 4 * x / 96)
    return np.repeat(np.broadcast_to(image, (n, 72, 96))[..., None], 3, axis=-1).astype(np.uint8)


def test_motion_energy_is_higher_for_a_drifting_grating_than_a_still_one(clips):
    import moten

    moving = motion_energy.compute(write_video(clips / "drifting.mp4", grating(3.2), 15))  # 48 px/s: 2 Hz
    still = motion_energy.compute(write_video(clips / "still.mp4", grating(0.0), 15))
    pyramid = moten.get_default_pyramid(vhsize=(72, 96), fps=15)
    assert pyramid.nfilters == 1840 and moving.columns[-1] == "moten1839"
    assert moving.values.shape == still.values.shape == (30, 1840)  # 2 s x 15 fps, the 4:3 pyramid
    np.testing.assert_allclose(moving.times, np.arange(30) / 15, atol=1e-6)
    p = pyramid.parameters
    middle = slice(10, 20)  # away from the zero context at the film's ends

    def energy(features, **where):
        chosen = np.logical_and.reduce([p[key] == value for key, value in where.items()])
        return float(np.expm1(features.values[middle][:, chosen]).sum())

    # the filters tuned to the grating (4 cycles/image, 2 Hz), all directions together
    assert energy(moving, spatial_freq=4, temporal_freq=2) > 5 * energy(still, spatial_freq=4, temporal_freq=2)
    # motion has a direction: one of the two opposite horizontal filters takes it, a still grating
    # excites both alike
    a, b = energy(moving, spatial_freq=4, temporal_freq=2, direction=0), \
        energy(moving, spatial_freq=4, temporal_freq=2, direction=180)
    assert max(a, b) > 10 * min(a, b)
    a, b = energy(still, spatial_freq=4, temporal_freq=2, direction=0), \
        energy(still, spatial_freq=4, temporal_freq=2, direction=180)
    assert abs(a - b) < 0.05 * max(a, b)


def test_motion_energy_in_chunks_equals_the_whole_film_at_once(clips, monkeypatch):
    film = write_video(clips / "drifting-long.mp4", grating(3.2, n=45), 15)
    whole = motion_energy.compute(film)
    monkeypatch.setattr(motion_energy, "CHUNK_FRAMES", 12)  # 4 chunks, the last one short
    chunked = motion_energy.compute(film)
    np.testing.assert_array_equal(chunked.times, whole.times)
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-4)


# --- sound ----------------------------------------------------------------------------------------

TONE_BAND = 10  #: the mel band whose centre the test tone sits at


def tone_hz() -> float:
    import librosa

    centres = librosa.mel_frequencies(n_mels=sound.N_MELS + 2, fmin=0.0, fmax=sound.RATE / 2)[1:-1]
    return float(round(centres[TONE_BAND]))


@pytest.fixture(scope="module")
def burst(clips, ffmpeg) -> Path:
    """3 s: silence for 1 s, a tone at the centre of mel band 10 from 1 s to 2 s, silence; AAC in MP4
    with a plain video."""
    path = clips / "burst.mp4"
    run_ffmpeg(
        ffmpeg, "-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10:d=3",
        "-filter_complex",
        f"anullsrc=r=44100:cl=mono,atrim=duration=1[a];sine=f={tone_hz()}:r=44100:d=1[b];"
        "anullsrc=r=44100:cl=mono,atrim=duration=1[c];[a][b][c]concat=n=3:v=0:a=1[s]",
        "-map", "0:v", "-map", "[s]", "-c:v", "libx264", "-c:a", "aac", "-b:a", "128k", "-shortest", str(path),
    )
    return path


def test_sound_loudness_rises_at_the_burst_and_its_band_is_the_loudest(burst):
    features = sound.compute(burst)
    hop = sound.HOP / sound.RATE
    assert features.values.shape[1] == 38 and features.columns[:2] == ("loudness", "mel00")
    assert features.columns[-5:] == ("centroid", "bandwidth", "rolloff", "flatness", "onset")
    assert abs(len(features.times) - round(3.0 / hop)) <= 2
    np.testing.assert_allclose(np.diff(features.times), hop, atol=1e-9)
    loudness = features.values[:, 0]
    loud = features.times[loudness > -40]
    assert abs(loud[0] - 1.0) <= 2 * hop and abs(loud[-1] + hop - 2.0) <= 2 * hop  # onset and offset
    assert np.all(loudness[features.times < 0.8] < -60)  # silence before
    inside = (features.times > 1.1) & (features.times < 1.9)
    np.testing.assert_allclose(loudness[inside], 20 * np.log10(0.125 / np.sqrt(2)), atol=1.5)  # sine's amplitude 1/8
    mel = features.values[inside, 1 : 1 + sound.N_MELS].mean(axis=0)
    assert np.argmax(mel) == TONE_BAND
    assert mel[TONE_BAND] > mel[TONE_BAND + 3] + 20  # a tone is narrow: bands away from it are far quieter
    shape = dict(zip(features.columns[-5:], features.values[inside, -5:].mean(axis=0)))
    assert shape["centroid"] == pytest.approx(np.log2(tone_hz()), abs=0.1)  # in octaves: the tone's frequency
    assert shape["flatness"] < -3  # a pure tone is as far from flat as a spectrum gets


def test_sound_of_a_silent_film_names_the_file(turning_red):
    with pytest.raises(NoAudioError, match="turning-red.mp4"):
        sound.compute(turning_red)


# --- lite0-blocks on real footage -----------------------------------------------------------------

def test_lite0_blocks_see_scenes_not_encodings(videos, clips, ffmpeg):
    """Two re-encodings of the same real frames (CRF 18 at full size, CRF 28 at half size) give
    close block features; another real scene gives distant ones (measured: 0.96-0.98 vs 0.1-0.35)."""
    source = videos["bikes.mp4"]
    fine, coarse, other = clips / "bikes-crf18.mp4", clips / "bikes-crf28-half.mp4", clips / "bunny.mp4"
    run_ffmpeg(ffmpeg, "-i", str(source), "-t", "2", "-c:v", "libx264", "-crf", "18", "-an", str(fine))
    run_ffmpeg(ffmpeg, "-i", str(source), "-t", "2", "-vf", "scale=iw/2:-2", "-c:v", "libx264", "-crf", "28",
               "-an", str(coarse))
    run_ffmpeg(ffmpeg, "-i", str(videos["bigbuckbunny.mp4"]), "-t", "2", "-c:v", "libx264", "-crf", "18", "-an",
               str(other))
    a, b, c = (lite0_blocks.compute(p) for p in (fine, coarse, other))
    assert a.values.shape == (10, 928) and a.columns[0] == "b04c000_r0c0" and a.columns[-1] == "b10c111_r1c1"
    assert all(np.all(np.isfinite(f.values)) for f in (a, b, c))

    def cosine(x, y):  # frame by frame
        return np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))

    same, across = cosine(a.values, b.values), cosine(a.values, c.values)
    assert np.all(same > 0.9), same
    assert np.all(across < 0.5), across


# --- the registry, per-TR averaging, the cache ----------------------------------------------------

@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FRAMEGRAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_every_space_is_described():
    described = describe_spaces()
    assert tuple(described) == SPACE_NAMES
    assert all("2 cores" in line and "[T, " in line for line in described.values())


def test_spaces_per_tr_gives_one_row_per_volume(burst, cache):
    out = spaces_per_tr(burst, ["image-stats", "sound"], tr=0.5, n_volumes=5, offset_s=0.25)
    assert {name: a.shape for name, a in out.items()} == {"image-stats": (5, 85), "sound": (5, 38)}
    assert all(a.dtype == np.float32 for a in out.values())
    # volume k is film time [0.5k - 0.25, 0.5k + 0.25): the tone (1-2 s) fills volume 3, half of 2 and 4
    loudness = out["sound"][:, 0]
    assert np.all(loudness[[0, 1]] < -60) and abs(loudness[3] - 20 * np.log10(0.125 / np.sqrt(2))) < 1.5
    assert np.all((loudness[[2, 4]] > -65) & (loudness[[2, 4]] < -35))
    lum = out["image-stats"][:, image_stats.columns().index("lum_all")]
    np.testing.assert_allclose(lum, 128 / 255, atol=0.02)  # the clip's picture is gray throughout


def test_the_framegram_space_is_the_films_framegram_cached_once(burst, cache, encoder, monkeypatch):
    from framegram.cache import framegram_for

    # the session's encoder: a fresh cache folder would export the ONNX model again
    monkeypatch.setattr(framegram_space, "framegram_for",
                        lambda film, show_progress=False: framegram_for(film, encoder, show_progress=show_progress))
    features = space_features(burst, "framegram")
    framegram, cached = framegram_for(burst, encoder)
    assert cached  # framegram_for keeps it ...
    np.testing.assert_array_equal(features.values, framegram.features)
    np.testing.assert_array_equal(features.times, framegram.times)
    assert features.values.shape == (15, 1280) and features.columns[-1] == "fg1279"  # 3 s at 5 fps
    assert not (cache / "spaces").exists()  # ... and the spaces' cache does not keep a second copy
    out = spaces_per_tr(burst, ["framegram"], tr=1.0, n_volumes=3)
    np.testing.assert_allclose(out["framegram"][1], framegram.features[5:10].mean(axis=0), rtol=1e-5, atol=1e-5)


def test_an_unknown_space_is_refused_with_the_known_names(burst, cache):
    with pytest.raises(UnknownSpaceError, match="motion-energy") as info:
        spaces_per_tr(burst, ["image-stats", "colour-histogram"], tr=0.5, n_volumes=4)
    assert "colour-histogram" in str(info.value) and all(name in str(info.value) for name in SPACE_NAMES)
    assert not (cache / "spaces").exists()  # refused before computing anything
    with pytest.raises(UnknownSpaceError):
        space_features(burst, "Image-Stats")


def test_bad_films_get_the_decoders_errors(tmp_path, cache):
    with pytest.raises(VideoNotFoundError):
        space_features(tmp_path / "missing.mp4", "image-stats")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(NotAVideoError, match="notes.mp4"):
        space_features(text, "sound")


def test_the_cache_is_reused_and_a_damaged_file_recomputed(brightening, cache, monkeypatch):
    first = space_features(brightening, "image-stats")
    files = list((cache / "spaces").rglob("*.npz"))
    assert [f.name.split("-v")[0] for f in files] == ["image-stats"]
    assert files[0].parent.name == sha256_file(brightening)
    stamp = files[0].stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("computed again instead of reading the cache")

    monkeypatch.setattr(image_stats, "compute", refuse)
    again = space_features(brightening, "image-stats")
    assert files[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.values, first.values)
    assert again.columns == first.columns and again.space == "image-stats"

    monkeypatch.undo()
    monkeypatch.setenv("FRAMEGRAM_CACHE", str(cache))
    for damage in (b"garbage", None):
        if damage is None:  # a readable npz whose shapes break the contract (3 rows, 2 times, 1 name)
            np.savez(files[0], values=np.zeros((3, 85), np.float32), times=np.zeros(2), columns=np.array(["x"]))
        else:
            files[0].write_bytes(damage)
        assert spaces_cache.load_features(files[0], "image-stats") is None
        recomputed = space_features(brightening, "image-stats")
        np.testing.assert_array_equal(recomputed.values, first.values)
        assert spaces_cache.load_features(files[0], "image-stats") is not None  # overwritten with good features
    assert not [p for p in files[0].parent.iterdir() if p.name.endswith(".partial")]


def test_timed_features_refuse_a_broken_contract():
    with pytest.raises(ValueError, match="strictly increasing"):
        TimedFeatures("x", np.zeros((2, 1)), np.array([0.0, 0.0]), ("a",))
    with pytest.raises(ValueError, match="column names"):
        TimedFeatures("x", np.zeros((2, 1)), np.array([0.0, 1.0]), ("a", "b"))
