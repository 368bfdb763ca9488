"""Extraction throughput on the real 10-minute Big Buck Bunny (596 s, 1280x720, 24 fps H.264).

Stages, each in a fresh process so its peak memory is its own:
  decode        sampling at 5 frames/s to 224x224 RGB, as the pipeline decodes (1 decoder thread)
  encoder-onnx  EfficientNet-Lite0 on ONNX Runtime, all cores, on 512 real frames held in memory
                (median of three passes)
  encoder-torch the same network in eager PyTorch, on 128 real frames (median of three passes)
  encoder-int8  efficientnet-lite0-int8 (statically quantised, ONNX Runtime) as encoder-onnx
  full          decode -> encoder overlapped: `framegram.extract.extract` on the whole film
  full-int8     the same with the int8 encoder (its default: all cores but one infer)

Against decoding alone (what 2 cores cannot hide): full / decode and full-int8 / decode.

Prints a markdown table and writes bench/results/extract.json. Run: `make bench` or
`.venv/bin/python bench/extract.py`. The video is fetched with pip once (moviepy's sdist) and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import markdown_table, write_result

FPS = 5.0
BATCH = 8
RESULTS = Path(__file__).parent / "results" / "extract.json"
STAGES = ["decode", "encoder-onnx", "encoder-torch", "encoder-int8", "full", "full-int8"]
INT8 = "efficientnet-lite0-int8"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def held_frames(video: Path, count: int) -> np.ndarray:
    from framegram.io import sample_frames

    frames = []
    for batch in sample_frames(video, fps=FPS, batch_size=BATCH):
        frames.append(batch.frames)
        if sum(map(len, frames)) >= count:
            break
    return np.concatenate(frames)[:count]


def time_encoder(backend: str, frames: np.ndarray, name: str = "efficientnet-lite0") -> tuple[int, float]:
    """Frames and median wall seconds of encoding `frames`, on every core (int8's default leaves one
    to the decoder: here the encoders are compared alone)."""
    from framegram.encoders import get_encoder

    encoder = get_encoder(name, backend=backend, threads=os.cpu_count())
    encoder.encode(frames[:BATCH])  # warm-up: first-call allocations are not throughput
    walls = []
    for _ in range(3):  # median of three passes: a short run is at the mercy of one slow moment
        started = time.perf_counter()
        for i in range(0, len(frames), BATCH):
            encoder.encode(frames[i : i + BATCH])
        walls.append(time.perf_counter() - started)
    return len(frames), float(np.median(walls))


def run_stage(stage: str, video: Path) -> dict:
    """Measure one stage in this process; returns frames, seconds of video, wall seconds."""
    if stage == "decode":
        from framegram.io import sample_frames

        started = time.perf_counter()
        frames = sum(len(b.times) for b in sample_frames(video, fps=FPS, batch_size=BATCH))
        wall = time.perf_counter() - started
    elif stage == "encoder-int8":
        frames, wall = time_encoder("onnxruntime", held_frames(video, 512), INT8)
    elif stage.startswith("encoder-"):
        backend = {"encoder-onnx": "onnxruntime", "encoder-torch": "torch"}[stage]
        frames, wall = time_encoder(backend, held_frames(video, 512 if backend == "onnxruntime" else 128))
    elif stage in ("full", "full-int8"):
        from framegram.extract import extract

        _, timing = extract(video, INT8 if stage == "full-int8" else None, fps=FPS, batch_size=BATCH)
        frames, wall = timing.frames, timing.wall_seconds
    else:
        raise ValueError(stage)
    return {"stage": stage, "frames": frames, "wall_s": wall, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # internal: one stage, JSON on stdout
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from framegram.media import fetch_media

    video = fetch_media("bbb-full.mp4")
    if args.stage:
        print(json.dumps(run_stage(args.stage, video)))
        return

    from framegram.encoders import get_encoder

    get_encoder(), get_encoder(INT8)  # export (and quantise) the ONNX models before timing anything
    rows = {}
    for stage in STAGES:
        proc = subprocess.run([sys.executable, __file__, "--stage", stage], capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["frames_per_s"] = row["frames"] / row["wall_s"]
        row["x_real_time"] = row["frames_per_s"] / FPS  # seconds of video per wall second at 5 samples/s
        rows[stage] = row
        print(f"  {stage}: {row['frames_per_s']:.1f} frames/s", file=sys.stderr)

    cores = os.cpu_count() or 1
    enc, dec, full = (rows[s]["frames_per_s"] for s in ("encoder-onnx", "decode", "full"))
    # With every core busy in the encoder, the CPU time of decoding (one thread) can only be added:
    # the best any overlap can do is cores / (cores / enc + 1 / dec) frames/s.
    overlap_bound = cores / (cores / enc + 1.0 / dec)
    summary = {
        "full_over_encoder": full / enc,
        "overlap_bound_frames_per_s": overlap_bound,
        "overlap_bound_over_encoder": overlap_bound / enc,
        "full_over_overlap_bound": full / overlap_bound,
        "full_over_decode": full / dec,
        "int8_encoder_speedup": rows["encoder-int8"]["frames_per_s"] / enc,
        "full_int8_over_decode": rows["full-int8"]["frames_per_s"] / dec,
    }
    result = {
        "video": {"name": "bbb-full.mp4", "seconds": 596.5, "size": "1280x720", "codec": "h264", "fps": 24},
        "sampling_fps": FPS,
        "batch": BATCH,
        "machine": {"cores": cores, "python": platform.python_version(), "processor": platform.processor()},
        "stages": rows,
        "summary": summary,
    }
    write_result(args.out, result)

    print(f"\nExtraction on bbb-full.mp4 (596 s, 1280x720 H.264), {FPS:g} samples/s, {cores} cores\n")
    table_rows = [
        [s, r["frames"], f"{r['wall_s']:.1f}", f"{r['frames_per_s']:.1f}", f"{r['x_real_time']:.1f}", f"{r['peak_rss_mb']:.0f}"]
        for s, r in rows.items()
    ]
    print(markdown_table(["stage", "frames", "wall s", "frames/s", "x real time", "peak RSS MB"], table_rows))
    print(
        f"\nfull / encoder-onnx = {summary['full_over_encoder']:.2f}; best possible overlap on {cores} cores "
        f"= {overlap_bound:.1f} frames/s ({summary['overlap_bound_over_encoder']:.2f} of encoder-onnx); "
        f"full reaches {summary['full_over_overlap_bound']:.2f} of that bound.\n"
        f"against decoding alone: full {summary['full_over_decode']:.2f}, full-int8 {summary['full_int8_over_decode']:.2f}; "
        f"int8 / fp32 encoder {summary['int8_encoder_speedup']:.2f}x\nJSON: {args.out}"
    )


if __name__ == "__main__":
    main()
