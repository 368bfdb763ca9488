"""Decoding and sampling: row counts, presentation-time stamps, variable frame rate."""

from fractions import Fraction

import av
import numpy as np
import pytest

from framegram.io import probe_video, sample_frames


def collect(path, **kwargs):
    batches = list(sample_frames(path, **kwargs))
    return np.concatenate([b.frames for b in batches]), np.concatenate([b.times for b in batches])


def test_bigbuckbunny_gives_26_or_27_rows_from_zero(videos):
    frames, times = collect(videos["bigbuckbunny.mp4"], fps=5.0)
    assert len(times) in (26, 27)
    assert frames.shape == (len(times), 224, 224, 3) and frames.dtype == np.uint8
    assert 0.0 <= times[0] < 0.05
    np.testing.assert_allclose(np.diff(times), 0.2, atol=1e-6)


def test_requested_rate_and_size_are_honoured(videos):
    frames, times = collect(videos["bikes.mp4"], fps=2.0, size=(120, 160), batch_size=7)
    assert len(times) == 20  # 10 s at 2 samples/s
    assert frames.shape[1:] == (120, 160, 3)
    np.testing.assert_allclose(times, np.arange(20) * 0.5, atol=1e-6)


def test_frames_are_real_pictures_not_blank(videos):
    frames, _ = collect(videos["bikes.mp4"], fps=1.0)
    assert frames.std() > 20  # real footage has contrast
    assert len({frame.tobytes() for frame in frames}) == len(frames)  # the content changes over time


def write_vfr_video(path, segments):
    """Solid-gray segments (start, end, frames per second or None for one held frame, level), ms timestamps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "10"}
        for start, end, rate, level in segments:
            for t in [start] if rate is None else np.arange(start, end, 1.0 / rate):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
                frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_variable_frame_rate_gets_true_times(tmp_path):
    # 25 fps for 2 s, then one frame held for 2 s, then 10 fps: counting frames at a nominal
    # rate would put the third segment at the wrong time.
    segments = [(0.0, 2.0, 25, 40), (2.0, 4.0, None, 200), (4.0, 6.0, 10, 120)]
    path = tmp_path / "vfr.mkv"
    write_vfr_video(path, segments)
    frames, times = collect(path, fps=5.0, size=(32, 32))
    assert 29 <= len(times) <= 30
    levels = frames.reshape(len(frames), -1).mean(axis=1)
    for t, level in zip(times, levels):
        expected = next(lv for start, end, _, lv in segments if start <= t + 1e-6 < end)
        assert abs(level - expected) < 8, f"sample at {t:.1f} s shows level {level:.0f}, expected {expected}"


def test_probe_describes_the_stream(videos):
    info = probe_video(videos["bigbuckbunny.mp4"])
    assert (info.width, info.height, info.codec) == (1280, 720, "h264")
    assert info.duration == pytest.approx(5.3, abs=0.1)
    assert info.frame_rate == pytest.approx(25.0)
    assert info.has_audio


def test_fps_must_be_positive(videos):
    with pytest.raises(ValueError, match="fps"):
        next(sample_frames(videos["bikes.mp4"], fps=0))


def test_rotated_phone_video_is_turned_upright(videos, ffmpeg, tmp_path):
    from conftest import run_ffmpeg

    rotated = tmp_path / "portrait.mp4"  # same pixels, flagged for display turned 90 degrees anticlockwise
    run_ffmpeg(ffmpeg, "-display_rotation", "90", "-i", str(videos["bikes.mp4"]), "-c", "copy", str(rotated))
    info = probe_video(rotated)
    assert (info.width, info.height, info.rotation) == (272, 640, 90)
    upright, _ = collect(rotated, fps=1.0, size=(160, 68))
    stored, _ = collect(videos["bikes.mp4"], fps=1.0, size=(68, 160))
    turned = np.rot90(stored, k=1, axes=(1, 2))  # what a viewer sees
    assert upright.shape == turned.shape
    assert np.abs(upright.astype(int) - turned).mean() < 3
    assert np.abs(upright.astype(int) - np.rot90(stored, k=-1, axes=(1, 2))).mean() > 20


def test_cover_picture_of_an_audio_file_is_not_a_video(ffmpeg, videos, tmp_path):
    from conftest import run_ffmpeg

    from framegram.errors import NoVideoStreamError

    song = tmp_path / "song.mp3"
    run_ffmpeg(
        ffmpeg, "-f", "lavfi", "-i", "sine=d=2", "-i", str(videos["bikes.mp4"]), "-map", "0:a", "-map", "1:v",
        "-c:a", "libmp3lame", "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v", "attached_pic", str(song),
    )
    with pytest.raises(NoVideoStreamError, match="cover picture"):
        probe_video(song)
