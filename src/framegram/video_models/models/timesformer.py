"""TimeSformer (Bertasius et al. 2021): a video transformer with divided space-time attention.

The clip is cut into non-overlapping patches (8x8 pixels by default), one token per patch per frame,
plus a class token. Each block attends in time, then in space, then applies an MLP:
- temporal attention: a patch token attends to the tokens at the same position in the other frames;
- spatial attention: a patch token attends to the tokens of its own frame and the class token
  (the class token attends within each frame; its per-frame results are averaged).
Divided attention costs T*N*(T + N) instead of (T*N)^2 for joint attention over N patches x T frames.
Learned positional embeddings: one per patch position (bicubically resized for another frame size)
and one per frame (linearly resized for another clip length). Defaults are small for CPU training.

Patch embedding: `stem="lite0"` (default) uses the first five blocks of the ImageNet EfficientNet-Lite0
(stride 8, 40 channels) and a 1x1 convolution, a "hybrid" tokenizer in the sense of the ViT paper;
`stem="linear"` is ViT's own, one linear map of each patch's pixels, learned from scratch. The
published TimeSformer starts from ImageNet ViT weights and is far worse from scratch; no ImageNet ViT
ships here, so the pretrained CNN stem is the nearest start (it learns the motion benchmark faster
per epoch than the linear stem). `stem="hybrid"` adds to each lite0 token the output of a small 3D
convolutional stem learned from scratch (C3D's first layers, narrower): pretrained features for what
is seen, 3D kernels on the pixels for motions of a pixel or two, which stride-8 features blur.

Tubelets: with `tubelet=1` (the paper's model) tokens are made frame by frame and frames meet only in
the temporal attention. With `tubelet=k > 1` one token covers k consecutive frames, as ViViT's tubelet
embedding: the linear stem maps each k x p x p block of pixels, the lite0 stem maps the stride-8
features of the k frames over a 3x3 neighbourhood of positions. A token can then compare a patch in
neighbouring frames before any attention, and there are k times fewer tokens in time. On the motion
benchmark single-frame tokens tell a motion's axis but not its sign; with 4-frame lite0 tubelets
only the two turns stay confused, and the hybrid stem learns them too: `bench/classify.py` uses
`tubelet=4, stem="hybrid"` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from framegram.video_models.models.layers import (
    ModelConfigError,
    ModelInputError,
    batch_input,
    frames_to_images,
    images_to_clip,
)
from framegram.video_models.models.pretrained import Lite0Trunk, freeze, through_blocks
from framegram.video_models.registry import register_model

STEMS = ("lite0", "linear", "hybrid")


class Attention(nn.Module):
    """Multi-head self-attention over [N, L, D] sequences."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # [N, heads, L, D/heads]
        return self.proj(y.transpose(1, 2).reshape(n, length, dim))


