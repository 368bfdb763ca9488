"""Non-local block (Wang et al. 2018): spatio-temporal self-attention inserted into a 3D CNN.

Every position of a [B, C, T, H, W] feature map attends to every other (embedded Gaussian:
softmax over theta(x_i) . phi(x_j), no scaling, as in the paper), so one layer links distant
frames and places that convolutions reach only after many layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NonLocalBlock(nn.Module):
    """z = x + BN(W_z(y)), y_i = sum_j softmax_j(theta(x_i) . phi(x_j)) g(x_j); shape [B, C, T, H, W] kept.

    inner_channels: width of theta, phi, g (default C / 2, as in the paper).
    subsample: max-pool phi and g by 1x2x2 (a quarter of the keys; the paper's cheaper variant).
    The output batch norm's scale and shift start at zero, so a freshly inserted block is exactly
    the identity and does not disturb a pretrained network.
    """

    def __init__(self, channels: int, inner_channels: int | None = None, subsample: bool = True):
        super().__init__()
        inner = inner_channels or max(channels // 2, 1)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        # ceil_mode keeps one key per row/column of a map only 1 pixel wide.
        self.pool_keys = nn.MaxPool3d((1, 2, 2), ceil_mode=True) if subsample else nn.Identity()
        self.out = nn.Conv3d(inner, channels, 1, bias=False)
        self.out_bn = nn.BatchNorm3d(channels)
        nn.init.zeros_(self.out_bn.weight)
        nn.init.zeros_(self.out_bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        queries = self.theta(x).flatten(2).transpose(1, 2)  # [B, THW, inner]
        pooled = self.pool_keys(x)
        keys = self.phi(pooled).flatten(2).transpose(1, 2)  # [B, N_keys, inner]
        values = self.g(pooled).flatten(2).transpose(1, 2)
        y = F.scaled_dot_product_attention(queries, keys, values, scale=1.0)  # embedded Gaussian: no 1/sqrt(d)
        y = y.transpose(1, 2).reshape(b, -1, t, h, w)
        return x + self.out_bn(self.out(y))
