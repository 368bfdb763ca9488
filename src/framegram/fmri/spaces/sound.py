"""The "sound" space: loudness and a coarse log-mel spectrogram of the film's soundtrack, which
auditory cortex follows and no picture feature sees.

The first audio stream is decoded with PyAV, mixed down to mono and resampled to 16 kHz
(`av.AudioResampler`), then described every 50 ms (hop 800 samples) over 64-ms windows
(1024 samples) that start at the hop:

    loudness   RMS of the window in dB re full scale, floored at -80 dB
    mel00..31  32-band mel power spectrum (librosa, Hann window, 0-8 kHz) in dB re 1, floored at -80 dB
    centroid, bandwidth, rolloff   the spectrum's shape (librosa's spectral descriptors; rolloff at
               85 % of the power) in octaves (log2 Hz): a linear model cannot form these ratios from
               the mel bands (a ridge on loudness + mel predicted a soundtrack's spectral centroid
               at r 0.50 on held-out minutes)
    flatness   spectral flatness (log10: tonal music low, noise and fricatives high)
    onset      onset strength (librosa, from the mel spectrogram: syllables, notes, hits)

→ values float32 [T, 38] at 20 rows/s, T = ceil(audio samples / 800) (the last windows are
zero-padded); times = window starts in seconds from the video stream's start (the audio stream's
own start is taken into account). A file without an audio stream raises `NoAudioError`.
Cost for 390 s of Big Buck Bunny (AAC 44.1 kHz stereo) on 2 cores: 3.6 s (measured alone; 2.3 s
without the spectral shape).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from framegram.errors import CorruptVideoError
from framegram.io.decode import probe_video
from framegram.progress import extraction_progress
from framegram.fmri.spaces.base import TimedFeatures
from framegram.fmri.spaces.errors import NoAudioError

NAME = "sound"
VERSION = 2
RATE = 16_000  #: Hz; speech and most of what a film's sound carries lie below 8 kHz
HOP = 800  #: samples: 50 ms
WINDOW = 1024  #: samples: 64 ms, a power of two for the FFT
N_MELS = 32
FLOOR_DB = -80.0
PARAMS = {"rate": RATE, "hop": HOP, "window": WINDOW, "n_mels": N_MELS, "floor_db": FLOOR_DB, "mix": "mono"}
SHAPE = ("centroid", "bandwidth", "rolloff", "flatness", "onset")
DESCRIPTION = (f"loudness (RMS dB) + {N_MELS}-band log-mel + spectral shape (centroid, bandwidth, rolloff, flatness, "
               f"onset strength) of the soundtrack, mono {RATE // 1000} kHz: [T, {1 + N_MELS + len(SHAPE)}] at "
               f"{RATE / HOP:g} rows/s (50-ms hop); ~4 s for 390 s of film audio on 2 cores")


def columns() -> tuple[str, ...]:
    return ("loudness", *(f"mel{i:02d}" for i in range(N_MELS)), *SHAPE)


def compute(film: Path, show_progress: bool = False) -> TimedFeatures:
    info = probe_video(film)  # the decoder's errors for a missing file or a non-video come first
    if not info.has_audio:
        raise NoAudioError(film, "has no audio stream; the sound space needs the film's soundtrack")
    with extraction_progress(show_progress) as bars:
        task = bars.add_task(f"{film.name}: {NAME} (decoding audio)", total=None)
        samples, start = decode_audio(film)
        bars.update(task, completed=1, total=1)
    values = sound_features(samples)
    times = start + np.arange(len(values)) * (HOP / RATE)
    return TimedFeatures(NAME, values, times, columns())


def decode_audio(film: Path) -> tuple[np.ndarray, float]:
    """The first audio stream as mono float32 samples at RATE, and the time of the first sample in
    seconds from the video stream's start."""
    with av.open(str(film)) as container:
        video = container.streams.video[0] if container.streams.video else None
        video_start = float(video.start_time * video.time_base) if video and video.start_time is not None else 0.0
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks, first = [], None
        last = 0.0
        try:
            for frame in container.decode(stream):
                if first is None and frame.time is not None:
                    first = frame.time
                last = frame.time if frame.time is not None else last
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]  # flush
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(film, f"decoding the audio failed near {last:.1f} s ({exc})") from exc
    if not chunks:
        raise NoAudioError(film, "its audio stream decodes to no samples")
    return np.concatenate(chunks).astype(np.float32), (first or 0.0) - video_start


def sound_features(samples: np.ndarray) -> np.ndarray:
    """Mono float samples at RATE → float32 [ceil(n / HOP), 38]: loudness dB, the mel bands in dB,
    then the spectral shape (SHAPE)."""
    import librosa

    n_rows = max(1, -(-len(samples) // HOP))
    # zeros after the end: every row gets a whole window, the last ones partly silent
    y = np.pad(samples.astype(np.float32), (0, n_rows * HOP + WINDOW - len(samples)))
    rms = librosa.feature.rms(y=y, frame_length=WINDOW, hop_length=HOP, center=False)[0, :n_rows]
    loudness = 20.0 * np.log10(np.maximum(rms, 10.0 ** (FLOOR_DB / 20.0)))
    mel = librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=WINDOW, hop_length=HOP, center=False,
                                         n_mels=N_MELS, power=2.0)[:, :n_rows]
    mel_db = librosa.power_to_db(mel, ref=1.0, amin=10.0 ** (FLOOR_DB / 10.0), top_db=None)
    power = np.abs(librosa.stft(y, n_fft=WINDOW, hop_length=HOP, center=False))[:, :n_rows] ** 2
    octaves = [np.log2(np.maximum(f(S=power, sr=RATE, n_fft=WINDOW, hop_length=HOP)[0], 20.0))
               for f in (librosa.feature.spectral_centroid, librosa.feature.spectral_bandwidth)]
    rolloff = librosa.feature.spectral_rolloff(S=power, sr=RATE, n_fft=WINDOW, hop_length=HOP, roll_percent=0.85)[0]
    flatness = np.log10(np.maximum(librosa.feature.spectral_flatness(S=power)[0], 1e-6))
    onset = librosa.onset.onset_strength(S=mel_db, sr=RATE, hop_length=HOP)[:n_rows]
    shape = np.column_stack([*octaves, np.log2(np.maximum(rolloff, 20.0)), flatness, onset])
    return np.concatenate([loudness[:, None], mel_db.T, shape], axis=1).astype(np.float32)
