"""Video search ("which video is this clip from, and where") beside three baselines, in one run.

Corpus (`search_corpus`, deterministic, cached): Big Buck Bunny cut into ~30-s
pieces, six other real clips and generated distractor videos: >= 200 references, >= 2 hours.
Queries of 5 s and 10 s from random positions under 18 distortions, and negative queries cut from
videos that are not indexed. A calibration split (other draws, other negative sources) sets the
score threshold; every reported figure comes from the test split.

Methods, all on the same framegrams (EfficientNet-Lite0, 5 fps):
  framegram    the index: 256-dim 8-bit per-second fingerprints, query views, temporal alignment
  naive        every 20th frame's 1280-d float32 vector, nearest neighbour per query frame, vote
  vpdq         Meta's vPDQ: a 256-bit PDQ hash a second (from the video files), matched by the rule of
               its hasher-matcher-actioner (Hamming <= 31; score: share of query hashes matched;
               HMA's own match: >= 80 %, reported beside the calibrated threshold)
  sliding      exhaustive sliding cosine of the raw framegrams at speeds 0.8/1/1.25 (the ceiling)

Recall@1: the top match names the right reference (no threshold). Localisation error: mean of
|ref_start - true start| and |ref_end - true end| for correct top-1 matches. µAP: VSC22, over all
test queries (negatives included), from each method's top-5 rows. Query time: after extraction.
Index sizes (bench/index_sizes.py): our threshold is calibrated over indexes of 1 to 200 references
(every query whose reference is not in an index counts as a negative there), and the negatives
matched and recall@1 at it are reported per size; a query-length run cuts queries to their first
0.6-3 s. At scale (a generated background of 1,000 to 100,000 hours): bench/search_scale.py.

Run: `.venv/bin/python bench/search.py` (first run renders the corpus and extracts ~2.5 h of
video: about an hour on 2 cores; then minutes). Writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import index_sizes
import numpy as np
from common import markdown_table, write_result
from rich.progress import track

from framegram.cache import framegram_for
from framegram.encoders import DEFAULT_ENCODER, get_encoder
from framegram.framegram import Framegram, FramegramMeta
from framegram.io.atomic import atomic_write_bytes
from framegram.search import MatchSettings, VideoIndex, match
from baselines import NaiveFrameIndex, SlidingCorrelation, VPDQBaseline, VPDQHashes
from framegram.search.basis import default_basis
from framegram.search.match import Match
from framegram.search.matcher import false_match_threshold
from framegram.search.metrics import micro_average_precision
from framegram.search.query import query_views
from search_corpus import SearchCorpus, SearchQuery, build_search_corpus, default_corpus_folder

RESULTS = Path(__file__).parent / "results" / "search.json"
METHODS = ("framegram", "naive", "vpdq", "sliding")
MAX_NEGATIVE_RATE = 0.01
VIEWS_VERSION = 2  # bump when query_views changes what it computes


def work_dir(corpus: SearchCorpus) -> Path:
    return corpus.folder / "run"


# ---- query framegrams (cached: extraction dominates the first run) ----------------------------


def cached_views(corpus: SearchCorpus, q: SearchQuery, encoder: str = DEFAULT_ENCODER) -> dict[str, Framegram]:
    folder = work_dir(corpus) / (f"views-v{VIEWS_VERSION}" + ("" if encoder == DEFAULT_ENCODER else f"-{encoder}"))
    path = folder / f"{q.query_id}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            meta = FramegramMeta.from_json(z["meta"].item())
            names = [str(n) for n in z["names"]]
            return {n: Framegram(z[f"f_{n}"], z["times"], meta) for n in names}
    views = query_views(q.path, encoder)
    buf = io.BytesIO()
    first = next(iter(views.values()))
    np.savez(buf, names=np.array(list(views)), times=first.times, meta=np.array(first.meta.to_json()),
             **{f"f_{n}": v.features for n, v in views.items()})
    atomic_write_bytes(path, buf.getvalue())
    return views


# ---- vPDQ (cached: about a second per minute of video, FFmpeg-bound) ---------------------------


def _hash_one(path: str) -> tuple[str, VPDQHashes]:
    return path, VPDQBaseline().hash_video(path)


def vpdq_hashes(corpus: SearchCorpus, paths: list[Path], workers: int) -> dict[str, VPDQHashes]:
    """Every file's vPDQ hash, cached in the run folder (resumes: written every 100 files)."""
    cache = work_dir(corpus) / "vpdq.npz"
    known: dict[str, VPDQHashes] = {}
    if cache.exists():
        with np.load(cache) as z:
            names = json.loads(z["names"].item())
            for k, name in enumerate(names):
                known[name] = VPDQHashes(z[f"bits{k}"], z[f"quality{k}"], z[f"times{k}"], float(z["durations"][k]))

    def save() -> None:
        names = list(known)
        arrays = {"names": np.array(json.dumps(names)), "durations": np.array([known[n].duration for n in names])}
        for k, n in enumerate(names):
            arrays |= {f"bits{k}": known[n].bits, f"quality{k}": known[n].quality, f"times{k}": known[n].times}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(cache, buffer.getvalue())

    todo = [str(p) for p in paths if str(p) not in known]
    if todo:
        with ProcessPoolExecutor(workers) as pool:
            for n, (path, hashes) in enumerate(track(pool.map(_hash_one, todo, chunksize=8), total=len(todo), description="vPDQ")):
                known[path] = hashes
                if n % 100 == 99:
                    save()
        save()
    return {str(p): known[str(p)] for p in paths}


