"""The network of learned fingerprints: a window of framegram rows -> one compact unit vector.

    rows [B, W, D] --unit-normalise each row--> Linear(D, hidden) + LayerNorm + GELU      (per frame)
                   --> + GELU(Conv1d(hidden, hidden, 3))                 (residual, local order in time)
                   --> mean over the window --> LayerNorm --> Linear(hidden, dims) --> unit-normalise

The rows are unit-normalised first, as the hand-designed fingerprint does, so the brightness of a
frame's features does not count. The mean over time makes the network accept windows of any
length (the last, partial window of a video; a query shorter than a window). Trained
contrastively by `framegram.search.contrastive`; used through `framegram.search.learned`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WindowEncoder(nn.Module):
    """rows [B, W, in_dim] (W >= 1 framegram rows) -> embeddings [B, dims] of unit length."""

    def __init__(self, in_dim: int = 1280, hidden: int = 512, dims: int = 64):
        super().__init__()
        self.frame = nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.temporal = nn.Conv1d(hidden, hidden, kernel_size=3, padding=1)
        self.pool_norm = nn.LayerNorm(hidden)
        self.project = nn.Linear(hidden, dims)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = self.frame(F.normalize(rows, dim=-1))  # [B, W, hidden]
        x = x + F.gelu(self.temporal(x.transpose(1, 2))).transpose(1, 2)
        return F.normalize(self.project(self.pool_norm(x.mean(dim=1))), dim=-1)
