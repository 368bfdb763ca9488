"""What every framegram training loop shares: the run folder (`RunFolder`: a versioned checkpoint
written atomically, read without running pickled code, the settings check of a resume, the metrics
file), seeding, the random states a checkpoint saves and a resume restores, deterministic kernels,
the learning-rate schedule and telling which settings differ from the ones asked.

Used by the video classifiers (`framegram.video_models.train`), the learned fingerprints
(`framegram.search.contrastive`) and the signal models (`framegram.vae.train`), so all resume to
bit-identical weights the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from framegram.errors import InputError
from framegram.io.atomic import atomic_path, atomic_write_bytes

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
CURVE_NAME = "learning_curve.png"


@dataclass(frozen=True)
class RunFolder:
    """A training run's folder: `checkpoint.pt` (after every epoch), `metrics.jsonl` (one record per
    epoch) and `learning_curve.png` (drawn by each trainer from the same records).

    kind: the checkpoint's "format" tag (a checkpoint of another kind is refused); version: the
    newest checkpoint layout this code writes and reads; error: the InputError subclass raised for
    the folder's problems; what: the kind in words, for messages. `checkpoint` is `folder /
    CHECKPOINT_NAME` unless `at()` was given a checkpoint file."""

    folder: Path
    kind: str
    version: int
    error: type[InputError]
    what: str
    checkpoint_name: str = CHECKPOINT_NAME

    @classmethod
    def at(cls, path: str | Path, kind: str, version: int, error: type[InputError], what: str) -> RunFolder:
        """The run of `path`: a run folder (made on the first save), or a checkpoint file inside one."""
        path = Path(path)
        if path.is_file():
            return cls(path.parent, kind, version, error, what, path.name)
        return cls(path, kind, version, error, what)

    @property
    def checkpoint(self) -> Path:
        return self.folder / self.checkpoint_name

    @property
    def metrics(self) -> Path:
        return self.folder / METRICS_NAME

    @property
    def curve(self) -> Path:
        return self.folder / CURVE_NAME

    def has_checkpoint(self) -> bool:
        return self.checkpoint.exists()

    def save(self, state: dict) -> None:
        """Write `state` (tensors, plain Python) as the checkpoint, atomically, tagged with kind and version."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.checkpoint) as tmp:
            torch.save({"format": self.kind, "version": self.version, **state}, tmp)

    def load(self) -> dict:
        """The saved checkpoint; `error` when there is none, it is damaged, of another kind, or newer
        than this code reads."""
        if not self.checkpoint.is_file():
            raise self.error(self.checkpoint, "no checkpoint here (train a model into this folder first)")
        checkpoint = read_checkpoint(self.checkpoint, self.kind, self.error, self.what)
        if checkpoint.get("version", 0) > self.version:
            raise self.error(self.checkpoint, f"written by a newer framegram (checkpoint version {checkpoint['version']}, "
                                              f"this one reads up to {self.version})")
        return checkpoint

    def refuse_other_run(self, changed: list[str], error: type[InputError] | None = None) -> None:
        """Refuse to resume when `changed` (from `changed_settings`) lists anything."""
        if changed:
            raise (error or self.error)(self.checkpoint, "holds a run with other settings (" + "; ".join(changed)
                                        + "); choose another output folder or delete it")

    def write_metrics(self, history: list[dict]) -> None:
        """metrics.jsonl, rewritten whole from the checkpoint's history."""
        atomic_write_bytes(self.metrics, "".join(json.dumps(record) + "\n" for record in history).encode())


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
