"""`framegram train | classify`: video classifiers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import fail


def parse_model_options(options: list[str]) -> dict:
    """["tubelet=4", "stem=linear"] -> {"tubelet": 4, "stem": "linear"}: each value read as JSON
    (numbers, true, false, lists), else kept as text. Raises the CLI's one-line error for an option
    without "=" or given twice."""
    settings = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key:
            raise fail(f"--model-option takes KEY=VALUE, got {option!r}")
        if key in settings:
            raise fail(f"--model-option {key} given twice")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered video model (framegram.video_models.list_models()).")],
    data: Annotated[Path, typer.Option("--data", help="UCF101-style folder: a subfolder of videos per class, train/test split.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoint.pt, metrics.jsonl, learning_curve.png); run again to resume.")],
    epochs: Annotated[int, typer.Option(help="Passes over the training clips.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Clips per optimizer step.")] = 8,
    clip_len: Annotated[int, typer.Option(help="Frames per clip.")] = 8,
    stride: Annotated[int, typer.Option(help="Video frames between two clip frames.")] = 1,
    size: Annotated[int, typer.Option(help="Clip height and width in pixels.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (warm-up, then cosine decay).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Decoupled weight decay.")] = 0.05,
    optimizer: Annotated[str, typer.Option(help="'adamw' or 'sgd' (Nesterov momentum 0.9).")] = "adamw",
    clips_per_video: Annotated[int, typer.Option(help="Test-time clips averaged per video.")] = 3,
    flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Random horizontal flips (wrong for left/right motion classes; default: the dataset's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and augmentation.")] = 0,
    model_option: Annotated[list[str] | None, typer.Option(
        "--model-option", help="A setting of the model as KEY=VALUE, repeatable (e.g. tubelet=4 for timesformer, "
        "width=0.25 for c3d; bench/classify.py lists the table's).")] = None,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Start from the weights of a trained run of the same classes; the model may add layers "
        "(e.g. c3d-nonlocal from a c3d run: the non-local blocks start as the identity).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a video classifier on a folder of videos, validating on its test split after every epoch."""
    from framegram.video_models.registry import get_model, model_cfg_for, model_entry
    from framegram.video_models.train import TrainConfig, train

    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "seed": seed, "clip_len": clip_len, "stride": stride, "size": (size, size), "clips_per_video": clips_per_video}
    # the config checks itself before any video is read (the classes, from the folder, come later)
    TrainConfig(model=model, num_classes=2, **settings)
    inputs = model_entry(model).inputs  # an unknown model or setting fails before any video is read
    model_cfg = model_cfg_for(model, clip_len, **parse_model_options(model_option or []))
    try:
        get_model(model, num_classes=2, **model_cfg)
    except TypeError as exc:  # a keyword the model's constructor does not take
        raise fail(f"model {model!r} does not take the settings {sorted(model_cfg)}: {exc}") from None
    from framegram.video_models.data import VideoFolder

    clips = {"clip_len": clip_len, "stride": stride, "size": (size, size), "inputs": inputs, "seed": seed}
    train_set = VideoFolder(data, split="train", train=True, flip=flip, **clips)
    val_set = VideoFolder(data, split="test", train=False, clips_per_video=clips_per_video, **clips)
    config = TrainConfig(model=model, num_classes=len(train_set.classes), class_names=tuple(train_set.classes),
                         model_cfg=model_cfg, init_from=str(init_from or ""), **settings)
    result = train(config, train_set, val_set, out, show_progress=not quiet)
    if result.resumed_from == epochs:
        typer.echo(f"{out} is trained already ({epochs} epochs): nothing to do")
    elif result.resumed_from:
        typer.echo(f"resumed after epoch {result.resumed_from}")
    last = result.history[-1]
    typer.echo(f"epoch {last['epoch']}: train loss {last['train_loss']:.3f}, acc {last['train_acc']:.3f}; "
               f"test accuracy {last['val_acc']:.3f} (videos), {last['val_clip_acc']:.3f} (single clips)")
    typer.echo(f"run: {out} ({result.checkpoint.name}, {result.metrics_log.name}, {result.learning_curve.name})")


def classify(
    video: Annotated[Path, typer.Argument(help="The video to classify.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="Run folder written by `framegram train`.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Refuse a checkpoint of any other model.")] = None,
    clips: Annotated[int | None, typer.Option("--clips", help="Clips averaged (default: as in the run's testing).")] = None,
    top: Annotated[int, typer.Option("--top", "-k", help="Classes printed per line.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print every probability as JSON.")] = False,
) -> None:
    """Classify a video: top classes of each clip and of the whole video (clip probabilities averaged)."""
    from framegram.video_models.infer import classify_video

    if clips is not None and clips < 1:
        raise fail(f"--clips must be at least 1, got {clips}")
    if top < 1:
        raise fail(f"--top must be at least 1, got {top}")
    names, clip_probs, video_probs = classify_video(video, checkpoint, expect_model=model, n_clips=clips)
    if as_json:
        typer.echo(json.dumps({"video": str(video), "classes": names,
                               "clip_probabilities": clip_probs.round(6).tolist(),
                               "video_probabilities": video_probs.round(6).tolist()}, indent=2))
        return

    def best(probs) -> str:
        return ", ".join(f"{names[i]} {probs[i]:.3f}" for i in probs.argsort()[::-1][:top])

    for k, probs in enumerate(clip_probs, 1):
        typer.echo(f"clip {k}/{len(clip_probs)}: {best(probs)}")
    typer.echo(f"video: {best(video_probs)}")
