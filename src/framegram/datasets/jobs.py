"""Rendering many generated videos: a process pool (or none), jobs run with a progress bar, results
in job order. Shared by the search corpus and the fingerprint training copies."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from framegram.errors import InputError
from framegram.io.decode import probe_video
from framegram.datasets.distort import render_query


def render_pool(workers: int):
    """A started ProcessPoolExecutor, or an inline stand-in for `workers` <= 1 (use as a context manager)."""
    if workers <= 1:
        return _InlinePool()
    pool = ProcessPoolExecutor(workers)
    # start the workers now, before rich's refresh thread runs: forking a threaded process can deadlock
    pool.submit(int, 0).result()
    return pool


class _InlineFuture:
    def __init__(self, fn, arg):
        self._value = fn(arg)

    def result(self):
        return self._value


class _InlinePool:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, arg):
        return _InlineFuture(fn, arg)


def run_jobs(pool, bar, label: str, fn, jobs: list[dict]) -> list[float]:
    """Run `fn` over `jobs` in the pool, advancing a `label` task of the rich progress `bar`; the results in job order."""
    task = bar.add_task(label, total=len(jobs))
    results: list[float] = [0.0] * len(jobs)
    futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
    done = futures if isinstance(pool, _InlinePool) else as_completed(futures)
    for future in done:
        results[futures[future]] = future.result()
        bar.advance(task)
    return results


def render_query_job(job: dict) -> float:
    """Render `job["span"]` s of `job["source"]` from `job["start"]` with `job["distortion"]` into
    `job["out"]` unless it exists; the declared duration of the result in seconds."""
    out: Path = job["out"]
    if not out.exists():
        render_query(job["source"], job["start"], job["span"], job["distortion"], out)
    return declared_duration(out)


def render_distractor_job(job: dict) -> float:
    """Render the generated video `job` describes (seed, seconds, size, fps, photos; see
    `framegram.datasets.distractors.render_distractor`) into `job["out"]` unless it exists; its declared duration."""
    from framegram.datasets.distractors import render_distractor

    out: Path = job["out"]
    if not out.exists():
        render_distractor(job["seed"], job["seconds"], out, size=job["size"], fps=job["fps"], photos=job["photos"])
    return declared_duration(out)


def declared_duration(path: Path) -> float:
    """The duration a video file declares, in seconds (InputError if it declares none)."""
    duration = probe_video(path).duration
    if duration is None:
        raise InputError(path, "declares no duration")
    return float(duration)
