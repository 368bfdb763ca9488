"""Seconds per training step of every model of the classification table, at the table's settings.

One step = forward, cross-entropy, backward and AdamW update on a batch of the table's size (16 clips
of 8 frames of 64x64, all zeros: speed does not depend on the pixels), under the trainer's
deterministic-kernel settings (`framegram.training.deterministic_algorithms`). The median of
`--steps` steps after one warm-up step; an epoch of the motion benchmark is 75 steps. Use it to see
where the table's training time goes before retraining anything, and `--model-option` to time a
setting before training with it (written to `train_step_<options>.json`, not the table's file).

    .venv/bin/python bench/train_step.py [--models i3d,timesformer] [--steps 3] [--model-option frozen_blocks=3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify import BATCH_SIZE, CLIP_LEN, SETTINGS, SIZE, TRAIN_PER_CLASS  # noqa: E402
from common import markdown_table, write_result  # noqa: E402

from framegram.cli import parse_model_options  # noqa: E402
from framegram.training import deterministic_algorithms  # noqa: E402
from framegram.video_models.registry import example_batch, get_model, model_cfg_for, model_entry  # noqa: E402


def table_model_cfg(model_name: str, options: dict) -> dict:
    """The table's settings of `model_name` (bench/classify.py), `options` over them."""
    return model_cfg_for(model_name, CLIP_LEN, **{**SETTINGS[model_name].get("model_cfg", {}), **options})


def step_seconds(model_name: str, model_cfg: dict, steps: int) -> list[float]:
    """Seconds of each of `steps` training steps of `model_name` built with `model_cfg` (after one warm-up step)."""
    generator = torch.Generator().manual_seed(0)
    model = get_model(model_name, 8, **model_cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = example_batch(model_entry(model_name).inputs, (CLIP_LEN, *SIZE), batch=BATCH_SIZE)
    labels = torch.randint(0, 8, (BATCH_SIZE,), generator=generator)
    model.train()
    seconds = []
    with deterministic_algorithms():
        for _ in range(steps + 1):
            started = time.perf_counter()
            loss = F.cross_entropy(model(batch), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seconds.append(time.perf_counter() - started)
    return seconds[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated registry names (default: every model of the table)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--model-option", action="append", default=[], help="KEY=VALUE over every model's table settings, repeatable")
    ap.add_argument("--out", type=Path, default=None, help="default: results/train_step.json, or train_step_<options>.json")
    args = ap.parse_args()
    models = args.models.split(",") if args.models else list(SETTINGS)
    options = parse_model_options(args.model_option)
    out = args.out or Path(__file__).resolve().parent / "results" / f"{'_'.join(['train_step', *args.model_option])}.json"
    steps_per_epoch = TRAIN_PER_CLASS["motion"] * 8 // BATCH_SIZE
    records = []
    for name in models:
        model_cfg = table_model_cfg(name, options)
        seconds = statistics.median(step_seconds(name, model_cfg, args.steps))
        records.append({"model": name, "model_cfg": model_cfg, "step_seconds": seconds,
                        "motion_epoch_seconds": seconds * steps_per_epoch})
        print(f"{name}: {seconds:.3f} s a step", file=sys.stderr)
    print(f"\n## Training step, {BATCH_SIZE} clips of {CLIP_LEN}x{SIZE[0]}x{SIZE[1]}, {torch.get_num_threads()} threads\n")
    print(markdown_table(["model", "s / step", f"s / motion epoch ({steps_per_epoch} steps)"],
                         [[r["model"], f"{r['step_seconds']:.3f}", f"{r['motion_epoch_seconds']:.0f}"] for r in records]))
    write_result(out, {"batch_size": BATCH_SIZE, "clip_len": CLIP_LEN, "size": list(SIZE),
                       "threads": torch.get_num_threads(), "records": records})


if __name__ == "__main__":
    main()
