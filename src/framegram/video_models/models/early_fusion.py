"""Early fusion: the T frames stacked as the channels of one 2D CNN (Karpathy et al. 2014).

Time is mixed in the very first convolution, so motion is seen at once, but each frame position
has its own weights: the model is not shift-invariant in time and takes one fixed clip length.
"""

from __future__ import annotations

import torch
from torch import nn

from framegram.video_models.models.layers import (
    batch_input,
    check_frames,
    classifier,
    frames_to_channels,
)
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model


class EarlyFusion(nn.Module):
    """rgb [B, 3, T, H, W] with T = clip_len -> [B, 3T, H, W] -> EfficientNet-Lite0 -> logits [B, num_classes].

    The stem takes 3 * clip_len channels, initialised from the ImageNet RGB stem repeated over the
    frames and divided by clip_len, so a clip of identical frames starts from the 2D network's response.
    """

    name = "early-fusion"

    def __init__(self, num_classes: int, clip_len: int = 8, dropout: float = 0.2, pretrained: bool = True):
        super().__init__()
        self.clip_len = clip_len
        self.trunk = Lite0Trunk(in_channels=3 * clip_len, stem_init="tile", pretrained=pretrained)
        self.head = classifier(LITE0_FEATURES, num_classes, dropout)

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb [B, 3, clip_len, H, W] -> pooled features [B, 1280]."""
        check_frames(rgb, self.clip_len, self.name)
        return self.trunk.pooled(frames_to_channels(rgb))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch_input(batch, "rgb", self.name)))


@register_model(
    "early-fusion",
    fixed_clip_len=True,
    inputs=("rgb",),
    summary="frames stacked as channels (3 x clip_len) of one pretrained EfficientNet-Lite0",
)
def early_fusion(num_classes: int, **cfg) -> EarlyFusion:
    return EarlyFusion(num_classes, **cfg)
