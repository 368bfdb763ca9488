"""The signal models' real inputs: the generated audio-visual clips (their sound follows the disc as
the generator says), their spectrograms and features on one clock, the fMRI set built from the
generated BIDS dataset (a conditional model finds the responsive region), and the `vae` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from framegram.cli import app
from framegram.errors import InputError
from framegram.datasets import audio_visual as av
from framegram.datasets.actions import split_by_source
from framegram.vae import VAEConfig, load_signal_run, train_signal_model
from framegram.vae.audio import HOP, build_audio_set, clip_features, log_spectral_distance, mel_db, mel_to_wave, stoi
from framegram.vae.fmri import build_fmri_set, voxel_r

SMALL = {"epochs": 12, "steps_per_epoch": 15, "batch_size": 8, "window": 64, "burn_in": 16, "hidden": 48, "latent_dim": 4, "lr": 3e-3}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return av.build_audio_visual(tmp_path_factory.mktemp("av"), n_train=6, n_test=2)


@pytest.fixture(scope="module")
def audio_set(clips):
    return build_audio_set(clips, n_features=8)


def frame_pitch_and_level(audio: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: the strongest frequency (Hz, parabolic peak of a Hann-windowed spectrum) and
    the RMS level (dB full scale) of the samples shown with it."""
    per = av.SAMPLE_RATE // av.FPS
    pitch, level = [], []
    for k in range(frames):
        chunk = audio[k * per : (k + 1) * per]
        spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)), n=8 * len(chunk)))
        i = int(np.argmax(spectrum[1:-1])) + 1
        a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-12)
        pitch.append((i + 0.5 * (a - c) / (a - 2 * b + c)) * av.SAMPLE_RATE / (8 * len(chunk)))
        level.append(20 * np.log10(np.sqrt(np.mean(chunk**2)) + 1e-12))
    return np.array(pitch), np.array(level)


def test_generated_sound_follows_the_disc_and_the_hidden_stretch_shows_nothing(clips):
    answers = np.load(clips / av.ANSWERS)
    audio, rate = av.read_wav(clips / "clip-000.wav")
    assert rate == av.SAMPLE_RATE and len(audio) == av.SECONDS * av.SAMPLE_RATE
    f0, level_db, ambiguous = (answers[f"clip-000/{k}"] for k in ("f0", "level_db", "ambiguous"))
    pitch, level = frame_pitch_and_level(audio, len(f0))
    steady = np.abs(np.diff(f0, prepend=f0[0])) < 0.01 * f0  # frames without a jump in pitch
    assert np.median(np.abs(pitch[steady] / f0[steady] - 1)) < 0.02
    # the tone's RMS sits a fixed number of dB under its peak level (harmonic mix): compare shapes
    assert np.corrcoef(level[~ambiguous], level_db[~ambiguous])[0, 1] > 0.95
    assert 0.8 * av.FPS <= ambiguous.sum() <= 1.2 * av.FPS + 1
    clip = av.render_clip(np.random.default_rng([0, 0]), split_by_source()["train"])
    frames = clip["frames"].astype(int)
    hidden, shown = frames[ambiguous], frames[~ambiguous]
    assert np.abs(hidden - hidden[0]).max() == 0  # the disc is gone: every hidden frame is the background
    assert np.abs(shown - hidden[0]).max(axis=(1, 2, 3)).min() > 50  # and it is there in every other frame


def test_audio_set_puts_features_and_spectrograms_on_one_clock(audio_set, clips):
    data, held = audio_set
    assert data.kind == "audio" and not data.participants
    assert len(data.sequences) == 8 and held.names == ["clip-006", "clip-007"]
    for seq in data.sequences:
        assert seq.features.shape == (100, 8) and seq.target.shape == (100, 64)
        assert seq.train.all() == (seq.name not in held.names) and not (seq.train.any() and seq.name in held.names)
    seq = data.sequences[-1]
    assert np.allclose(data.targets.inverse(seq.target), held.mel[seq.name], atol=1e-3)
    assert data.step_seconds == pytest.approx(1 / av.FPS)


def test_griffin_lim_keeps_the_pitch_track_of_the_spectrogram_it_was_given(audio_set):
    _, held = audio_set
    a, b = held.names
    wave = mel_to_wave(held.mel[a])
    rebuilt = mel_db(wave, len(held.mel[a]))
    assert np.mean(rebuilt.argmax(1) == held.mel[a].argmax(1)) > 0.9  # the loudest band of each frame
    assert log_spectral_distance(rebuilt, held.mel[a]) < log_spectral_distance(held.mel[b], held.mel[a])
    assert stoi(held.audio[a], wave) > stoi(held.audio[a], mel_to_wave(held.mel[b]))


def test_a_video_shorter_than_its_sound_is_refused(clips):
    with pytest.raises(InputError, match=r"clip-000\.mp4: 100 video frames for 200 spectrogram frames"):
        clip_features(clips / "clip-000.mp4", 200)


