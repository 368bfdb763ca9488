"""Writing shot lists (PySceneDetect's CSV layout, JSON) and keyframe images with a contact sheet."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from framegram.framegram import Framegram
from framegram.io.atomic import atomic_write_bytes
from framegram.io.decode import probe_video, sample_frames
from framegram.keyframes.select import Keyframe
from framegram.keyframes.shots import ShotList

CSV_COLUMNS = [
    "Scene Number", "Start Frame", "Start Timecode", "Start Time (seconds)", "End Frame", "End Timecode",
    "End Time (seconds)", "Length (frames)", "Length (timecode)", "Length (seconds)",
]


def timecode(seconds: float) -> str:
    """HH:MM:SS.mmm, as PySceneDetect writes it."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def scene_spans(fg: Framegram, shots: ShotList) -> list[tuple[float, float]]:
    """Contiguous scenes covering the video: each gradual transition is split at its middle."""
    changes = [(b.start + b.end) / 2 for b in shots.boundaries]
    end = fg.meta.source.duration or float(fg.times[-1] + 1.0 / fg.meta.fps)  # the file's own end when declared
    edges = [float(fg.times[0]), *changes, end]
    return list(zip(edges, edges[1:]))


def frame_rate_of(fg: Framegram) -> float:
    return fg.meta.source.frame_rate or fg.meta.fps


def scene_csv(fg: Framegram, shots: ShotList) -> str:
    """The scene list in PySceneDetect's `list-scenes` CSV layout (cut timecodes, header, one row a scene).

    Frame numbers are at the source's frame rate; start frames are 1-based, end frames inclusive.
    """
    rate = frame_rate_of(fg)
    spans = scene_spans(fg, shots)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Timecode List:", *[timecode(a) for a, _ in spans[1:]]])
    writer.writerow(CSV_COLUMNS)
    for i, (a, b) in enumerate(spans):
        fa, fb = round(a * rate), round(b * rate)
        writer.writerow(
            [i + 1, fa + 1, timecode(a), f"{a:.3f}", fb, timecode(b), f"{b:.3f}", fb - fa, timecode(b - a), f"{b - a:.3f}"]
        )
    return buf.getvalue()


def shots_json(fg: Framegram, shots: ShotList) -> dict:
    """Shots (stable parts), boundaries with their kind and extent, and scenes, in seconds and source frames."""
    rate = frame_rate_of(fg)
    return {
        "source": fg.meta.source.path,
        "frame_rate": rate,
        "encoder": fg.meta.encoder.name,
        "boundaries": [
            {**asdict(b), "start_frame": round(b.start * rate), "end_frame": round(b.end * rate)} for b in shots.boundaries
        ],
        "shots": [
            {"start": s.start, "end": s.end, "start_frame": round(s.start * rate), "end_frame": round(s.end * rate)}
            for s in shots.shots
        ],
        "scenes": [{"start": a, "end": b} for a, b in scene_spans(fg, shots)],
        "flash_times": [float(fg.times[i]) for i in shots.flash_rows],
    }


def write_shot_list(fg: Framegram, shots: ShotList, stem: Path) -> tuple[Path, Path]:
    """Write `<stem>.scenes.csv` and `<stem>.scenes.json`; returns both paths."""
    csv_path, json_path = Path(f"{stem}.scenes.csv"), Path(f"{stem}.scenes.json")
    atomic_write_bytes(csv_path, scene_csv(fg, shots).encode())
    atomic_write_bytes(json_path, json.dumps(shots_json(fg, shots), indent=1).encode())
    return csv_path, json_path


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the luma: higher is sharper (a blurred frame scores low)."""
    luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = -4 * luma[1:-1, 1:-1] + luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
    return float(lap.var())


def keyframe_images(video: Path, fg: Framegram, keyframes: list[Keyframe], height: int | None = None):
    """For each keyframe, the sharpest of its candidate frames at full (or `height`) resolution.

    Returns [(time, image uint8 [H, W, 3])]; one seek per keyframe (decoding from the keyframe
    before it), so a handful of keyframes cost little even in a long film.
    """
    info = probe_video(video)
    h = height or info.height
    w = max(2, round(h * info.width / max(info.height, 1) / 2) * 2)
    period = 1.0 / fg.meta.fps
    chosen = []
    for kf in keyframes:
        times = sorted(float(fg.times[r]) for r in kf.candidates)
        batches = sample_frames(
            video, fps=fg.meta.fps, size=(h, w), batch_size=8, skip_nonref=False,
            start=max(0.0, times[0] - 1e-3), end=times[-1] + period / 2,
        )
        frames = [(t, f) for b in batches for t, f in zip(b.times, b.frames)]
        wanted = [(t, f) for t, f in frames if min(abs(t - x) for x in times) < period / 2] or frames
        # the most representative candidate unless another is clearly sharper
        best = max(wanted, key=lambda tf: sharpness(tf[1]) * (1.25 if abs(tf[0] - kf.time) < period / 2 else 1.0))
        chosen.append((float(best[0]), best[1]))
    return chosen


def write_keyframes(video: Path, fg: Framegram, keyframes: list[Keyframe], out_dir: Path) -> Path:
    """Keyframe JPEGs, `contact_sheet.png` and `keyframes.json` in `out_dir`; returns the JSON path."""
    from PIL import Image

    from framegram.plotting import contact_sheet_figure, save_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    rate = frame_rate_of(fg)
    images = keyframe_images(video, fg, keyframes)
    index = []
    for k, (kf, (t, image)) in enumerate(zip(keyframes, images), start=1):
        name = f"keyframe_{k:03d}_{t:09.3f}s.jpg"
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=92)
        atomic_write_bytes(out_dir / name, buf.getvalue())
        index.append({"index": k, "time": t, "frame": round(t * rate), "shot": kf.shot, "file": name})
    labels = [f"#{e['index']}  {timecode(e['time'])}  (frame {e['frame']})" for e in index]
    save_figure(contact_sheet_figure([im for _, im in images], labels, title=Path(video).name), out_dir / "contact_sheet.png")
    json_path = out_dir / "keyframes.json"
    atomic_write_bytes(json_path, json.dumps({"source": str(video), "frame_rate": rate, "keyframes": index}, indent=1).encode())
    return json_path
