"""Frame encoders: a registry of pretrained image networks that turn frames into feature vectors."""

from framegram.encoders.base import EncoderSpec, FrameEncoder
from framegram.encoders.efficientnet_lite import EfficientNetLite0
from framegram.encoders.registry import DEFAULT_ENCODER, get_encoder, list_encoders, register_encoder

register_encoder("efficientnet-lite0")(EfficientNetLite0)


@register_encoder("efficientnet-lite0-int8")
def _efficientnet_lite0_int8(backend: str = "auto", threads: int | None = None) -> EfficientNetLite0:
    return EfficientNetLite0(backend, threads, precision="int8")


__all__ = [
    "DEFAULT_ENCODER",
    "EncoderSpec",
    "FrameEncoder",
    "get_encoder",
    "list_encoders",
    "register_encoder",
]
