"""`--engine ray`: extraction of many videos on a Ray cluster, the same outputs as `batch.extract_folder`.

The videos are a Ray Data dataset of (video, target) rows, one row per block; `map_batches` runs them
through an actor pool, each actor holding one encoder session (and one GPU where the cluster has
them). Each actor does what the local engine does per video (`batch.extract_video_to`): hash the
file, skip it if its framegram is up to date, extract, write the file atomically. So:

- a worker killed mid-video: Ray Data restarts the actor and retries the row; the half-written
  temporary file is never renamed into place, and the retry writes the framegram once;
- the driver killed: a rerun finds the finished framegrams up to date and extracts only the rest;
- a video that fails (bad file, decoder error) comes back as a failed row with its reason; the
  others go on. A video whose worker dies on every try is listed as failed as well.

The output folder must be one every node can read and write (a shared file system) when the
cluster has more than one machine. Ray is imported only here, and only when this engine is chosen.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from framegram.batch import (
    EXTRACTION_ERRORS, BatchResult, extract_video_to, failure_reason, find_videos, output_paths, report_done,
)
from framegram.encoders import FrameEncoder
from framegram.errors import FramegramError
from framegram.extract import DEFAULT_FPS, ExtractTiming
from framegram.progress import extraction_progress

#: object store of a cluster started here: only paths and statuses pass through it, and Ray's default
#: (30 % of the memory) would be taken from decoding
LOCAL_OBJECT_STORE = 256 * 2**20
#: attempts of one video whose worker process dies (the others die of a bug, not of a fault)
MAX_ATTEMPTS = 4


class RayEngineError(FramegramError):
    """Ray is missing, or the cluster cannot be reached."""


class _Extractor:
    """One actor of the pool: an encoder session, then one video per call."""

    def __init__(self, encoder: str, fps: float, threads: int | None):
        from framegram.encoders import get_encoder

        self.encoder = get_encoder(encoder, threads=threads)
        self.fps = fps

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows: dict[str, list] = {k: [] for k in ("video", "status", "reason", "frames", "video_seconds", "wall_seconds")}
        for video, target in zip(batch["video"], batch["target"]):
            status, reason, timing = "failed", "", None
            try:
                timing = extract_video_to(Path(video), Path(target), self.encoder, self.fps)
                status = "skipped" if timing is None else "done"
            except EXTRACTION_ERRORS as exc:
                reason = failure_reason(exc)
            for key, value in (("video", str(video)), ("status", status), ("reason", reason),
                               ("frames", timing.frames if timing else 0),
                               ("video_seconds", timing.video_seconds if timing else 0.0),
                               ("wall_seconds", timing.wall_seconds if timing else 0.0)):
                rows[key].append(value)
        return rows


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` ("auto": the one this machine belongs to), or start a local one
    when None. Returns True when this call started Ray (the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        raise RayEngineError("--engine ray needs Ray: pip install 'framegram[ray]'") from None
    if ray.is_initialized():
        return False
    local = {"num_cpus": num_cpus, "object_store_memory": LOCAL_OBJECT_STORE} if address is None else {}
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING", **local)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayEngineError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return True


def extract_folder_ray(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    encoder: FrameEncoder | str | None = None,
    fps: float = DEFAULT_FPS,
    show_progress: bool = True,
    address: str | None = None,
    actors: int | None = None,
    threads_per_actor: int | None = None,
) -> BatchResult:
    """`batch.extract_folder` on Ray: the same files, skipping and failure list.

    address: the cluster ("auto", "ray://host:10001", "host:6379"); None starts a local one.
    actors: size of the pool (default: as many as the nodes' CPUs hold, or one per GPU).
    threads_per_actor: CPUs each actor asks for and its encoder's threads (default 2: one decodes,
        one infers; 1 where a node has one CPU or `actors` would not fit otherwise).
    """
    started_here = connect(address)  # first: a missing Ray is one line, not a traceback
    import ray

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = encoder.spec.name if isinstance(encoder, FrameEncoder) else (encoder or "efficientnet-lite0")
    videos = find_videos(inputs)
    targets = output_paths(videos, out_dir)
    result = BatchResult()
    try:
        threads, pool, gpus = _pool_size(ray, actors, threads_per_actor)
        if videos:
            _run(ray, targets, name, fps, threads, pool, gpus, result, show_progress)
    finally:
        if started_here:
            ray.shutdown()
    return result


def _pool_size(ray, actors: int | None, threads: int | None) -> tuple[int, int, int]:
    """(threads per actor, actors, GPUs of the cluster): by default 2 threads an actor (one decodes,
    one infers) or a node's CPUs if fewer, as many actors as the nodes hold (one per GPU with GPUs).
    An actor must fit on one node; a pool that cannot fit is refused (Ray would wait for it forever)."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    node_cpus = [int(r.get("CPU", 0)) for r in nodes]
    gpus = int(sum(r.get("GPU", 0) for r in nodes))
    if threads is None:  # 2, or 1 where the nodes' CPUs hold more actors that way
        threads = max(1, min(2, max(node_cpus, default=1)))
        if actors and sum(c // threads for c in node_cpus) < actors:
            threads = 1
    fits = sum(c // threads for c in node_cpus)
    pool = actors or (gpus if gpus else max(1, fits))
    if not gpus and pool > fits:
        raise RayEngineError(f"{pool} actors of {threads} CPUs do not fit the cluster's nodes "
                             f"({', '.join(map(str, node_cpus))} CPUs): ask for at most {fits}")
    return threads, pool, gpus


def _run(ray, targets: dict[Path, Path], encoder: str, fps: float, threads: int, pool: int, gpus: int,
         result: BatchResult, show_progress: bool) -> None:
    """One row per video (`targets`: video -> framegram file) through the actor pool, into `result`."""
    # absolute paths: an actor's working folder is not the driver's (nor on the same machine)
    by_path = {str(v.absolute()): v for v in targets}
    rows = [{"video": key, "target": str(targets[v].absolute())} for key, v in by_path.items()]
    context = ray.data.DataContext.get_current()
    context.max_errored_blocks = len(rows)  # a row whose worker always dies fails alone, not the job
    context.enable_progress_bars = False  # ours below, as the local engine's
    context.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and progress lines: ours are below
    with warnings.catch_warnings():
        # Ray 2.60 deprecates remote arguments given this way, but has no other way to bound retries
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Extractor, fn_constructor_kwargs={"encoder": encoder, "fps": fps, "threads": threads},
            # the int8 encoder runs on the CPU only: its actors take no GPU
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=threads,
            num_gpus=1 if gpus and not encoder.endswith("-int8") else 0,
            max_restarts=-1, max_task_retries=MAX_ATTEMPTS - 1,
        )
    seen: set[str] = set()
    with extraction_progress(show_progress) as bars:
        overall = bars.add_task("videos", total=len(rows), fps=None)
        for row in dataset.iter_rows():
            video = by_path[row["video"]]
            seen.add(row["video"])
            if row["status"] == "failed":
                result.failed[video] = row["reason"]
            else:
                timing = ExtractTiming(int(row["frames"]), float(row["video_seconds"]), float(row["wall_seconds"])) if row["status"] == "done" else None
                result.record(video, targets[video], timing)
                if timing is not None:
                    report_done(bars, video, timing)
            bars.advance(overall)
    for key, video in by_path.items():
        if key not in seen:
            result.failed[video] = f"its Ray worker died on each of {MAX_ATTEMPTS} tries"
