"""I3D (Carreira and Zisserman 2017): a 2D ImageNet network inflated to 3D.

The pretrained EfficientNet-Lite0 becomes a 3D network layer by layer:
- each k x k kernel becomes k_t x k x k, the 2D kernel repeated over k_t frames and divided by k_t
  (depthwise kernels too; 1x1 kernels become 1x1x1), so on a clip of identical frames ("boring
  video") every layer gives the 2D network's response;
- batch norms are copied (weights and running statistics).
The depthwise convolutions and the stem are 3 frames long (`temporal_kernel`); the blocks listed in
`temporal_stride_blocks` also halve time (by default the two deepest of the blocks that halve space,
so an 8-frame clip ends with 2). `stem_temporal_stride=2` halves time in the stem as I3D's first
convolution does: under half the cost, but it learns the 8-frame motion benchmark more slowly
per epoch, so the default keeps every frame (`bench/classify.py` uses it with more epochs; see
docs/ARCHITECTURE.md). Padding is TensorFlow "SAME" as in the 2D network; in time the edge
frames are repeated rather than zero-padded, which keeps the boring-video equivalence exact at the
clip's ends (zero frames would be mid-grey frames that were never seen).
"i3d-nonlocal" inserts `NonLocalBlock`s after the blocks listed in `nonlocal_after`.

Inside the network a clip is stored as its frames, [B*T, C, H, W] in channels-last order, and each
3D convolution runs as 2D convolutions of the frames its temporal taps reach (`SamePadConv3d.
forward_frames`): the same numbers as Conv3d up to float rounding, on CPU kernels that are fast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from framegram.video_models.models.layers import (
    ModelConfigError,
    batch_input,
    classifier,
    frames_to_images,
    images_to_clip,
)
from framegram.video_models.models.non_local import NonLocalBlock
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow "SAME": the output has ceil(size / stride) positions."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SamePadConv3d(nn.Conv3d):
    """A 3D convolution padded "SAME" (zeros in space, as the 2D network; repeated edge frames in time),
    computed on clips stored as frames (see `forward_frames`)."""

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip [B, C, T, H, W] -> [B, C', T', H', W'], through `forward_frames`."""
        out, steps = self.forward_frames(clip_to_frames(clip), clip.shape[2])
        return images_to_clip(out, steps)

    def forward_frames(self, x: torch.Tensor, frames: int) -> tuple[torch.Tensor, int]:
        """x [B*T, C, H, W] (frame-major within each clip, T = frames) -> ([B*T', C', H', W'], T').

        The 3D convolution is the sum over its k_t temporal taps of 2D convolutions of the frames each
        tap reaches. Written out because PyTorch's CPU Conv3d has no fast kernel for the depthwise
        convolutions, and its 1x1x1 ones are slower than the 2D channels-last kernels this runs on: a
        training step of the 8x64x64 I3D takes about half the time it took with Conv3d
        (docs/ARCHITECTURE.md).
        """
        (kt, kh, kw), (st, sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[2], kh, sh)
        left, right = same_padding(x.shape[3], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        before, after = same_padding(frames, kt, st)
        steps = (frames + before + after - kt) // st + 1
        clips = x.shape[0] // frames
        out = None
        for tap in range(kt):
            # padded frame s*st + tap is original frame s*st + tap - before, clamped: repeated edge frames
            source = (torch.arange(steps) * st + tap - before).clamp(0, frames - 1)
            picked = x if kt == 1 and st == 1 else pick_frames(x, clips, frames, source)
            y = F.conv2d(picked, self.weight[:, :, tap], None, (sh, sw), 0, self.dilation[1:], self.groups)
            out = y if out is None else out + y
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out, steps


def pick_frames(x: torch.Tensor, clips: int, frames: int, source: torch.Tensor) -> torch.Tensor:
    """From x [clips*frames, C, H, W] the frames `source` [T'] of every clip: [clips*T', C, H, W],
    channels-last (gathered in the channels-last order, so no copy back is needed)."""
    flat = (torch.arange(clips).unsqueeze(1) * frames + source).flatten()
    return x.permute(0, 2, 3, 1).index_select(0, flat).permute(0, 3, 1, 2)


def clip_to_frames(clip: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B*T, C, H, W] channels-last, frame-major within each clip."""
    return frames_to_images(clip).contiguous(memory_format=torch.channels_last)


def inflate_conv(conv: nn.Conv2d, t_kernel: int, t_stride: int = 1) -> SamePadConv3d:
    """A 2D convolution [out, in/groups, k, k] as a 3D one [out, in/groups, t_kernel, k, k], kernel repeated / t_kernel."""
    inflated = SamePadConv3d(
        conv.in_channels,
        conv.out_channels,
        (t_kernel, *conv.kernel_size),
        stride=(t_stride, *conv.stride),
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        inflated.weight.copy_(conv.weight.unsqueeze(2).repeat(1, 1, t_kernel, 1, 1) / t_kernel)
        if conv.bias is not None:
            inflated.bias.copy_(conv.bias)
    return inflated


def inflate_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    """A copy of `bn`: on clips stored as frames [B*T, C, H, W] a 2D batch norm pools its statistics
    over batch, time and space, as BatchNorm3d does on [B, C, T, H, W] (same state-dict keys too)."""
    inflated = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    inflated.load_state_dict(bn.state_dict())
    return inflated


def drop_path(x: torch.Tensor, frames: int, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth on a residual branch [B*T, ...]: zero whole clips (all T frames) with
    probability `rate`, rescale the rest."""
    if not training or rate == 0.0:
        return x
    keep = torch.rand((x.shape[0] // frames, 1) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= rate
    return (x.view(-1, frames, *x.shape[1:]) * keep / (1.0 - rate)).view_as(x)


def conv_bn_act(layer: nn.Sequential, x: torch.Tensor, frames: int) -> tuple[torch.Tensor, int]:
    """A (SamePadConv3d, batch norm[, activation]) Sequential applied to frames [B*T, C, H, W]."""
    x, frames = layer[0].forward_frames(x, frames)
    for module in layer[1:]:
        x = module(x)
    return x, frames


class InflatedMBConv(nn.Module):
    """An EfficientNet-Lite MBConv block in 3D: 1x1x1 expand, k_t x k x k depthwise, 1x1x1 project, residual."""

    def __init__(self, block: nn.Module, t_kernel: int, t_stride: int, drop_rate: float):
        super().__init__()
        self.expand = None
        if block._block_args.expand_ratio != 1:
            self.expand = nn.Sequential(inflate_conv(block._expand_conv, 1), inflate_bn(block._bn0), nn.ReLU6())
        self.depthwise = nn.Sequential(
            inflate_conv(block._depthwise_conv, t_kernel, t_stride), inflate_bn(block._bn1), nn.ReLU6()
        )
        self.project = nn.Sequential(inflate_conv(block._project_conv, 1), inflate_bn(block._bn2))
        args = block._block_args
        # The 2D block's own rule (repeats of a stage have stride 1 and equal widths); no skip when time shrinks.
        same_shape = args.stride == 1 and args.input_filters == args.output_filters and t_stride == 1
        self.residual = bool(args.id_skip and same_shape)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor, frames: int) -> tuple[torch.Tensor, int]:
        """Frames [B*T, C, H, W] -> ([B*T', C', H', W'], T')."""
        y = conv_bn_act(self.expand, x, frames)[0] if self.expand is not None else x
        y, out_frames = conv_bn_act(self.depthwise, y, frames)
        y = conv_bn_act(self.project, y, out_frames)[0]
        if self.residual:
            return x + drop_path(y, frames, self.drop_rate, self.training), frames
        return y, out_frames


class I3D(nn.Module):
    """rgb [B, 3, T, H, W] -> logits [B, num_classes], from EfficientNet-Lite0's ImageNet weights inflated to 3D.

    temporal_kernel: frames seen by the stem and every depthwise convolution (1 gives a 2D network per frame).
    stem_temporal_stride: 1 keeps every frame in the stem, 2 halves time there.
    temporal_stride_blocks: indices (0-15) of the MBConv blocks that also halve time.
    nonlocal_after: indices of the blocks followed by a `NonLocalBlock`.
    pretrained: inflate ImageNet weights (else a random 2D network is inflated).
    """

    def __init__(
        self,
        num_classes: int,
        temporal_kernel: int = 3,
        temporal_stride_blocks: tuple[int, ...] = (5, 11),
        stem_temporal_stride: int = 1,
        nonlocal_after: tuple[int, ...] = (),
        dropout: float = 0.2,
        pretrained: bool = True,
        name: str = "i3d",
    ):
        super().__init__()
        self.name = name
        trunk = Lite0Trunk(pretrained=pretrained)
        count = len(trunk.blocks)
        bad = sorted(i for i in (*temporal_stride_blocks, *nonlocal_after) if not 0 <= i < count)
        if bad or temporal_kernel < 1:
            raise ModelConfigError(
                f"model {name!r}: block indices must lie in 0..{count - 1} and temporal_kernel >= 1, got {bad}, {temporal_kernel}"
            )
        self.stem = nn.Sequential(
            inflate_conv(trunk.stem, temporal_kernel, stem_temporal_stride), inflate_bn(trunk.stem_bn), nn.ReLU6()
        )
        self.blocks = nn.ModuleList(
            InflatedMBConv(
                block,
                temporal_kernel,
                2 if index in temporal_stride_blocks else 1,
                trunk.drop_rates[index],
            )
            for index, block in enumerate(trunk.blocks)
        )
        self.nonlocal_blocks = nn.ModuleDict(
            {str(i): NonLocalBlock(trunk.blocks[i]._block_args.output_filters) for i in sorted(nonlocal_after)}
        )
        self.head = nn.Sequential(inflate_conv(trunk.head, 1), inflate_bn(trunk.head_bn), nn.ReLU6())
        self.classifier = classifier(LITE0_FEATURES, num_classes, dropout)

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb [B, 3, T, H, W] -> features [B, 1280], the mean of the last feature map over time and space."""
        x, frames = conv_bn_act(self.stem, clip_to_frames(rgb), rgb.shape[2])
        for index, block in enumerate(self.blocks):
            x, frames = block(x, frames)
            if str(index) in self.nonlocal_blocks:
                clip = self.nonlocal_blocks[str(index)](images_to_clip(x, frames))
                x = clip_to_frames(clip)
        x = conv_bn_act(self.head, x, frames)[0]
        return images_to_clip(x, frames).mean(dim=(2, 3, 4))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.classifier(self.features(batch_input(batch, "rgb", self.name)))


@register_model(
    "i3d",
    inputs=("rgb",),
    summary="EfficientNet-Lite0 ImageNet weights inflated to 3D (3-frame depthwise kernels), I3D-style",
)
def i3d(num_classes: int, **cfg) -> I3D:
    return I3D(num_classes, **cfg)


@register_model(
    "i3d-nonlocal",
    inputs=("rgb",),
    summary="inflated EfficientNet-Lite0 with non-local blocks after blocks 7 and 10 (cfg nonlocal_after)",
)
def i3d_nonlocal(num_classes: int, nonlocal_after: tuple[int, ...] = (7, 10), **cfg) -> I3D:
    return I3D(num_classes, nonlocal_after=tuple(nonlocal_after), name="i3d-nonlocal", **cfg)
