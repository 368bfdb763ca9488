"""The demo report's video-to-video section, from bench/results/vid2vid.json and the examples beside it
(`bench/vid2vid.py`): the table, a frame strip and a looping side-by-side GIF (label map, ground truth,
per-frame baseline, vid2vid)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from framegram.report import Html, Section, heading, paragraph, png_img, table

ORDER = 65
TITLE = "Video-to-video synthesis"


COLUMNS = ["model", "frame FD", "video FD", "warp error x1e3", "flicker", "detail", "pixel L1", "train s", "parameters"]


def table_rows(models: dict[str, dict]) -> list[list[str]]:
    """One row of COLUMNS per model of a vid2vid.json's "models"."""
    return [[name, f"{m['frame_fd']:.1f}", f"{m['video_fd']:.1f}", f"{m['warp_error'] * 1e3:.2f}", f"{m['flicker']:.2f}",
             f"{m['detail']:.2f}", f"{m['pixel_l1']:.3f}", "-" if m["train_s"] is None else f"{m['train_s']:.0f}",
             "-" if not m["params"] else f"{m['params']:,}"] for name, m in models.items()]


def vid2vid_section(results: Path | None = None) -> Section:
    from framegram.report.results import default_results_dir

    results = results or default_results_dir()
    path = results / "vid2vid.json"
    if not path.is_file():
        return Section(TITLE, paragraph(f"No benchmark result at {path}: run `.venv/bin/python bench/vid2vid.py`."), order=ORDER)
    result = json.loads(path.read_text())
    rows = table_rows(result["models"])
    parts = [paragraph("Label-map videos of moving shapes over a panning camera, each class textured with real footage, "
                       "turned back into video by a conditional GAN trained on CPU: vid2vid (each frame from the previous "
                       "ones, a flow warp blended with a hallucinated image by an occlusion mask) beside the per-frame "
                       "baseline and two ablations, on held-out scenes. Fréchet distances are on EfficientNet-Lite0 "
                       "features (frames) and framegram windows (videos): not the published FID/FVD. Warping error "
                       "uses the renderer's exact flow. Flicker and detail are the generated video's frame-to-frame "
                       "change and sharpness over the real video's (1 = as real): a blurred or frozen video also has a "
                       "low warping error, and these two columns show it. Source: bench/results/vid2vid.json (`bench/vid2vid.py`)."),
             table(COLUMNS, rows)]
    examples = results / "vid2vid"
    if (examples / "strip.png").is_file():
        parts += [heading("Rows: label map, ground truth, per-frame baseline, vid2vid (every other frame)"),
                  png_img((examples / "strip.png").read_bytes(), "frame strips")]
    if (examples / "side_by_side.gif").is_file():
        data = base64.b64encode((examples / "side_by_side.gif").read_bytes()).decode("ascii")
        parts += [heading("Looping: label map, ground truth, per-frame baseline, vid2vid"),
                  Html(f'<img alt="side by side" src="data:image/gif;base64,{data}">')]
    return Section(TITLE, parts, order=ORDER)


def vid2vid_demo_section(ctx) -> Section:
    return vid2vid_section(ctx.results)
