"""Two generated video-classification benchmarks made of real footage: one that only motion solves,
one that a single frame solves.

  motion      8 classes: a disc of texture cut from a real frame (outlined by a black and white rim with
              notches, and a white hand from its centre: see `draw_disc`) moves left, right, up or down, turns
              clockwise or anticlockwise (as seen on screen), approaches (grows) or recedes (shrinks),
              over a still background cut from another real frame.
              No single frame tells the class: in every class and at every frame the object's centre is
              uniform over the picture (the picture is a torus: what leaves on one side comes back on the
              other), its angle is uniform, and its log diameter is uniform between MIN_DIAMETER and MAX_DIAMETER (an
              approaching object that reaches the largest size comes back at the smallest, and the
              other way round for a receding one: in about a third of those videos). Flipping a
              video left-right turns "left" into "right", so the manifest says `"flip_ok": false`.
  appearance  8 classes, one real video each (`FOOTAGE_SOURCES`): a slow pan and zoom over a frame
              of that video, mirrored at random. Any single frame tells the class.

Footage: 48 frames spread over each of 8 real videos that ship in packages (`framegram.media`),
decoded once and cached (`footage_frames`). Motion's training videos draw on the first 70 % of each
source's frames, its test videos on the rest (`split_by_source`). Appearance splits each shot of a
source that way instead (`split_by_shot`): two sources are montages (the film trailer, the city
streets), and the last 30 % of such a source shows scenes that none of its first 70 % shows, so a
test frame would not tell the class (version 2 of the benchmark). Either way a test video never
shows a frame a training video was cut from.

Folder (UCF101's layout): `root/<class>/<class>-<split>-<nnn>.mp4` (H.264, 96x96, 16 frames at 8 fps),
`trainlist.txt` and `testlist.txt` (relative paths, one a line), `settings.json` (written first: a
folder made with other settings is refused) and `manifest.json` (written last: the benchmark is
complete). Every video follows from (seed, benchmark, class, split, number) alone and is written
atomically, so an interrupted build resumes where it stopped and reruns skip finished files.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.io.decode import probe_video, sample_frames
from framegram.io.ffmpeg import encode_rgb_video
from framegram.io.settings import claim_generated_folder
from framegram.paths import cache_dir
from framegram.progress import extraction_progress
from framegram.datasets.footage import footage_paths, shot_boundaries

FOOTAGE_VERSION = 1
FORMAT = "framegram-actions-benchmark"
SETTINGS = "settings.json"
MANIFEST = "manifest.json"
SPLIT_FILES = {"train": "trainlist.txt", "test": "testlist.txt"}

SIZE = 96  #: videos are SIZE x SIZE pixels
FRAMES = 16
FPS = 8

#: Real videos the footage is cut from, by the class name each gives the appearance benchmark.
FOOTAGE_SOURCES = {
    "bunny": "bbb-trailer.mp4",  # animated film
    "street": "vtest.avi",  # fixed camera over a square with walkers
    "megamind": "megamind.avi",  # animated film, dark interior
    "tree": "tree.avi",  # a tree against the sky
    "box": "box.mp4",  # a hand holding a box over a table
    "cup": "cup.mp4",  # a hand holding a black cup against white
    "bikes": "bikes.mp4",  # city streets
    "carphone": "carphone_pristine.mp4",  # a man talking in a car
}
FOOTAGE_FRAMES = 48  #: frames decoded from each source, evenly spread over it
FOOTAGE_HEIGHT = 144  #: pixels; the width keeps the source's aspect
TRAIN_SHARE = 0.7  #: training videos use the first 70 % of each source's frames, test videos the rest
MIN_LUMA, MIN_CONTRAST = 40.0, 20.0  #: footage frames darker or flatter than this (luma mean, std) are dropped

MOTION_CLASSES = ("move_left", "move_right", "move_up", "move_down", "turn_clockwise", "turn_anticlockwise", "approach", "recede")
MIN_DIAMETER, MAX_DIAMETER = 0.25 * SIZE, 0.6 * SIZE  #: pixels (the smallest: 16 pixels in a 64x64 clip)
SPEED = (1.5, 3.0)  #: pixels per frame of the moving classes
TURN = (np.radians(5.0), np.radians(10.0))  #: radians per frame of the turning classes
GROWTH = (1.4, 1.8)  #: diameter ratio between the last and the first frame of approach / recede
RIM = 0.06  #: width of each of the disc rim's two rings (black outside, white inside), share of the diameter
#: notches on the rim (`draw_disc`). Version 2 of the benchmark had none: R(2+1)D and slow fusion learned
#: the other six classes and stayed at chance between the two turns, C3D too (and also confused approach and recede)
TICKS = 8


@dataclass(frozen=True)
class Benchmark:
    name: str
    version: int  #: bumped when the renderer changes: the same settings would then give other pixels
    classes: tuple[str, ...]
    flip_ok: bool  #: whether a left-right flip keeps every video's class
    description: str
    render: Callable[[np.random.Generator, dict[str, np.ndarray], str], np.ndarray]  #: (rng, footage, class) -> [T, S, S, 3]
    #: the footage each split may use: {split: {source class name: uint8 [N, 144, W, 3]}}
    footage: Callable[[], dict[str, dict[str, np.ndarray]]]


def list_benchmarks() -> list[str]:
    """Names `build_actions` accepts."""
    return sorted(BENCHMARKS)


def default_root(name: str) -> Path:
    """Where `build_actions` puts a benchmark when given no root: the user cache folder."""
    return cache_dir() / "bench" / f"actions-v{BENCHMARKS[name].version}" / name


def build_actions(
    name: str,
    root: str | Path | None = None,
    seed: int = 0,
    per_class_train: int = 40,
    per_class_test: int = 16,
    show_progress: bool = False,
) -> Path:
    """Render the benchmark `name` ("motion" or "appearance") into `root` (None: `default_root(name)`)
    unless it is there already; return the folder.

    seed: every random draw follows from it; per_class_train, per_class_test: videos per class in
    each split (a video does not depend on them: a smaller build's videos are the first ones of a
    larger build's);
    show_progress: a progress bar while rendering.

    Raises FramegramError for an unknown name, InputError for a folder made with other settings
    (or holding something else).
    """
    if name not in BENCHMARKS:
        raise FramegramError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}")
    if per_class_train < 1 or per_class_test < 0:
        raise ValueError(f"need per_class_train >= 1 and per_class_test >= 0, got {per_class_train}, {per_class_test}")
    bench = BENCHMARKS[name]
    root = Path(root) if root is not None else default_root(name)
    settings = {
        "format": FORMAT, "version": bench.version, "benchmark": name, "seed": seed,
        "per_class": {"train": per_class_train, "test": per_class_test},
        "size": [SIZE, SIZE], "frames": FRAMES, "fps": FPS,
    }  # fmt: skip
    claim_generated_folder(root, settings, "a benchmark", SETTINGS)
    if (root / MANIFEST).is_file():
        return root

    videos = {
        split: [(c, f"{c}/{c}-{split}-{i:03d}.mp4", _video_seed(seed, name, c, split, i))
                for c in bench.classes for i in range(settings["per_class"][split])]
        for split in SPLIT_FILES
    }  # fmt: skip
    todo = [(split, *video) for split in videos for video in videos[split] if not (root / video[1]).is_file()]
    with extraction_progress(show_progress) as bars:
        task = bars.add_task(f"{name} benchmark", total=len(todo))
        footage = bench.footage() if todo else {}
        for split, class_name, relative, video_seed in todo:
            rng = np.random.default_rng(video_seed)
            write_video(bench.render(rng, footage[split], class_name), root / relative)
            bars.advance(task)
    for split, listed in videos.items():
        atomic_write_bytes(root / SPLIT_FILES[split], "".join(f"{relative}\n" for _, relative, _ in listed).encode())
    manifest = {
        **settings,
        "description": bench.description,
        "classes": sorted(bench.classes),  # label order: the sorted class folders
        "flip_ok": bench.flip_ok,
        "videos": {split: len(listed) for split, listed in videos.items()},
        "footage": FOOTAGE_SOURCES,
    }
    atomic_write_bytes(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return root


def _video_seed(seed: int, name: str, class_name: str, split: str, number: int) -> list[int]:
    # names, not positions in a list: adding a benchmark or a class leaves the other videos as they are
    return [seed, zlib.crc32(name.encode()), zlib.crc32(class_name.encode()), zlib.crc32(split.encode()), number]


def write_video(frames: np.ndarray, path: Path) -> None:
    """uint8 [T, H, W, 3] RGB -> H.264 MP4 at FPS, written atomically (`encode_video`)."""
    encode_video(frames, path, FPS)


def encode_video(frames: np.ndarray, path: Path, fps: float) -> None:
    """uint8 [T, H, W, 3] RGB -> H.264 MP4 at `fps` (CRF 18), written atomically and reproducibly
    (`framegram.io.ffmpeg.encode_rgb_video`)."""
    _, height, width, _ = frames.shape
    encode_rgb_video(frames, path, fps, (width, height), ("-crf", "18", "-preset", "medium"), "rendering the actions benchmark")


# --- footage -----------------------------------------------------------------------------------------


def footage_frames() -> dict[str, np.ndarray]:
    """Frames of each source of `FOOTAGE_SOURCES` by class name: uint8 [N, 144, W, 3] in time order,
    dark and flat frames left out. Decoded once, then read from the cache folder."""
    return {name: frames for name, (frames, _) in _footage().items()}


def _footage() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{class name: (frames uint8 [N, 144, W, 3], their times in seconds float64 [N])} of `footage_frames`."""
    path = cache_dir() / "synth" / f"actions-footage-v{FOOTAGE_VERSION}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return {name: (stored[name], stored[f"{name}.seconds"]) for name in FOOTAGE_SOURCES}
        except (OSError, ValueError, KeyError, EOFError):
            pass  # damaged, from another source list or from before the times were stored: decode again
    footage = {name: _bright_textured(*_spread_frames(path)) for name, path in _source_paths().items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy would append ".npz" to the name
        np.savez_compressed(fh, **{k: v for name, (frames, seconds) in footage.items()
                                   for k, v in ((name, frames), (f"{name}.seconds", seconds))})
    return footage


def _source_paths() -> dict[str, Path]:
    """{class name: path of its source video} (fetched on first use)."""
    return dict(zip(FOOTAGE_SOURCES, footage_paths(list(FOOTAGE_SOURCES.values()))))


def _spread_frames(video: Path) -> tuple[np.ndarray, np.ndarray]:
    """FOOTAGE_FRAMES frames evenly spread over `video` and their times (seconds)."""
    info = probe_video(video)
    width = round(FOOTAGE_HEIGHT * info.width / info.height / 2) * 2
    fps = FOOTAGE_FRAMES / info.duration
    batches = list(sample_frames(video, fps=fps, size=(FOOTAGE_HEIGHT, width)))
    frames, seconds = np.concatenate([b.frames for b in batches]), np.concatenate([b.times for b in batches])
    return frames[:FOOTAGE_FRAMES], seconds[:FOOTAGE_FRAMES]


def _bright_textured(frames: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    keep = (luma.mean(axis=(1, 2)) >= MIN_LUMA) & (luma.std(axis=(1, 2)) >= MIN_CONTRAST)
    return frames[keep], seconds[keep]


def split_by_source() -> dict[str, dict[str, np.ndarray]]:
    """The footage each split may use: the first TRAIN_SHARE of each source's frames for "train", the rest for "test"."""
    footage = footage_frames()
    cut = {name: round(len(frames) * TRAIN_SHARE) for name, frames in footage.items()}
    return {"train": {name: frames[: cut[name]] for name, frames in footage.items()},
            "test": {name: frames[cut[name] :] for name, frames in footage.items()}}


def split_by_shot() -> dict[str, dict[str, np.ndarray]]:
    """The footage each split may use, shot by shot: of each shot of a source (between the cuts and
    dissolves of `framegram.datasets.footage.shot_boundaries`), the first TRAIN_SHARE of its frames for
    "train", the rest for "test"; a shot with one frame goes to "train"."""
    split, paths = {"train": {}, "test": {}}, _source_paths()
    for name, (frames, seconds) in _footage().items():
        train = training_frames_by_shot(seconds, shot_boundaries(paths[name]))
        split["train"][name], split["test"][name] = frames[train], frames[~train]
    return split


def training_frames_by_shot(seconds: np.ndarray, boundaries: list[float]) -> np.ndarray:
    """Which frames (at `seconds`, in order) go to training: the first TRAIN_SHARE of each shot
    (`boundaries`: seconds between shots, in order), at least one; bool [N]."""
    shot = np.searchsorted(boundaries, seconds)
    train = np.zeros(len(seconds), bool)
    for s in np.unique(shot):
        in_shot = np.flatnonzero(shot == s)
        train[in_shot[: max(1, round(len(in_shot) * TRAIN_SHARE))]] = True
    return train


def random_frame(rng: np.random.Generator, footage: dict[str, np.ndarray], source: str | None = None) -> Image.Image:
    """A frame of `source` (None: a random source), mirrored half of the time."""
    if source is None:
        source = list(footage)[rng.integers(len(footage))]
    frames = footage[source]
    image = Image.fromarray(frames[rng.integers(len(frames))])
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def _pan(image: Image.Image, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """FRAMES crops moving linearly from box `start` to box `end` (x0, y0, x1, y1), each resized to
    SIZE x SIZE: uint8 [T, S, S, 3]."""
    boxes = start + (end - start) * np.linspace(0, 1, FRAMES)[:, None]
    return np.stack([np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=tuple(b))) for b in boxes])


# --- motion -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionTrack:
    """Where the object is at each of the FRAMES frames: centre `x`, `y` (pixels, in [0, SIZE)),
    `angle` (radians, clockwise on screen, in [0, 2 pi)) and `diameter` (pixels); float64 [T] each."""

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    diameter: np.ndarray


def motion_track(rng: np.random.Generator, class_name: str) -> MotionTrack:
    """The object's path in a video of `class_name`.

    Every class draws the same random numbers in the same order (start, speeds) and moves along one
    of them only, so any one frame's (x, y, angle, diameter) has the same distribution in every class.
    """
    t = np.arange(FRAMES, dtype=np.float64)
    x0, y0 = rng.uniform(0, SIZE, 2)
    angle0 = rng.uniform(0, 2 * np.pi)
    log_low, log_range = np.log(MIN_DIAMETER), np.log(MAX_DIAMETER / MIN_DIAMETER)
    log_size0 = rng.uniform(0, log_range)
    speed, turn = rng.uniform(*SPEED), rng.uniform(*TURN)
    growth = np.log(rng.uniform(*GROWTH)) / (FRAMES - 1)  # log diameter per frame
    moves = {
        "move_left": (-speed, 0, 0, 0), "move_right": (speed, 0, 0, 0),
        "move_up": (0, -speed, 0, 0), "move_down": (0, speed, 0, 0),
        "turn_clockwise": (0, 0, turn, 0), "turn_anticlockwise": (0, 0, -turn, 0),
        "approach": (0, 0, 0, growth), "recede": (0, 0, 0, -growth),
    }  # fmt: skip
    vx, vy, spin, grow = moves[class_name]
    return MotionTrack(
        x=(x0 + vx * t) % SIZE,
        y=(y0 + vy * t) % SIZE,
        angle=(angle0 + spin * t) % (2 * np.pi),
        diameter=np.exp(log_low + (log_size0 + grow * t) % log_range),
    )


def _motion_video(rng: np.random.Generator, footage: dict[str, np.ndarray], class_name: str) -> np.ndarray:
    background = _still_background(rng, footage)
    texture = texture_patch(rng, footage)
    track = motion_track(rng, class_name)
    return np.stack([
        draw_disc(background[i], texture, track.x[i], track.y[i], track.angle[i], track.diameter[i], TICKS)
        for i in range(FRAMES)
    ])  # fmt: skip


def _still_background(rng: np.random.Generator, footage: dict[str, np.ndarray]) -> np.ndarray:
    """A square crop of a random real frame, the same in every frame: uint8 [T, S, S, 3].

    Still, not drifting: with a background drifting up to 0.4 pixels per frame (version 1) and discs
    down to 0.14 of the side, R(2+1)D trained from scratch did not learn the classes at all.
    """
    image = random_frame(rng, footage)
    width, height = image.size
    side = rng.uniform(0.55, 0.95) * min(width, height)
    corner = rng.uniform(0, [width - side, height - side])
    frame = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=(*corner, *(corner + side))))
    return np.broadcast_to(frame, (FRAMES, *frame.shape))


