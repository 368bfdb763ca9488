"""Single-frame baseline: the pretrained 2D network classifies every frame; predictions are averaged over frames.

The baseline to try first (Karpathy et al. 2014): it sees appearance only, never motion.
"""

from __future__ import annotations

import torch
from torch import nn

from framegram.video_models.models.layers import (
    batch_input,
    classifier,
    frames_to_images,
    log_mean_softmax,
)
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model


class SingleFrame(nn.Module):
    """rgb [B, 3, T, H, W] -> log of the frame-averaged class probabilities [B, num_classes].

    EfficientNet-Lite0 (ImageNet weights, fine-tuned unless `freeze_trunk`) on each frame, a new
    linear head, softmax per frame, mean over the T frames (returned as a log-probability, usable as logits).
    """

    name = "single-frame"

    def __init__(self, num_classes: int, dropout: float = 0.2, pretrained: bool = True, freeze_trunk: bool = False,
                 frozen_blocks: int = 0):
        super().__init__()
        self.trunk = Lite0Trunk(pretrained=pretrained, trainable=not freeze_trunk, frozen_blocks=frozen_blocks)
        self.head = classifier(LITE0_FEATURES, num_classes, dropout)

    def frame_logits(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb [B, 3, T, H, W] -> per-frame logits [B, T, num_classes]."""
        b, _, t = rgb.shape[:3]
        return self.head(self.trunk.pooled(frames_to_images(rgb))).view(b, t, -1)

    def forward(self, batch: dict) -> torch.Tensor:
        return log_mean_softmax(self.frame_logits(batch_input(batch, "rgb", self.name)), dim=1)


@register_model(
    "single-frame",
    inputs=("rgb",),
    summary="pretrained EfficientNet-Lite0 on every frame, class probabilities averaged over frames",
)
def single_frame(num_classes: int, **cfg) -> SingleFrame:
    return SingleFrame(num_classes, **cfg)
