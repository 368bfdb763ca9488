"""Late fusion: per-frame features of a 2D CNN, pooled over time and space, then an MLP.

Two registered variants share the head (`TemporalPoolMLP`: mean and max over T, then an MLP):
- "late-fusion": EfficientNet-Lite0 runs on the clip's frames (fine-tuned unless `freeze_trunk`),
  each frame's feature map averaged over H, W;
- "late-fusion-framegram": the rows of the clip's framegram, the same Lite0 features computed once at
  224x224 by the frame encoder: no CNN runs at training time, so it trains in seconds.
"""

from __future__ import annotations

import torch
from torch import nn

from framegram.video_models.models.layers import (
    ModelInputError,
    TemporalPoolMLP,
    batch_input,
    frames_to_images,
)
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model


class LateFusion(nn.Module):
    """rgb [B, 3, T, H, W] -> Lite0 features [B, T, 1280] (mean over each frame's H, W) -> MLP -> logits [B, num_classes]."""

    name = "late-fusion"

    def __init__(
        self,
        num_classes: int,
        hidden: int = 512,
        dropout: float = 0.5,
        pretrained: bool = True,
        freeze_trunk: bool = False,
        frozen_blocks: int = 0,
    ):
        super().__init__()
        self.trunk = Lite0Trunk(pretrained=pretrained, trainable=not freeze_trunk, frozen_blocks=frozen_blocks)
        self.head = TemporalPoolMLP(LITE0_FEATURES, num_classes, hidden, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = batch_input(batch, "rgb", self.name)
        b, _, t = rgb.shape[:3]
        return self.head(self.trunk.pooled(frames_to_images(rgb)).view(b, t, -1))


class LateFusionFramegram(nn.Module):
    """framegram [B, T, D] -> MLP on mean and max over T -> logits [B, num_classes]."""

    name = "late-fusion-framegram"

    def __init__(self, num_classes: int, feature_dim: int = LITE0_FEATURES, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.feature_dim = feature_dim
        self.head = TemporalPoolMLP(feature_dim, num_classes, hidden, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        rows = batch_input(batch, "framegram", self.name)
        if rows.shape[2] != self.feature_dim:
            raise ModelInputError(
                f"model {self.name!r} was built for {self.feature_dim}-d framegram rows (cfg feature_dim), "
                f"got {rows.shape[2]}-d"
            )
        return self.head(rows)


@register_model(
    "late-fusion",
    inputs=("rgb",),
    summary="EfficientNet-Lite0 per frame, features pooled over T, H, W (mean and max over T), then an MLP",
)
def late_fusion(num_classes: int, **cfg) -> LateFusion:
    return LateFusion(num_classes, **cfg)


@register_model(
    "late-fusion-framegram",
    inputs=("framegram",),
    summary="the late-fusion MLP on framegram rows (mean and max over T): no CNN at training time",
)
def late_fusion_framegram(num_classes: int, **cfg) -> LateFusionFramegram:
    return LateFusionFramegram(num_classes, **cfg)
