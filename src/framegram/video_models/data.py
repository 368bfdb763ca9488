"""A folder of labelled videos (UCF101's layout) as a torch Dataset of clips.

    root/<class>/<video>         classes = the sorted sub-folders, label = index in that list
    root/trainlist.txt           optional split files: paths relative to root, one a line
    root/testlist.txt            (UCF101's trailing " <label>" is allowed and ignored)

    data = VideoFolder(root, split="train", clip_len=8, size=(64, 64))
    item, label = data[0]        # item["rgb"]: float32 [3, 8, 64, 64]; label: int

Every video is decoded once, at its own frame rate, to `decode_size` (`size` x DECODE_MARGIN, aspect
not kept, as the frame encoders do), when the dataset is made: unreadable videos and videos shorter
than one clip are skipped then, listed in `skipped` with the reason, and a warning says how many.
Its flow and framegram rows, when `inputs` asks for them, are read from their disk caches (or
computed) then too, as long as they fit in memory. All of it stays in a memory cache of `cache_mb`
megabytes (least recently used out first), so epochs over a small dataset decode and read nothing.

Training (`train=True`): each item is one clip of `clip_len` frames `stride` apart, starting at a
random frame, cut by a random crop (a CROP_SCALE share of the decoded side, or `crop_scale`) resized to `size`,
flipped left-right half of the time when `flip` allows. Testing (`train=False`): `clips_per_video`
clips evenly spaced over each video, centre crop, no flip; item i is clip i % clips_per_video of
video i // clips_per_video. Every item carries "video_index" (a long scalar; collated: [B]) so
predictions can be averaged per video.

Keys of an item (see `inputs.py`): "rgb" float32 [3, T, H, W]; "flow" float32 [2, T, H, W], the
Farneback flow of the decoded frames (`flow.py`, cached on disk) cropped, resized (its vectors
scaled with the picture) and flipped (dx negated) like the pixels, each clip frame's motion to the
next video frame whatever the stride; "framegram" float32 [T, D], the
cached framegram rows of the default encoder at the video's frame rate (`framegram.cache`; whole
frames: crops and flips do not apply).

Random draws follow torch's global RNG (one draw per item, mixed with `seed`): a trainer that seeds
torch and checkpoints its RNG state reproduces and resumes the same clips, and DataLoader workers
draw different ones.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from framegram.errors import FramegramError, InputError, TooShortError
from framegram.io.decode import VIDEO_EXTENSIONS, probe_video, sample_frames
from framegram.video_models.inputs import FLOW_SCALE, INPUT_KINDS, rgb_tensor

SPLIT_FILES = {"train": "trainlist.txt", "test": "testlist.txt"}
DECODE_MARGIN = 1.15  #: frames are decoded this much larger than `size`: room for crops (test: the centre 87 %)
CROP_SCALE = (0.7, 1.0)  #: side of a training crop, as a share of the decoded side
FALLBACK_FRAME_RATE = 25.0  #: frames per second decoded when a file declares no rate
_UCF_LABEL = re.compile(r"\s+\d+$")  #: UCF101's trainlist lines end with " <1-based label>"


@dataclass(frozen=True)
class SkippedVideo:
    """A video the dataset left out, and why (e.g. "12 frames, a clip needs 15 (8 frames, stride 2)")."""

    path: Path
    reason: str


class VideoFolder(torch.utils.data.Dataset):
    """Clips of the videos of `root` with their class labels; see the module's docstring.

    split: None (every video), "train" or "test" (the videos listed in root/trainlist.txt or
        root/testlist.txt); split_file: another list to read instead (e.g. UCF101's trainlist01.txt).
    clip_len, stride: frames per clip and the step between them (in video frames); a clip spans
        (clip_len - 1) * stride + 1 frames.
    size: (height, width) of the clips in pixels.
    train: random clips and crops (one clip a video per item) or evenly spaced centre clips.
    inputs: the item keys to make, a subset of "rgb", "flow", "framegram".
    seed: mixed into every training draw, which otherwise follows torch's global RNG.
    flip: whether training crops may be flipped left-right; None: what root/manifest.json says
        ("flip_ok", as the generated benchmarks write it), else True.
    crop_scale: (low, high) side of a training crop as a share of the decoded side, drawn per clip
        and resized to `size` (scale jitter); None: crops of exactly `size`, placed at random
        (translation only, the test crops' scale).
    cache_mb: memory for decoded frames (and flows, framegram rows).

    Raises InputError for a missing root, a root without class folders, an empty class folder, a
    split file naming a path outside the class folders, or when no video is usable.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        split_file: str | Path | None = None,
        clip_len: int = 8,
        stride: int = 1,
        size: tuple[int, int] = (64, 64),
        train: bool = True,
        clips_per_video: int = 3,
        inputs: Sequence[str] = ("rgb",),
        seed: int = 0,
        flip: bool | None = None,
        crop_scale: tuple[float, float] | None = CROP_SCALE,
        cache_mb: float = 1024,
    ):
        if clip_len < 1 or stride < 1 or clips_per_video < 1:
            raise ValueError(f"clip_len, stride and clips_per_video must be >= 1, got {clip_len}, {stride}, {clips_per_video}")
        if unknown := set(inputs) - set(INPUT_KINDS):
            raise ValueError(f"unknown inputs {sorted(unknown)}; known: {', '.join(INPUT_KINDS)}")
        self.root = Path(root)
        self.clip_len, self.stride, self.span = clip_len, stride, (clip_len - 1) * stride + 1
        self.size = (int(size[0]), int(size[1]))
        self.decode_size = decode_size_for(self.size)
        self.train, self.clips_per_video = train, clips_per_video
        self.inputs, self.seed = tuple(inputs), seed
        self.flip = _manifest_flip_ok(self.root) if flip is None else flip
        self.crop_scale = crop_scale
        self.classes = find_classes(self.root)
        self._cache = _MemoryCache(cache_mb * 2**20)
        self._encoder = None

        self.videos: list[Path] = []  #: the usable videos; item "video_index" indexes this list
        self.labels: list[int] = []  #: class index of each usable video
        self.frame_counts: list[int] = []  #: decoded frames of each usable video
        self.frame_rates: list[float] = []  #: frames per second each usable video is decoded at
        self.skipped: list[SkippedVideo] = []
        candidates, missing = self._candidates(split, split_file)
        self.skipped += missing
        for path, label in candidates:
            self._admit(path, label)
        if self.skipped:
            first = self.skipped[0]
            warnings.warn(
                f"{self.root}: skipped {len(self.skipped)} of {len(candidates) + len(missing)} videos "
                f"(first: {first.path}: {first.reason}); see the dataset's `skipped` list",
                stacklevel=2,
            )
        if not self.videos:
            reasons = "; ".join(f"{s.path.name}: {s.reason}" for s in self.skipped[:3]) or "no videos listed"
            raise InputError(self.root, f"no usable videos ({reasons})")

    # --- the videos ----------------------------------------------------------------------------

    def _candidates(self, split: str | None, split_file: str | Path | None) -> tuple[list[tuple[Path, int]], list[SkippedVideo]]:
        """(path, label) of the videos the split holds, and the listed ones that are missing."""
        if split_file is None and split is not None:
            if split not in SPLIT_FILES:
                raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
            split_file = self.root / SPLIT_FILES[split]
            if not split_file.is_file():
                raise InputError(self.root, f"has no {SPLIT_FILES[split]} for split {split!r}; pass split_file= or split=None")
        if split_file is None:
            return [(p, label) for label, name in enumerate(self.classes) for p in class_videos(self.root / name)], []
        candidates, missing = [], []
        for relative in read_split_file(Path(split_file)):
            class_name = Path(relative).parts[0]
            if class_name not in self.classes or len(Path(relative).parts) < 2:
                raise InputError(split_file, f"lists {relative!r}, which is not inside a class folder of {self.root}")
            path = self.root / relative
            if path.is_file():
                candidates.append((path, self.classes.index(class_name)))
            else:
                missing.append(SkippedVideo(path, f"listed in {Path(split_file).name} but not found"))
        return candidates, missing

    def _admit(self, path: Path, label: int) -> None:
        """Decode `path` once; keep it if it is readable and long enough for one clip."""
        try:
            rate = probe_video(path).frame_rate or FALLBACK_FRAME_RATE
            frames = decode_frames(path, self.decode_size, rate)
        except FramegramError as exc:
            self.skipped.append(SkippedVideo(path, str(exc.reason if isinstance(exc, InputError) else exc)))
            return
        if len(frames) < self.span:
            self.skipped.append(SkippedVideo(path, f"{len(frames)} frames, a clip needs {self.span} "
                                                   f"({self.clip_len} frames, stride {self.stride})"))
            return
        index = len(self.videos)
        self.videos.append(path)
        self.labels.append(label)
        self.frame_counts.append(len(frames))
        self.frame_rates.append(rate)
        self._cache.put((index, "rgb"), frames)
        # read (or compute) the other inputs now too, so that no epoch pays for loading them; once the
        # memory cache has had to drop something, reading ahead would only be read again later
        if "flow" in self.inputs and not self._cache.dropped:
            self._flow(index)
        if "framegram" in self.inputs and not self._cache.dropped:
            self._framegram_rows(index)

    def _frames(self, index: int) -> np.ndarray:
        frames = self._cache.get((index, "rgb"))
        if frames is None:
            frames = decode_frames(self.videos[index], self.decode_size, self.frame_rates[index])
            self._cache.put((index, "rgb"), frames)
        return frames

    def _flow(self, index: int) -> np.ndarray:
        from framegram.video_models.flow import cached_flow

        flow = self._cache.get((index, "flow"))
        if flow is None:
            flow, _ = cached_flow(self.videos[index], self._frames(index))
            self._cache.put((index, "flow"), flow)
        return flow

    def _framegram_rows(self, index: int) -> np.ndarray:
        from framegram.encoders import get_encoder

        rows = self._cache.get((index, "framegram"))
        if rows is None:
            self._encoder = self._encoder or get_encoder()
            rows = framegram_rows(self.videos[index], self.frame_rates[index], self.frame_counts[index], self._encoder)
            self._cache.put((index, "framegram"), rows)
        return rows

    # --- the items -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.videos) * (1 if self.train else self.clips_per_video)

    def __getitem__(self, item: int) -> tuple[dict[str, torch.Tensor], int]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} of a dataset of {len(self)}")
        if self.train:
            index = item
            rng = np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()))])
            start = int(rng.integers(0, self.frame_counts[index] - self.span + 1))
            box, flip = self._random_view(rng)
        else:
            index, clip = divmod(item, self.clips_per_video)
            start = int(clip_starts(self.frame_counts[index], self.span, self.clips_per_video)[clip])
            box, flip = centre_box(self.decode_size, self.size), False
        frames = np.arange(start, start + self.span, self.stride)
        batch: dict[str, torch.Tensor] = {}
        if "rgb" in self.inputs:
            batch["rgb"] = rgb_tensor(crop_frames(self._frames(index)[frames], box, self.size, flip))
        if "flow" in self.inputs:
            batch["flow"] = crop_flow(self._flow(index)[frames], box, self.size, flip) / FLOW_SCALE
        if "framegram" in self.inputs:
            batch["framegram"] = torch.from_numpy(self._framegram_rows(index)[frames].astype(np.float32))
        batch["video_index"] = torch.tensor(index)
        return batch, self.labels[index]

    def _random_view(self, rng: np.random.Generator) -> tuple[tuple[int, int, int, int], bool]:
        """A random (top, left, height, width) crop of the decoded frames, and whether to flip it."""
        full_h, full_w = self.decode_size
        if self.crop_scale is None:
            height, width = self.size
        else:
            scale = rng.uniform(*self.crop_scale)
            height, width = round(full_h * scale), round(full_w * scale)
        top, left = int(rng.integers(0, full_h - height + 1)), int(rng.integers(0, full_w - width + 1))
        return (top, left, height, width), bool(self.flip and rng.random() < 0.5)



