"""Predictions of a trained signal model written as files people open: WAV and spectrogram pictures
for sound, 4-D NIfTI for fMRI.

    predict_audio(run, "clip.mp4", "out/", samples=4)   # out/mean.wav, out/sample-1.wav ..., out/spectrograms.png
    predict_fmri(run, "ds/", "01", "film.mp4", "out/")   # out/sub-01_pred_bold.nii.gz (the spaces the model was trained on)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from framegram.errors import InputError
from framegram.io.atomic import atomic_write_bytes
from framegram.plotting import save_figure
from framegram.vae.data import TimeGridMismatchError
from framegram.vae.train import SignalRun


class WrongTargetError(InputError):
    """A checkpoint of another target (audio vs fMRI) than the prediction asks for."""


def _expect(run: SignalRun, kind: str) -> None:
    if run.kind != kind:
        raise WrongTargetError(run.folder, f"holds a model of {run.kind} targets, not {kind}")


def predict_audio(run: SignalRun, video: str | Path, out: str | Path, samples: int = 4, seed: int = 0) -> dict[str, Path]:
    """Sound for a silent video: the mean prediction and `samples` draws as log-mel spectrograms
    (`spectrograms.npz`, dB [T, bands]), Griffin-Lim waveforms (`mean.wav`, `sample-K.wav`) and a
    picture of them (`spectrograms.png`). Returns the paths by name."""
    from framegram.io.decode import probe_video
    from framegram.datasets.audio_visual import write_wav
    from framegram.vae.audio import HOP, SAMPLE_RATE, clip_features, mel_to_wave

    _expect(run, "audio")
    video, out = Path(video), Path(out)
    frames = int(round(probe_video(video).duration * SAMPLE_RATE / HOP))
    features = run.features(clip_features(video, frames))
    draws = run.sample(features, None, max(samples, 16), seed)
    spectra = {"mean": run.targets.inverse(draws.mean(0))}
    spectra.update({f"sample-{k + 1}": run.targets.inverse(d) for k, d in enumerate(draws[:samples])})
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, db in spectra.items():
        paths[name] = out / f"{name}.wav"
        write_wav(mel_to_wave(db, seed), paths[name])
    buffer = _npz_bytes({k: v.astype(np.float32) for k, v in spectra.items()})
    atomic_write_bytes(out / "spectrograms.npz", buffer)
    paths["spectrograms"] = plot_spectrograms(spectra, run.step_seconds, out / "spectrograms.png")
    return paths


def plot_spectrograms(spectra: dict[str, np.ndarray], step_seconds: float, path: Path) -> Path:
    """One panel per log-mel spectrogram (dB [T, bands]), time in seconds, shared colour scale."""
    import matplotlib.pyplot as plt

    low = min(float(np.percentile(s, 5)) for s in spectra.values())
    high = max(float(s.max()) for s in spectra.values())
    fig, axes = plt.subplots(len(spectra), 1, figsize=(8, 1.7 * len(spectra) + 0.4), dpi=100, squeeze=False, sharex=True)
    for ax, (name, db) in zip(axes[:, 0], spectra.items()):
        image = ax.imshow(db.T, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma",
                          extent=(0, len(db) * step_seconds, 0, db.shape[1]))
        ax.set_ylabel("mel band")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[:, 0], label="dB", fraction=0.03)
    return save_figure(fig, path)


def predict_fmri(run: SignalRun, bids_root: str | Path, subject: str, stimulus: str | Path, out: str | Path,
                 samples: int = 0, seed: int = 0, spaces: Sequence[str] | None = None) -> dict[str, Path]:
    """Predicted BOLD of `subject` over its whole run (cleaned like the BOLD the model was trained
    on, z-scored voxel units, inside the model's mask): `sub-XX_pred_bold.nii.gz` (the mean of 16
    draws) and `sub-XX_sample-K_bold.nii.gz` for `samples` draws. The run gives the clock (TR,
    volumes) and its confounds, and must have the model's TR. The inputs are rebuilt from the film
    as the model's were (`fmri_inputs`); spaces: None (the model's) or the spaces it must have
    been trained on (SpacesMismatchError otherwise)."""
    from framegram.fmri.nifti import unmask, write_nifti
    from framegram.vae.fmri import to_voxels

    bold_run, cleaner, inputs = fmri_inputs(run, bids_root, subject, stimulus, spaces)
    participant = subject if run.config.conditional else None
    draws = run.sample(inputs, participant, max(samples, 16), seed)
    mask = run.arrays["mask"].astype(bool)
    affine = run.arrays["affine"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def write(name: str, prediction: np.ndarray) -> Path:
        voxels = to_voxels(prediction, run.targets, cleaner)
        return write_nifti(out / f"sub-{subject}_{name}_bold.nii.gz", unmask(voxels, mask), affine, bold_run.tr, np.int16)

    paths = {"mean": write("pred", draws.mean(0))}
    for k in range(samples):
        paths[f"sample-{k + 1}"] = write(f"sample-{k + 1}", draws[k])
    return paths


def fmri_inputs(run: SignalRun, bids_root: str | Path, subject: str, stimulus: str | Path,
                spaces: Sequence[str] | None = None):
    """The model's inputs for `subject`'s run, rebuilt from the film as at training: (the BoldRun,
    its nuisance cleaner fitted on its training volumes, inputs float32 [n_volumes, F]). The feature
    spaces, HRF delays and preparation settings are the checkpoint's; `spaces` (None: the
    checkpoint's) must be those (SpacesMismatchError). Raises WrongTargetError for an audio model,
    UnknownParticipantError for a participant a conditional model was not trained on (before any
    file is read), TimeGridMismatchError for a run of another TR."""
    from framegram.fmri.bids import find_runs
    from framegram.fmri.config import BrainConfig
    from framegram.vae.fmri import fitted_cleaner
    from framegram.vae.fmri_stimulus import HRF_DELAYS_S, SpacesMismatchError, film_components, model_inputs, trained_spaces

    _expect(run, "fmri")
    trained = trained_spaces(run.info)
    if spaces is not None and tuple(spaces) != trained:
        raise SpacesMismatchError(run.folder, f"holds a model trained on the feature spaces {','.join(trained)}, not "
                                              f"{','.join(spaces)}: predict with its spaces (or name none)")
    run.participant_tensor(subject if run.config.conditional else None)  # an unknown participant fails first
    (bold_run,) = find_runs(bids_root, [subject])
    if abs(bold_run.tr - run.step_seconds) > 1e-6:
        raise TimeGridMismatchError(bold_run.bold, f"TR {bold_run.tr:g} s, but the model was trained at TR {run.step_seconds:g} s")
    config = BrainConfig(**run.info["brain_config"])
    cleaner, _ = fitted_cleaner(bold_run, config)
    components = film_components(stimulus, trained, bold_run, config.offset_s, run.features, run.folder)
    delays = run.info.get("hrf_delays_s", HRF_DELAYS_S)
    return bold_run, cleaner, model_inputs(components, bold_run.tr, cleaner, delays)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
