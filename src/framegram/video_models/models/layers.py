"""Pieces shared by the model zoo: batch checks, clip reshapes, prediction averaging, the late-fusion head.

Shapes follow `framegram.video_models.inputs`: clips are [B, C, T, H, W], framegram rows [B, T, D].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from framegram.errors import FramegramError

_INPUT_NDIM = {"rgb": 5, "flow": 5, "framegram": 3}


class ModelInputError(FramegramError):
    """A batch a model cannot take: a missing input, or a clip of the wrong shape for that model."""


class ModelConfigError(FramegramError):
    """A model setting that makes no sense (unknown option value, layer name, size)."""


def batch_input(batch: dict, key: str, model_name: str) -> torch.Tensor:
    """batch[key], checked: present and with the dimensions of its kind ([B, C, T, H, W] or [B, T, D])."""
    if key not in batch:
        raise ModelInputError(f"model {model_name!r} needs batch input {key!r}; the batch has {sorted(batch)}")
    x = batch[key]
    if x.dim() != _INPUT_NDIM[key]:
        raise ModelInputError(
            f"model {model_name!r}: batch input {key!r} must have {_INPUT_NDIM[key]} dimensions, got shape {tuple(x.shape)}"
        )
    return x


def channels_last_3d(x: torch.Tensor) -> torch.Tensor:
    """A clip [B, C, T, H, W] in channels-last memory order: CPU 3D convolutions (with weights in the
    same order, `module.to(memory_format=torch.channels_last_3d)`) run 20-30 % faster on it."""
    return x.contiguous(memory_format=torch.channels_last_3d)


def check_frames(clip: torch.Tensor, expected: int, model_name: str) -> None:
    """For models built for a fixed clip length (frames stacked as channels)."""
    if clip.shape[2] != expected:
        raise ModelInputError(
            f"model {model_name!r} was built for clips of {expected} frames (cfg clip_len), got {clip.shape[2]}"
        )


def frames_to_images(clip: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B*T, C, H, W], frame-major within each clip (undo with `images_to_clip`)."""
    b, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(b * t, c, h, w)


def images_to_clip(images: torch.Tensor, frames: int) -> torch.Tensor:
    """[B*T, C, H, W] (frame-major within each clip, T = frames) -> [B, C, T, H, W] (a view)."""
    return images.view(-1, frames, *images.shape[1:]).transpose(1, 2)


def frames_to_channels(clip: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, T*C, H, W]: channel t*C + c holds channel c of frame t."""
    b, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(b, t * c, h, w)


def log_mean_softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """log(mean over `dim` of softmax(logits)): averaged class probabilities, kept in log space.

    The result is a log-probability, so it can stand in for logits: softmax gives back the averaged
    probabilities and cross-entropy on it is the negative log-likelihood of the averaged prediction.
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    return torch.logsumexp(log_probs, dim=dim) - math.log(logits.shape[dim])


class TemporalPoolMLP(nn.Module):
    """Per-frame features [B, T, D] -> logits [B, num_classes]: mean and max over T, then a one-hidden-layer MLP.

    The layer norm brings raw CNN features (non-negative, scale set by the trunk) to a common scale.
    """

    def __init__(self, feature_dim: int, num_classes: int, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(2 * feature_dim),
            nn.Linear(2 * feature_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.mean(dim=1), features.amax(dim=1)], dim=1)
        return self.mlp(pooled)


def classifier(feature_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout then a linear layer: the new head put on a pretrained trunk."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