# ---- scoring ----------------------------------------------------------------------------------


def localisation_error(m: Match, q: SearchQuery) -> float:
    return 0.5 * (abs(m.ref_start - q.ref_start) + abs(m.ref_end - q.ref_end))


def summarise(queries: list[SearchQuery], results: dict[str, list[Match]], threshold: float | None) -> dict:
    """Recall@1, localisation error, negatives' false-match rate and µAP of one method."""
    positives = [q for q in queries if q.ref_id is not None]
    negatives = [q for q in queries if q.ref_id is None]
    top = {q.query_id: (results[q.query_id][0] if results[q.query_id] else None) for q in queries}
    correct = [q for q in positives if top[q.query_id] is not None and top[q.query_id].ref_id == q.ref_id]
    errors = [localisation_error(top[q.query_id], q) for q in correct]
    out = {
        "queries": len(positives),
        "recall_at_1": len(correct) / len(positives) if positives else float("nan"),
        "median_localisation_error_s": statistics.median(errors) if errors else float("nan"),
        "uap": micro_average_precision(
            [m for q in queries for m in results[q.query_id]], [(q.query_id, q.ref_id) for q in positives]
        ) if positives else float("nan"),
    }
    if threshold is not None:
        reported = [q for q in positives if top[q.query_id] is not None and top[q.query_id].score >= threshold
                    and top[q.query_id].ref_id == q.ref_id]
        out["recall_at_1_thresholded"] = len(reported) / len(positives) if positives else float("nan")
        out["negatives"] = len(negatives)
        out["negatives_matched"] = sum(1 for q in negatives if top[q.query_id] is not None and top[q.query_id].score >= threshold)
    return out


def calibrate(queries: list[SearchQuery], results: dict[str, list[Match]]) -> float:
    """The lowest threshold at which at most MAX_NEGATIVE_RATE of the calibration negatives match."""
    return false_match_threshold([results[q.query_id][0].score for q in queries if q.ref_id is None and results[q.query_id]],
                                 MAX_NEGATIVE_RATE)