def texture_patch(rng: np.random.Generator, footage: dict[str, np.ndarray], tries: int = 10,
                  source: str | None = None) -> Image.Image:
    """A square patch of a random real frame (of `source`, else of any source), the most textured
    (luma std) of a few draws."""
    best, best_std = None, -1.0
    for _ in range(tries):
        image = random_frame(rng, footage, source)
        width, height = image.size
        side = rng.uniform(0.3, 0.7) * min(width, height)
        x, y = rng.uniform(0, width - side), rng.uniform(0, height - side)
        patch = image.crop((round(x), round(y), round(x + side), round(y + side)))
        contrast = float(np.asarray(patch.convert("L"), np.float32).std())
        if contrast > best_std:
            best, best_std = patch, contrast
    return best


_PIXEL_CENTRES = np.arange(SIZE) + 0.5


def draw_disc(background: np.ndarray, texture: Image.Image, x: float, y: float, angle: float, diameter: float,
              ticks: int = 0) -> np.ndarray:
    """`background` uint8 [S, S, 3] with `texture` drawn as a disc of `diameter` pixels centred at
    (x, y), turned by `angle` (clockwise), on a torus (the parts past an edge show on the other side);
    anti-aliased edge.

    The disc wears a rim (a black ring outside a white one) and a white hand from its centre to the
    rim at `angle`: real texture often matches the real background it is drawn over, and a camouflaged
    disc would make the benchmark about finding the object rather than about how it moves. The hand
    shows the turn even on a flat texture; a single frame still tells nothing (angle is uniform).

    ticks: black notches spread evenly around the rim (0: none), each across the white ring and as
    far again into the texture, turning with the disc like a wheel's tread. A turn's direction is
    then visible in any small window on the rim: which side the black ring is on says where the
    centre is, and a notch's move along the rim says which way it turns. With the hand alone that
    takes a view of the whole disc, and networks trained from scratch on the motion benchmark did
    not learn it (see `TICKS`).
    """
    side = int(np.ceil(diameter)) + 2
    # the texture at the disc's scale first (PIL filters when it shrinks), so sampling below is ~1:1
    scaled = np.asarray(texture.resize((side, side), Image.Resampling.BILINEAR), np.float32)
    dx = (_PIXEL_CENTRES[None, :] - x + SIZE / 2) % SIZE - SIZE / 2  # nearest copy on the torus
    dy = (_PIXEL_CENTRES[:, None] - y + SIZE / 2) % SIZE - SIZE / 2
    dx, dy = np.broadcast_arrays(dx, dy)
    distance = np.hypot(dx, dy)
    inside = distance < diameter / 2 + 0.5  # the pixels the disc covers, even partly
    dx, dy, distance = dx[inside], dy[inside], distance[inside]
    cos, sin = np.cos(angle), np.sin(angle)
    # turning the disc clockwise on screen (y down) = sampling the texture turned back anticlockwise
    along, across = cos * dx + sin * dy, -sin * dx + cos * dy  # in the disc's own frame
    u = along * side / diameter + side / 2 - 0.5
    v = across * side / diameter + side / 2 - 0.5
    disc = np.stack([map_coordinates(scaled[..., c], [v, u], order=1, mode="nearest") for c in range(3)], axis=-1)
    ring = max(1.0, RIM * diameter)  # pixels, each of the two rings
    from_edge = diameter / 2 - distance
    black = np.clip(ring + 0.5 - from_edge, 0, 1)  # anti-aliased bands: 1 inside, 0 outside
    white = np.clip(2 * ring + 0.5 - from_edge, 0, 1) - black
    if ticks:
        # arc length (pixels, at the middle of the white ring) to the nearest notch's centre line;
        # notches sit half way between the hand's positions so that none hides it
        notch = (np.arctan2(across, along) * ticks / (2 * np.pi) + 0.5) % 1 - 0.5
        arc = np.abs(np.abs(notch) - 0.5) * 2 * np.pi * (diameter / 2 - 1.5 * ring) / ticks
        radial = np.clip(3 * ring + 0.5 - from_edge, 0, 1) - black  # white ring and as far again inside
        notches = radial * np.clip(0.75 * ring + 0.5 - arc, 0, 1)
        black, white = black + notches, np.clip(white - notches, 0, 1)
    hand = np.clip(ring / 2 + 0.5 - np.abs(across), 0, 1) * (along > 0)
    white = np.maximum(white, hand * (1 - black))
    disc = disc * (1 - black - white)[:, None] + 255.0 * white[:, None]
    alpha = np.clip(diameter / 2 - distance + 0.5, 0, 1)[:, None]
    frame = background.astype(np.float32)
    frame[inside] = frame[inside] * (1 - alpha) + disc * alpha
    return (frame + 0.5).astype(np.uint8)


