"""The model registry, in the style of torchvision.models.

    from framegram.video_models import get_model, list_models, model_meta
    net = get_model("c3d", num_classes=8)                 # an nn.Module: forward(batch dict) -> logits [B, C]
    meta = model_meta("c3d", num_classes=8, clip=(16, 112, 112))   # parameters, GMACs at that input

Every model's forward takes the batch dict of `framegram.video_models.inputs` and returns logits
[B, num_classes]. A model registers itself with `@register_model(name, inputs=(...), summary=...)`
on a factory `f(num_classes, **cfg) -> nn.Module`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from framegram.errors import FramegramError


class UnknownModelError(FramegramError):
    """No model of that name is registered."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable
    inputs: tuple[str, ...]
    summary: str
    fixed_clip_len: bool = False  #: built for one clip length (frames stacked as channels)


@dataclass(frozen=True)
class ModelMeta:
    """name; inputs (batch keys); parameters (trainable count); gmacs (multiply-accumulates, in G,
    for one clip of `clip` = (T, H, W)); summary (one line)."""

    name: str
    inputs: tuple[str, ...]
    parameters: int
    gmacs: float
    clip: tuple[int, int, int]
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, inputs: tuple[str, ...] = ("rgb",), summary: str = "",
                   fixed_clip_len: bool = False) -> Callable:
    """fixed_clip_len: the factory takes `clip_len` (see `model_cfg_for`)."""

    def decorate(factory: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, factory, tuple(inputs), summary, fixed_clip_len)
        return factory

    return decorate


def _load_all() -> None:
    import framegram.video_models.models  # noqa: F401  (each module registers its models)


def list_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    _load_all()
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_cfg_for(name: str, clip_len: int, **cfg) -> dict:
    """`cfg` plus the clip length for the models built for one (early fusion, two-stream)."""
    return {"clip_len": clip_len, **cfg} if model_entry(name).fixed_clip_len else dict(cfg)


def get_model(name: str, num_classes: int, **cfg):
    """A fresh model (pretrained parts loaded where the model has them)."""
    return model_entry(name).factory(num_classes=num_classes, **cfg)


def example_batch(inputs: tuple[str, ...], clip: tuple[int, int, int], batch: int = 1, framegram_dim: int = 1280) -> dict:
    """Zeros of the right shapes for each input kind (for shape checks and MAC counting)."""
    import torch

    t, h, w = clip
    shapes = {"rgb": (batch, 3, t, h, w), "flow": (batch, 2, t, h, w), "framegram": (batch, t, framegram_dim)}
    return {k: torch.zeros(shapes[k]) for k in inputs}


def count_macs(model, batch: dict) -> float:
    """Multiply-accumulates of one forward pass (torch's FlopCounterMode counts 2 FLOPs per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(batch)
    return counter.get_total_flops() / 2.0


def model_meta(name: str, num_classes: int, clip: tuple[int, int, int] = (8, 64, 64), **cfg) -> ModelMeta:
    """Parameters and GMACs of `name` at one clip of `clip` = (T, H, W)."""
    entry = model_entry(name)
    model = get_model(name, num_classes, **cfg).eval()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = count_macs(model, example_batch(entry.inputs, clip))
    return ModelMeta(name, entry.inputs, int(params), macs / 1e9, tuple(clip), entry.summary)
