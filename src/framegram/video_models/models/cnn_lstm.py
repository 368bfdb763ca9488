"""CNN + LSTM (Donahue et al. 2015; Ng et al. 2015): per-frame 2D CNN features read in order by an LSTM.

The per-frame signal is configurable:
- "rgb": the frames themselves (appearance);
- "diff": differences of consecutive frames, x[t+1] - x[t] (T - 1 steps; a cheap motion cue);
- "flow": the clip's optical flow (registered separately as "cnn-lstm-flow", whose batches carry flow).
"""

from __future__ import annotations

import torch
from torch import nn

from framegram.video_models.models.layers import (
    ModelConfigError,
    ModelInputError,
    batch_input,
    classifier,
    frames_to_images,
)
from framegram.video_models.models.pretrained import LITE0_FEATURES, Lite0Trunk
from framegram.video_models.registry import register_model

SOURCES = ("rgb", "diff", "flow")


class CNNLSTM(nn.Module):
    """Frames of `source` [B, C, T, H, W] -> Lite0 features [B, T', 1280] -> LSTM -> last hidden state -> logits [B, num_classes].

    hidden: LSTM width; layers: stacked LSTM layers. The trunk has ImageNet weights; for "flow" (2
    channels) its stem is the RGB stem averaged over colours (cross-modality initialisation).
    """

    def __init__(
        self,
        num_classes: int,
        source: str = "rgb",
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.5,
        pretrained: bool = True,
        freeze_trunk: bool = False,
        frozen_blocks: int = 0,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ModelConfigError(f"cnn-lstm source must be one of {SOURCES}, got {source!r}")
        self.source = source
        self.name = "cnn-lstm-flow" if source == "flow" else "cnn-lstm"
        in_channels = 2 if source == "flow" else 3
        self.trunk = Lite0Trunk(in_channels, stem_init="mean", pretrained=pretrained, trainable=not freeze_trunk,
                                frozen_blocks=frozen_blocks)
        self.lstm = nn.LSTM(LITE0_FEATURES, hidden, num_layers=layers, batch_first=True)
        self.head = classifier(hidden, num_classes, dropout)

    def frames(self, batch: dict) -> torch.Tensor:
        """The per-frame signal [B, C, T', H, W] the CNN reads."""
        if self.source == "flow":
            return batch_input(batch, "flow", self.name)
        rgb = batch_input(batch, "rgb", self.name)
        if self.source == "rgb":
            return rgb
        if rgb.shape[2] < 2:
            raise ModelInputError(f"model {self.name!r} with source 'diff' needs clips of at least 2 frames, got 1")
        return rgb[:, :, 1:] - rgb[:, :, :-1]

    def forward(self, batch: dict) -> torch.Tensor:
        frames = self.frames(batch)
        b, _, t = frames.shape[:3]
        features = self.trunk.pooled(frames_to_images(frames)).view(b, t, -1)
        _, (hidden, _) = self.lstm(features)
        return self.head(hidden[-1])


@register_model(
    "cnn-lstm",
    inputs=("rgb",),
    summary="EfficientNet-Lite0 features of each frame (source 'rgb') or frame difference ('diff') read by an LSTM",
)
def cnn_lstm(num_classes: int, source: str = "rgb", **cfg) -> CNNLSTM:
    if source == "flow":
        raise ModelConfigError("model 'cnn-lstm' reads RGB batches; for source 'flow' use the model 'cnn-lstm-flow'")
    return CNNLSTM(num_classes, source=source, **cfg)


@register_model(
    "cnn-lstm-flow",
    inputs=("flow",),
    summary="EfficientNet-Lite0 (colour-averaged stem) on each frame's optical flow, read by an LSTM",
)
def cnn_lstm_flow(num_classes: int, **cfg) -> CNNLSTM:
    return CNNLSTM(num_classes, source="flow", **cfg)
