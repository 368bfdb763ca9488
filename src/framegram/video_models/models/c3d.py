"""C3D (Tran et al. 2015): a VGG-like network of 3x3x3 convolutions, as published.

conv1 64 | pool1 1x2x2 | conv2 128 | pool2 2x2x2 | conv3a, conv3b 256 | pool3 | conv4a, conv4b 512 |
pool4 | conv5a, conv5b 512 | pool5 2x2x2, padding (0, 1, 1) | fc6 4096 | fc7 4096 | fc8 classes.
All convolutions 3x3x3, stride 1, padding 1, each followed by a ReLU; dropout 0.5 after fc6 and fc7.
On the published 16x112x112 clip pool5 gives 512x1x4x4 = 8192 inputs to fc6 (about 38.5 G
multiply-accumulates per clip). Other clip sizes are brought to the same 1x4x4 by adaptive max
pooling in place of pool5, so fc6 keeps its size; the smallest clip is 8x16x16.

For training on a CPU, `width` scales every convolution's channels and `fc_dim` sets fc6/fc7
(e.g. width=0.25, fc_dim=512 trains at 8x64x64). `batch_norm` adds a batch norm after each
convolution (not in the original; it helps training from scratch). "c3d-nonlocal" inserts
`NonLocalBlock`s after the named convolutions (`nonlocal_after`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from framegram.video_models.models.layers import (
    ModelConfigError,
    ModelInputError,
    batch_input,
    channels_last_3d,
)
from framegram.video_models.models.non_local import NonLocalBlock
from framegram.video_models.registry import register_model

#: The clip C3D was designed for, (T, H, W).
C3D_CLIP = (16, 112, 112)
#: The convolutions in order: name -> output channels at width 1.
C3D_CONVS = OrderedDict(
    conv1=64, conv2=128, conv3a=256, conv3b=256, conv4a=512, conv4b=512, conv5a=512, conv5b=512
)
#: Pooling after these convolutions (kernel = stride), pool5 excepted.
C3D_POOLS = {"conv1": (1, 2, 2), "conv2": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2)}
#: pool4's output on the published clip; pool5 is applied as published only to this size.
_POOL5_INPUT = (2, 7, 7)
_FC6_GRID = (1, 4, 4)
_MIN_CLIP = (8, 16, 16)  # pool2..pool4 halve time three times, pool1..pool4 halve space four times


def conv3x3x3(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    layers = [nn.Conv3d(in_channels, out_channels, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm3d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class C3D(nn.Module):
    """rgb [B, 3, T, H, W] -> logits [B, num_classes]; T >= 8, H, W >= 16 (published clip: 16x112x112).

    name: the registered name, used in error messages.
    """

    def __init__(
        self,
        num_classes: int,
        width: float = 1.0,
        fc_dim: int = 4096,
        dropout: float = 0.5,
        batch_norm: bool = False,
        nonlocal_after: tuple[str, ...] = (),
        name: str = "c3d",
    ):
        super().__init__()
        self.name = name
        unknown = sorted(set(nonlocal_after) - set(C3D_CONVS))
        if unknown:
            raise ModelConfigError(f"model {name!r}: nonlocal_after names unknown layers {unknown}; layers: {list(C3D_CONVS)}")
        if width <= 0 or fc_dim < 1:
            raise ModelConfigError(f"model {name!r}: width must be > 0 and fc_dim >= 1, got {width}, {fc_dim}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = 3
        for layer, channels in C3D_CONVS.items():
            channels = max(1, round(channels * width))
            layers[layer] = conv3x3x3(in_channels, channels, batch_norm)
            if layer in nonlocal_after:
                layers[f"nonlocal_{layer}"] = NonLocalBlock(channels)
            if layer in C3D_POOLS:
                layers[f"pool_{layer}"] = nn.MaxPool3d(C3D_POOLS[layer])
            in_channels = channels
        self.features = nn.Sequential(layers)
        self.pool5 = nn.MaxPool3d(2, padding=(0, 1, 1))
        grid = _FC6_GRID[0] * _FC6_GRID[1] * _FC6_GRID[2]
        self.fc6 = nn.Linear(in_channels * grid, fc_dim)
        self.fc7 = nn.Linear(fc_dim, fc_dim)
        self.fc8 = nn.Linear(fc_dim, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = batch_input(batch, "rgb", self.name)
        if any(size < least for size, least in zip(rgb.shape[2:], _MIN_CLIP)):
            raise ModelInputError(
                f"model {self.name!r} needs clips of at least {'x'.join(map(str, _MIN_CLIP))} (T x H x W), "
                f"got {'x'.join(map(str, rgb.shape[2:]))}"
            )
        x = self.features(channels_last_3d(rgb))
        if tuple(x.shape[2:]) == _POOL5_INPUT:
            x = self.pool5(x)
        else:
            x = F.adaptive_max_pool3d(x, _FC6_GRID)
        x = self.dropout(F.relu(self.fc6(x.flatten(1))))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


@register_model(
    "c3d",
    inputs=("rgb",),
    summary="C3D: 8 convolutions 3x3x3, 2x2x2 pooling (1x2x2 first), fc6/fc7 4096; width and fc_dim scale it",
)
def c3d(num_classes: int, **cfg) -> C3D:
    return C3D(num_classes, **cfg)


@register_model(
    "c3d-nonlocal",
    inputs=("rgb",),
    summary="C3D with non-local (self-attention) blocks after conv3b and conv4b (cfg nonlocal_after)",
)
def c3d_nonlocal(num_classes: int, nonlocal_after: tuple[str, ...] = ("conv3b", "conv4b"), **cfg) -> C3D:
    return C3D(num_classes, nonlocal_after=tuple(nonlocal_after), name="c3d-nonlocal", **cfg)
