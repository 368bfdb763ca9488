"""Search at scale: the search benchmark's references and queries inside a generated background of
1,000 to 100,000 hours, the tiered index beside the flat one; and the fine codes' table at the
benchmark's own size.

Per size (`--hours 1000,10000`): an index is built once and cached (<cache>/bench/search-scale-v1/
<codec>-<hours>h-seed<seed>): trained on a sample of the background, the background added in
segments of SEGMENT_HOURS, then the 200 real references, then one compaction (build and compaction
times are kept with it). A fresh process then opens it (RSS after opening), answers every test query
of the benchmark one at a time (10-s and 5-s, distorted copies and negatives; latency per query after
extraction: p50/p95/p99), then the 10-s ones again in two threads (queries/s), and reports its peak
RSS. Recall@1 and µAP as bench/search.py; negatives matched at the fingerprint's calibrated threshold.
At 1,000 h the flat index (8-bit codes, exhaustive search: what `framegram index` was) answers the
same 10-s queries beside it (`flat_1000h`).

The background (bench/scale_background.py) is measured on the references' descriptors: shots whose
centres lie where real footage lies, shared intros and credits, near-duplicate re-encodes.

Codec table (`--codecs`): one index of the 200 references per fine code, trained on its own
content, every query; threshold calibrated on the calibration split as bench/search.py does.

    .venv/bin/python bench/search_scale.py [--hours 1000,10000] [--seed 0] [--codecs]

Writes bench/results/search_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as search_bench  # noqa: E402  (cached query views, scoring, calibration)
from common import markdown_table, write_result  # noqa: E402
from baselines import VPDQBaseline, VPDQHashes  # noqa: E402
from scale_background import BackgroundCollection, BackgroundModel, PDQBackgroundModel  # noqa: E402
from search_corpus import SearchCorpus, build_search_corpus, default_corpus_folder  # noqa: E402

from framegram.cache import framegram_for  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402
from framegram.search import VideoIndex, match  # noqa: E402
from framegram.search.basis import default_basis  # noqa: E402
from framegram.search.codec import TierSettings  # noqa: E402
from framegram.search.fingerprint import reference_descriptors  # noqa: E402
from framegram.search.learned import LearnedFingerprint  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "search_scale.json"
WORK = cache_dir() / "bench" / "search-scale-v1"
FINE = "PQ64x6"  #: the fine codes the table chose (48 bytes a second)
SEGMENT_HOURS = 250
CODECS = ("flat", "PQ32", "PQ64x4", "PQ64x6", "PQ64")
LEARNED_RUN = cache_dir() / "bench" / "embedding-v1" / "run-64d" / "fingerprint.npz"


def tier_settings(hours: float) -> TierSettings:
    """Lists and training sample for an index of `hours`: about 40 training windows per list, and
    lists of at most ~20,000 windows at the target size."""
    windows = hours * 3600 / 5
    nlist = int(2 ** np.clip(np.ceil(np.log2(windows / 20_000)), 8, 12))
    return TierSettings(fine=FINE, nlist=nlist, sample=max(200_000, nlist * 40 * 5))


# ---- building -------------------------------------------------------------------------------


def reference_vectors(corpus: SearchCorpus) -> dict[str, np.ndarray]:
    basis = default_basis()
    return {r.ref_id: reference_descriptors(framegram_for(r.path)[0], basis).vectors for r in corpus.references}


def build(corpus: SearchCorpus, hours: float, seed: int, flat: bool = False) -> Path:
    """The cached index of `hours` of background plus the references (resumes an interrupted build)."""
    folder = WORK / f"{'flat' if flat else FINE}-{hours:g}h-seed{seed}"
    done = folder / "build.json"
    if done.exists():
        return folder
    refs = reference_vectors(corpus)
    collection = BackgroundCollection(BackgroundModel.fit(list(refs.values())), seed)
    n_videos = collection.count(hours * 3600)
    settings = tier_settings(hours) if not flat else TierSettings(train_at=10**12)
    times: dict[str, float] = json.loads((folder / "times.json").read_text()) if (folder / "times.json").exists() else {}
    index = VideoIndex.create(folder, default_basis(), exist_ok=True, tiers=settings)
    if len(index) and "add_s" not in times:  # resumed from a build that kept no times: its add time is unknown
        times["add_s"] = float("nan")
    if not flat and index.codec is None:
        t = time.perf_counter()
        sample, starts, k = [], [], 0
        while sum(len(x) for x in sample) < settings.sample:  # whole videos from the start of the collection
            starts.append(sum(len(x) for x in sample))
            sample.append(collection.video(k))
            k += 1
        index.train(np.concatenate(sample)[: settings.sample], np.array(starts), settings)
        times["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    per_segment = max(1, int(n_videos * SEGMENT_HOURS / hours))

    def background():
        for k in range(n_videos):
            yield (f"bg{k:07d}", "generated", f"background-{seed}-{k}", float(collection.length(k)),
                   lambda k=k: collection.video(k))

    index.add_descriptors(track(background(), total=n_videos, description=f"background {hours:g} h"), commit_every=per_segment)
    index.add_descriptors(((r.ref_id, str(r.path), f"reference-{r.ref_id}", r.duration, refs[r.ref_id])
                           for r in corpus.references), commit_every=len(refs))
    times["add_s"] = times.get("add_s", 0.0) + time.perf_counter() - t
    info_before = index.info()
    t = time.perf_counter()
    index.compact(show_progress=True)
    times["compact_s"] = time.perf_counter() - t
    (folder / "times.json").write_text(json.dumps(times))
    done.write_text(json.dumps({**times, "segments_before_compaction": info_before.segments,
                                "videos": len(index), "seconds": index.total_rows}))
    return folder


# ---- measuring (in a fresh process) -------------------------------------------------------------


def rss_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def measure(folder: Path, query_ids: list[str] | None, out: Path) -> None:
    """Open the index, answer the queries one at a time, then the 10-s ones in two threads."""
    import faiss

    corpus = build_search_corpus(default_corpus_folder(), workers=2)
    queries = [q for q in corpus.test_queries if query_ids is None or q.query_id in set(query_ids)]
    views = {q.query_id: search_bench.cached_views(corpus, q) for q in queries}
    rss_before = rss_gb("VmRSS")
    t = time.perf_counter()
    index = VideoIndex.open(folder)
    open_s = time.perf_counter() - t
    rss_open = rss_gb("VmRSS") - rss_before
    results, latency = {}, []
    for q in track(queries, description=f"queries {folder.name}"):
        t = time.perf_counter()
        results[q.query_id] = match(index, views[q.query_id], q.query_id, threshold=None)
        latency.append(time.perf_counter() - t)
    ten = [q for q in queries if q.length == 10.0]
    faiss.omp_set_num_threads(1)  # two queries at a time, one core each
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda q: match(index, views[q.query_id], q.query_id, threshold=None), ten))
    throughput = len(ten) / (time.perf_counter() - t)
    info = index.info()
    threshold = index.fingerprint.threshold
    summary = {length: search_bench.summarise([q for q in queries if q.length == length], results, threshold)
               for length in (10.0, 5.0)}
    everything = search_bench.summarise(queries, results, threshold)
    negatives = [q for q in queries if q.ref_id is None]
    per_distortion = {d: search_bench.summarise([q for q in queries if q.length == 10.0 and q.distortion == d], results, None)["recall_at_1"]
                      for d in sorted({q.distortion for q in queries if q.ref_id is not None})}
    out.write_text(json.dumps({
        "recall_at_1_per_distortion": per_distortion,
        "recall_at_1": summary[10.0]["recall_at_1"], "recall_at_1_5s": summary[5.0]["recall_at_1"],
        "uap": everything["uap"], "threshold": threshold,
        "negatives_matched_share": everything["negatives_matched"] / max(len(negatives), 1),
        "negatives_matched": everything["negatives_matched"], "negatives": len(negatives),
        "recall_at_1_thresholded": summary[10.0]["recall_at_1_thresholded"],
        "median_localisation_error_s": summary[10.0]["median_localisation_error_s"],
        "p50_ms": 1000 * float(np.percentile(latency, 50)), "p95_ms": 1000 * float(np.percentile(latency, 95)),
        "p99_ms": 1000 * float(np.percentile(latency, 99)), "queries": len(queries),
        "queries_per_s": throughput, "open_s": open_s, "rss_open_gb": rss_open, "rss_peak_gb": rss_gb("VmHWM"),
        "disk_bytes_per_second": info.disk_bytes_per_second, "memory_bytes_per_second": info.memory_bytes_per_second,
        "fine_bytes_per_second": info.vector_bytes_per_second, "seconds": info.seconds, "videos": info.videos,
        "segments": info.segments, "tiers": info.tiers,
    }))


def measured(folder: Path, query_ids: list[str] | None = None) -> dict:
    out = folder.parent / f"{folder.name}.measure.json"
    args = [sys.executable, __file__, "--measure", str(folder), "--measure-out", str(out)]
    if query_ids is not None:
        ids_file = folder.parent / f"{folder.name}.queries.json"
        ids_file.write_text(json.dumps(query_ids))
        args += ["--query-ids", str(ids_file)]
    subprocess.run(args, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})
    result = json.loads(out.read_text())
    result.update(json.loads((folder / "build.json").read_text()))
    result["build_s"] = result.get("train_s", 0.0) + result["add_s"]
    return result


# ---- vPDQ in the same kind of background ---------------------------------------------------------


def vpdq_measured(corpus: SearchCorpus, hours: float, seed: int) -> dict:
    """vPDQ (HMA's index and rule) over the references' vPDQ hashes inside `hours` of generated PDQ
    background (`PDQBackgroundModel`, fitted on the references' own hashes), every test query."""
    queries = corpus.test_queries
    hashes = search_bench.vpdq_hashes(corpus, [r.path for r in corpus.references] + [q.path for q in queries], workers=2)
    model = PDQBackgroundModel.fit([hashes[str(r.path)].bits for r in corpus.references])
    collection = BackgroundCollection(model, seed)
    baseline = VPDQBaseline()
    t = time.perf_counter()
    for k in track(range(collection.count(hours * 3600)), description=f"vPDQ background {hours:g} h"):
        bits = collection.video(k)
        baseline.add_hash(f"bg{k:07d}", VPDQHashes(bits, np.full(len(bits), 100), np.arange(len(bits), dtype=np.float64), float(len(bits))))
    for r in corpus.references:
        baseline.add_hash(r.ref_id, hashes[str(r.path)])
    build_s = time.perf_counter() - t
    results, latency = {}, []
    for q in track(queries, description="vPDQ queries"):
        t = time.perf_counter()
        results[q.query_id] = baseline.search_hash(q.query_id, hashes[str(q.path)])
        latency.append(time.perf_counter() - t)
    hma = VPDQBaseline.HMA_QUERY_SHARE
    ten = search_bench.summarise([q for q in queries if q.length == 10.0], results, hma)
    every = search_bench.summarise(queries, results, hma)
    negatives = [q for q in queries if q.ref_id is None]
    return {
        "recall_at_1": ten["recall_at_1"],
        "recall_at_1_5s": search_bench.summarise([q for q in queries if q.length == 5.0], results, None)["recall_at_1"],
        "uap": every["uap"], "threshold": hma, "recall_at_1_thresholded": ten["recall_at_1_thresholded"],
        "negatives_matched": every["negatives_matched"], "negatives": len(negatives),
        "negatives_matched_share": every["negatives_matched"] / max(len(negatives), 1),
        "p50_ms": 1000 * float(np.percentile(latency, 50)), "p95_ms": 1000 * float(np.percentile(latency, 95)),
        "p99_ms": 1000 * float(np.percentile(latency, 99)), "disk_bytes_per_second": baseline.bytes_per_second(),
        "build_s": build_s, "hashes": baseline.hashes,
        "background_model": {"shots": len(model.centres), "mean_shot_s": float(model.shot_lengths.mean()),
                             "off_share": model.off_share, "stay": model.stay},
    }


# ---- the fine codes at the benchmark's size ---------------------------------------------------


def codec_table(corpus: SearchCorpus) -> dict:
    rows = {}
    framegrams = {r.ref_id: framegram_for(r.path)[0] for r in corpus.references}
    kinds = [(c, default_basis()) for c in CODECS]
    if LEARNED_RUN.exists():
        kinds.append(("learned-64d flat", LearnedFingerprint.load(LEARNED_RUN)))
    for name, fingerprint in kinds:
        folder = WORK / "codecs" / name.replace(" ", "-")
        shutil.rmtree(folder, ignore_errors=True)
        index = VideoIndex.create(folder, fingerprint, tiers=TierSettings(fine=name) if name in CODECS[1:] else TierSettings())
        t = time.perf_counter()
        index.add(((r.ref_id, framegrams[r.ref_id]) for r in corpus.references), commit_every=100)
        if name in CODECS[1:]:
            index.train()
            index.compact()
        build_s = time.perf_counter() - t
        results, latency = {}, []
        for q in track(corpus.queries, description=f"queries ({name})"):
            views = search_bench.cached_views(corpus, q)
            t = time.perf_counter()
            results[q.query_id] = match(index, views, q.query_id, threshold=None)
            latency.append(time.perf_counter() - t)
        threshold = search_bench.calibrate(corpus.calibration_queries, results)
        test = corpus.test_queries
        info = index.info()
        every = search_bench.summarise(test, results, threshold)
        rows[name] = {
            "fine_bytes_per_second": info.vector_bytes_per_second, "disk_bytes_per_second": info.disk_bytes_per_second,
            "recall_at_1_10s": search_bench.summarise([q for q in test if q.length == 10.0], results, None)["recall_at_1"],
            "recall_at_1_5s": search_bench.summarise([q for q in test if q.length == 5.0], results, None)["recall_at_1"],
            "uap": every["uap"], "threshold": threshold, "negatives_matched": every["negatives_matched"],
            "negatives": every["negatives"], "p50_ms": 1000 * float(np.percentile(latency, 50)),
            "p95_ms": 1000 * float(np.percentile(latency, 95)), "build_s": build_s, "tiers": info.tiers,
        }
    return rows


# ---- projection -------------------------------------------------------------------------------

#: one machine of this kind: the issue's memory budget, and the disk a shard may fill (its segments
#: plus a compaction's copy of them)
MACHINE_RSS_GB, MACHINE_DISK_GB = 8.0, 60.0


def projection(sizes: dict, hours: float = 1e6) -> dict:
    """The measured growth carried to `hours`: bytes per second are flat, so disk and memory grow in
    proportion; latency, open time and peak RSS follow a power law fitted (least squares in log-log)
    through every measured size. Shards: how many machines hold it within MACHINE_RSS_GB and
    MACHINE_DISK_GB each."""
    measured = sorted((float(h), r) for h, r in sizes.items())
    x = np.log([h for h, _ in measured])
    out: dict = {"hours": hours, "from_hours": [h for h, _ in measured]}
    for key in ("p50_ms", "p95_ms", "p99_ms", "rss_peak_gb", "rss_open_gb", "open_s"):
        y = np.log([max(r[key], 1e-9) for _, r in measured])
        slope, intercept = np.polyfit(x, y, 1)
        out[key] = float(np.exp(intercept + slope * np.log(hours)))
        out[f"{key}_exponent"] = float(slope)
    seconds = hours * 3600
    disk, memory = measured[-1][1]["disk_bytes_per_second"], measured[-1][1]["memory_bytes_per_second"]
    out["disk_gb"] = seconds * disk / 1e9
    out["coarse_memory_gb"] = seconds * memory / 1e9
    per_shard = min(MACHINE_RSS_GB * 1e9 / memory, MACHINE_DISK_GB * 1e9 / (2 * disk)) / 3600
    out["hours_per_machine"] = per_shard
    out["machines"] = int(np.ceil(hours / per_shard))
    return out


# ---- tables ---------------------------------------------------------------------------------


KEYS = ("recall_at_1", "uap", "negatives_matched_share", "p50_ms", "p95_ms", "p99_ms", "queries_per_s",
        "rss_open_gb", "rss_peak_gb", "disk_bytes_per_second", "memory_bytes_per_second", "build_s")


def print_tables(report: dict) -> None:
    if report.get("codecs"):
        print("\nfine codes at the benchmark's size (200 references, 2.2 h; every test query)\n")
        print(markdown_table(
            ["fine codes", "fine B/s", "disk B/s", "recall@1 10 s", "recall@1 5 s", "µAP", "negatives matched", "p50 / p95 ms", "build s"],
            [[name, f"{r['fine_bytes_per_second']:.0f}", f"{r['disk_bytes_per_second']:.0f}", f"{r['recall_at_1_10s']:.3f}",
              f"{r['recall_at_1_5s']:.3f}", f"{r['uap']:.3f}", f"{r['negatives_matched']}/{r['negatives']} at {r['threshold']}",
              f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f}", f"{r['build_s']:.0f}"] for name, r in report["codecs"].items()]))
    rows = [(f"{h} h", r) for h, r in report.get("sizes", {}).items()]
    if "flat_1000h" in report:
        rows.append(("flat 1000 h", report["flat_1000h"]))
        rows.append(("tiered 1000 h, same queries", report["tiered_1000h_flat_queries"]))
    if rows:
        print("\nthe index inside a generated background (10-s queries for recall@1; µAP and negatives over every test query)\n")
        print(markdown_table(
            ["index", "recall@1 10 s", "recall@1 5 s", "µAP", "negatives matched", "p50 / p95 / p99 ms", "queries/s (2 threads)",
             "RSS open / peak GB", "disk / memory B/s", "build s", "compaction s"],
            [[name, f"{r['recall_at_1']:.3f}", f"{r.get('recall_at_1_5s', float('nan')):.3f}", f"{r['uap']:.3f}",
              f"{r['negatives_matched']}/{r['negatives']}", f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f}",
              f"{r['queries_per_s']:.1f}", f"{r['rss_open_gb']:.2f} / {r['rss_peak_gb']:.2f}",
              f"{r['disk_bytes_per_second']:.1f} / {r['memory_bytes_per_second']:.1f}", f"{r['build_s']:.0f}",
              f"{r.get('compact_s', float('nan')):.0f}"] for name, r in rows]))
    if "vpdq_1000h" in report:
        v = report["vpdq_1000h"]
        print("\nvPDQ at 1,000 h (HMA's index and rule: Hamming <= 31, a match from 80 % of the query's hashes; generated PDQ background)\n")
        print(markdown_table(
            ["method", "recall@1 10 s", "recall@1 5 s", "µAP", "negatives matched", "recall@1 10 s at threshold", "p50 / p95 / p99 ms", "disk B/s", "build s"],
            [["vPDQ 1000 h", f"{v['recall_at_1']:.3f}", f"{v['recall_at_1_5s']:.3f}", f"{v['uap']:.3f}",
              f"{v['negatives_matched']}/{v['negatives']} at {v['threshold']}", f"{v['recall_at_1_thresholded']:.3f}",
              f"{v['p50_ms']:.0f} / {v['p95_ms']:.0f} / {v['p99_ms']:.0f}", f"{v['disk_bytes_per_second']:.1f}", f"{v['build_s']:.0f}"]]))
    if "projection" in report:
        p = report["projection"]
        print(f"\nprojected to {p['hours']:,.0f} h from {', '.join(f'{h:,.0f}' for h in p['from_hours'])} h: "
              f"disk {p['disk_gb']:,.0f} GB, coarse lists in memory {p['coarse_memory_gb']:,.0f} GB, "
              f"p50 / p95 {p['p50_ms']:.0f} / {p['p95_ms']:.0f} ms (growth exponents {p['p50_ms_exponent']:.2f} / "
              f"{p['p95_ms_exponent']:.2f}), peak RSS {p['rss_peak_gb']:.1f} GB; one machine holds "
              f"{p['hours_per_machine']:,.0f} h: {p['machines']} shards")
    sizes = report.get("sizes", {})
    if sizes and all("recall_at_1_per_distortion" in r for r in sizes.values()):
        print("\nrecall@1 of 10-s queries per distortion, by size\n")
        names = sorted(next(iter(sizes.values()))["recall_at_1_per_distortion"])
        print(markdown_table(["distortion", *[f"{h} h" for h in sizes]],
                             [[d, *[f"{r['recall_at_1_per_distortion'][d]:.2f}" for r in sizes.values()]] for d in names]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="1000,10000", help="background sizes, comma-separated (hours)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--codecs", action="store_true", help="also the fine codes' table at the benchmark's size")
    parser.add_argument("--no-flat", action="store_true", help="skip the flat index at 1,000 h")
    parser.add_argument("--no-vpdq", action="store_true", help="skip vPDQ at 1,000 h")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--build-only", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--query-ids", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, json.loads(args.query_ids.read_text()) if args.query_ids else None, args.measure_out)
        return
    if args.build_only:
        build(build_search_corpus(default_corpus_folder(), workers=2), args.build_only, args.seed)
        return

    started = time.perf_counter()
    corpus = build_search_corpus(default_corpus_folder(), workers=2)
    report: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    report.update({"seed": args.seed, "fine": FINE, "segment_hours": SEGMENT_HOURS})
    if args.codecs:
        report["codecs"] = codec_table(corpus)
    sizes = report.setdefault("sizes", {})
    for hours in [float(h) for h in args.hours.split(",") if h]:
        # built in a child process: what the build held in memory must not be held while measuring
        subprocess.run([sys.executable, __file__, "--build-only", f"{hours:g}", "--seed", str(args.seed)], check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})
        folder = WORK / f"{FINE}-{hours:g}h-seed{args.seed}"
        sizes[f"{hours:g}"] = measured(folder)
        sizes[f"{hours:g}"]["tier_settings"] = json.loads(tier_settings(hours).to_json())
        if hours == 1000 and not args.no_flat:
            # the flat index is slow (an exhaustive scan per query): every third 10-s query, both indexes
            ten = [q.query_id for q in corpus.test_queries if q.length == 10.0][::3]
            report["flat_1000h"] = measured(build(corpus, hours, args.seed, flat=True), ten)
            report["tiered_1000h_flat_queries"] = measured(folder, ten)
        if hours == 1000 and not args.no_vpdq:
            report["vpdq_1000h"] = vpdq_measured(corpus, hours, args.seed)
    if len(sizes) >= 2:
        report["projection"] = projection(sizes)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    write_result(args.out, report)
    print_tables(report)


if __name__ == "__main__":
    main()