# ---- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-vpdq", action="store_true", help="skip vPDQ (it needs the vpdq package)")
    parser.add_argument("--no-lengths", action="store_true", help="skip the query-length run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes (default: bench/results/search.json)")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="the frame encoder of every framegram (its packaged basis)")
    parser.add_argument("--framegram-only", action="store_true",
                        help="our index alone, threshold calibrated on the full index (no baselines, sizes or lengths)")
    args = parser.parse_args()
    if args.framegram_only:
        args.no_vpdq = args.no_lengths = True

    started = time.perf_counter()
    corpus = build_search_corpus(default_corpus_folder(), workers=args.workers)
    print(corpus.summary())
    refs = corpus.references
    encoder = get_encoder(args.encoder)
    ref_framegrams = {r.ref_id: framegram_for(r.path, encoder)[0] for r in track(refs, description="reference framegrams")}
    views_of = lambda q: cached_views(corpus, q, args.encoder)  # noqa: E731

    # our index, built fresh each run (descriptors come from the cached framegrams)
    index_dir = work_dir(corpus) / ("index" if args.encoder == DEFAULT_ENCODER else f"index-{args.encoder}")
    shutil.rmtree(index_dir, ignore_errors=True)
    t = time.perf_counter()
    index = VideoIndex.create(index_dir, default_basis(args.encoder))
    index.add(((r.ref_id, ref_framegrams[r.ref_id]) for r in refs), commit_every=100)
    index_build_s = time.perf_counter() - t
    info = index.info()

    naive, sliding = NaiveFrameIndex(), SlidingCorrelation()
    for r in refs if not args.framegram_only else []:
        naive.add(r.ref_id, ref_framegrams[r.ref_id])
        sliding.add(r.ref_id, ref_framegrams[r.ref_id])
    hasher = None
    if not args.no_vpdq:
        hasher = VPDQBaseline()
        hashes = vpdq_hashes(corpus, [r.path for r in refs] + [q.path for q in corpus.queries], args.workers)
        for r in refs:
            hasher.add_hash(r.ref_id, hashes[str(r.path)])

    results: dict[str, dict[str, list[Match]]] = {m: {} for m in METHODS}
    latency: dict[str, list[float]] = {m: [] for m in METHODS}
    extract_s: list[float] = []
    settings = MatchSettings()
    for q in track(corpus.queries, description="queries"):
        t = time.perf_counter()
        views = views_of(q)
        extract_s.append(time.perf_counter() - t)
        as_is = views["as-is"]
        baselines = not args.framegram_only
        for name, run in (
            ("framegram", lambda: match(index, views, q.query_id, threshold=None, settings=settings)),
            ("naive", (lambda: naive.search(q.query_id, as_is)) if baselines else None),
            ("sliding", (lambda: sliding.search(q.query_id, as_is)) if baselines else None),
            ("vpdq", (lambda: hasher.search_hash(q.query_id, hashes[str(q.path)])) if hasher else None),
        ):
            if run is None:
                results[name][q.query_id] = []
                continue
            t = time.perf_counter()
            results[name][q.query_id] = run()
            latency[name].append(time.perf_counter() - t)

    calibration = corpus.calibration_queries
    test = corpus.test_queries
    # ours: calibrated over indexes of every size (the score must mean the same in each)
    full = index_sizes.SizeRun(len(refs), frozenset(ref_framegrams), {
        q.query_id: (results["framegram"][q.query_id][0].ref_id, results["framegram"][q.query_id][0].score)
        if results["framegram"][q.query_id] else None for q in corpus.queries})
    small = index_sizes.draw_indexes(corpus) if not args.framegram_only else []
    size_runs = [index_sizes.run_index(refs_, ref_framegrams, corpus.queries, views_of)
                 for refs_ in track(small, description="small indexes")]
    threshold = index_sizes.calibrate_over_sizes([*size_runs, full], corpus.queries, MAX_NEGATIVE_RATE)
    # the baselines' thresholds are calibrated on the full index's calibration negatives
    thresholds = {m: calibrate(calibration, results[m]) for m in METHODS if latency[m]}
    thresholds["framegram"] = threshold

    report = {
        "encoder": encoder.spec.name,
        "corpus": {
            "references": len(refs), "hours": round(corpus.total_seconds / 3600, 3),
            "test_queries": len(test), "calibration_queries": len(calibration),
            "folder": str(corpus.folder),
        },
        "index": {
            "videos": info.videos, "seconds": info.seconds, "bytes_on_disk": info.bytes_on_disk,
            "vector_bytes_per_second": round(info.vector_bytes_per_second, 1), "build_s": round(index_build_s, 2),
            "fingerprint": info.fingerprint,
        },
        "bytes_per_second": {
            "framegram": round(info.vector_bytes_per_second, 1),
            "naive": naive.bytes_per_second() if latency["naive"] else None,
            "sliding": sliding.bytes_per_second() if latency["sliding"] else None, "vpdq": hasher.bytes_per_second() if hasher else None,
        },
        "threshold": threshold,
        "thresholds": thresholds,
        "latency_ms": {
            m: {"p50": 1000 * float(np.percentile(v, 50)), "p95": 1000 * float(np.percentile(v, 95))}
            for m, v in latency.items() if v
        },
        "overall": {},
        "per_distortion": {},
    }
    for m in METHODS:
        if not latency[m]:
            continue
        report["overall"][m] = {
            f"{int(length)}s": summarise([q for q in test if q.length == length], results[m], thresholds[m])
            for length in (5.0, 10.0)
        }
        report["overall"][m]["all"] = summarise(test, results[m], thresholds[m])
    if latency["vpdq"]:  # vPDQ as HMA deploys it: a match is >= 80 % of the query's hashes matched
        report["vpdq_hma_rule"] = {
            "threshold": VPDQBaseline.HMA_QUERY_SHARE,
            **{f"{int(length)}s": summarise([q for q in test if q.length == length], results["vpdq"], VPDQBaseline.HMA_QUERY_SHARE)
               for length in (5.0, 10.0)},
            "all": summarise(test, results["vpdq"], VPDQBaseline.HMA_QUERY_SHARE)}
    for d in sorted({q.distortion for q in test if q.ref_id is not None}):
        report["per_distortion"][d] = {
            m: {f"{int(length)}s": summarise([q for q in test if q.distortion == d and q.length == length and q.ref_id],
                                              results[m], None) for length in (5.0, 10.0)}
            for m in METHODS if latency[m]
        }
    if size_runs:
        report["index_sizes"] = index_sizes.size_rows([*size_runs, full], corpus.queries, threshold)
    if not args.no_lengths:
        report["query_lengths"] = index_sizes.length_rows(corpus, ref_framegrams, full.refs, small,
                                                          views_of, threshold)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    write_result(args.out, report)
    print_tables(report)


