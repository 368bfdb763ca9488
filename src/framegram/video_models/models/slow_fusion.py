"""Slow fusion (Karpathy et al. 2014): 3D convolutions whose view in time widens layer by layer.

As in the paper, conv1 applies filters 4 frames long with temporal stride 2, conv2 and conv3 filters
2 long with stride 2, all "valid" in time: on a 10-frame clip conv1 gives 4 responses, conv2 2, and
conv3 1 that sees every frame. Higher layers get progressively more global information in both
space and time. The column follows the paper's AlexNet-like layout at reduced size (five
convolutions, two of them max-pooled), with batch norm in place of local response normalisation and
global average pooling plus one linear layer in place of the two 4096-wide fully connected layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from framegram.video_models.models.layers import ModelConfigError, batch_input, channels_last_3d
from framegram.video_models.registry import register_model

#: (output channels at width 1, temporal extent, temporal stride, spatial kernel, spatial stride, 1x2x2 max-pool after)
SLOW_FUSION_LAYERS = (
    (64, 4, 2, 5, 2, True),
    (128, 2, 2, 3, 1, True),
    (256, 2, 2, 3, 1, False),
    (256, 1, 1, 3, 1, False),
    (256, 1, 1, 3, 1, False),
)


class TemporalValidConv3d(nn.Conv3d):
    """A 3D convolution, "same" in space and "valid" in time.

    When the last temporal window would run past the clip (any clip length other than the ones the
    strides divide), the last frame is repeated to fill it rather than dropping frames: every frame
    stays in view, and a clip shorter than the filter still gives one response.
    """

    def __init__(self, in_channels: int, out_channels: int, t_extent: int, t_stride: int, k: int, stride: int):
        super().__init__(
            in_channels, out_channels, (t_extent, k, k), stride=(t_stride, stride, stride), padding=(0, k // 2, k // 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, (extent, stride) = x.shape[2], (self.kernel_size[0], self.stride[0])
        windows = max(math.ceil((frames - extent) / stride), 0) + 1
        missing = (windows - 1) * stride + extent - frames
        if missing > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, missing), mode="replicate")
        return super().forward(x)


class SlowFusion(nn.Module):
    """rgb [B, 3, T, H, W] -> logits [B, num_classes]; width scales the channels (default 1: 64-128-256-256-256)."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.5):
        super().__init__()
        if width <= 0:
            raise ModelConfigError(f"slow-fusion: width must be > 0, got {width}")
        layers = []
        in_channels = 3
        for channels, t_extent, t_stride, k, stride, pool in SLOW_FUSION_LAYERS:
            channels = max(1, round(channels * width))
            layers += [
                TemporalValidConv3d(in_channels, channels, t_extent, t_stride, k, stride),
                nn.BatchNorm3d(channels),
                nn.ReLU(inplace=True),
            ]
            if pool:
                layers.append(nn.MaxPool3d((1, 2, 2), ceil_mode=True))
            in_channels = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, num_classes))
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, batch: dict) -> torch.Tensor:
        x = self.features(channels_last_3d(batch_input(batch, "rgb", "slow-fusion")))
        return self.head(x.mean(dim=(2, 3, 4)))


@register_model(
    "slow-fusion",
    inputs=("rgb",),
    summary="Karpathy et al.'s slow fusion: 3D convolutions 4, 2, 2 frames long with temporal stride 2",
)
def slow_fusion(num_classes: int, **cfg) -> SlowFusion:
    return SlowFusion(num_classes, **cfg)