# --- appearance -------------------------------------------------------------------------------------


def _appearance_video(rng: np.random.Generator, footage: dict[str, np.ndarray], class_name: str) -> np.ndarray:
    """A slow pan and zoom over a frame of the class's own source: uint8 [T, S, S, 3]."""
    image = random_frame(rng, footage, class_name)
    width, height = image.size
    frame_size = np.array([width, height], np.float64)

    def box(centre: np.ndarray, side: float) -> np.ndarray:
        corner = np.clip(centre - side / 2, 0, frame_size - side)
        return np.array([*corner, *(corner + side)])

    side = rng.uniform(0.5, 0.85) * min(width, height)
    centre = rng.uniform(side / 2, frame_size - side / 2)
    heading = rng.uniform(0, 2 * np.pi)
    travel = rng.uniform(0.05, 0.15) * side * np.array([np.cos(heading), np.sin(heading)])
    end_side = min(side * rng.uniform(0.85, 1.15), min(width, height))
    return _pan(image, box(centre, side), box(centre + travel, end_side))


BENCHMARKS = {
    "motion": Benchmark(
        "motion", 3, MOTION_CLASSES, flip_ok=False,
        description="a disc of real texture moving, turning, approaching or receding over real footage; "
        "no single frame tells the class",
        render=_motion_video, footage=split_by_source,
    ),
    "appearance": Benchmark(
        "appearance", 3, tuple(FOOTAGE_SOURCES), flip_ok=True,
        description="a slow pan and zoom over a frame of one of 8 real videos, training and test frames "
        "from each of its shots; any single frame tells the class",
        render=_appearance_video, footage=split_by_shot,
    ),
}  # fmt: skip
