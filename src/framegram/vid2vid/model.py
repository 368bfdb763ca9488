"""The networks of video-to-video synthesis (after Wang et al. 2018, vid2vid), small enough to train on CPU.

`SequentialGenerator`: frame t from the label maps of frames t, t-1, t-2 and the two frames it made
before. Three heads: a hallucinated image h_t, a flow w_t (pixels, backward: where each pixel of
frame t was in frame t-1) and an occlusion mask m_t in [0, 1]; the frame is
    x_t = (1 - m_t) * warp(x_{t-1}, w_t) + m_t * h_t,
so content that only moved is copied and only what appears is invented. `temporal=False` is the
per-frame baseline (pix2pix-like: the current label map in, h_t out); `warp=False` the ablation that
keeps the previous frames as inputs but outputs h_t alone.

`PatchDiscriminator` (LSGAN, feature maps returned for feature matching), `MultiscaleDiscriminator`
(the image discriminator on the label map and the frame at full and half resolution) and the video
discriminator (a PatchDiscriminator over K consecutive frames and the K-1 flows between them).

Shapes: label maps one-hot float [B, C, H, W]; frames float [B, 3, H, W] in [-1, 1]; flows float
[B, 2, H, W] in pixels (x, y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PREVIOUS = 2  #: label maps and frames before t the generator sees


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample `image` [B, C, H, W] at each pixel's position plus `flow` [B, 2, H, W] (pixels): the
    backward warp (`mode` "bilinear" or "bicubic", borders repeated)."""
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij")
    x = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    y = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return F.grid_sample(image, torch.stack([x, y], dim=-1), mode=mode, padding_mode="border", align_corners=True)


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"), _norm(channels),
                                  nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"), _norm(channels))

    def forward(self, x):
        return x + self.body(x)


class SequentialGenerator(nn.Module):
    """See the module's docstring. forward(labels, previous_labels, previous_frames) → dict with
    "frame", "hallucinated", and (temporal with warp) "flow", "mask"; previous_* are lists of
    PREVIOUS tensors, oldest first (zeros before the video starts)."""

    def __init__(self, classes: int, width: int = 32, blocks: int = 4, temporal: bool = True, warp: bool = True,
                 resample: str = "bicubic"):
        super().__init__()
        self.classes, self.temporal, self.use_warp = classes, temporal, warp and temporal
        # bicubic: a frame copied forward through many warps blurs far less than with bilinear
        self.resample = resample
        inputs = classes + (PREVIOUS * (classes + 3) if temporal else 0)
        self.encode = nn.Sequential(
            nn.Conv2d(inputs, width, 7, padding=3, padding_mode="reflect"), _norm(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), _norm(2 * width), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), _norm(4 * width), nn.ReLU(inplace=True),
            *[_Residual(4 * width) for _ in range(blocks)])

        def decoder() -> nn.Sequential:
            return nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * width, 2 * width, 3, padding=1),
                _norm(2 * width), nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * width, width, 3, padding=1),
                _norm(width), nn.ReLU(inplace=True))

        self.image_decoder = decoder()
        self.image_head = nn.Conv2d(width, 3, 7, padding=3, padding_mode="reflect")
        if self.use_warp:
            self.flow_decoder = decoder()
            self.flow_head = nn.Conv2d(width, 2, 3, padding=1)
            self.mask_head = nn.Conv2d(width, 1, 3, padding=1)
            nn.init.zeros_(self.flow_head.weight)  # start from "nothing moved"
            nn.init.zeros_(self.flow_head.bias)

    def forward(self, labels: torch.Tensor, previous_labels: list[torch.Tensor] | None = None,
                previous_frames: list[torch.Tensor] | None = None, first: bool = False) -> dict[str, torch.Tensor]:
        parts = [labels]
        if self.temporal:
            parts += list(previous_labels) + list(previous_frames)
        features = self.encode(torch.cat(parts, dim=1))
        hallucinated = torch.tanh(self.image_head(self.image_decoder(features)))
        if not self.use_warp:
            return {"frame": hallucinated, "hallucinated": hallucinated}
        flow_features = self.flow_decoder(features)
        size = labels.shape[-1]
        flow = self.flow_head(flow_features) * (size / 16.0)  # a unit output is a sixteenth of the frame
        mask = torch.sigmoid(self.mask_head(flow_features))
        if first:  # nothing to copy from before the first frame
            mask = torch.ones_like(mask)
        warped = warp(previous_frames[-1], flow, self.resample).clamp(-1, 1)  # bicubic overshoots
        frame = (1 - mask) * warped + mask * hallucinated
        return {"frame": frame, "hallucinated": hallucinated, "flow": flow, "mask": mask, "warped": warped}


class PatchDiscriminator(nn.Module):
    """PatchGAN (70x70 at full scale in pix2pix; three strided layers here): forward(x) → list of feature
    maps, the last one the real/fake score per patch."""

    def __init__(self, inputs: int, width: int = 32, layers: int = 3):
        super().__init__()
        blocks, channels = [], inputs
        for k in range(layers):
            out = width * 2**k
            blocks.append(nn.Sequential(nn.Conv2d(channels, out, 4, stride=2, padding=1),
                                        nn.InstanceNorm2d(out) if k else nn.Identity(), nn.LeakyReLU(0.2, inplace=True)))
            channels = out
        blocks.append(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels),
                                    nn.LeakyReLU(0.2, inplace=True)))
        blocks.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out


class MultiscaleDiscriminator(nn.Module):
    """PatchDiscriminators at full and half resolution (pix2pixHD): forward(x) → one feature list each."""

    def __init__(self, inputs: int, width: int = 32, scales: int = 2):
        super().__init__()
        self.scales = nn.ModuleList([PatchDiscriminator(inputs, width) for _ in range(scales)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for k, d in enumerate(self.scales):
            out.append(d(x if k == 0 else F.avg_pool2d(x, 2 ** k)))
        return out


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss over every scale's patch scores."""
    target = 1.0 if real else 0.0
    return sum(((scale[-1] - target) ** 2).mean() for scale in outputs) / len(outputs)


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of fake and real inputs (pix2pixHD)."""
    total, count = 0.0, 0
    for f_scale, r_scale in zip(fake, real):
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            total = total + F.l1_loss(f, r.detach())
            count += 1
    return total / max(count, 1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
