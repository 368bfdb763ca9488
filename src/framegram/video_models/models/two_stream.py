"""Two-stream network (Simonyan and Zisserman 2014): an appearance stream and a motion stream, scores averaged.

- spatial stream: the single-frame model on the RGB frames (class probabilities averaged over frames);
- temporal stream: the clip's optical flow, 2 channels x T frames stacked as 2T input channels of
  EfficientNet-Lite0 (stem initialised from the ImageNet RGB stem, cross-modality style).
Fusion averages the two streams' class probabilities, as in the paper. The output is the log of that
average: a log-probability, usable as logits (softmax gives the fused probabilities back), and
trained end to end it is the negative log-likelihood of the fused prediction.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from framegram.video_models.models.layers import (
    batch_input,
    check_frames,
    classifier,
    frames_to_channels,
)
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.models.single_frame import SingleFrame
from framegram.video_models.registry import register_model


class FlowStream(nn.Module):
    """flow [B, 2, clip_len, H, W] -> [B, 2*clip_len, H, W] -> EfficientNet-Lite0 -> logits [B, num_classes]."""

    def __init__(self, num_classes: int, clip_len: int, dropout: float, pretrained: bool):
        super().__init__()
        self.clip_len = clip_len
        self.trunk = Lite0Trunk(in_channels=2 * clip_len, stem_init="mean", pretrained=pretrained)
        self.head = classifier(LITE0_FEATURES, num_classes, dropout)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk.pooled(frames_to_channels(flow)))


class TwoStream(nn.Module):
    """rgb [B, 3, T, H, W] and flow [B, 2, T, H, W], T = clip_len -> log of the averaged probabilities [B, num_classes]."""

    name = "two-stream"

    def __init__(self, num_classes: int, clip_len: int = 8, dropout: float = 0.5, pretrained: bool = True,
                 frozen_blocks: int = 0):
        super().__init__()
        # frozen_blocks applies to the RGB stream only: the flow stream's trunk reads no images, so
        # its ImageNet filters are all tuned
        self.spatial = SingleFrame(num_classes, dropout=dropout, pretrained=pretrained, frozen_blocks=frozen_blocks)
        self.temporal = FlowStream(num_classes, clip_len, dropout, pretrained)

    def stream_log_probs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Each stream's log class probabilities, (spatial, temporal), both [B, num_classes]."""
        flow = batch_input(batch, "flow", self.name)
        check_frames(flow, self.temporal.clip_len, self.name)
        spatial = self.spatial(batch)
        return spatial, torch.log_softmax(self.temporal(flow), dim=-1)

    def forward(self, batch: dict) -> torch.Tensor:
        spatial, temporal = self.stream_log_probs(batch)
        return torch.logaddexp(spatial, temporal) - math.log(2.0)


@register_model(
    "two-stream",
    fixed_clip_len=True,
    inputs=("rgb", "flow"),
    summary="RGB stream (single-frame) + stacked optical-flow stream, class probabilities averaged",
)
def two_stream(num_classes: int, **cfg) -> TwoStream:
    return TwoStream(num_classes, **cfg)