# --- the folder -----------------------------------------------------------------------------------


def find_classes(root: Path) -> list[str]:
    """The sorted class folders of `root`; each must hold at least one video."""
    if not root.is_dir():
        raise InputError(root, "no such folder" if not root.exists() else "is a file, not a folder of class folders")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(root, "has no class folders (expected root/<class>/<video files>)")
    for name in classes:
        if not class_videos(root / name):
            raise InputError(root / name, f"class folder has no videos ({' '.join(sorted(VIDEO_EXTENSIONS))})")
    return classes


def class_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def read_split_file(path: Path) -> list[str]:
    """The relative video paths a split file lists (blank lines and # comments skipped)."""
    if not path.is_file():
        raise InputError(path, "split file not found")
    lines = (line.strip() for line in path.read_text().splitlines())
    return [_UCF_LABEL.sub("", line) for line in lines if line and not line.startswith("#")]


def _manifest_flip_ok(root: Path) -> bool:
    try:
        return bool(json.loads((root / "manifest.json").read_text()).get("flip_ok", True))
    except (OSError, ValueError, AttributeError):
        return True  # no manifest (any UCF101-style folder): flipping keeps the class


# --- one video's test-time clips (what `classify_video` feeds a trained model) ---------------------


def decode_size_for(size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) videos are decoded at before cropping to `size`."""
    return tuple(math.ceil(side * DECODE_MARGIN) for side in size)


def centre_box(decode_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The test-time crop: (top, left, height, width) of the centre `size` of `decode_size`."""
    (full_h, full_w), (height, width) = decode_size, size
    return (full_h - height) // 2, (full_w - width) // 2, height, width


