"""Edited test videos with known shot boundaries, assembled from clean clips of real footage.

A video is a run of shots joined by hard cuts, dissolves or fades through black, with
distractors inside shots that are not boundaries: flash frames, fast pans, brightness ramps.
Everything is drawn from a seeded generator and rendered at 25 frames/s, 640x360, H.264 (CRF,
which is reproducible), and the ground truth is written beside the video as JSON.

Times in the ground truth are seconds on the output timeline: a cut at t means the first frame of
the new shot is shown at t; a gradual transition spans [start, end); a shot's stable part is
[start, end) without any transition frames.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.io.decode import sample_frames
from framegram.datasets.footage import CleanStretch

FPS = 25
HEIGHT, WIDTH = 360, 640
SLACK = 2.0  #: seconds of footage before and after a shot's stable part, for the transitions into and out of it
KINDS = ("cut", "dissolve", "fade")


@dataclass(frozen=True)
class Clip:
    """`duration` seconds of `source` from `start`: frames of one clean stretch."""

    source: str
    start: float
    duration: float


@dataclass(frozen=True)
class Distractor:
    """Something inside a shot that is not a boundary, `at` seconds after the shot's stable start."""

    kind: str  #: "flash" (near-white frames), "pan" (fast sideways camera move), "ramp" (brightness change)
    at: float
    duration: float


@dataclass(frozen=True)
class Transition:
    kind: str  #: "cut", "dissolve" or "fade" (out to black, optional black hold, in from black)
    duration: float  #: seconds; 0 for a cut


@dataclass
class EditPlan:
    shots: list[Clip]
    distractors: list[Distractor | None]  #: one per shot
    transitions: list[Transition]  #: len(shots) - 1


@dataclass
class GroundTruth:
    """What a detector should find in one edited video (seconds on its timeline)."""

    video: str
    fps: int
    duration: float
    boundaries: list[dict] = field(default_factory=list)  #: {kind, start, end}; a cut has start == end
    shots: list[dict] = field(default_factory=list)  #: {start, end} stable parts
    distractors: list[dict] = field(default_factory=list)  #: {kind, start, end}

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        return cls(**json.loads(Path(path).read_text()))


def plan_edit(
    rng: np.random.Generator,
    stretches: list[CleanStretch],
    n_shots: int,
    kinds: tuple[str, ...] = KINDS,
    shot_seconds: tuple[float, float] = (2.5, 6.0),
    distractor_rate: float = 0.5,
    distractor_kinds: tuple[str, ...] = ("flash", "flash", "pan", "ramp"),
) -> EditPlan:
    """Draw shots from `stretches` (no stretch twice in a row), transitions of `kinds`, distractors."""
    usable = [s for s in stretches if s.duration >= shot_seconds[0] + 2 * SLACK]
    weights = np.array([min(s.duration, 30.0) for s in usable])  # long stretches, but not one film only
    shots, previous = [], None
    for _ in range(n_shots):
        while True:
            stretch = usable[rng.choice(len(usable), p=weights / weights.sum())]
            if stretch is not previous:
                break
        previous = stretch
        length = float(min(rng.uniform(*shot_seconds), stretch.duration - 2 * SLACK))
        start = float(rng.uniform(stretch.start, stretch.end - length - 2 * SLACK))
        shots.append(Clip(str(stretch.source), round(start, 3), round(length + 2 * SLACK, 3)))
    transitions = []
    for _ in range(n_shots - 1):
        kind = str(rng.choice(kinds))
        duration = 0.0 if kind == "cut" else float(rng.uniform(0.5, 2.0))
        transitions.append(Transition(kind, round(duration, 2)))
    distractors: list[Distractor | None] = []
    for clip in shots:
        shown = clip.duration - 2 * SLACK  # the stable part, between the transitions
        kind = str(rng.choice(distractor_kinds))
        duration = {"flash": rng.integers(2, 5) / FPS, "pan": rng.uniform(1.0, 1.6), "ramp": rng.uniform(1.2, 2.0)}[kind]
        room = shown - duration - 1.6  # keep 0.8 s clear of both ends of the shot
        if rng.random() >= distractor_rate or room <= 0:
            distractors.append(None)
            continue
        at = 0.8 + float(rng.uniform(0, room))
        distractors.append(Distractor(kind, round(at, 2), round(float(duration), 3)))
    return EditPlan(shots, distractors, transitions)


