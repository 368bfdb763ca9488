"""Super-image: the clip's frames tiled into one picture, classified by an image network.

Fan et al. 2021 ("Can an image classifier suffice for action recognition?"): an image CNN looking
at a grid of frames sees both their content and how it changes from tile to tile.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from framegram.video_models.models.layers import batch_input, classifier
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model


def tile_frames(clip: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, C, g*H, g*W] with g = ceil(sqrt(T)): frame t at grid row t // g, column t % g.

    Unused tiles (T not a square) are zeros, mid-grey after the pixel normalisation.
    """
    b, c, t, h, w = clip.shape
    grid = math.ceil(math.sqrt(t))
    clip = F.pad(clip, (0, 0, 0, 0, 0, grid * grid - t))
    tiles = clip.view(b, c, grid, grid, h, w)  # [B, C, row, column, H, W]
    return tiles.permute(0, 1, 2, 4, 3, 5).reshape(b, c, grid * h, grid * w)


class SuperImage(nn.Module):
    """rgb [B, 3, T, H, W] -> super-image [B, 3, gH, gW] -> EfficientNet-Lite0 (ImageNet weights) -> logits [B, num_classes]."""

    name = "super-image"

    def __init__(self, num_classes: int, dropout: float = 0.2, pretrained: bool = True, freeze_trunk: bool = False,
                 frozen_blocks: int = 0):
        super().__init__()
        self.trunk = Lite0Trunk(pretrained=pretrained, trainable=not freeze_trunk, frozen_blocks=frozen_blocks)
        self.head = classifier(LITE0_FEATURES, num_classes, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.trunk.pooled(tile_frames(batch_input(batch, "rgb", self.name))))


@register_model(
    "super-image",
    inputs=("rgb",),
    summary="frames tiled into a ceil(sqrt(T)) grid, classified by pretrained EfficientNet-Lite0",
)
def super_image(num_classes: int, **cfg) -> SuperImage:
    return SuperImage(num_classes, **cfg)