def evaluation_clips(path: str | Path, clip_len: int, stride: int, size: tuple[int, int], n_clips: int,
               inputs: Sequence[str]) -> dict[str, torch.Tensor]:
    """`n_clips` evenly spaced centre clips of one video, cut exactly as `VideoFolder`'s test view:
    the batch dict of `inputs` ("rgb" [n, 3, T, H, W], "flow" [n, 2, T, H, W], "framegram" [n, T, D]).
    Raises TooShortError (both frame counts) when the video is shorter than one clip."""
    path = Path(path)
    rate = probe_video(path).frame_rate or FALLBACK_FRAME_RATE
    decode_size = decode_size_for(size)
    frames = decode_frames(path, decode_size, rate)
    span = (clip_len - 1) * stride + 1
    if len(frames) < span:
        raise TooShortError(path, f"{len(frames)} frames, a clip needs {span} ({clip_len} frames, stride {stride})")
    box = centre_box(decode_size, size)
    clips = [np.arange(start, start + span, stride) for start in clip_starts(len(frames), span, n_clips)]
    batch: dict[str, torch.Tensor] = {}
    if "rgb" in inputs:
        batch["rgb"] = torch.stack([rgb_tensor(crop_frames(frames[c], box, size, False)) for c in clips])
    if "flow" in inputs:
        from framegram.video_models.flow import cached_flow

        flow, _ = cached_flow(path, frames)
        batch["flow"] = torch.stack([crop_flow(flow[c], box, size, False) for c in clips]) / FLOW_SCALE
    if "framegram" in inputs:
        rows = framegram_rows(path, rate, len(frames))
        batch["framegram"] = torch.stack([torch.from_numpy(rows[c].astype(np.float32)) for c in clips])
    return batch


