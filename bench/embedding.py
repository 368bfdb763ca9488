"""Learned fingerprints beside the hand-designed one and the naive index, on the search benchmark.

The learned fingerprint (`framegram.search.contrastive`) trains on distorted copies of the 40
generated videos the hand-designed basis was fitted on, plus, in a "wide" run, copies of extra
generated videos (`<cache>/bench/embedding-v1/run-<dims>d[-extra<N>]`, resumable). The search
benchmark's videos (`bench/search.py`'s corpus: film pieces, real clips, distractors with other
seeds) are never seen in training, so every figure here is on held-out
videos. Each method gets its own index of the 200 references and answers every query (same
cached query views, same matcher for both fingerprints); its threshold is calibrated on the
calibration split (at most 1 % of its negatives match) and every figure is from the test split.
A learned run is also scored at the threshold its training wrote (calibrated on its own held-out
copies and real footage, what a user of `framegram fingerprint train` gets).

Columns: recall@1 (no threshold), µAP (VSC22, top-5 rows, negatives included), median
localisation error of correct top-1 matches, bytes per indexed second, query latency (after
extraction; p50 / p95). Video-level mode: one vector per reference video (the normalised mean of
its per-second descriptors) and per query (the same over its windows, best view): the top
reference by cosine, no localisation; its storage is one vector per video.

    .venv/bin/python bench/embedding.py [--runs 64,64:160,256:160] [--epochs 30]

A run is DIMS (the basis's videos only) or DIMS:EXTRA (EXTRA more generated training videos).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as search_bench  # noqa: E402  (bench/search.py: cached views, scoring, calibration)
from common import markdown_table, write_result  # noqa: E402

from framegram.cache import framegram_for  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402
from framegram.search import MatchSettings, VideoIndex, match  # noqa: E402
from baselines import NaiveFrameIndex  # noqa: E402
from framegram.search.basis import default_basis  # noqa: E402
from framegram.search.contrastive import (  # noqa: E402
    ContrastiveConfig,
    default_training_data,
    train_fingerprint,
    window_recall_at_1,
)
from framegram.search.fingerprint import query_descriptors, reference_descriptors  # noqa: E402
from framegram.search.match import Match  # noqa: E402
from search_corpus import build_search_corpus, default_corpus_folder  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "embedding.json"
RUNS = cache_dir() / "bench" / "embedding-v1"


def fingerprint_results(name: str, fingerprint, corpus, ref_framegrams) -> tuple[dict, dict, float, float]:
    """(results per query, latency in s per query, index build s, vector bytes per second) of an index made with `fingerprint`."""
    folder = search_bench.work_dir(corpus) / f"index-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    index = VideoIndex.create(folder, fingerprint)
    index.add(((r.ref_id, ref_framegrams[r.ref_id]) for r in corpus.references), commit_every=100)
    build_s = time.perf_counter() - t
    results, latency = {}, {}
    for q in track(corpus.queries, description=f"queries ({name})"):
        views = search_bench.cached_views(corpus, q)
        t = time.perf_counter()
        results[q.query_id] = match(index, views, q.query_id, threshold=None, settings=MatchSettings())
        latency[q.query_id] = time.perf_counter() - t
    return results, latency, build_s, index.info().vector_bytes_per_second


def naive_results(corpus, ref_framegrams) -> tuple[dict, dict, float, float]:
    naive = NaiveFrameIndex()
    t = time.perf_counter()
    for r in corpus.references:
        naive.add(r.ref_id, ref_framegrams[r.ref_id])
    build_s = time.perf_counter() - t
    results, latency = {}, {}
    for q in track(corpus.queries, description="queries (naive)"):
        as_is = search_bench.cached_views(corpus, q)["as-is"]
        t = time.perf_counter()
        results[q.query_id] = naive.search(q.query_id, as_is)
        latency[q.query_id] = time.perf_counter() - t
    return results, latency, build_s, naive.bytes_per_second()


def video_level_results(fingerprint, corpus, ref_framegrams) -> dict:
    """One vector per video: top-5 references of each query by cosine of mean descriptors."""
    ids = [r.ref_id for r in corpus.references]

    def mean_vector(vectors: np.ndarray) -> np.ndarray:
        m = vectors.mean(axis=0)
        return m / max(float(np.linalg.norm(m)), 1e-12)

    refs = np.stack([mean_vector(reference_descriptors(ref_framegrams[i], fingerprint).vectors) for i in ids])
    results = {}
    for q in corpus.queries:
        views = search_bench.cached_views(corpus, q)
        scores = np.max([refs @ mean_vector(query_descriptors(v, fingerprint).vectors) for v in views.values()], axis=0)
        top = np.argsort(-scores)[:5]
        results[q.query_id] = [Match(q.query_id, ids[j], 0.0, q.query_duration, 0.0, 0.0, float(scores[j])) for j in top]
    return results


def parse_run(spec: str) -> tuple[int, int]:
    """"64" -> (64, 0); "64:160" -> (64, 160): embedding dims and extra training videos."""
    dims, _, extra = spec.partition(":")
    try:
        return int(dims), int(extra or 0)
    except ValueError:
        raise SystemExit(f"--runs: {spec!r} is not DIMS or DIMS:EXTRA_SOURCES") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="64", help="comma-separated runs to train and test: DIMS or DIMS:EXTRA_SOURCES")
    ap.add_argument("--epochs", type=int, default=ContrastiveConfig().epochs)
    args = ap.parse_args()
    started = time.perf_counter()

    fingerprints = {"hand-designed": default_basis()}
    training = {}
    data = {}  # training sets by extra videos: runs of one width share theirs
    for dims, extra in map(parse_run, args.runs.split(",")):
        if extra not in data:
            data[extra] = default_training_data(extra_sources=extra)
        train_set, val_set = data[extra]
        config = ContrastiveConfig(dims=dims, epochs=args.epochs)
        name, run = f"learned-{dims}d" + (f"+{extra}" if extra else ""), RUNS / (f"run-{dims}d" + (f"-extra{extra}" if extra else ""))
        t = time.perf_counter()
        fingerprints[name] = train_fingerprint(config, train_set, val_set, run, show_progress=sys.stderr.isatty())
        curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
        training[name] = {
            "config": config.__dict__, "training_data": train_set.identity, "run": str(run),
            "train_seconds": sum(r["seconds"] for r in curve), "val_recall_at_1": [r["val_recall_at_1"] for r in curve],
            "threshold_from_training": fingerprints[name].threshold, "this_call_s": time.perf_counter() - t,
        }
    val_recall = {name: window_recall_at_1(fp, val_set) for name, fp in fingerprints.items()}  # the same val set for every run

    corpus = build_search_corpus(default_corpus_folder())
    ref_framegrams = {r.ref_id: framegram_for(r.path)[0] for r in track(corpus.references, description="reference framegrams")}
    calibration, test = corpus.calibration_queries, corpus.test_queries
    runs = {name: fingerprint_results(name, fp, corpus, ref_framegrams) for name, fp in fingerprints.items()}
    runs["naive"] = naive_results(corpus, ref_framegrams)

    report = {"corpus": {"references": len(corpus.references), "hours": round(corpus.total_seconds / 3600, 3),
                         "test_queries": len(test), "calibration_queries": len(calibration)},
              "training": training, "val_window_recall_at_1": val_recall, "methods": {}, "per_distortion": {},
              "video_level": {}}
    for name, (results, latency, build_s, bytes_per_s) in runs.items():
        threshold = search_bench.calibrate(calibration, results)
        test_latency = [latency[q.query_id] for q in test]
        report["methods"][name] = {
            **search_bench.summarise(test, results, threshold), "threshold": threshold,
            "bytes_per_second": round(bytes_per_s, 1), "index_build_s": round(build_s, 2),
            "latency_ms": {"p50": 1000 * float(np.percentile(test_latency, 50)), "p95": 1000 * float(np.percentile(test_latency, 95))},
        }
        if name in training:  # what a user of the run gets: the threshold its training wrote, never tuned on this corpus
            own = training[name]["threshold_from_training"]
            at_own = search_bench.summarise(test, results, own)
            report["methods"][name]["at_training_threshold"] = {
                "threshold": own, "recall_at_1_thresholded": at_own["recall_at_1_thresholded"],
                "negatives_matched": at_own["negatives_matched"], "negatives": at_own["negatives"]}
    for d in sorted({q.distortion for q in test if q.ref_id is not None}):
        subset = [q for q in test if q.distortion == d and q.ref_id is not None]
        report["per_distortion"][d] = {name: search_bench.summarise(subset, runs[name][0], None)["recall_at_1"] for name in runs}
    for name, fp in fingerprints.items():
        results = video_level_results(fp, corpus, ref_framegrams)
        threshold = search_bench.calibrate(calibration, results)
        summary = search_bench.summarise(test, results, threshold)
        report["video_level"][name] = {"recall_at_1": summary["recall_at_1"], "uap": summary["uap"],
                                       "bytes_per_video": fp.dims, "threshold": threshold}
    report["wall_s"] = round(time.perf_counter() - started, 1)
    write_result(RESULTS, report)
    print_tables(report)


def print_tables(r: dict) -> None:
    print(f"\n{r['corpus']['references']} references, {r['corpus']['hours']} h; {r['corpus']['test_queries']} test queries "
          "(held out from training); thresholds from the calibration split\n")
    rows = [[name, f"{m['recall_at_1']:.3f}", f"{m['uap']:.3f}", f"{m['median_localisation_error_s']:.2f}",
             f"{m['bytes_per_second']:.0f}", f"{m['latency_ms']['p50']:.1f} / {m['latency_ms']['p95']:.1f}",
             f"{m['negatives_matched']}/{m['negatives']} at {m['threshold']}", f"{m['recall_at_1_thresholded']:.3f}",
             f"{r['val_window_recall_at_1'].get(name, float('nan')):.3f}"]
            for name, m in r["methods"].items()]
    print(markdown_table(["method", "recall@1", "µAP", "median loc. err. (s)", "bytes / s", "query ms p50 / p95",
                          "negatives matched", "recall@1 at threshold", "window recall@1 (training's held-out sources)"], rows))
    print()
    names = list(next(iter(r["per_distortion"].values())))
    print(markdown_table(["distortion (recall@1)", *names],
                         [[d, *(f"{per[n]:.2f}" for n in names)] for d, per in r["per_distortion"].items()]))
    print()
    print(markdown_table(["video-level mode", "recall@1", "µAP", "bytes / video"],
                         [[n, f"{v['recall_at_1']:.3f}", f"{v['uap']:.3f}", v["bytes_per_video"]] for n, v in r["video_level"].items()]))
    print()
    print(markdown_table(["at the threshold training wrote", "threshold", "recall@1 at threshold", "negatives matched"],
                         [[n, f"{m['at_training_threshold']['threshold']:.3f}", f"{m['at_training_threshold']['recall_at_1_thresholded']:.3f}",
                           f"{m['at_training_threshold']['negatives_matched']}/{m['at_training_threshold']['negatives']}"]
                          for n, m in r["methods"].items() if "at_training_threshold" in m]))
    for name, t in r["training"].items():
        print(f"\n{name}: trained {t['train_seconds'] / 60:.1f} min; held-out window recall@1 by epoch "
              + ", ".join(f"{v:.2f}" for v in t["val_recall_at_1"]))
    print(f"\nwall time {r['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