def render_edit(plan: EditPlan, path: Path) -> GroundTruth:
    """Render `plan` to `path` (H.264 in MP4) and return its ground truth; written atomically."""
    path = Path(path)
    truth = GroundTruth(video=path.name, fps=FPS, duration=0.0)
    frames_out = 0
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "g": "50"}

        def emit(frames: np.ndarray) -> None:
            nonlocal frames_out
            for image in frames:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = frames_out, Fraction(1, FPS)
                for packet in stream.encode(frame):
                    container.mux(packet)
                frames_out += 1

        slack = round(SLACK * FPS)
        after_previous: np.ndarray | None = None  # footage that followed the previous shot's stable part
        for i, (clip, distractor) in enumerate(zip(plan.shots, plan.distractors)):
            frames = _clip_frames(clip)  # slack, stable part, slack
            stable = frames[slack : len(frames) - slack]
            if i > 0:
                _join(after_previous, frames[:slack], plan.transitions[i - 1], emit, truth, frames_out)
            if distractor is not None:
                _apply_distractor(stable, distractor, truth, frames_out)
            truth.shots.append({"start": frames_out / FPS, "end": (frames_out + len(stable)) / FPS})
            emit(stable)
            after_previous = frames[len(frames) - slack :]
        for packet in stream.encode():
            container.mux(packet)
    truth.duration = frames_out / FPS
    truth.save(path.with_suffix(".json"))
    return truth


def _join(after: np.ndarray, before: np.ndarray, transition: Transition, emit, truth: GroundTruth, now: int) -> None:
    """Write the transition from the footage `after` the previous shot to the footage `before` the next one."""
    if transition.kind == "cut":
        truth.boundaries.append({"kind": "cut", "start": now / FPS, "end": now / FPS})
        return
    total = round(transition.duration * FPS)
    if transition.kind == "dissolve":
        alpha = ((np.arange(total) + 1) / (total + 1))[:, None, None, None]
        emit((after[:total] * (1 - alpha) + before[len(before) - total :] * alpha).round().astype(np.uint8))
        truth.boundaries.append({"kind": "dissolve", "start": now / FPS, "end": (now + total) / FPS})
        return
    # fade: out to black, hold black a little, in from black
    n_out = total // 2
    n_in = total - n_out
    hold = int(np.clip(round(total * 0.15), 0, 6))
    down = (1 - (np.arange(n_out) + 1) / (n_out + 1))[:, None, None, None]
    up = ((np.arange(n_in) + 1) / (n_in + 1))[:, None, None, None]
    emit((after[:n_out] * down).round().astype(np.uint8))
    emit(np.zeros((hold, HEIGHT, WIDTH, 3), np.uint8))
    emit((before[len(before) - n_in :] * up).round().astype(np.uint8))
    truth.boundaries.append({"kind": "fade", "start": now / FPS, "end": (now + n_out + hold + n_in) / FPS})


def _apply_distractor(frames: np.ndarray, d: Distractor, truth: GroundTruth, shot_start: int) -> None:
    """Change a shot's stable `frames` in place; its first frame is shown at `shot_start` (frames)."""
    first = round(d.at * FPS)
    n = max(1, round(d.duration * FPS))
    span = slice(first, first + n)
    if d.kind == "flash":
        frames[span] = (frames[span] * 0.15 + 0.85 * 255).astype(np.uint8)
    elif d.kind == "ramp":
        # brightness falls to 45 % over the ramp and stays there for the rest of the shot
        gain = np.concatenate([np.linspace(1.0, 0.45, n), np.full(len(frames) - first - n, 0.45)])
        frames[first:] = (frames[first:] * gain[:, None, None, None]).astype(np.uint8)
    elif d.kind == "pan":
        _pan(frames, first, n)
    truth.distractors.append({"kind": d.kind, "start": (shot_start + first) / FPS, "end": (shot_start + first + n) / FPS})


def _pan(frames: np.ndarray, first: int, n: int) -> None:
    """A fast camera pan: a crop window of 55 % width sweeps left to right, then stays right."""
    crop_w = int(WIDTH * 0.55)
    crop_h = int(HEIGHT * 0.55)
    y0 = (HEIGHT - crop_h) // 2
    offsets = np.concatenate([np.zeros(first), np.linspace(0, WIDTH - crop_w, n), np.full(len(frames) - first - n, WIDTH - crop_w)])
    for k, x0 in enumerate(offsets.astype(int)):
        crop = frames[k, y0 : y0 + crop_h, x0 : x0 + crop_w]
        # nearest-neighbour upscale back to the full frame: the whole shot is seen through the crop
        rows = (np.arange(HEIGHT) * crop_h // HEIGHT)[:, None]
        cols = (np.arange(WIDTH) * crop_w // WIDTH)[None, :]
        frames[k] = crop[rows, cols]


def _clip_frames(clip: Clip) -> np.ndarray:
    batches = sample_frames(
        clip.source, fps=FPS, size=(HEIGHT, WIDTH), batch_size=64, skip_nonref=False,
        start=clip.start, end=clip.start + clip.duration,
    )
    frames = np.concatenate([b.frames for b in batches])
    want = round(clip.duration * FPS)
    if len(frames) < want:  # the fps filter repeats frames, so this only happens at a file's end
        frames = np.concatenate([frames, np.repeat(frames[-1:], want - len(frames), axis=0)])
    return frames[:want].copy()