def test_cli_trains_an_audio_model_and_writes_sound_for_a_video(clips, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["vae", "train", "--target", "audio", "--data", str(clips), "--out", str(run),
                                      "--epochs", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "vae on audio: epoch 2" in result.output
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["vae", "predict", "--checkpoint", str(run), "--video", str(clips / "clip-007.mp4"),
                                      "--out", str(out), "--samples", "2"])
    assert result.exit_code == 0, result.output
    for name in ("mean.wav", "sample-1.wav", "sample-2.wav", "spectrograms.png", "spectrograms.npz"):
        assert (out / name).is_file(), name
    audio, rate = av.read_wav(out / "sample-1.wav")
    assert rate == av.SAMPLE_RATE and len(audio) == 100 * HOP
    spectra = np.load(out / "spectrograms.npz")
    assert not np.allclose(spectra["sample-1"], spectra["sample-2"])  # two draws, two sounds


@pytest.fixture(scope="module")
def fmri(synth):
    return build_fmri_set(synth, synth / "stimuli" / "film.mp4", n_components=32)


def test_fmri_set_shapes_and_split(fmri):
    data, held = fmri
    assert data.participants == ("01", "02") and data.step_seconds == pytest.approx(0.608)
    for seq in data.sequences:
        assert seq.features.shape == (641, 80) and seq.target.shape == (641, 32)  # 20 components x 4 HRF delays
        assert seq.train.sum() == 449 and seq.train[:449].all()  # the first 70 %, as the brain pipeline splits
    assert held.bold["01"].shape == (192, int(held.mask.sum())) and held.mask.shape == (20, 20, 12)
    # training volumes are z-scored per voxel
    assert np.abs(data.targets.inverse(data.sequences[0].target[:449]).mean(0)).max() < 1e-3


def test_conditional_model_finds_the_responsive_region(fmri, synth, tmp_path):
    data, held = fmri
    run = train_signal_model(VAEConfig(**SMALL), data, tmp_path / "run")
    responsive = nib.load(synth / "derivatives" / "framegram-synth" / "desc-responsive_mask.nii.gz").get_fdata() > 0
    region = responsive[held.mask]
    for seq in data.sequences:
        subject = seq.name.removeprefix("sub-")
        r = voxel_r(run.predict(seq.features, subject, n=8), data, held, subject)
        assert r[region].mean() > r[~region].mean() + 0.2


def test_cli_predicts_a_participants_bold_and_refuses_an_unknown_one(fmri, synth, tmp_path):
    data, _ = fmri
    train_signal_model(VAEConfig(**{**SMALL, "epochs": 1}), data, tmp_path / "run")
    film = synth / "stimuli" / "film.mp4"
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["vae", "predict", "--checkpoint", str(tmp_path / "run"), "--bids", str(synth),
                                      "--subject", "02", "--stimulus", str(film), "--out", str(out), "--samples", "1"])
    assert result.exit_code == 0, result.output
    image = nib.load(out / "sub-02_pred_bold.nii.gz")
    assert image.shape == (20, 20, 12, 641) and image.header.get_zooms()[3] == pytest.approx(0.608)
    assert (out / "sub-02_sample-1_bold.nii.gz").is_file()
    assert load_signal_run(tmp_path / "run").participants == ("01", "02")
    exe = Path(sys.executable).parent / "framegram"
    proc = subprocess.run([str(exe), "vae", "predict", "--checkpoint", str(tmp_path / "run"), "--bids", str(synth),
                           "--subject", "07", "--stimulus", str(film), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "participant '07' was not in training; known: 01, 02" in proc.stderr


def test_fmri_set_refuses_an_empty_epi_mask_and_takes_a_given_one(synth, tmp_path_factory, tmp_path):
    from test_brain_toydata import BOLD_01, detrended_copy, synth_brain_mask, write_toy_bids

    from framegram.fmri import BrainConfig, MaskError

    root = detrended_copy(synth, tmp_path_factory)  # skull-stripped and detrended: nilearn's EPI mask is empty
    film = synth / "stimuli" / "film.mp4"
    with pytest.raises(MaskError, match=r"EPI mask of this run holds 0 voxels.*--mask FILE") as info:
        build_fmri_set(root, film, n_components=8)
    assert info.value.path == root / BOLD_01
    brain = synth_brain_mask(synth)
    data, held = build_fmri_set(root, film, n_components=8, config=BrainConfig(mask=str(brain)))
    inside = nib.load(brain).get_fdata() > 0
    assert np.array_equal(held.mask, inside) and data.info["mask"] == str(brain)
    assert data.sequences[0].target.shape == (641, 8)
    # a participant on another grid than the shared mask is refused, naming its run
    toy = tmp_path / "toy"
    write_toy_bids(toy, subjects=("01",), n_volumes=40, shape=(6, 6, 4))
    write_toy_bids(tmp_path / "other", subjects=("02",), n_volumes=40, shape=(5, 6, 4))
    (tmp_path / "other" / "sub-02").rename(toy / "sub-02")
    everywhere = tmp_path / "ones.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 6, 4), np.uint8), np.diag([3.0, 3.0, 3.0, 1.0])), everywhere)
    with pytest.raises(MaskError, match=r"sub-02_ses-mri3t_task-film_run-1_bold.nii.gz: shape \(5, 6, 4\), but the shared mask "
                                        r".* has \(6, 6, 4\): every participant's run must be on one grid"):
        build_fmri_set(toy, film, config=BrainConfig(mask=str(everywhere)))
