"""The idea behind framegram, on real footage: a re-encoded excerpt finds its place in the source."""

import pytest

from framegram.align import locate
from framegram.extract import extract

from conftest import run_ffmpeg


@pytest.fixture(scope="module")
def trailer_framegram(trailer, encoder):
    return extract(trailer, encoder)[0]


@pytest.mark.parametrize("offset", [7.0, 31.4])
def test_low_bitrate_small_excerpt_finds_its_offset(offset, trailer, world, trailer_framegram, encoder, ffmpeg, tmp_path):
    excerpt = tmp_path / "excerpt.mp4"
    # 15 s from `offset`, re-encoded at 150 kbit/s and 320 px wide (the source is 1280x720 at ~1.1 Mbit/s).
    run_ffmpeg(
        ffmpeg, "-ss", str(offset), "-t", "15", "-i", str(trailer),
        "-vf", "scale=320:-2", "-c:v", "libx264", "-b:v", "150k", "-an", str(excerpt),
    )
    query = extract(excerpt, encoder)[0]
    assert len(query) == 75

    found = locate(query, trailer_framegram)
    assert abs(found.offset - offset) <= 0.2  # within one sample at 5 frames/s
    wrong = locate(query, extract(world, encoder)[0])
    assert found.score > 0.85
    assert wrong.score < found.score - 0.4  # an unrelated video scores clearly lower
