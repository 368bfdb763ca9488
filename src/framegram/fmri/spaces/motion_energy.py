"""The "motion-energy" space: the spatio-temporal Gabor pyramid of Nishimoto et al. (2011), through
`pymoten`, which models how early visual cortex answers to local motion at several speeds, scales
and directions.

The film is sampled at 15 fps, 96 px wide with its aspect kept (96x72 for 640x480), and turned
into CIE L* luminance in [0, 100] (what `moten.io.imagearray2luminance` gives and the Gallant lab
tutorials use). `moten.get_default_pyramid(vhsize, fps=15)` tiles the picture with 1840 filters
(3 temporal frequencies 0/2/4 Hz, 5 spatial frequencies 0-16 cycles/image, 8 directions, at
positions spaced 3.5 envelope s.d.s apart). Each filter's quadrature pair energy
sqrt(sin² + cos²) is compressed with log(1 + x) (pymoten's default is log(x + 1e-5), which throws
flat black areas to -11.5 and makes them hang on tiny noise; the tutorials add noise for that).

Frames are projected in chunks of `CHUNK_FRAMES` with `pad` = filter width - 1 frames of context
on each side (what `project_stimulus_batched` does for its own temporal batches), so memory stays
bounded by the chunk, not the film, and the result equals projecting the whole film at once.

→ values float32 [T, 1840] at 15 rows/s for a 4:3 film (the pyramid tiles the picture, so other
aspects get other counts: 3450 for 16:9), columns "moten0000".."moten1839" (the pyramid's filter
order: `moten.get_default_pyramid(...).filters[i]` describes column i).
Cost for the 390-s 640x480 stimulus film on 2 cores: 19-22 s (measured alone; 30-37 s beside
another job), peak memory ~360 MB.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from framegram.io.decode import probe_video, sample_frames
from framegram.progress import extraction_progress
from framegram.fmri.spaces.base import TimedFeatures, aspect_size, expected_samples

NAME = "motion-energy"
VERSION = 1
FPS = 15  #: the rate of the Gallant lab's motion-energy models; an int, as pymoten requires
WIDTH = 96
CHUNK_FRAMES = 900  #: 60 s at 15 fps: 900 x 6912 px float32 = 25 MB of luminance, plus the pad


def _pymoten_version() -> str | None:
    try:
        return importlib.metadata.version("pymoten")
    except importlib.metadata.PackageNotFoundError:  # importing the spaces must not need it; computing does
        return None


PARAMS = {"fps": FPS, "width": WIDTH, "pyramid": "default", "luminance": "cie-lstar",
          "nonlinearity": "log1p", "pymoten": _pymoten_version()}
DESCRIPTION = (f"pymoten default pyramid (spatio-temporal Gabor energies, log(1 + x)) on L* at {WIDTH} px wide: "
               f"[T, 1840] for a 4:3 film at {FPS} fps; ~20 s for the 390-s film on 2 cores")


def compute(film: Path, show_progress: bool = False) -> TimedFeatures:
    import moten

    info = probe_video(film)
    vdim, hdim = aspect_size(info.width, info.height, WIDTH)
    pyramid = moten.get_default_pyramid(vhsize=(vdim, hdim), fps=FPS)
    pad = int(pyramid.filters[0]["filter_temporal_width"]) - 1
    out, times = [], []
    with extraction_progress(show_progress) as bars:
        task = bars.add_task(f"{film.name}: {NAME}", total=expected_samples(info.duration, FPS), fps=FPS)
        for window, first, last, window_times in _windows(film, (vdim, hdim), pad):
            # zero context beyond the film's ends, as projecting the whole film at once has
            energy = pyramid.project_stimulus_batched(
                window, output_nonlinearity=np.log1p, dtype="float32", batch_size=256)
            out.append(np.asarray(energy)[first:last])
            times.append(window_times)
            bars.advance(task, last - first)
    columns = tuple(f"moten{i:04d}" for i in range(pyramid.nfilters))
    return TimedFeatures(NAME, np.concatenate(out), np.concatenate(times), columns)


def _windows(film: Path, size: tuple[int, int], pad: int) -> Iterator[tuple[np.ndarray, int, int, np.ndarray]]:
    """Luminance windows [n, vdim, hdim] with up to `pad` frames of context either side of the
    frames they are for: yields (window, first, last, times of window[first:last])."""
    frames: list[np.ndarray] = []  # luminance of frames start - (context before) ... newest
    times: list[float] = []
    before = 0  # how many frames of `frames` are context before the next frames to emit
    for batch in sample_frames(film, fps=FPS, size=size, batch_size=64, threads=2):
        frames += list(luminance(batch.frames))
        times += batch.times.tolist()
        while len(frames) - before >= CHUNK_FRAMES + pad:
            yield np.stack(frames[: before + CHUNK_FRAMES + pad]), before, before + CHUNK_FRAMES, \
                np.asarray(times[before: before + CHUNK_FRAMES])
            drop = before + CHUNK_FRAMES - pad
            frames, times, before = frames[drop:], times[drop:], pad
    if len(frames) > before:
        yield np.stack(frames), before, len(frames), np.asarray(times[before:])


def luminance(frames: np.ndarray) -> np.ndarray:
    """uint8 sRGB [B, H, W, 3] → CIE L* float32 [B, H, W] in [0, 100] (D65; as `moten.colorspace.rgb2lab`)."""
    rgb = frames.astype(np.float32) / 255.0
    linear = np.where(rgb < 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.212671, 0.715160, 0.072169], dtype=np.float32)
    f = np.where(y < 0.008856, 7.787 * y + 4.0 / 29.0, np.cbrt(y))
    return (116.0 * f - 16.0).astype(np.float32)
