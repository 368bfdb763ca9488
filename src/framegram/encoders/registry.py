"""Encoder registry: `get_encoder(name)` builds a registered encoder, `list_encoders()` names them."""

from __future__ import annotations

from collections.abc import Callable

from framegram.encoders.base import FrameEncoder
from framegram.errors import UnknownEncoderError

DEFAULT_ENCODER = "efficientnet-lite0"

_FACTORIES: dict[str, Callable[..., FrameEncoder]] = {}


def register_encoder(name: str) -> Callable[[Callable[..., FrameEncoder]], Callable[..., FrameEncoder]]:
    """Decorator: make `factory(backend=..., threads=...)` available as `get_encoder(name)`."""

    def decorate(factory: Callable[..., FrameEncoder]) -> Callable[..., FrameEncoder]:
        if name in _FACTORIES:
            raise ValueError(f"encoder {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def list_encoders() -> list[str]:
    return sorted(_FACTORIES)


def get_encoder(name: str = DEFAULT_ENCODER, backend: str = "auto", threads: int | None = None) -> FrameEncoder:
    """Build the encoder registered as `name` on `backend` ("auto", "onnxruntime" or "torch")."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownEncoderError(f"unknown encoder {name!r}; available: {', '.join(list_encoders())}") from None
    return factory(backend=backend, threads=threads)