def framegram_rows(path: Path, frame_rate: float, count: int, encoder=None) -> np.ndarray:
    """The default encoder's framegram of `path` at `frame_rate` (cached), one row per decoded
    frame: float [count, D] (both sample the same grid; a last partial frame may differ)."""
    from framegram.cache import framegram_for

    rows = framegram_for(path, encoder, fps=frame_rate)[0].features
    return np.concatenate([rows[:count], np.repeat(rows[-1:], max(0, count - len(rows)), axis=0)])


# --- decoding and cropping ------------------------------------------------------------------------


def decode_frames(path: Path, size: tuple[int, int], frame_rate: float) -> np.ndarray:
    """Every frame of `path` (sampled at its `frame_rate`) resized to `size` = (height, width):
    uint8 [N, H, W, 3]."""
    return np.concatenate([batch.frames for batch in sample_frames(path, fps=frame_rate, size=size, batch_size=64)])


def clip_starts(frame_count: int, span: int, count: int) -> np.ndarray:
    """First frames of `count` clips of `span` frames spread evenly over `frame_count` frames: int [count]."""
    return np.round(np.linspace(0, frame_count - span, count)).astype(int)


def crop_frames(frames: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool) -> np.ndarray:
    """uint8 [T, H0, W0, 3] -> the (top, left, height, width) box resized to `size`, flipped
    left-right if asked: uint8 [T, H, W, 3]."""
    top, left, height, width = box
    crop = frames[:, top : top + height, left : left + width]
    if (height, width) != size:
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        crop = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return crop[:, :, ::-1] if flip else crop


def crop_flow(flow: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool) -> torch.Tensor:
    """Flow [T, H0, W0, 2] (pixels per frame) -> the box resized to `size` with its vectors scaled
    to the new pixels, flipped left-right (dx negated) if asked: float32 [2, T, H, W]."""
    top, left, height, width = box
    x = torch.from_numpy(np.ascontiguousarray(flow[:, top : top + height, left : left + width])).float()
    x = x.permute(0, 3, 1, 2)  # [T, 2, h, w]
    if (height, width) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = x * torch.tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
    if flip:
        x = x.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    return x.permute(1, 0, 2, 3).contiguous()


class _MemoryCache:
    """Arrays by key, least recently used dropped first once they exceed `budget` bytes."""

    def __init__(self, budget: float):
        self.budget = budget
        self._arrays: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.dropped = 0  #: arrays dropped (or refused) for want of room so far

    def get(self, key: tuple) -> np.ndarray | None:
        if key in self._arrays:
            self._arrays.move_to_end(key)
            return self._arrays[key]
        return None

    def put(self, key: tuple, array: np.ndarray) -> None:
        if array.nbytes > self.budget:
            self.dropped += 1
            return
        self._bytes += array.nbytes - (self._arrays[key].nbytes if key in self._arrays else 0)
        self._arrays[key] = array
        self._arrays.move_to_end(key)
        while self._bytes > self.budget:
            _, dropped = self._arrays.popitem(last=False)
            self._bytes -= dropped.nbytes
            self.dropped += 1
