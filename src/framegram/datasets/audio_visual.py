"""A generated audio-visual set whose sound follows what is seen, with stretches where it cannot.

Each clip (`SECONDS` s, `FPS` fps, `SIZE` x `SIZE` pixels, silent H.264 video + 16 kHz mono WAV): a
disc of real texture (the actions benchmark's, `framegram.datasets.actions.draw_disc`) drifts and
grows or shrinks over a still background; disc and background are cut from frames of one real video
(one of the actions benchmark's 8 sources: a scene). Its sound is a harmonic tone (4 harmonics at
amplitudes 1, 1/2, 1/3, 1/4, phase-continuous) whose
- pitch is the note of that scene (`NOTES`, two octaves from A3): where we are sets what it sounds like;
- loudness follows the disc's size: LEVEL_DB[0] for the smallest disc up to LEVEL_DB[1] for the
  largest, linearly in dB.
Pooled image features tell a scene and a disc's size well. Earlier versions had pitch follow the
disc's size and loudness its height (size was decoded too coarsely to place harmonics), then pitch
follow the source of the disc's texture alone over another video's background (a small patch under
a foreign scene): every model stayed near the trivial predictor's log-spectral distance.
Ambiguous stretch: once per clip, for HIDDEN_SECONDS, the disc is not drawn (it has gone behind
the scene) and the tone holds a note and level drawn at random, independent of anything visible.
The video cannot tell what is heard then: a model of p(sound | video) should spread its samples there
and not elsewhere. `ambiguous` marks those frames.

A faint noise floor (NOISE_DB) keeps log spectra finite. Layout of a folder:
`clip-NNN.mp4`, `clip-NNN.wav`, `clips.npz` (per clip: `ambiguous` bool [frames], `f0` Hz and
`level_db` [frames], the generator's answer), `trainlist.txt` / `testlist.txt`, `settings.json`
(written first: a folder made with other settings is refused) and `manifest.json` (written last).
Every clip follows from (seed, index) alone and is written atomically, so a build resumes.
Test clips are cut from other frames of the footage than training clips.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from framegram.errors import InputError
from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.io.settings import claim_generated_folder
from framegram.paths import cache_dir
from framegram.progress import extraction_progress

VERSION = 3  #: bump when a clip's pixels or sound change for the same settings
FORMAT = "framegram-audio-visual-set"
SETTINGS, MANIFEST, ANSWERS = "settings.json", "manifest.json", "clips.npz"
SPLIT_FILES = {"train": "trainlist.txt", "test": "testlist.txt"}

SIZE = 96  #: pixels (the actions benchmark's frame size: its disc drawing is reused)
FPS = 25
SECONDS = 4.0
SAMPLE_RATE = 16000
#: Hz, the note of each footage source in `framegram.datasets.actions.FOOTAGE_SOURCES` order (A minor pentatonic)
NOTES = (220.0, 261.63, 329.63, 392.0, 440.0, 523.25, 659.26, 783.99)
LEVEL_DB = (-32.0, -8.0)  #: dB full scale of the tone, smallest disc to largest
NOISE_DB = -60.0  #: white noise floor, dB full scale
DIAMETER = (0.25, 0.6)  #: share of SIZE
HIDDEN_SECONDS = (0.8, 1.2)
HARMONICS = (1.0, 0.5, 1 / 3, 0.25)


def default_root() -> Path:
    return cache_dir() / "bench" / f"audio-visual-v{VERSION}"


def clip_name(index: int) -> str:
    return f"clip-{index:03d}"


def build_audio_visual(root: str | Path | None = None, n_train: int = 200, n_test: int = 40, seed: int = 0,
                       show_progress: bool = False) -> Path:
    """Render the set into `root` (None: `default_root()`) unless it is there; return the folder.
    Clips 0..n_train-1 are the training split, the next n_test the test split. Raises InputError for
    a folder made with other settings or holding something else."""
    root = Path(root) if root is not None else default_root()
    settings = {"format": FORMAT, "version": VERSION, "seed": seed, "n_train": n_train, "n_test": n_test,
                "size": SIZE, "fps": FPS, "seconds": SECONDS, "sample_rate": SAMPLE_RATE}
    claim_generated_folder(root, settings, "an audio-visual set", SETTINGS)
    if (root / MANIFEST).is_file():
        return root
    from framegram.datasets.actions import FOOTAGE_SOURCES, split_by_source

    footage = split_by_source()
    count = n_train + n_test
    todo = [i for i in range(count) if not (root / f"{clip_name(i)}.wav").is_file()]
    answers_path = root / ANSWERS
    with extraction_progress(show_progress) as bars:
        task = bars.add_task("audio-visual clips", total=len(todo))
        for i in todo:
            split = "train" if i < n_train else "test"  # test clips are cut from other footage frames
            clip = render_clip(np.random.default_rng([seed, i]), footage[split])
            write_silent_video(clip["frames"], root / f"{clip_name(i)}.mp4")
            write_wav(clip["audio"], root / f"{clip_name(i)}.wav")
            bars.advance(task)
    answers = {}
    for i in range(count):  # the answers are cheap to redraw: rendered again without writing media
        clip = render_clip(np.random.default_rng([seed, i]), footage["train" if i < n_train else "test"],
                           media=False)
        for key in ("ambiguous", "f0", "level_db"):
            answers[f"{clip_name(i)}/{key}"] = clip[key]
    with atomic_path(answers_path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **answers)
    for split, indices in (("train", range(n_train)), ("test", range(n_train, count))):
        atomic_write_bytes(root / SPLIT_FILES[split], "".join(f"{clip_name(i)}\n" for i in indices).encode())
    manifest = {**settings, "footage": FOOTAGE_SOURCES, "notes_hz": dict(zip(FOOTAGE_SOURCES, NOTES)), "level_db": LEVEL_DB,
                "description": "pitch is the note of the texture's source, loudness follows the disc's size; "
                               "while the disc is hidden the tone is random (ambiguous)"}
    atomic_write_bytes(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return root


def smooth_path(rng: np.random.Generator, n: int, low: float, high: float, components: int = 3) -> np.ndarray:
    """A slow random curve [n] within [low, high]: a few sinusoids of random phase, periods 2-8 s."""
    t = np.arange(n) / FPS
    curve = np.zeros(n)
    for _ in range(components):
        period = rng.uniform(2.0, 8.0)
        curve += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    curve = (curve - curve.min()) / max(np.ptp(curve), 1e-9)
    span = rng.uniform(0.6, 1.0) * (high - low)
    start = rng.uniform(low, high - span)
    return start + span * curve


def render_clip(rng: np.random.Generator, footage: dict[str, np.ndarray], media: bool = True) -> dict:
    """One clip: frames uint8 [T, S, S, 3], audio float32 [samples] in [-1, 1], ambiguous bool [T],
    f0 Hz and level_db float [T] (what is heard at each frame). media=False skips frames and audio."""
    from framegram.datasets.actions import draw_disc, random_frame, texture_patch

    n = int(round(SECONDS * FPS))
    source = int(rng.integers(len(footage)))
    background_image = random_frame(rng, footage, list(footage)[source])
    texture = texture_patch(rng, footage, source=list(footage)[source])
    width, height = background_image.size
    side = rng.uniform(0.55, 0.95) * min(width, height)
    corner = rng.uniform(0, [width - side, height - side])
    background = np.asarray(background_image.resize((SIZE, SIZE), Image.Resampling.BILINEAR,
                                                    box=(*corner, *(corner + side))))
    diameter = smooth_path(rng, n, *(np.array(DIAMETER) * SIZE))
    x = smooth_path(rng, n, 0.3 * SIZE, 0.7 * SIZE)
    y = smooth_path(rng, n, 0.3 * SIZE, 0.7 * SIZE)
    angle = np.cumsum(np.full(n, rng.uniform(-0.05, 0.05)))
    hidden = int(round(rng.uniform(*HIDDEN_SECONDS) * FPS))
    start = int(rng.integers(FPS // 2, n - hidden - FPS // 2))
    ambiguous = np.zeros(n, bool)
    ambiguous[start : start + hidden] = True
    size01 = (diameter / SIZE - DIAMETER[0]) / (DIAMETER[1] - DIAMETER[0])
    f0 = np.full(n, NOTES[source])
    level_db = LEVEL_DB[0] + (LEVEL_DB[1] - LEVEL_DB[0]) * size01
    f0[ambiguous] = NOTES[int(rng.integers(len(NOTES)))]
    level_db[ambiguous] = rng.uniform(*LEVEL_DB)
    noise_seed = int(rng.integers(2**31))
    out = {"ambiguous": ambiguous, "f0": f0.astype(np.float32), "level_db": level_db.astype(np.float32)}
    if not media:
        return out
    frames = np.stack([background if ambiguous[i] else draw_disc(background, texture, x[i], y[i], angle[i], diameter[i])
                       for i in range(n)])
    return {**out, "frames": frames, "audio": synthesize(f0, level_db, np.random.default_rng(noise_seed))}


def synthesize(f0: np.ndarray, level_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The tone of per-frame f0 (Hz) and level (dB full scale), frames at FPS, as float32 samples.

    Pitch and level are interpolated between frame centres; the phase is the running integral of
    the frequency (no clicks at frame changes); harmonics above Nyquist are left out."""
    samples = int(round(len(f0) / FPS * SAMPLE_RATE))
    t = np.arange(samples) / SAMPLE_RATE
    centres = (np.arange(len(f0)) + 0.5) / FPS
    freq = np.interp(t, centres, f0)
    amplitude = 10 ** (np.interp(t, centres, level_db) / 20)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    tone = sum(a * np.sin(k * phase) * (k * freq < SAMPLE_RATE / 2) for k, a in enumerate(HARMONICS, start=1))
    tone = tone / sum(HARMONICS)
    noise = rng.standard_normal(samples) * 10 ** (NOISE_DB / 20)
    return (amplitude * tone + noise).astype(np.float32)


def write_wav(audio: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE) -> None:
    """float samples in [-1, 1] -> 16-bit mono WAV, written atomically."""
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2")
    with atomic_path(path, suffix=".wav") as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(float32 samples in [-1, 1], sample rate) of a 16-bit mono WAV."""
    with wave.open(str(path), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise InputError(path, "not a 16-bit mono WAV")
        rate = src.getframerate()
        pcm = np.frombuffer(src.readframes(src.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32767, rate


def write_silent_video(frames: np.ndarray, path: Path) -> None:
    """uint8 [T, H, W, 3] -> H.264 MP4 at FPS (the FFmpeg binary, reproducible bytes), atomically."""
    from framegram.datasets.actions import encode_video

    encode_video(frames, path, FPS)
