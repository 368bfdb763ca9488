"""Classify one video with a trained checkpoint: clips cut as in training, predictions averaged.

    names, clip_probs, video_probs = classify_video("cat.mp4", "runs/c3d")
    names[video_probs.argmax()]

The clip sampler here is deliberately small: every frame decoded at the file's own rate and
resized whole to the clip size. `VideoFolder`'s test-time view differs slightly (frames decoded
a little larger, then centre-cropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from framegram.errors import TooShortError
from framegram.io.decode import probe_video, sample_frames
from framegram.video_models.inputs import FLOW_SCALE, rgb_tensor
from framegram.video_models.registry import get_model
from framegram.video_models.train import CheckpointError, load_checkpoint

#: Frames per second sampled from a file that declares no frame rate.
FALLBACK_FRAME_RATE = 25.0


class Classification(NamedTuple):
    """class_names [C]; clip_probabilities float64 [n_clips, C] (softmax per clip, rows sum to 1);
    video_probabilities float64 [C], the mean of the clip rows."""

    class_names: list[str]
    clip_probabilities: np.ndarray
    video_probabilities: np.ndarray


def classify_video(
    path: str | Path,
    checkpoint_dir: str | Path,
    expect_model: str | None = None,
    n_clips: int | None = None,
    batch_size: int = 8,
) -> Classification:
    """Cut `n_clips` evenly spaced clips (default: the checkpoint's clips_per_video) of the clip
    length, stride and size the model was trained with, classify each, and average.

    Raises `CheckpointError` (missing or damaged checkpoint), `CheckpointMismatchError` (a
    checkpoint of another model than `expect_model`), `TooShortError` (fewer frames than one clip
    spans) and the decoding errors of `framegram.io.decode`.
    """
    checkpoint = load_checkpoint(checkpoint_dir, expect_model)
    settings = checkpoint["settings"]
    model = model_from_checkpoint(checkpoint)
    frames, rate = video_frames(path, tuple(settings["size"]))
    clips = clip_indices(path, len(frames), settings["clip_len"], settings["stride"],
                         n_clips or settings["clips_per_video"])
    inputs = clip_inputs(path, frames, rate, clips, checkpoint["inputs"])
    with torch.no_grad():
        probs = torch.cat([
            model({kind: x[first : first + batch_size] for kind, x in inputs.items()}).softmax(dim=1)
            for first in range(0, len(clips), batch_size)
        ]).double().numpy()
    return Classification(list(settings["class_names"]), probs, probs.mean(axis=0))


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Module:
    """The model of a `load_checkpoint` dict with its trained weights, in eval mode."""
    settings = checkpoint["settings"]
    model = get_model(settings["model"], settings["num_classes"], **settings["model_cfg"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:  # the model's code changed since training
        raise CheckpointError(checkpoint["path"], f"its weights do not fit model {settings['model']!r} as defined now "
                                                  f"({str(exc).splitlines()[0]})") from exc
    return model.eval()


def video_clips(path: str | Path, clip_len: int, stride: int, size: tuple[int, int], n_clips: int) -> np.ndarray:
    """`n_clips` evenly spaced clips of `clip_len` frames `stride` apart, resized whole to
    `size` = (H, W): uint8 [n_clips, clip_len, H, W, 3] (see `clip_indices`)."""
    frames, _ = video_frames(path, size)
    return frames[clip_indices(path, len(frames), clip_len, stride, n_clips)]


def video_frames(path: str | Path, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Every frame of `path` at its own frame rate, resized whole to `size` = (H, W) (no crop):
    (uint8 [N, H, W, 3], frames per second). The video is held in memory (64 x 64: 12 KB a frame)."""
    rate = probe_video(path).frame_rate or FALLBACK_FRAME_RATE
    frames = np.concatenate([batch.frames for batch in sample_frames(path, fps=rate, size=size, batch_size=64)])
    return frames, rate


def clip_indices(path: str | Path, n_frames: int, clip_len: int, stride: int, n_clips: int) -> np.ndarray:
    """Frame numbers of `n_clips` clips of `clip_len` frames `stride` apart, evenly spaced from
    the first frame to the last: int [n_clips, clip_len]. `path` names the video in the
    `TooShortError` raised when one clip does not fit in `n_frames`."""
    span = (clip_len - 1) * stride + 1
    if n_frames < span:
        raise TooShortError(path, f"{n_frames} frames, a clip needs {span} ({clip_len} frames {stride} apart)")
    starts = np.linspace(0, n_frames - span, n_clips).round().astype(int)
    return starts[:, None] + stride * np.arange(clip_len)


def clip_inputs(path: str | Path, frames: np.ndarray, rate: float, clips: np.ndarray, kinds) -> dict[str, torch.Tensor]:
    """The batch dict of `kinds` (see `inputs.py`) for the clips `clips` (int [n, T]) of the video
    `path` whose frames are `frames` (uint8 [N, H, W, 3], `rate` per second): "rgb" [n, 3, T, H, W];
    "flow" [n, 2, T, H, W], Farneback flow of consecutive video frames / FLOW_SCALE; "framegram"
    [n, T, D], the default encoder's rows at the video's rate (extracted once, then cached)."""
    batch = {}
    if "rgb" in kinds:
        batch["rgb"] = torch.stack([rgb_tensor(frames[clip]) for clip in clips])
    if "flow" in kinds:
        from framegram.video_models.flow import farneback_flow

        flow = torch.from_numpy(farneback_flow(frames))  # [N, H, W, 2], pixels per frame
        batch["flow"] = flow[torch.from_numpy(clips)].permute(0, 4, 1, 2, 3) / FLOW_SCALE
    if "framegram" in kinds:
        from framegram.cache import framegram_for

        rows = framegram_for(path, fps=rate)[0].features
        # one row per decoded frame: both sample the same grid, a last partial frame may differ
        rows = np.concatenate([rows[: len(frames)], np.repeat(rows[-1:], max(0, len(frames) - len(rows)), axis=0)])
        batch["framegram"] = torch.from_numpy(rows[clips].astype(np.float32))
    return batch
