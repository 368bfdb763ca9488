"""`--engine ray` on real local Ray clusters: the same framegrams as the local engine, and no video
lost or written twice when an actor or the driver is killed; a two-node cluster on this machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray engine's tests need the framegram[ray] extra")

from framegram.batch import extract_folder  # noqa: E402
from framegram.framegram import Framegram  # noqa: E402
from framegram.ray_engine import extract_folder_ray  # noqa: E402
from ray_cluster import processes, two_node_cluster  # noqa: E402  (bench/, on pytest's path)

FRAMEGRAM_CLI = [sys.executable, "-m", "framegram"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the in-process tests (starting one costs ~8 s)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_framegrams(videos, trailer, encoder, tmp_path_factory):
    """The local engine's framegrams of the real clips and the trailer, by video."""
    inputs = [videos["bikes.mp4"], trailer, videos["carphone_pristine.mp4"]]
    return extract_folder(inputs, tmp_path_factory.mktemp("local"), encoder=encoder, show_progress=False).done


def assert_same_framegram(a: Path, b: Path) -> None:
    x, y = Framegram.load(a), Framegram.load(b)
    assert np.array_equal(x.features, y.features) and np.array_equal(x.times, y.times)
    assert x.meta == y.meta


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".framegram.npz"))


def test_ray_engine_writes_the_local_engines_framegrams(cluster, videos, local_framegrams, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    inputs = [*local_framegrams, text, tmp_path / "missing.mp4"]
    result = extract_folder_ray(inputs, tmp_path / "out", show_progress=False)
    assert set(result.done) == set(local_framegrams)
    for video, path in local_framegrams.items():
        assert_same_framegram(path, result.done[video])
    local_failures = extract_folder([text, tmp_path / "missing.mp4"], tmp_path / "local", show_progress=False).failed
    assert result.failed == local_failures and len(local_failures) == 2
    again = extract_folder_ray(inputs, tmp_path / "out", show_progress=False)
    assert set(again.skipped) == set(local_framegrams) and not again.done


def _actor_pids() -> list[int]:
    return processes("MapBatches(_Extractor)")


def _actor_reading(video: Path, timeout_s: float = 120.0) -> list[int]:
    """The actors that hold `video` open (are decoding it), polled until one does or `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reading = set(processes(str(video), open_files=True)) & set(_actor_pids())
        if reading:
            return sorted(reading)
        time.sleep(0.05)
    return []


def test_a_killed_actor_loses_and_duplicates_nothing(cluster, videos, trailer, local_framegrams, tmp_path):
    """The actor killed while it decodes the trailer (55 s of 720p: seconds of work), whichever order
    Ray hands it the videos in: nothing lost, nothing written twice."""
    out = tmp_path / "out"
    inputs = [videos["bikes.mp4"], trailer, videos["carphone_pristine.mp4"]]
    outcome: dict = {}
    job = threading.Thread(target=lambda: outcome.setdefault("result", extract_folder_ray(inputs, out, show_progress=False, actors=1)))
    job.start()
    killed = _actor_reading(trailer)
    written_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.framegram.npz")}
    assert len(killed) == 1
    os.kill(killed[0], signal.SIGKILL)
    job.join(timeout=300)
    result = outcome["result"]
    assert not result.failed
    assert set(result.done) | set(result.skipped) == set(inputs)
    assert trailer in result.done  # extracted again by the restarted actor, once
    for video in inputs:
        assert_same_framegram(local_framegrams[video], (result.done | result.skipped)[video])
    assert {name: (out / name).stat().st_mtime_ns for name in written_before} == written_before  # never rewritten
    assert len(list(out.glob("*.framegram.npz"))) == 3 and leftovers(out) == []
    assert killed[0] not in _actor_pids()


def test_a_rerun_after_the_driver_is_killed_finishes_only_the_rest(videos, trailer, local_framegrams, tmp_path):
    """The driver (the CLI, with the local cluster it started) killed after the first video."""
    out = tmp_path / "out"
    inputs = [videos["bikes.mp4"], trailer, videos["carphone_pristine.mp4"]]
    args = [*FRAMEGRAM_CLI, "extract", *map(str, inputs), "--out", str(out), "--engine", "ray", "--actors", "1", "-q"]
    driver = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.glob("bikes*.framegram.npz"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    written_first = next(out.glob("bikes*.framegram.npz")).stat().st_mtime_ns
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and every process of its session
    driver.wait()
    done_before = {p.name for p in out.glob("*.framegram.npz")}
    assert len(done_before) < 3
    rerun = subprocess.run(args[:-1], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{3 - len(done_before)} extracted, {len(done_before)} already done, 0 failed" in rerun.stdout
    assert next(out.glob("bikes*.framegram.npz")).stat().st_mtime_ns == written_first
    for video in inputs:
        assert_same_framegram(local_framegrams[video], next(out.glob(f"{video.stem}*.framegram.npz")))
    assert leftovers(out) == []


def test_a_two_node_cluster_on_this_machine_runs_the_same_job(videos, local_framegrams, tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    inputs = [videos["bikes.mp4"], videos["carphone_pristine.mp4"]]
    with two_node_cluster() as cluster:  # raises unless Ray reports both nodes
        run = subprocess.run([*FRAMEGRAM_CLI, "extract", *map(str, inputs), "--out", str(tmp_path / "out"),
                              "--engine", "ray", "--address", cluster.address, "--actors", "2", "-q"],
                             capture_output=True, text=True, timeout=300, env=cluster.env)
    assert run.returncode == 0, run.stderr
    for video in inputs:
        assert_same_framegram(local_framegrams[video], next((tmp_path / "out").glob(f"{video.stem}*.framegram.npz")))


def test_index_add_on_ray_indexes_what_the_local_add_indexes(videos, tmp_path):
    """`index add --engine ray`: extracted on a cluster (started by the command) into --framegrams,
    then indexed from those files: the same videos, ids and descriptors as the local add."""
    from framegram.search import VideoIndex

    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        shutil.copy(videos[name], clips / name)
    (clips / "notes.mp4").write_text("not a video")
    ray_run = subprocess.run([*FRAMEGRAM_CLI, "index", "add", str(clips), "--index", str(tmp_path / "ray-index"), "--engine", "ray",
                              "--framegrams", str(tmp_path / "fg"), "-q"], capture_output=True, text=True, timeout=300)
    assert ray_run.returncode == 1 and "2 added, 0 already indexed, 1 failed" in ray_run.stdout
    assert "notes.mp4" in ray_run.stderr and len(list((tmp_path / "fg").glob("*.framegram.npz"))) == 2
    local_run = subprocess.run([*FRAMEGRAM_CLI, "index", "add", str(clips), "--index", str(tmp_path / "local-index"), "-q"],
                               capture_output=True, text=True, timeout=300)
    assert "2 added" in local_run.stdout
    on_ray, local = VideoIndex.open(tmp_path / "ray-index"), VideoIndex.open(tmp_path / "local-index")
    assert on_ray.ref_ids == local.ref_ids == ["bikes.mp4", "carphone_pristine.mp4"]
    for ref_id in local.ref_ids:
        # the local add reads the user cache's framegram, which another batch size may have made:
        # equal up to float32 rounding, so within one step of the 8-bit codes
        assert np.abs(on_ray.video_vectors(ref_id) - local.video_vectors(ref_id)).max() < 0.01
