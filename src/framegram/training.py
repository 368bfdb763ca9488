"""What every framegram training loop shares: seeding, the random states a checkpoint saves and a
resume restores, deterministic kernels, the learning-rate schedule, reading a run's checkpoint and
telling which settings differ from the ones asked.

Used by the video classifiers (`framegram.video_models.train`), the learned fingerprints
(`framegram.search.contrastive`) and the signal models (`framegram.vae.train`), so all resume to
bit-identical weights the same way.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from framegram.errors import InputError


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def random_states(generator: torch.Generator) -> dict:
    """Every random stream a training step may draw from (datasets often use numpy or random),
    plus `generator` (the one that orders the training data)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "loader": generator.get_state(),
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
    }


def set_random_states(states: dict, generator: torch.Generator) -> None:
    """Restore what `random_states` saved."""
    torch.set_rng_state(states["torch"])
    generator.set_state(states["loader"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Deterministic kernels while training (a warning, not an error, for ops that have none); the
    process-wide settings are restored afterwards."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill_before = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN, a debugging aid that changes no result
    # of a correct op (tested) but was the costliest op of a CPU TimeSformer step (docs/ARCHITECTURE.md).
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = fill_before


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_epochs: float, steps_per_epoch: int,
                  epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate per optimizer step: linear warm-up (at most half the run), then cosine to 0."""
    total = epochs * steps_per_epoch
    warmup = min(round(warmup_epochs * steps_per_epoch), total // 2)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def decoupled_weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: weight matrices and kernels decay, biases and norm scales do not
    (shrinking them only hurts). Frozen parameters are left out."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def read_checkpoint(path: Path, fmt: str, error: type[InputError], what: str) -> dict:
    """The dict a training loop saved at `path` with "format" `fmt`, read without running pickled
    code; `error(path, reason)` when it is damaged, not a dict, or of another format (`what` names
    the expected kind, e.g. "framegram video classifier checkpoint")."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip or pickle
        raise error(path, f"damaged or not a checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != fmt:
        raise error(path, f"not a {what}")
    return checkpoint


def changed_settings(before: dict, now: dict, defaults: dict | None = None) -> list[str]:
    """"key=old there, new now" for every key of `now` whose value differs in `before`. A key that
    `before` lacks (saved before that setting existed) counts as its value in `defaults`: settings
    are added with the default that keeps the earlier behaviour."""
    before = {**(defaults or {}), **before}
    return [f"{key}={before.get(key)!r} there, {value!r} now" for key, value in now.items() if before.get(key) != value]


def restore_state(checkpoint: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  schedule: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator) -> list[dict]:
    """Put a checkpoint's weights, optimizer, schedule and random states back; return its history.
    Call it after the schedule is built (building one overwrites the optimizer's learning rate) and
    draw nothing random afterwards before training goes on."""
    model.load_state_dict(checkpoint["model_state"])
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    schedule.load_state_dict(checkpoint["scheduler_state"])
    set_random_states(checkpoint["rng"], generator)
    return list(checkpoint["history"])
