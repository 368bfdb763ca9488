"""Sound as the target of a signal model: the paper's own task, on the generated audio-visual set.

Targets are log-mel spectrograms (librosa: 16 kHz, `N_FFT`-point windows every `HOP` samples = one
frame per video frame at 25 fps, `N_MELS` bands, in dB), z-scored per band with training statistics;
features are each clip's framegram at the video's frame rate, reduced by PCA fitted on the training
clips. Waveforms come back from predicted spectrograms by Griffin-Lim (librosa's `mel_to_audio`).

Metrics: the log-spectral distance (LSD, dB) between two log-mel spectrograms, the root mean square
over bands of their difference averaged over frames; STOI (pystoi) between a reference and a
reconstructed waveform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framegram.errors import InputError
from framegram.datasets.audio_visual import ANSWERS, SPLIT_FILES, read_wav
from framegram.vae.data import LinearMap, SignalSequence, SignalSet, fit_pca_map

SAMPLE_RATE = 16000
N_FFT = 2048  #: 128 ms windows: Griffin-Lim needs their large overlap (69 %); 1024 lost ~3 dB more LSD
HOP = 640  #: samples: 40 ms, one spectrogram frame per video frame at 25 fps
N_MELS = 64
F_MIN, F_MAX = 60.0, 8000.0
FLOOR = 1e-10  #: power added before the log (-100 dB)
GRIFFIN_LIM_ITERATIONS = 48


def mel_db(audio: np.ndarray, frames: int | None = None) -> np.ndarray:
    """Log-mel spectrogram of float samples at SAMPLE_RATE: float32 [T, N_MELS] in dB (power),
    frame k centred at k * HOP samples; cut to `frames` rows when given."""
    import librosa

    power = librosa.feature.melspectrogram(y=np.asarray(audio, np.float32), sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
                                           n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX, power=2.0)
    db = (10 * np.log10(power + FLOOR)).T.astype(np.float32)
    return db[:frames] if frames is not None else db


def mel_to_wave(db: np.ndarray, seed: int = 0) -> np.ndarray:
    """A waveform (float32) whose log-mel spectrogram approximates db [T, N_MELS] (Griffin-Lim)."""
    import librosa

    power = np.maximum(10 ** (np.asarray(db, np.float64).T / 10) - FLOOR, 0.0)
    magnitude = librosa.feature.inverse.mel_to_stft(power, sr=SAMPLE_RATE, n_fft=N_FFT, power=2.0, fmin=F_MIN, fmax=F_MAX)
    # in two steps: mel_to_audio does not pass a seed to Griffin-Lim's random initial phases
    audio = librosa.griffinlim(magnitude, n_iter=GRIFFIN_LIM_ITERATIONS, hop_length=HOP, n_fft=N_FFT,
                               length=(len(db) - 1) * HOP, random_state=np.random.default_rng(seed))
    audio = np.pad(audio, (0, HOP))  # (T - 1) * HOP samples give T centred frames; back to T * HOP
    return np.clip(audio, -1, 1).astype(np.float32)


def log_spectral_distance(pred_db: np.ndarray, true_db: np.ndarray) -> float:
    """Mean over frames of the root mean square over bands of pred_db - true_db (both [T, bands], dB)."""
    return float(np.sqrt(((np.asarray(pred_db) - np.asarray(true_db)) ** 2).mean(axis=1)).mean())


def stoi(reference: np.ndarray, degraded: np.ndarray) -> float:
    """Short-time objective intelligibility (pystoi) of `degraded` against `reference`, same length."""
    from pystoi import stoi as pystoi_stoi

    n = min(len(reference), len(degraded))
    return float(pystoi_stoi(reference[:n], degraded[:n], SAMPLE_RATE, extended=False))


@dataclass
class AudioClips:
    """The test clips for scoring: names, true waveforms, true log-mel dB [T, N_MELS] and the
    generator's ambiguous-frame masks bool [T], by clip name."""

    names: list[str] = field(default_factory=list)
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    mel: dict[str, np.ndarray] = field(default_factory=dict)
    ambiguous: dict[str, np.ndarray] = field(default_factory=dict)


def clip_features(video: Path, frames: int) -> np.ndarray:
    """The clip's framegram at its own frame rate, one row per video frame: float32 [frames, D]."""
    from framegram.cache import framegram_for
    from framegram.io.decode import probe_video

    rate = probe_video(video).frame_rate
    rows = framegram_for(video, fps=rate)[0].features
    if len(rows) < frames - 1:
        raise InputError(video, f"{len(rows)} video frames for {frames} spectrogram frames: not the same clip length")
    return np.concatenate([rows[:frames], np.repeat(rows[-1:], max(0, frames - len(rows)), axis=0)]).astype(np.float32)


def build_audio_set(root: str | Path, n_features: int = 32, show_progress: bool = False) -> tuple[SignalSet, AudioClips]:
    """The signal set of a generated audio-visual folder (`framegram.datasets.audio_visual`): training
    clips train, test clips are held out whole. Returns it and the test clips' truth."""
    from framegram.progress import extraction_progress

    root = Path(root)
    splits = {}
    for split, name in SPLIT_FILES.items():
        path = root / name
        if not path.is_file():
            raise InputError(root, f"has no {name}: not an audio-visual set (make one with `framegram vae synth-audio`)")
        splits[split] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    answers = np.load(root / ANSWERS)
    raw, held = [], AudioClips()
    with extraction_progress(show_progress) as bars:
        task = bars.add_task("framegrams and spectrograms of the clips", total=sum(map(len, splits.values())))
        for split, names in splits.items():
            for name in names:
                audio, rate = read_wav(root / f"{name}.wav")
                if rate != SAMPLE_RATE:
                    raise InputError(root / f"{name}.wav", f"sampled at {rate} Hz, expected {SAMPLE_RATE}")
                frames = int(round(len(audio) / HOP))
                target = mel_db(audio, frames)
                raw.append((name, split, clip_features(root / f"{name}.mp4", len(target)), target))
                if split == "test":
                    held.names.append(name)
                    held.audio[name], held.mel[name] = audio, target
                    held.ambiguous[name] = answers[f"{name}/ambiguous"][: len(target)]
                bars.advance(task)
    train_rows = [(f, t) for _, split, f, t in raw if split == "train"]
    feature_map = fit_pca_map(np.concatenate([f for f, _ in train_rows]), n_features)
    target_map = _band_zscore(np.concatenate([t for _, t in train_rows]))
    sequences = [SignalSequence(name, feature_map(f), target_map(t), np.full(len(t), split == "train"))
                 for name, split, f, t in raw]
    info = {"folder": str(root), "clips": {k: len(v) for k, v in splits.items()}, "n_features": feature_map.dims,
            "sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS}
    return SignalSet("audio", sequences, (), HOP / SAMPLE_RATE, feature_map, target_map, info), held


def _band_zscore(rows: np.ndarray) -> LinearMap:
    """Each mel band standardised over the training frames (no reduction)."""
    std = rows.std(0)
    return LinearMap(np.zeros(rows.shape[1], np.float32), np.eye(rows.shape[1], dtype=np.float32),
                     rows.mean(0), np.where(std > 1e-6, std, 1.0).astype(np.float32))
