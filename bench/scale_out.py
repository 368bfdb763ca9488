"""Scale-out: hours of video extracted per hour of wall time, the local engine beside Ray, fp32 beside int8.

Workload: the real 10-minute Big Buck Bunny (1280x720 H.264) cut by stream copy into 8 pieces of
~75 s (cached), i.e. a folder of 720p videos, extracted at 5 frames/s into a fresh folder per run:

  local           `framegram extract` as it runs by default (one process, decoding beside inference;
                  int8 infers on all cores but one by default, and is also run on every core)
  ray-1 / ray-2   `--engine ray` on a Ray cluster started on this machine: 1 actor of 2 CPUs, 2 of 1
  ray-two-node    two Ray nodes started on this machine (`ray start --head`, `ray start --address`),
                  one CPU each, one actor on each

each with the fp32 and the int8 encoder. Wall time counts from the call to the last framegram written
(actors starting and loading their encoder included; starting the cluster is reported apart). x real
time = seconds of video per wall second (= hours of video per hour); per-core efficiency = x real time
per CPU the run was given, over the local fp32 run's.

int8 beside fp32, same run: encoder throughput on 512 frames of the film held in memory (as
bench/extract.py), the local int8 run against decoding alone (the part 2 cores cannot hide), the
search benchmark's recall@1 (10-s queries) and µAP with every framegram made by each encoder
(`bench/search.py --framegram-only --encoder NAME`, our index only, its packaged basis for that
encoder), and the shot benchmark's F1 (framegram's detector, bench/shots.py's corpus).

    .venv/bin/python bench/scale_out.py [--no-search] [--no-shots]

Writes bench/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import extract as extract_bench  # noqa: E402  (encoder timing as bench/extract.py)
import shots as shots_bench  # noqa: E402
from common import markdown_table, write_result  # noqa: E402
from ray_cluster import two_node_cluster  # noqa: E402
from shot_scoring import Score, match  # noqa: E402

from framegram.batch import extract_folder  # noqa: E402
from framegram.encoders import get_encoder  # noqa: E402
from framegram.extract import extract  # noqa: E402
from framegram.io import sample_frames  # noqa: E402
from framegram.io.ffmpeg import ffmpeg_executable  # noqa: E402
from framegram.keyframes import detect_shots  # noqa: E402
from framegram.media import fetch_media  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "scale_out.json"
FP32, INT8 = "efficientnet-lite0", "efficientnet-lite0-int8"
PIECES = 8
FPS = 5.0
CORES = os.cpu_count() or 1


def workload() -> list[Path]:
    """The film in ~PIECES stream-copied pieces (cut at keyframes: lengths vary a little), cached."""
    folder = cache_dir() / "bench" / "scale-out-v1"
    if (folder / "done").exists():
        return sorted(folder.glob("piece-*.mp4"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    film = fetch_media("bbb-full.mp4")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        subprocess.run([ffmpeg_executable("cutting the scale-out workload"), "-v", "error", "-i", str(film), "-c", "copy", "-map", "0:v:0", "-f", "segment",
                        "-segment_time", f"{596.5 / PIECES:.1f}", "-reset_timestamps", "1", str(Path(tmp) / "piece-%02d.mp4")],
                       check=True)
        made = sorted(Path(tmp).glob("piece-*.mp4"))
        for p in made:
            p.rename(folder / p.name)
    (folder / "done").touch()
    return sorted(folder.glob("piece-*.mp4"))


def seconds_of(videos: list[Path]) -> float:
    from framegram.io.decode import probe_video

    return sum(probe_video(v).duration for v in videos)


def row(video_s: float, wall: float, cores: int, startup_s: float = 0.0) -> dict:
    x = video_s / wall
    return {"x_real_time": x, "video_hours_per_hour": x, "cores": cores, "wall_s": wall, "startup_s": startup_s}


def timed_local(videos: list[Path], encoder: str, threads: int | None = None) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = extract_folder(videos, out, encoder=get_encoder(encoder, threads=threads), show_progress=False)
        wall = time.perf_counter() - started
    assert len(result.done) == len(videos), result.failed
    return wall


def timed_ray(videos: list[Path], encoder: str, actors: int) -> float:
    from framegram.ray_engine import extract_folder_ray

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = extract_folder_ray(videos, out, encoder=encoder, show_progress=False, actors=actors)
        wall = time.perf_counter() - started
    assert len(result.done) == len(videos), result.failed
    return wall


def decode_only(videos: list[Path]) -> float:
    started = time.perf_counter()
    for v in videos:
        for _ in sample_frames(v, fps=FPS, batch_size=8):
            pass
    return time.perf_counter() - started


def engine_runs(videos: list[Path], video_s: float) -> dict:
    import ray

    runs = {}
    for enc in (FP32, INT8):
        runs[f"local {enc}"] = row(video_s, timed_local(videos, enc), CORES)
    # int8's default leaves a core to decoding (INT8_SPARE_CORES); here with every core inferring
    runs[f"local {INT8}, {CORES} inference threads"] = row(video_s, timed_local(videos, INT8, CORES), CORES)
    started = time.perf_counter()
    ray.init(num_cpus=CORES, include_dashboard=False, log_to_driver=False, logging_level="WARNING", object_store_memory=256 * 2**20)
    startup = time.perf_counter() - started
    try:
        for enc in (FP32, INT8):
            for actors in (1, 2):
                runs[f"ray-{actors} {enc}"] = row(video_s, timed_ray(videos, enc, actors), CORES, startup)
    finally:
        ray.shutdown()
    for enc in (FP32, INT8):
        runs[f"ray-two-node {enc}"] = two_node_run(videos, video_s, enc)
    base = runs[f"local {FP32}"]["x_real_time"] / runs[f"local {FP32}"]["cores"]
    for r in runs.values():
        r["per_core_efficiency"] = r["x_real_time"] / r["cores"] / base
    return runs


def two_node_run(videos: list[Path], video_s: float, encoder: str) -> dict:
    """A head and a worker node of one CPU each on this machine, the job driven from a fresh process."""
    with two_node_cluster() as cluster, tempfile.TemporaryDirectory() as out:
        code = ("import sys, json, time; from framegram.ray_engine import extract_folder_ray\n"
                "t = time.perf_counter(); r = extract_folder_ray(sys.argv[3:], sys.argv[1], encoder=sys.argv[2], "
                f"show_progress=False, address='{cluster.address}', actors=2)\n"
                "print(json.dumps({'wall': time.perf_counter() - t, 'done': len(r.done), 'failed': len(r.failed)}))")
        proc = subprocess.run([sys.executable, "-c", code, out, encoder, *map(str, videos)], check=True,
                              capture_output=True, text=True, env=cluster.env)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["done"] == len(videos), got
    return row(video_s, got["wall"], 2, cluster.startup_s)


def encoder_speedup() -> dict:
    frames = extract_bench.held_frames(fetch_media("bbb-full.mp4"), 512)
    rates = {}
    for enc in (FP32, INT8):
        n, wall = extract_bench.time_encoder("onnxruntime", frames, enc)
        rates[enc] = n / wall
    return {"fp32_frames_per_s": rates[FP32], "int8_frames_per_s": rates[INT8], "encoder_speedup": rates[INT8] / rates[FP32]}


def search_deltas() -> dict:
    """bench/search.py, our index alone, once per encoder (each writes its own JSON)."""
    out = {}
    for enc in (FP32, INT8):
        path = RESULTS.parent / f"search_framegram_only_{enc}.json"
        subprocess.run([sys.executable, str(Path(__file__).parent / "search.py"), "--framegram-only", "--encoder", enc,
                        "--out", str(path)], check=True)
        o = json.loads(path.read_text())["overall"]["framegram"]
        out[enc] = {"recall_at_1": o["10s"]["recall_at_1"], "uap": o["all"]["uap"]}
    return {"search": out, "search_recall_delta": out[INT8]["recall_at_1"] - out[FP32]["recall_at_1"],
            "search_uap_delta": out[INT8]["uap"] - out[FP32]["uap"]}


def shots_deltas() -> dict:
    """framegram's shot detector on bench/shots.py's corpus, with each encoder's framegrams."""
    corpus = shots_bench.build_corpus()
    scores = {enc: Score(0, 0, 0) for enc in (FP32, INT8)}
    for enc in (FP32, INT8):
        encoder = get_encoder(enc)
        for _, video in corpus:
            truth = shots_bench.GroundTruth.load(video.with_suffix(".json"))
            true_spans = [(b["start"], b["end"]) for b in truth.boundaries]
            found = [(b.start, b.end) for b in detect_shots(extract(video, encoder, FPS)[0]).boundaries]
            pairs = match(found, true_spans, shots_bench.TOLERANCE)
            scores[enc] += Score(len(pairs), len(found) - len(pairs), len(true_spans) - len(pairs))
    f1 = {enc: s.f1 for enc, s in scores.items()}
    return {"shots_f1": f1, "shots_f1_delta": f1[INT8] - f1[FP32], "shot_videos": len(corpus)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-search", action="store_true", help="skip the search benchmark runs")
    parser.add_argument("--no-shots", action="store_true", help="skip the shot benchmark runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    get_encoder(FP32), get_encoder(INT8)  # export and quantise before anything is timed
    videos = workload()
    video_s = seconds_of(videos)
    decode_wall = decode_only(videos)
    runs = engine_runs(videos, video_s)
    int8 = {**encoder_speedup(),
            "decode_x_real_time": video_s / decode_wall,
            "pipeline_over_decode": runs[f"local {INT8}"]["x_real_time"] * decode_wall / video_s,
            "fp32_pipeline_over_decode": runs[f"local {FP32}"]["x_real_time"] * decode_wall / video_s}
    if not args.no_search:
        int8.update(search_deltas())
    if not args.no_shots:
        int8.update(shots_deltas())
    report = {"workload": {"videos": len(videos), "seconds": video_s, "source": "bbb-full.mp4 (1280x720 H.264) in pieces",
                           "sampling_fps": FPS},
              "machine_cores": CORES, "runs": runs, "int8": int8, "gpu": "no GPU machine was lent to this run",
              "wall_s": round(time.perf_counter() - started, 1)}
    write_result(args.out, report)
    print_tables(report)


def print_tables(r: dict) -> None:
    w = r["workload"]
    print(f"\n{w['videos']} videos, {w['seconds']:.0f} s of 720p video at {w['sampling_fps']:g} frames/s, {r['machine_cores']} cores\n")
    print(markdown_table(
        ["engine, encoder", "x real time (= video h per h)", "CPUs", "per-core efficiency", "wall s", "cluster start s"],
        [[name, f"{x['x_real_time']:.1f}", x["cores"], f"{x['per_core_efficiency']:.2f}", f"{x['wall_s']:.1f}", f"{x['startup_s']:.1f}"]
         for name, x in r["runs"].items()]))
    i = r["int8"]
    lines = [f"int8 encoder {i['int8_frames_per_s']:.0f} frames/s vs fp32 {i['fp32_frames_per_s']:.0f}: {i['encoder_speedup']:.2f}x",
             f"local pipeline over decoding alone ({i['decode_x_real_time']:.1f}x real time): int8 {i['pipeline_over_decode']:.2f}, "
             f"fp32 {i['fp32_pipeline_over_decode']:.2f}"]
    if "search" in i:
        lines.append(f"search recall@1 10 s: fp32 {i['search'][FP32]['recall_at_1']:.3f}, int8 {i['search'][INT8]['recall_at_1']:.3f} "
                     f"(delta {i['search_recall_delta']:+.3f}); µAP fp32 {i['search'][FP32]['uap']:.3f}, int8 {i['search'][INT8]['uap']:.3f} "
                     f"(delta {i['search_uap_delta']:+.3f})")
    if "shots_f1" in i:
        lines.append(f"shot F1 ({i['shot_videos']} videos): fp32 {i['shots_f1'][FP32]:.3f}, int8 {i['shots_f1'][INT8]:.3f} "
                     f"(delta {i['shots_f1_delta']:+.3f})")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
