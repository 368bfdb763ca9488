"""Video-to-video synthesis on generated label-map videos (`framegram.datasets.label_videos`): vid2vid,
the per-frame baseline and two ablations (no video discriminator; no flow warp: hallucination only),
each trained on CPU on the training scenes, then scored on the held-out scenes beside the ground
truth (`framegram.vid2vid.evaluate`: Lite0 frame Fréchet distance, framegram-window Fréchet distance,
warping error with the renderer's flow, flicker, detail (sharpness), pixel L1; these are not the published FID / FVD,
whose Inception and I3D weights cannot be had here).

    nice -n 19 .venv/bin/python bench/vid2vid.py [--steps 1500] [--variants vid2vid,per-frame,...]

Writes bench/results/vid2vid.json ({"models": {name: {frame_fd, video_fd, warp_error, flicker, detail, pixel_l1,
train_s, params}}}) and bench/results/vid2vid/: a frame strip (label map, ground truth, per-frame,
vid2vid) and small looping GIFs of one held-out scene.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import markdown_table, write_result  # noqa: E402

from framegram.datasets.label_videos import build_label_videos, load_scene
from framegram.paths import cache_dir
from framegram.vid2vid import VARIANTS, Vid2VidConfig, generate_video, load_generator, score_videos, train_vid2vid
from framegram.vid2vid.evaluate import lite0_features
from framegram.vid2vid.report import COLUMNS, table_rows

RESULTS = Path(__file__).parent / "results" / "vid2vid.json"
EXAMPLES = Path(__file__).parent / "results" / "vid2vid"


def label_colours(labels: np.ndarray) -> np.ndarray:
    palette = np.array([[40, 40, 40], [230, 120, 40], [60, 160, 230], [120, 200, 90]], np.uint8)
    return palette[labels]


def save_examples(scene: dict, videos: dict[str, np.ndarray]) -> None:
    from PIL import Image

    EXAMPLES.mkdir(parents=True, exist_ok=True)
    rows = [label_colours(scene["labels"]), scene["frames"]] + [videos[k] for k in ("per-frame", "vid2vid") if k in videos]
    strip = np.concatenate([np.concatenate(list(r[::2]), axis=1) for r in rows], axis=0)
    Image.fromarray(strip).resize((strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST).save(EXAMPLES / "strip.png")
    side = np.concatenate(rows, axis=2)  # [T, H, W * rows, 3]
    frames = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST) for f in side]
    frames[0].save(EXAMPLES / "side_by_side.gif", save_all=True, append_images=frames[1:], duration=125, loop=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--train-scenes", type=int, default=240)
    args = parser.parse_args()
    data = build_label_videos(64, 16, train=args.train_scenes, test=48, show_progress=False)
    scenes = [load_scene(p) for p in data.test]
    real_features = lite0_features([s["frames"] for s in scenes])
    models = {"ground-truth": {**score_videos([s["frames"] for s in scenes], scenes, real_features),
                               "train_s": None, "params": None}}
    videos_of_first = {}
    for variant in args.variants.split(","):
        run = cache_dir() / "bench" / "vid2vid-runs" / f"{variant}-{args.steps}-{args.train_scenes}"
        t = time.time()
        trained = train_vid2vid(Vid2VidConfig(variant=variant, steps=args.steps), data.train, run, show_progress=False)
        generator = load_generator(run)
        videos = [generate_video(generator, s["labels"]) for s in scenes]
        videos_of_first[variant] = videos[0]
        models[variant] = {**score_videos(videos, scenes, real_features), "train_s": round(trained["train_s"]),
                           "params": trained["params"]}
        print(f"  {variant}: {time.time() - t:.0f} s", flush=True)
    save_examples(scenes[0], videos_of_first)
    write_result(RESULTS, {"settings": {"size": 64, "frames": 16, "train_scenes": len(data.train), "test_scenes": len(scenes),
                                        "steps": args.steps},
                           "models": models})
    print(markdown_table(COLUMNS, table_rows(models)))
    if "vid2vid" in models and "per-frame" in models:
        cut = 1 - models["vid2vid"]["warp_error"] / models["per-frame"]["warp_error"]
        print(f"\nvid2vid's warping error is {cut:.0%} lower than the per-frame baseline's (target >= 30 %)")


if __name__ == "__main__":
    main()
