"""The stimulus of the generated BIDS set's "film" signal, and the drivers its BOLD follows.

`framegram.datasets.bids` with `signal="film"` makes BOLD that answers to properties of the film
measured here, by code that shares nothing with the pipeline's feature spaces
(`framegram.fmri.spaces`): its own decoding (PyAV at the film's full 640x480 and 25 fps, against the
pipeline's 5-15 fps thumbnails), its own formulas (Rec.601 luma and HSV saturation per pixel, frame
differences instead of motion energy filters, loudness and spectral centroid of the waveform it made
instead of a mel spectrogram of the decoded AAC) and an annotation it writes itself, as ds003688's
135 annotation files record when characters and objects are on screen.

The film (`driver_film()`, rendered once into the cache): the first 390 s of Big Buck Bunny at
640x480, 25 fps, with

- real footage shown picture-in-picture at random places (a new place each appearance, so no fixed
  patch of the frame tells the object is there): "people" (OpenCV's vtest.avi, pedestrians) and
  "character" (OpenCV's Megamind.avi, an animated face), each 3-10 s at a time with 6-18 s between;
- a soundtrack in 13 alternating 30-s blocks, as ds003688's: speech blocks (synthetic speech made
  here: a glottal pulse train through vowel formants, syllables of 0.12-0.3 s in utterances of
  1-4 s) and music blocks (Big Buck Bunny's own soundtrack).

Drivers per TR (`FilmDrivers`), grouped by the region of the brain that answers to them:
    low-level   luminance, saturation, red_blue        (mean luma, mean HSV S, mean R - B per frame)
    motion      motion                                  (mean |luma(t) - luma(t-1)| per frame pair)
    sound       loudness, spectral_centroid             (dB of mean power, power-weighted mean frequency)
    semantic    people, character                       (share of the TR the annotation shows them)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path
from framegram.io.ffmpeg import ffmpeg_executable
from framegram.media import fetch_media
from framegram.paths import cache_dir

FILM_SECONDS = 390.0
WIDTH, HEIGHT, FPS = 640, 480, 25
DRIVER_FILM_VERSION = 1
SAMPLE_RATE = 22050
BLOCK_SECONDS = 30.0
PIP_SIZE = (256, 192)
OBJECTS = {"people": "vtest.avi", "character": "megamind.avi"}

#: region -> the drivers it answers to (the generator's answer for variance partitioning)
REGION_DRIVERS: dict[str, tuple[str, ...]] = {
    "low-level": ("luminance", "saturation", "red_blue"),
    "motion": ("motion",),
    "sound": ("loudness", "spectral_centroid"),
    "semantic": ("people", "character"),
}
DRIVER_NAMES: tuple[str, ...] = tuple(d for drivers in REGION_DRIVERS.values() for d in drivers)


@dataclass(frozen=True)
class Appearance:
    """One picture-in-picture appearance: `label` on screen from `onset` to `offset` (film s), its
    top-left corner at (x, y) pixels."""

    label: str
    onset: float
    offset: float
    x: int
    y: int


def plan_appearances(seed: int = 0) -> list[Appearance]:
    """Where and when each object shows: 3-10 s appearances separated by 6-18 s, random corners."""
    rng = np.random.default_rng((seed, 101))
    out = []
    for label in OBJECTS:
        t = float(rng.uniform(2.0, 12.0))
        while True:
            length = float(rng.uniform(3.0, 10.0))
            if t + length > FILM_SECONDS - 1.0:
                break
            x = int(rng.integers(0, WIDTH - PIP_SIZE[0] + 1))
            y = int(rng.integers(0, HEIGHT - PIP_SIZE[1] + 1))
            out.append(Appearance(label, round(t, 2), round(t + length, 2), x, y))
            t += length + float(rng.uniform(6.0, 18.0))
    return out


# ---------------------------------------------------------------------------------------------------------
# the soundtrack


_VOWELS = np.array([  # F1, F2, F3 (Hz) of /a/, /e/, /i/, /o/, /u/
    [730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240],
], dtype=float)


def synth_speech(seconds: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Speech-like sound: utterances of 1-4 s (syllables 0.12-0.3 s: a fricative burst, then a voiced
    vowel) separated by 0.2-0.9 s pauses. float32 [round(seconds * sr)], peak about 0.5."""
    from scipy.signal import lfilter

    n = int(round(seconds * sr))
    out = np.zeros(n)
    pos = int(rng.uniform(0.1, 0.5) * sr)
    while pos < n:
        utterance_end = min(n, pos + int(rng.uniform(1.0, 4.0) * sr))
        f0_start = rng.uniform(100, 210)
        level = rng.uniform(0.5, 1.0)
        while pos < utterance_end:
            length = int(rng.uniform(0.12, 0.3) * sr)
            seg = np.zeros(length)
            progress = (pos - utterance_end) / sr  # negative: the pitch falls over the utterance
            f0 = f0_start * (1 + 0.04 * progress) * rng.uniform(0.9, 1.1)
            phase = np.cumsum(np.full(length, f0 / sr))
            source = 2.0 * (phase % 1.0) - 1.0  # sawtooth: a glottal pulse train's harmonics
            for f, bw in zip(_VOWELS[rng.integers(len(_VOWELS))], (80.0, 100.0, 150.0)):
                r = np.exp(-np.pi * bw / sr)
                seg += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r], source)
            seg *= np.hanning(length)
            burst = min(length // 4, int(0.04 * sr))
            if rng.random() < 0.6:  # a fricative onset
                seg[:burst] += 0.3 * rng.standard_normal(burst) * np.hanning(burst)
            end = min(n, pos + length)
            out[pos:end] += level * seg[: end - pos]
            pos += length
        pos = utterance_end + int(rng.uniform(0.2, 0.9) * sr)
    peak = np.abs(out).max()
    return (0.5 * out / peak if peak > 0 else out).astype(np.float32)


def _decode_audio(path: Path, seconds: float, sr: int) -> np.ndarray:
    import av

    container = av.open(str(path))
    try:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
            if sum(len(c) for c in chunks) >= seconds * sr:
                break
    finally:
        container.close()
    audio = np.concatenate(chunks)[: int(round(seconds * sr))]
    return np.pad(audio, (0, int(round(seconds * sr)) - len(audio))).astype(np.float32)


def make_soundtrack(seed: int = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The film's sound: blocks alternate speech (even blocks) and Big Buck Bunny's music (odd),
    each speech block at the RMS of the music around it. float32 [390 s * sr]."""
    rng = np.random.default_rng((seed, 102))
    music = _decode_audio(fetch_media("bbb-full.mp4"), FILM_SECONDS, sr)
    out = music.copy()
    block = int(BLOCK_SECONDS * sr)
    music_rms = float(np.sqrt(np.mean(music**2)))
    for b in range(0, int(np.ceil(FILM_SECONDS / BLOCK_SECONDS)), 2):
        a, e = b * block, min(len(out), (b + 1) * block)
        speech = synth_speech((e - a) / sr, rng, sr)
        out[a:e] = speech * music_rms / max(float(np.sqrt(np.mean(speech**2))), 1e-9)
    return np.clip(out, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# the film


def _between(appearances: list[Appearance]) -> str:
    return "+".join(f"between(t,{a.onset:.2f},{a.offset:.2f})" for a in appearances)


def _position(appearances: list[Appearance], axis: str) -> str:
    expr = "0"
    for a in reversed(appearances):
        expr = f"if(between(t,{a.onset:.2f},{a.offset:.2f}),{getattr(a, axis)},{expr})"
    return expr


def driver_film(seed: int = 0) -> Path:
    """The film (H.264 CRF 23 + AAC), rendered once into the cache with its annotation beside it
    (`annotation_path`)."""
    target = cache_dir() / "synth" / f"bids-film-drivers-v{DRIVER_FILM_VERSION}-seed{seed}.mp4"
    if all(p.exists() for p in (target, annotation_path(target), sound_path(target))):
        return target
    import soundfile

    appearances = plan_appearances(seed)
    sound = make_soundtrack(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    w, h = PIP_SIZE
    graph = [f"[0:v]crop=ih*4/3:ih,scale={WIDTH}:{HEIGHT},setsar=1,fps={FPS}[v0]"]
    last = "v0"
    for i, label in enumerate(OBJECTS, start=1):
        mine = [a for a in appearances if a.label == label]
        graph.append(f"[{i}:v]scale={w}:{h},setsar=1,fps={FPS}[o{i}]")
        graph.append(
            f"[{last}][o{i}]overlay=x='{_position(mine, 'x')}':y='{_position(mine, 'y')}'"
            f":enable='{_between(mine)}':eval=frame[v{i}]"
        )
        last = f"v{i}"
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        wav = Path(scratch) / "sound.wav"  # 16-bit PCM for ffmpeg to encode as AAC
        soundfile.write(wav, sound, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        objects = []
        for name in OBJECTS.values():
            objects += ["-stream_loop", "-1", "-i", str(fetch_media(name))]
        cmd = [
            ffmpeg_executable("making the stimulus film"), "-loglevel", "error", "-y",
            "-i", str(fetch_media("bbb-full.mp4")), *objects, "-i", str(wav),
            "-filter_complex", ";".join(graph), "-map", f"[{last}]", "-map", f"{len(OBJECTS) + 1}:a",
            "-t", f"{FILM_SECONDS:.3f}", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", "-threads", "1",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4",
        ]
        # the film last: it marks the three files complete
        with atomic_path(sound_path(target), suffix=".npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, sound)
        with atomic_path(annotation_path(target), suffix=".json") as tmp:
            tmp.write_text(json.dumps([a.__dict__ for a in appearances], indent=1))
        with atomic_path(target, suffix=".mp4") as tmp:
            proc = subprocess.run([*cmd, str(tmp)], check=False, capture_output=True, text=True)
            if proc.returncode != 0:
                raise FramegramError(f"ffmpeg could not render the driver film: {proc.stderr.strip()[-400:]}")
    return target


def annotation_path(film: Path) -> Path:
    return film.with_suffix(".annotation.json")


def sound_path(film: Path) -> Path:
    """The soundtrack as made (float32 samples at SAMPLE_RATE), before AAC: the sound drivers' source."""
    return film.with_suffix(".sound.npy")


def read_appearances(film: Path) -> list[Appearance]:
    return [Appearance(**a) for a in json.loads(annotation_path(film).read_text())]


def annotation_tables(appearances: list[Appearance]) -> dict[str, str]:
    """One tsv per object (onset, offset in film seconds), as ds003688's annotation files."""
    out = {}
    for label in OBJECTS:
        rows = [f"{a.onset:.2f}\t{a.offset:.2f}" for a in appearances if a.label == label]
        out[label] = "onset\toffset\n" + "\n".join(rows) + "\n"
    return out


# ---------------------------------------------------------------------------------------------------------
# the drivers


def _pixel_properties(film: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every decoded frame at full size: times (s) [F] and [F, 4] luminance, saturation, red - blue,
    motion (0 for the first frame); pixel values in [0, 1]."""
    import av

    rows, times = [], []
    previous = None
    container = av.open(str(film))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        weights = np.array([0.299, 0.587, 0.114], np.float32) / 255.0  # Rec.601 luma of [0, 1] values
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")  # uint8 [H, W, 3]
            luma = rgb.reshape(-1, 3).astype(np.float32) @ weights
            top = rgb.max(axis=2).reshape(-1)
            spread = (top - rgb.min(axis=2).reshape(-1)).astype(np.float32)
            saturation = spread / np.maximum(top, 1).astype(np.float32)  # HSV S; 0 for black pixels
            motion = 0.0 if previous is None else float(np.abs(luma - previous).mean())
            red_blue = (rgb[..., 0].mean(dtype=np.float64) - rgb[..., 2].mean(dtype=np.float64)) / 255.0
            rows.append([luma.mean(dtype=np.float64), saturation.mean(dtype=np.float64), red_blue, motion])
            times.append(float(frame.time))
            previous = luma
    finally:
        container.close()
    return np.asarray(times), np.asarray(rows, dtype=np.float64)


def _sound_properties(sound: np.ndarray, sr: int, frame: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per non-overlapping frame of `frame` samples: times (s) [F] and [F, 2] power, centroid (Hz)."""
    n = len(sound) // frame
    frames = sound[: n * frame].reshape(n, frame).astype(np.float64) * np.hanning(frame)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / sr)
    power = spectrum.sum(axis=1)
    centroid = (spectrum * freqs).sum(axis=1) / np.maximum(power, 1e-12)
    return np.arange(n) * frame / sr, np.column_stack([power, centroid])


def _presence(appearances: list[Appearance], label: str, tr: float, n_volumes: int) -> np.ndarray:
    """Share of each TR during which `label` is on screen: [n_volumes] in [0, 1]."""
    start = np.arange(n_volumes) * tr
    out = np.zeros(n_volumes)
    for a in appearances:
        if a.label == label:
            out += np.clip(np.minimum(start + tr, a.offset) - np.maximum(start, a.onset), 0.0, None) / tr
    return out


def film_drivers(film: Path, tr: float, n_volumes: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The drivers of `driver_film`'s BOLD on the scan clock: float64 [n_volumes, len(DRIVER_NAMES)]
    (raw units: luma, saturation and R - B in [0, 1] units, motion in luma per frame, loudness in dB,
    centroid in Hz, presence as a share of the TR), cached beside the film."""
    from framegram.datasets.bids import tr_features  # the generator's own TR averaging (bids imports this module)

    cached = film.with_suffix(f".drivers-tr{tr:g}-n{n_volumes}.npz")
    if cached.exists():
        with np.load(cached) as z:
            return z["drivers"], tuple(str(n) for n in z["names"])
    times, pixels = _pixel_properties(film)
    video = tr_features(pixels, times, tr, n_volumes)
    video[0, 3] = video[1, 3]  # the first frame has no predecessor
    sound_times, sound = _sound_properties(np.load(sound_path(film)), SAMPLE_RATE)
    power = tr_features(sound, sound_times, tr, n_volumes)
    appearances = read_appearances(film)
    columns = {
        "luminance": video[:, 0], "saturation": video[:, 1], "red_blue": video[:, 2], "motion": video[:, 3],
        "loudness": 10 * np.log10(np.maximum(power[:, 0], 1e-10)), "spectral_centroid": power[:, 1],
        **{label: _presence(appearances, label, tr, n_volumes) for label in OBJECTS},
    }
    drivers = np.column_stack([columns[name] for name in DRIVER_NAMES])
    with atomic_path(cached, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, drivers=drivers, names=np.array(DRIVER_NAMES))
    return drivers, DRIVER_NAMES