def print_tables(r: dict) -> None:
    methods = [m for m in METHODS if m in r["overall"]]
    print(f"\ncorpus: {r['corpus']['references']} references, {r['corpus']['hours']} h; "
          f"{r['corpus']['test_queries']} test queries; threshold {r['threshold']} (calibration split)\n")
    rows = []
    for d, per in r["per_distortion"].items():
        rows.append([d] + [f"{per[m]['10s']['recall_at_1']:.2f} / {per[m]['5s']['recall_at_1']:.2f}" for m in methods]
                    + [f"{per['framegram']['10s']['median_localisation_error_s']:.2f}"])
    print(markdown_table(["distortion (recall@1 10 s / 5 s)", *methods, "framegram loc. err. 10 s (s)"], rows))
    print()
    rows = []
    for m in methods:
        o = r["overall"][m]
        rows.append([
            m, f"{o['10s']['recall_at_1']:.3f}", f"{o['5s']['recall_at_1']:.3f}",
            f"{o['10s']['median_localisation_error_s']:.2f}", f"{o['all']['uap']:.3f}",
            f"{o['all']['negatives_matched']}/{o['all']['negatives']} at {r['thresholds'][m]}",
            f"{o['all']['recall_at_1_thresholded']:.3f}",
            f"{r['bytes_per_second'][m]:.3g}", f"{r['latency_ms'][m]['p50']:.1f} / {r['latency_ms'][m]['p95']:.1f}",
        ])
    if "vpdq_hma_rule" in r:
        h = r["vpdq_hma_rule"]
        rows.append(["vpdq, HMA's rule", "", "", "", "", f"{h['all']['negatives_matched']}/{h['all']['negatives']} at {h['threshold']}",
                     f"{h['all']['recall_at_1_thresholded']:.3f}", "", ""])
    print(markdown_table(
        ["method", "recall@1 10 s", "recall@1 5 s", "median loc. err. 10 s (s)", "µAP", "negatives matched",
         "recall@1 at threshold", "bytes / s", "query ms p50 / p95"], rows))
    if "index_sizes" in r:
        print(f"\nthe score in indexes of every size (threshold {r['threshold']}, calibrated over all of them; test split)\n")
        print(size_table(r["index_sizes"], "index size"))
    if "query_lengths" in r:
        print("\nqueries cut to their first seconds (test split)\n")
        print(size_table(r["query_lengths"], "query s / index size"))


def size_table(rows: list[dict], first: str) -> str:
    return markdown_table(
        [first, "indexes", "corpus negatives matched", "left-out references' queries matched", "recall@1", "recall@1 at threshold"],
        [[f"{row['seconds']:g} s / {row['size']}" if "seconds" in row else row["size"], row["indexes"],
          f"{row['corpus_negatives_matched']}/{row['corpus_negatives']}", f"{row['left_out_matched']}/{row['left_out_queries']}",
          f"{row['recall_at_1']:.3f}", f"{row['recall_at_1_thresholded']:.3f}"] for row in rows])


if __name__ == "__main__":
    main()
