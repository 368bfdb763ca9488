"""Train a registered video classifier on any clip dataset, resumably and reproducibly.

    config = TrainConfig(model="c3d", num_classes=8, epochs=20, class_names=tuple(train_set.classes))
    result = train(config, train_set, val_set, "runs/c3d")   # rerun the same line to resume
    result.history[-1]["val_acc"]

Datasets yield `(inputs, label)` items, `inputs` the batch dict of `framegram.video_models.inputs`
for one clip (tensors without the batch axis) and `label` an int. `inputs["video_index"]` (a long
scalar, as `VideoFolder` gives it) says which video a clip comes from, so that `evaluate` averages
the clip predictions per video.

A run folder holds `checkpoint.pt` (written atomically after every epoch: weights, optimizer,
schedule, random states, history, settings, model meta), `metrics.jsonl` (one line per epoch)
and `learning_curve.png`. Training again into the same folder resumes after the last finished
epoch and ends with exactly the weights an uninterrupted run reaches (same seed, same data,
same thread count); a folder holding another model or other settings is refused.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator
from rich.progress import Progress, TaskID
from torch.utils.data import DataLoader, Dataset

from framegram.errors import FramegramError, InputError
from framegram.plotting import save_figure
from framegram.progress import extraction_progress
from framegram.training import (
    RunFolder,
    changed_settings,
    decoupled_weight_decay_groups,
    deterministic_algorithms,
    random_states,
    restore_state,
    seed_everything,
    warmup_cosine,
)
from framegram.video_models.registry import get_model, model_entry, model_meta

#: Identifies a framegram classifier checkpoint; bump the version when its layout changes.
CHECKPOINT_FORMAT = "framegram-video-classifier"
CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = frozenset({"settings", "inputs", "model_meta", "train_clips", "epoch", "history", "model_state",
                              "optimizer_state", "scheduler_state", "rng"})
OPTIMIZERS = ("adamw", "sgd")


class TrainConfigError(FramegramError):
    """A training setting is out of range."""


class TrainDataError(FramegramError):
    """The training or validation data cannot be used with this configuration."""


class CheckpointError(InputError):
    """A checkpoint file is missing, damaged, or not a framegram classifier checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint holds another model, or was trained with other settings, than asked."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (two runs with equal configs and data are identical).

    model, model_cfg: registry name and the keyword arguments of its factory.
    num_classes, class_names: the label set (class_names[i] names label i; empty: "0", "1", ...).
    epochs, batch_size (clips), lr (peak learning rate), weight_decay (decoupled, on weight
    matrices and kernels only, not on biases and norm scales), optimizer ("adamw", or "sgd" with
    Nesterov momentum 0.9), warmup_epochs (linear warm-up from ~0, then cosine decay to 0 at
    the last step; at most half the run), seed (model init, shuffling, dropout, augmentation).
    init_from: a run folder or checkpoint whose trained weights start the network ("": the
    model's own initialisation). Every weight there must fit this network by name and shape, for
    the same classes; the network may add layers of its own, as a non-local block inserted into a
    trained C3D or I3D (the block starts as the identity, so the network starts where that run ended).
    clip_len, stride, size (H, W), clips_per_video: how the datasets cut clips (frames per clip,
    frames between clip frames, pixels, test-time clips averaged per video); the trainer only
    records them so that inference cuts clips the same way.
    """

    model: str
    num_classes: int
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    warmup_epochs: float = 1.0
    seed: int = 0
    clip_len: int = 8
    stride: int = 1
    size: tuple[int, int] = (64, 64)
    clips_per_video: int = 3
    model_cfg: dict = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    init_from: str = ""

    def __post_init__(self):
        problems = [
            f"{name} must be at least {low}, got {getattr(self, name)}"
            for name, low in [("num_classes", 2), ("epochs", 1), ("batch_size", 1), ("clip_len", 1),
                              ("stride", 1), ("clips_per_video", 1)]
            if getattr(self, name) < low
        ]
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"lr must be a positive number, got {self.lr}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.warmup_epochs >= 0:
            problems.append(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if len(self.size) != 2 or min(self.size) < 1:
            problems.append(f"size must be (height, width) in pixels, got {self.size}")
        if self.class_names and len(self.class_names) != self.num_classes:
            problems.append(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if problems:
            raise TrainConfigError(f"training settings for {self.model!r}: " + "; ".join(problems))

    def names(self) -> list[str]:
        """The class names, label order."""
        return list(self.class_names) or [str(i) for i in range(self.num_classes)]

    def settings(self) -> dict:
        """The config as plain JSON values (what a checkpoint stores and a resume compares)."""
        return json.loads(json.dumps({**asdict(self), "class_names": self.names()}))


@dataclass
class TrainResult:
    """model: the trained network (eval mode); history: one dict per epoch, as in metrics.jsonl;
    resumed_from: epochs already done when this call started (0: a fresh run)."""

    model: torch.nn.Module
    history: list[dict]
    checkpoint: Path
    metrics_log: Path
    learning_curve: Path
    resumed_from: int


@dataclass
class Evaluation:
    """Test-time result: clip probabilities averaged per video.

    accuracy: share of videos whose averaged prediction is right; video_probabilities float64
    [V, C] (rows sum to 1) and video_labels int64 [V], videos in increasing index order;
    confusion int64 [C, C] (rows: true class, columns: predicted; counts of videos);
    loss: mean cross-entropy of single clips (nats, comparable with the training loss);
    clip_accuracy: share of single clips classified right.
    """

    accuracy: float
    video_probabilities: np.ndarray
    video_labels: np.ndarray
    confusion: np.ndarray
    loss: float
    clip_accuracy: float


def train(
    config: TrainConfig,
    train_set: Dataset,
    val_set: Dataset | None,
    out_dir: str | Path,
    show_progress: bool = False,
) -> TrainResult:
    """Train `config.model` on `train_set`, validating on `val_set` (None: no validation) after
    every epoch; resume from `out_dir`'s checkpoint when there is one.

    Raises `CheckpointMismatchError` when `out_dir` holds a run of another model or other
    settings (or a training set of another size), `CheckpointError` for a damaged checkpoint,
    `TrainDataError` for a training set smaller than one batch or labels outside the classes.
    """
    folder = _run_folder(out_dir)
    if len(train_set) < config.batch_size:
        raise TrainDataError(f"the training set has {len(train_set)} clips, fewer than one batch of {config.batch_size}")
    with deterministic_algorithms():
        loader_generator = torch.Generator()
        loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True,
                            num_workers=0, generator=loader_generator)
        run = _Run.start(config, len(train_set), len(loader), loader_generator, folder)
        resumed_from = len(run.history)
        with extraction_progress(show_progress) as progress:
            for epoch in range(resumed_from, config.epochs):
                started = time.perf_counter()
                title = f"epoch {epoch + 1}/{config.epochs}"
                task = progress.add_task(title, total=len(loader))
                train_loss, train_acc = _train_one_epoch(run, loader, progress, task)
                record = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                          "val_loss": None, "val_acc": None, "val_clip_acc": None,
                          "lr": run.optimizer.param_groups[0]["lr"]}
                if val_set is not None:
                    val = evaluate(run.model, val_set, config.batch_size)
                    record.update(val_loss=val.loss, val_acc=val.accuracy, val_clip_acc=val.clip_accuracy)
                    progress.update(task, description=f"{title}  loss {train_loss:.3f}  val acc {val.accuracy:.3f}")
                record["seconds"] = round(time.perf_counter() - started, 3)
                run.history.append(record)
                run.save(folder)
                _write_run_files(run.history, folder)
    if resumed_from == config.epochs:  # a finished run asked again: nothing trained, files made sure of
        _write_run_files(run.history, folder)
    return TrainResult(run.model.eval(), run.history, folder.checkpoint, folder.metrics, folder.curve, resumed_from)


def evaluate(model: torch.nn.Module, dataset: Dataset, batch_size: int = 8) -> Evaluation:
    """Classify every clip of `dataset` and average the softmax probabilities per video.

    Items without "video_index" count as one video each. The model's train/eval mode is restored.
    """
    if len(dataset) == 0:
        raise TrainDataError("the evaluation set is empty")
    was_training = model.training
    model.eval()
    try:
        clip_probs, labels, videos, loss_sum = _predict_clips(model, dataset, batch_size)
    finally:
        model.train(was_training)
    num_classes = clip_probs.shape[1]
    video_ids, clip_video = torch.unique(videos, return_inverse=True)
    sums = torch.zeros(len(video_ids), num_classes, dtype=torch.float64).index_add_(0, clip_video, clip_probs)
    video_probs = sums / torch.bincount(clip_video, minlength=len(video_ids)).unsqueeze(1)
    # every clip of a video carries the video's label; take any one of them
    video_labels = torch.zeros(len(video_ids), dtype=torch.int64).scatter_(0, clip_video, labels)
    predicted = video_probs.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    confusion.index_put_((video_labels, predicted), torch.ones_like(predicted), accumulate=True)
    return Evaluation(
        accuracy=float((predicted == video_labels).double().mean()),
        video_probabilities=video_probs.numpy(),
        video_labels=video_labels.numpy(),
        confusion=confusion.numpy(),
        loss=loss_sum / len(labels),
        clip_accuracy=float((clip_probs.argmax(dim=1) == labels).double().mean()),
    )


def _predict_clips(model: torch.nn.Module, dataset: Dataset, batch_size: int):
    """Softmax float64 [N, C], labels [N], video indices [N] (the item's position when it has
    none) and the summed cross-entropy (nats) of every clip, in dataset order."""
    probs, labels, videos, loss_sum = [], [], [], 0.0
    with torch.no_grad():
        for inputs, label, video in _batches(DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)):
            logits = model(inputs)
            _check_labels(label, logits.shape[1], "evaluation")
            loss_sum += F.cross_entropy(logits, label, reduction="sum").item()
            seen = sum(map(len, labels))
            videos.append(video if video is not None else torch.arange(seen, seen + len(label)))
            probs.append(logits.softmax(dim=1).double())
            labels.append(label)
    return torch.cat(probs), torch.cat(labels), torch.cat(videos), loss_sum


def load_checkpoint(path: str | Path, expect_model: str | None = None) -> dict:
    """Read a run folder's checkpoint (or a checkpoint file), without executing pickled code.

    The dict holds "settings" (`TrainConfig.settings()`: model, model_cfg, class_names, clip_len,
    stride, size, clips_per_video, ...), "inputs" (batch keys the model takes), "model_meta",
    "epoch" (epochs finished), "history", "model_state", the optimizer, schedule and random
    states, and "path" (the file read). Raises `CheckpointError` (missing, damaged, foreign or
    newer file) and `CheckpointMismatchError` (a checkpoint of another model than `expect_model`).
    """
    folder = _run_folder(path)
    path = folder.checkpoint
    checkpoint = folder.load()
    missing = _CHECKPOINT_KEYS - checkpoint.keys()
    if missing:
        raise CheckpointError(path, f"damaged checkpoint: no {', '.join(sorted(missing))}")
    model = checkpoint["settings"]["model"]
    if expect_model is not None and model != expect_model:
        raise CheckpointMismatchError(path, f"holds a checkpoint of model {model!r}, not {expect_model!r}")
    checkpoint["path"] = str(path)
    return checkpoint


@dataclass
class _Run:
    """The mutable state of a run: what a checkpoint saves and a resume restores."""

    config: TrainConfig
    train_clips: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    loader_generator: torch.Generator
    meta: dict
    history: list[dict]

    @classmethod
    def start(cls, config: TrainConfig, train_clips: int, steps_per_epoch: int,
              loader_generator: torch.Generator, folder: RunFolder) -> _Run:
        """A fresh run seeded from `config.seed`, or the state saved in `folder`."""
        previous = load_checkpoint(folder.checkpoint, config.model) if folder.has_checkpoint() else None
        if previous is not None:
            _check_same_run(folder, previous, config, train_clips)
            meta = previous["model_meta"]
        else:
            meta = json.loads(json.dumps(asdict(model_meta(
                config.model, config.num_classes, clip=(config.clip_len, *config.size), **config.model_cfg))))
        seed_everything(config.seed)
        loader_generator.manual_seed(config.seed)
        model = get_model(config.model, config.num_classes, **config.model_cfg)
        if previous is None and config.init_from:
            _start_from_trained(model, config)
        optimizer = _optimizer(model, config)
        schedule = warmup_cosine(optimizer, config.warmup_epochs, steps_per_epoch, config.epochs)
        run = cls(config, train_clips, model.train(), optimizer, schedule, loader_generator, meta, [])
        if previous is not None:
            run.history = restore_state(previous, model, optimizer, schedule, loader_generator)
        return run

    def save(self, folder: RunFolder) -> None:
        folder.save({
            "settings": self.config.settings(),
            "inputs": list(model_entry(self.config.model).inputs),
            "model_meta": self.meta,
            "train_clips": self.train_clips,
            "epoch": len(self.history),
            "history": self.history,
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.schedule.state_dict(),
            "rng": random_states(self.loader_generator),
        })


def _run_folder(path: str | Path) -> RunFolder:
    """The run of a folder or of a checkpoint file inside one."""
    return RunFolder.at(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, "framegram video classifier checkpoint")


def _check_same_run(folder: RunFolder, checkpoint: dict, config: TrainConfig, train_clips: int) -> None:
    defaults = TrainConfig(model=config.model, num_classes=config.num_classes).settings()
    changed = changed_settings(checkpoint["settings"], config.settings(), defaults)
    if checkpoint["train_clips"] != train_clips:
        changed.append(f"{checkpoint['train_clips']} training clips there, {train_clips} now")
    folder.refuse_other_run(changed, CheckpointMismatchError)


def _start_from_trained(model: torch.nn.Module, config: TrainConfig) -> None:
    """Load the weights of `config.init_from`'s run into `model`; layers only `model` has keep their
    initialisation. Raises `CheckpointMismatchError` for a run on other classes or weights that do
    not fit."""
    source = load_checkpoint(config.init_from)
    path = Path(source["path"])
    if source["settings"]["class_names"] != config.names():
        raise CheckpointMismatchError(path, f"was trained on the classes {source['settings']['class_names']}, "
                                            f"not {config.names()}")
    own = model.state_dict()
    unfit = [f"{key} {tuple(value.shape)}" + (f" (here {tuple(own[key].shape)})" if key in own else " (not here)")
             for key, value in source["model_state"].items() if key not in own or own[key].shape != value.shape]
    if unfit:
        shown = "; ".join(unfit[:3]) + (f"; and {len(unfit) - 3} more" if len(unfit) > 3 else "")
        raise CheckpointMismatchError(path, f"holds {source['settings']['model']!r} weights that do not fit "
                                            f"{config.model!r}: {shown}")
    model.load_state_dict(source["model_state"], strict=False)


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = decoupled_weight_decay_groups(model, config.weight_decay)  # pretrained parts may be frozen
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def _train_one_epoch(run: _Run, loader: DataLoader, progress: Progress, task: TaskID) -> tuple[float, float]:
    """One pass over `loader`, advancing `task` a step per batch; returns (mean clip loss in nats,
    share of clips right)."""
    title = progress.tasks[task].description
    run.model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, labels, _ in _batches(loader):
        logits = run.model(inputs)
        _check_labels(labels, logits.shape[1], "training")
        loss = F.cross_entropy(logits, labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.schedule.step()
        loss_sum += loss.item() * len(labels)
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += len(labels)
        progress.update(task, advance=1, description=f"{title}  loss {loss_sum / seen:.3f}")
    return loss_sum / seen, correct / seen


def _batches(loader: DataLoader) -> Iterator[tuple[dict, torch.Tensor, torch.Tensor | None]]:
    """(inputs, labels [B] int64, inputs["video_index"] [B] or None) of each batch."""
    for inputs, labels in loader:
        yield inputs, torch.as_tensor(labels, dtype=torch.int64), inputs.get("video_index")


def _check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        raise TrainDataError(f"{where} data has label {bad}, but the model has {num_classes} classes (0..{num_classes - 1})")


def _write_run_files(history: list[dict], folder: RunFolder) -> None:
    """metrics.jsonl and learning_curve.png, both rewritten whole from the checkpoint's history."""
    folder.write_metrics(history)
    plot_learning_curve(history, folder.curve)


def plot_learning_curve(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training and validation, written atomically."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for ax, key, label in [(ax_loss, "loss", "cross-entropy (nats)"), (ax_acc, "acc", "accuracy")]:
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train (clips)")
        if any(r[f"val_{key}"] is not None for r in history):
            val_label = "validation (clips)" if key == "loss" else "validation (videos)"
            ax.plot(epochs, [r[f"val_{key}"] for r in history], "s-", label=val_label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.set_ylim(0, 1.02)
    fig.tight_layout()
    return save_figure(fig, path)
