"""Classify one video with a trained checkpoint: clips cut as in training, predictions averaged.

    names, clip_probs, video_probs = classify_video("cat.mp4", "runs/c3d")
    names[video_probs.argmax()]

Clips are cut by `framegram.video_models.data.evaluation_clips`, exactly as the training run's
`VideoFolder` cut its test clips (decoded a little larger, centre crop, evenly spaced).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from framegram.video_models.data import evaluation_clips
from framegram.video_models.registry import get_model
from framegram.video_models.train import CheckpointError, load_checkpoint


class Classification(NamedTuple):
    """class_names [C]; clip_probabilities float64 [n_clips, C] (softmax per clip, rows sum to 1);
    video_probabilities float64 [C], the mean of the clip rows."""

    class_names: list[str]
    clip_probabilities: np.ndarray
    video_probabilities: np.ndarray


def classify_video(
    path: str | Path,
    checkpoint_dir: str | Path,
    expect_model: str | None = None,
    n_clips: int | None = None,
    batch_size: int = 8,
) -> Classification:
    """Cut `n_clips` evenly spaced clips (default: the checkpoint's clips_per_video) of the clip
    length, stride and size the model was trained with, classify each, and average.

    Raises `CheckpointError` (missing or damaged checkpoint), `CheckpointMismatchError` (a
    checkpoint of another model than `expect_model`), `TooShortError` (fewer frames than one clip
    spans) and the decoding errors of `framegram.io.decode`.
    """
    checkpoint = load_checkpoint(checkpoint_dir, expect_model)
    settings = checkpoint["settings"]
    model = model_from_checkpoint(checkpoint)
    inputs = evaluation_clips(path, settings["clip_len"], settings["stride"], tuple(settings["size"]),
                        n_clips or settings["clips_per_video"], checkpoint["inputs"])
    count = len(next(iter(inputs.values())))
    with torch.no_grad():
        probs = torch.cat([
            model({kind: x[first : first + batch_size] for kind, x in inputs.items()}).softmax(dim=1)
            for first in range(0, count, batch_size)
        ]).double().numpy()
    return Classification(list(settings["class_names"]), probs, probs.mean(axis=0))


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Module:
    """The model of a `load_checkpoint` dict with its trained weights, in eval mode."""
    settings = checkpoint["settings"]
    model = get_model(settings["model"], settings["num_classes"], **settings["model_cfg"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:  # the model's code changed since training
        raise CheckpointError(checkpoint["path"], f"its weights do not fit model {settings['model']!r} as defined now "
                                                  f"({str(exc).splitlines()[0]})") from exc
    return model.eval()
