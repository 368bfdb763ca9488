"""Training clips from the generated label-map videos (`framegram.datasets.label_videos`).

A clip: L consecutive frames of one scene as tensors: labels one-hot float [L, C, H, W], frames float
[L, 3, H, W] in [-1, 1], the backward optical flow between consecutive real frames float
[L-1, 2, H, W] measured by OpenCV's DIS (what a user with real footage has; the renderer's exact flow
is kept for evaluation only), and where that flow is trusted, bool [L-1, 1, H, W]: frame t-1 warped
by it is within CONFIDENT_RESIDUAL of frame t (vid2vid's `conf_ref`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from framegram.datasets.label_videos import CLASSES, load_scene
from framegram.vid2vid.model import warp

CONFIDENT_RESIDUAL = 0.02  #: mean |frame_t - frame_{t-1} warped by the measured flow| (frames in [-1, 1]) under which it is trusted


def measured_flow(frames: np.ndarray) -> np.ndarray:
    """DIS optical flow (OpenCV, medium preset) of uint8 frames [T, H, W, 3]: float32 [T-1, H, W, 2],
    for each pixel of frame t+1 where it was in frame t."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return np.stack([dis.calc(grey[t + 1], grey[t], None) for t in range(len(frames) - 1)]).astype(np.float32)


def one_hot(labels: np.ndarray, classes: int = len(CLASSES)) -> torch.Tensor:
    """uint8 [..., H, W] → float [..., C, H, W]."""
    t = torch.from_numpy(labels.astype(np.int64))
    return torch.nn.functional.one_hot(t, classes).movedim(-1, -3).float()


def to_tensor_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] → float [T, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """float [T, 3, H, W] in [-1, 1] → uint8 [T, H, W, 3]."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


class SceneClips:
    """Every training scene in memory (small at 64x64) with its measured flow and where it is trusted;
    `batch(rng, size, length)` draws random clips: labels [B, L, C, H, W], frames [B, L, 3, H, W], flow
    [B, L-1, 2, H, W], confident [B, L-1, 1, H, W]."""

    def __init__(self, scenes: list[Path]):
        self.labels, self.frames, self.flows, self.confident = [], [], [], []
        for path in scenes:
            scene = load_scene(path)
            frames = to_tensor_frames(scene["frames"])
            flow = torch.from_numpy(measured_flow(scene["frames"])).permute(0, 3, 1, 2)
            self.labels.append(one_hot(scene["labels"]))
            self.frames.append(frames)
            self.flows.append(flow)
            self.confident.append((warp(frames[:-1], flow) - frames[1:]).abs().mean(1, keepdim=True) < CONFIDENT_RESIDUAL)
        self.length = self.frames[0].shape[0]

    def batch(self, rng: np.random.Generator, size: int, length: int):
        picks = rng.integers(len(self.frames), size=size)
        starts = rng.integers(0, self.length - length + 1, size=size)
        take = lambda seq, n: torch.stack([seq[i][s: s + n] for i, s in zip(picks, starts)])  # noqa: E731
        return take(self.labels, length), take(self.frames, length), take(self.flows, length - 1), take(self.confident, length - 1)
