"""Query distortions for copy detection: geometry, determinism, and that the source is still findable."""

import numpy as np
import pytest

from framegram.align import locate
from framegram.extract import extract
from framegram.io import probe_video, sample_frames
from framegram.synth.distort import distortions, render_query

EXPECTED_SIZE = {  # bikes.mp4 is 640x272
    "downscale-320": (320, 136),
    "crop-70": (448, 190),
    "letterbox": (640, 480),
    "picture-in-picture": (640, 360),
    "combo-3": (512, 216),
}


def frames_of(path, fps=2.0):
    return np.concatenate([b.frames for b in sample_frames(path, fps=fps, size=(68, 160), skip_nonref=False)])


@pytest.fixture(scope="module")
def rendered(videos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("queries")
    return {name: render_query(videos["bikes.mp4"], 2.0, 3.0, name, folder / f"{name}.mp4") for name in distortions()}


def test_every_distortion_renders_with_its_geometry_and_duration(rendered):
    assert len(rendered) == 16
    for name, query in rendered.items():
        info = probe_video(query.path)
        assert (info.width, info.height) == EXPECTED_SIZE.get(name, (640, 272)), name
        assert info.duration == pytest.approx(3.0 / distortions()[name].speed, abs=0.1), name
        assert (query.source_start, query.source_end) == (2.0, 5.0)


def test_pixels_show_the_transformation(rendered):
    plain = frames_of(rendered["none"].path).astype(int)
    gray = frames_of(rendered["grayscale"].path).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).mean() < 2 and np.abs(plain[..., 0] - plain[..., 1]).mean() > 5
    flipped = frames_of(rendered["hflip"].path).astype(int)
    assert np.abs(flipped - plain[:, :, ::-1]).mean() < 6 < np.abs(flipped - plain).mean()
    boxed = frames_of(rendered["letterbox"].path)
    assert boxed[:, :5].max() < 30 and boxed[:, -5:].max() < 30  # black bars above and below


def test_renders_are_reproducible(videos, tmp_path):
    for name in ("noise", "low-bitrate"):
        a = render_query(videos["bikes.mp4"], 1.0, 2.0, name, tmp_path / f"a-{name}.mp4")
        b = render_query(videos["bikes.mp4"], 1.0, 2.0, name, tmp_path / f"b-{name}.mp4")
        assert np.array_equal(frames_of(a.path), frames_of(b.path)), name


@pytest.fixture(scope="module")
def references(trailer, world, encoder):
    return extract(trailer, encoder)[0], extract(world, encoder)[0]


@pytest.mark.parametrize("name", [n for n in distortions() if n != "speed-1.25"])
def test_distorted_excerpt_still_finds_its_source(name, trailer, references, encoder, tmp_path):
    source, unrelated = references
    query = render_query(trailer, 31.4, 6.0, name, tmp_path / f"{name}.mp4")
    framegram = extract(query.path, encoder)[0]
    found, wrong = locate(framegram, source), locate(framegram, unrelated)
    assert found.offset == pytest.approx(31.4, abs=0.2)
    margin = 0.1 if name == "picture-in-picture" else 0.3  # the source fills a sixth of the picture there
    assert found.score > wrong.score + margin