class DividedSpaceTimeBlock(nn.Module):
    """Tokens [B, 1 + T*N, D] (class token first, then frame-major patches) -> same shape."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.time_norm = nn.LayerNorm(dim)
        self.time_attention = Attention(dim, heads)
        self.space_norm = nn.LayerNorm(dim)
        self.space_attention = Attention(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def attend_in_time(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        """Residual temporal attention: each patch position's T tokens attend among themselves; class token untouched."""
        b, length, dim = tokens.shape
        patches = (length - 1) // frames
        x = tokens[:, 1:].reshape(b, frames, patches, dim).transpose(1, 2).reshape(b * patches, frames, dim)
        update = self.time_attention(self.time_norm(x))
        update = update.view(b, patches, frames, dim).transpose(1, 2).reshape(b, frames * patches, dim)
        return torch.cat([tokens[:, :1], tokens[:, 1:] + update], dim=1)

    def attend_in_space(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        """Residual spatial attention: each frame's N tokens plus the class token attend among themselves."""
        b, length, dim = tokens.shape
        patches = (length - 1) // frames
        cls = tokens[:, :1].expand(b, frames, dim).reshape(b * frames, 1, dim)
        x = torch.cat([cls, tokens[:, 1:].reshape(b * frames, patches, dim)], dim=1)  # [B*T, 1 + N, D]
        update = self.space_attention(self.space_norm(x))
        cls_update = update[:, 0].view(b, frames, dim).mean(dim=1, keepdim=True)
        patch_update = update[:, 1:].reshape(b, frames * patches, dim)
        return tokens + torch.cat([cls_update, patch_update], dim=1)

    def forward(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        tokens = self.attend_in_space(self.attend_in_time(tokens, frames), frames)
        return tokens + self.mlp(self.mlp_norm(tokens))


class Lite0Tokenizer(nn.Module):
    """Clip [B, 3, T, H, W] -> tokens [B, dim, T/tubelet, H/8, W/8]: EfficientNet-Lite0's stem and
    first five blocks (ImageNet weights) frame by frame, then a convolution to dim: 1x1 for single
    frames, tubelet frames x 3 x 3 positions for tubelets.

    frozen_blocks: n > 0 keeps the stem and the first n blocks (all five: the whole pretrained part)
    fixed, as `Lite0Trunk` does, and runs them without gradients.
    """

    BLOCKS = 5  #: blocks 0-4 end at stride 8 with 40 channels

    def __init__(self, dim: int, tubelet: int = 1, pretrained: bool = True, frozen_blocks: int = 0):
        super().__init__()
        if not 0 <= frozen_blocks <= self.BLOCKS:
            raise ModelConfigError(f"timesformer: frozen_blocks must be between 0 and {self.BLOCKS}, got {frozen_blocks}")
        trunk = Lite0Trunk(pretrained=pretrained)
        self.stem = nn.Sequential(trunk.stem, trunk.stem_bn, trunk.act)
        self.blocks = trunk.blocks[: self.BLOCKS]
        self.drop_rates = trunk.drop_rates[: self.BLOCKS]
        self.frozen_blocks = frozen_blocks
        freeze(self.frozen_modules())
        space = 1 if tubelet == 1 else 3
        self.proj = nn.Conv3d(trunk.blocks[self.BLOCKS - 1]._block_args.output_filters, dim, (tubelet, space, space),
                              stride=(tubelet, 1, 1), padding=(0, space // 2, space // 2))

    def frozen_modules(self) -> list[nn.Module]:
        return [self.stem, *self.blocks[: self.frozen_blocks]] if self.frozen_blocks else []

    def train(self, mode: bool = True) -> Lite0Tokenizer:
        super().train(mode)
        freeze(self.frozen_modules())
        return self

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [N, 3, H, W] -> the pretrained features [N, 40, H/8, W/8]."""
        return through_blocks(frames, self.stem, self.blocks, self.drop_rates, self.frozen_blocks).contiguous()

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.frame_features(frames_to_images(clip))
        return self.proj(images_to_clip(x, clip.shape[2]))


class PixelMotionTokenizer(nn.Module):
    """Clip [B, 3, T, H, W] -> [B, dim, T/tubelet, H/8, W/8]: two 3x3x3 convolutions with batch norm
    and ReLU (16 channels, then 32 strided 2 in space), then a tubelet x 4 x 4 convolution strided
    as large. Its last convolution starts at zero, so a hybrid stem starts as the lite0 one."""

    def __init__(self, dim: int, tubelet: int = 1):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv3d(3, 16, 3, padding=1, bias=False), nn.BatchNorm3d(16), nn.ReLU(inplace=True),
            nn.Conv3d(16, 32, 3, stride=(1, 2, 2), padding=1, bias=False), nn.BatchNorm3d(32), nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv3d(32, dim, (tubelet, 4, 4), stride=(tubelet, 4, 4))
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(clip.contiguous(memory_format=torch.channels_last_3d)))


class HybridTokenizer(nn.Module):
    """Clip [B, 3, T, H, W] -> tokens [B, dim, T/tubelet, H/8, W/8]: Lite0 tokens plus pixel-motion tokens."""

    def __init__(self, dim: int, tubelet: int = 1, frozen_blocks: int = 0):
        super().__init__()
        self.features = Lite0Tokenizer(dim, tubelet, frozen_blocks=frozen_blocks)
        self.motion = PixelMotionTokenizer(dim, tubelet)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.features(clip) + self.motion(clip)


class TimeSformer(nn.Module):
    """rgb [B, 3, T, H, W] -> logits [B, num_classes]; H and W multiples of `patch`.

    patch: patch side in pixels (8 for the lite0 and hybrid stems); stem: "lite0", "linear" or "hybrid"
    (see the module docstring);
    tubelet: frames per token (T must be a multiple of it);
    frozen_blocks: with the lite0 or hybrid stem, how many of its five pretrained blocks stay fixed
    (`Lite0Tokenizer`);
    dim, depth, heads, mlp_ratio: transformer size;
    image_size, num_frames: the clip the positional embeddings are learned for (others are resized).
    """

    def __init__(
        self,
        num_classes: int,
        patch: int = 8,
        dim: int = 192,
        depth: int = 4,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        image_size: int = 64,
        num_frames: int = 8,
        dropout: float = 0.1,
        stem: str = "lite0",
        tubelet: int = 1,
        frozen_blocks: int = 0,
    ):
        super().__init__()
        if dim % heads or image_size % patch or tubelet < 1 or num_frames % tubelet:
            raise ModelConfigError(
                f"timesformer: dim must be a multiple of heads, image_size of patch and num_frames of tubelet, got "
                f"dim {dim}, heads {heads}, image_size {image_size}, patch {patch}, num_frames {num_frames}, tubelet {tubelet}"
            )
        if stem not in STEMS or (stem != "linear" and patch != 8):
            raise ModelConfigError(f"timesformer: stem must be one of {STEMS} (lite0 and hybrid take patch 8), "
                                   f"got {stem!r}, patch {patch}")
        if stem == "linear" and frozen_blocks:
            raise ModelConfigError("timesformer: frozen_blocks needs the pretrained stem ('lite0' or 'hybrid'), got 'linear'")
        self.patch, self.tubelet = patch, tubelet
        self.grid = image_size // patch
        tokenizers = {
            "lite0": lambda: Lite0Tokenizer(dim, tubelet, frozen_blocks=frozen_blocks),
            "hybrid": lambda: HybridTokenizer(dim, tubelet, frozen_blocks=frozen_blocks),
            "linear": lambda: nn.Conv3d(3, dim, (tubelet, patch, patch), stride=(tubelet, patch, patch)),
        }
        self.patch_embed = tokenizers[stem]()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.space_pos = nn.Parameter(torch.zeros(1, dim, self.grid, self.grid))
        self.time_pos = nn.Parameter(torch.zeros(1, dim, num_frames // tubelet))
        for p in (self.cls_token, self.space_pos, self.time_pos):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def tokens(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb [B, 3, T, H, W] -> tokens [B, 1 + T'*N, D] with positional embeddings, T' = T/tubelet,
        N = (H/patch)*(W/patch)."""
        b, _, t, h, w = rgb.shape
        if h % self.patch or w % self.patch or t % self.tubelet:
            raise ModelInputError(f"model 'timesformer' needs frame sizes divisible by its patch {self.patch} and a clip "
                                  f"length divisible by its tubelet {self.tubelet}, got {t}x{h}x{w}")
        x = self.patch_embed(rgb)  # [B, D, T', H/p, W/p]
        t, grid = x.shape[2], x.shape[3:]
        space = self.space_pos if tuple(grid) == (self.grid, self.grid) else F.interpolate(
            self.space_pos, size=grid, mode="bicubic", align_corners=False
        )
        time = self.time_pos if t == self.time_pos.shape[2] else F.interpolate(
            self.time_pos, size=t, mode="linear", align_corners=False
        )
        x = x + space.unsqueeze(2) + time[..., None, None]
        patches = x.flatten(2).transpose(1, 2)  # [B, T'*N, D], frame-major
        return torch.cat([self.cls_token.expand(b, -1, -1), patches], dim=1)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = batch_input(batch, "rgb", "timesformer")
        x = self.tokens(rgb)
        for block in self.blocks:
            x = block(x, rgb.shape[2] // self.tubelet)
        return self.head(self.norm(x[:, 0]))


@register_model(
    "timesformer",
    inputs=("rgb",),
    summary="TimeSformer: 8x8 patches (tokens from pretrained EfficientNet-Lite0 blocks), divided space-time attention, 4 blocks of width 192",
)
def timesformer(num_classes: int, **cfg) -> TimeSformer:
    return TimeSformer(num_classes, **cfg)
