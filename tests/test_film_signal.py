"""The generated fMRI set's film signal: the drivers the generator measures on its own film (pixels,
sound, annotation), and the null signal on which held-out r must centre on zero."""

import subprocess

import numpy as np
import pytest

from framegram.datasets import film_drivers as fd
from framegram.io.ffmpeg import ffmpeg_executable


def test_pixel_properties_of_gray_then_red_frames(tmp_path):
    path = tmp_path / "gray_red.mp4"
    subprocess.run([
        ffmpeg_executable("test"), "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "color=c=0x808080:s=64x48:r=25:d=1", "-f", "lavfi", "-i", "color=c=0xFF0000:s=64x48:r=25:d=1",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-crf", "0",
        "-pix_fmt", "yuv444p", str(path),
    ], check=True)
    times, props = fd._pixel_properties(path)
    assert len(times) == 50
    gray, red = props[5:20], props[30:45]
    luminance, saturation, red_blue, motion = range(4)
    assert np.allclose(gray[:, luminance], 128 / 255, atol=0.02) and np.allclose(gray[:, saturation], 0, atol=0.02)
    assert np.allclose(red[:, luminance], 0.299, atol=0.03) and np.allclose(red[:, saturation], 1, atol=0.05)
    assert np.allclose(red[:, red_blue], 1, atol=0.05) and np.allclose(gray[:, red_blue], 0, atol=0.02)
    assert props[1:, motion].argmax() + 1 == 25  # the one frame that changes
    assert props[26:, motion].max() < 0.01 < props[25, motion]


def test_sound_properties_of_a_tone():
    sr = fd.SAMPLE_RATE
    t = np.arange(sr * 2) / sr
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    tone[sr:] *= 2  # twice the amplitude: four times the power
    times, props = fd._sound_properties(tone, sr)
    power, centroid = props[:, 0], props[:, 1]
    half = len(times) // 2
    assert np.allclose(centroid, 1000, rtol=0.05)
    assert 10 * np.log10(power[half + 2] / power[2]) == pytest.approx(6.02, abs=0.1)


def test_presence_is_the_share_of_each_volume_an_object_shows():
    shown = [fd.Appearance("people", 1.0, 2.25, 0, 0), fd.Appearance("character", 0.0, 0.5, 0, 0)]
    np.testing.assert_allclose(fd._presence(shown, "people", 0.5, 6), [0, 0, 1, 1, 0.5, 0])
    np.testing.assert_allclose(fd._presence(shown, "character", 0.5, 6), [1, 0, 0, 0, 0, 0])


def test_appearances_stay_inside_the_frame_and_the_film():
    shown = fd.plan_appearances(seed=3)
    assert {a.label for a in shown} == set(fd.OBJECTS)
    for label in fd.OBJECTS:
        mine = sorted((a for a in shown if a.label == label), key=lambda a: a.onset)
        assert len(mine) >= 10  # a 390-s film holds a dozen or more 3-10 s appearances with 6-18 s gaps
        for a, b in zip(mine, mine[1:]):
            assert b.onset - a.offset >= 6.0 - 1e-6
        for a in mine:
            assert 3.0 - 1e-6 <= a.offset - a.onset <= 10.0 + 1e-6 and a.offset <= fd.FILM_SECONDS
            assert 0 <= a.x <= fd.WIDTH - fd.PIP_SIZE[0] and 0 <= a.y <= fd.HEIGHT - fd.PIP_SIZE[1]
    assert fd.plan_appearances(seed=3) == shown


def test_synthetic_speech_has_syllables_and_pauses():
    rng = np.random.default_rng(0)
    speech = fd.synth_speech(10.0, rng)
    assert speech.shape == (10 * fd.SAMPLE_RATE,) and np.abs(speech).max() == pytest.approx(0.5)
    frames = speech[: len(speech) // 1102 * 1102].reshape(-1, 1102)  # 50-ms windows
    rms = np.sqrt((frames**2).mean(1))
    assert 0.05 < (rms < 0.01 * rms.max()).mean() < 0.5  # pauses between utterances
    spectrum = np.abs(np.fft.rfft(speech)) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1 / fd.SAMPLE_RATE)
    assert spectrum[(freqs > 80) & (freqs < 4000)].sum() > 0.9 * spectrum.sum()  # voiced speech band
    np.testing.assert_array_equal(speech, fd.synth_speech(10.0, np.random.default_rng(0)))


@pytest.fixture(scope="module")
def null_dataset(tmp_path_factory):
    from framegram.datasets.bids import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("null") / "bids", subjects=2, small=True, signal="null",
                            show_progress=False)


def test_the_null_signal_has_its_regions_and_random_drivers(null_dataset):
    import nibabel as nib

    truth = null_dataset
    assert truth.signal_model == "null" and set(truth.regions) == set(fd.REGION_DRIVERS)
    masks = np.stack([nib.load(p).get_fdata() > 0 for p in truth.regions.values()])
    assert masks.sum(0).max() == 1  # the regions do not overlap
    responsive = nib.load(truth.responsive_mask).get_fdata() > 0
    np.testing.assert_array_equal(masks.any(0), responsive)
    assert (truth.root / "stimuli" / "annotations" / "people.tsv").is_file()
    with np.load(truth.weights) as w:
        weights = w["weights"][0]  # [K, V_r]: each voxel follows one random driver
        assert ((weights != 0).sum(0) == 1).all()
        assert w["components"].shape[1] > 100


def test_held_out_r_centres_on_zero_without_signal(null_dataset, tmp_path):
    """No bias in the split, the cleaning of each stretch or the delay search: where the BOLD follows
    random time courses, the framegram model's mean held-out r in each region is near zero (the
    spread of one participant's region mean is ~0.03 on this grid: bench/brain.py --null)."""
    import nibabel as nib

    from framegram.brain.pipeline import fit_dataset
    from framegram.fmri.config import BrainConfig

    truth = null_dataset
    fits = []
    fit_dataset(truth.root, truth.stimulus, tmp_path / "fit", config=BrainConfig(controls=False, published=False),
                on_fit=fits.append)
    for name, path in truth.regions.items():
        region = nib.load(path).get_fdata() > 0
        means = [float(fit.r[region[fit.mask]].mean()) for fit in fits]
        assert abs(np.mean(means)) < 0.1, (name, means)
