"""R(2+1)D (Tran et al. 2018): a 3D ResNet whose 3x3x3 convolutions are split into 2D spatial + 1D temporal.

Each t x d x d convolution becomes a 1 x d x d convolution to M channels, batch norm, ReLU, then a
t x 1 x 1 convolution. M is chosen so that the pair has about as many parameters as the 3D
convolution it replaces (`midplanes`): same capacity, twice the nonlinearities, and easier
optimisation. Default: R(2+1)D-10 (one basic block per stage) at half width, for CPU training.
"""

from __future__ import annotations

import torch
from torch import nn

from framegram.video_models.models.layers import ModelConfigError, batch_input, channels_last_3d
from framegram.video_models.registry import register_model

#: Output channels of the four stages at width 1 (as in ResNet-18).
STAGE_CHANNELS = (64, 128, 256, 512)
#: The stem's spatial-to-temporal width at width 1 (the paper's 45 for a 3x7x7 stem to 64 channels).
STEM_MIDPLANES = 45


def midplanes(in_channels: int, out_channels: int, t: int = 3, d: int = 3) -> int:
    """M with d*d*in*M + t*M*out ~ t*d*d*in*out: the (2+1)D pair's parameters match the t x d x d conv's."""
    return (t * d * d * in_channels * out_channels) // (d * d * in_channels + t * out_channels)


class Conv2Plus1D(nn.Sequential):
    """[B, in, T, H, W] -> [B, out, T/stride, H/stride, W/stride]: 1x3x3 conv, BN, ReLU, 3x1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        mid = midplanes(in_channels, out_channels)
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    """Two (2+1)D convolutions with batch norms and a residual connection (1x1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Sequential(
            Conv2Plus1D(in_channels, out_channels, stride), nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(Conv2Plus1D(out_channels, out_channels), nn.BatchNorm3d(out_channels))
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm3d(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class R2Plus1D(nn.Module):
    """rgb [B, 3, T, H, W] -> logits [B, num_classes].

    blocks: basic blocks per stage, (1, 1, 1, 1) = R(2+1)D-10, (2, 2, 2, 2) = R(2+1)D-18.
    width: channel multiplier on (64, 128, 256, 512). Stages 2-4 halve time and space; the stem
    halves space only; global average pooling before the classifier takes any clip size.
    """

    def __init__(self, num_classes: int, blocks: tuple[int, ...] = (1, 1, 1, 1), width: float = 0.5, dropout: float = 0.2):
        super().__init__()
        if len(blocks) != len(STAGE_CHANNELS) or min(blocks) < 1 or width <= 0:
            raise ModelConfigError(f"r2plus1d: blocks must be 4 counts >= 1 and width > 0, got {blocks}, {width}")
        channels = [max(1, round(c * width)) for c in STAGE_CHANNELS]
        stem_mid = max(1, round(STEM_MIDPLANES * width))
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, channels[0], (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(channels[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = channels[0]
        for index, (count, out_channels) in enumerate(zip(blocks, channels, strict=True)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(in_channels, out_channels, stride)]
            stage += [BasicBlock(out_channels, out_channels, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, num_classes))
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, batch: dict) -> torch.Tensor:
        x = self.stages(self.stem(channels_last_3d(batch_input(batch, "rgb", "r2plus1d"))))
        return self.head(x.mean(dim=(2, 3, 4)))


@register_model(
    "r2plus1d",
    inputs=("rgb",),
    summary="R(2+1)D-10 at half width: 3x3x3 convolutions factorised into 1x3x3 spatial + 3x1x1 temporal",
)
def r2plus1d(num_classes: int, **cfg) -> R2Plus1D:
    return R2Plus1D(num_classes, **cfg)
