"""What every feature space returns (`TimedFeatures`) and the helpers the spaces share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimedFeatures:
    """A stimulus feature series on the film's clock.

    space: the space's name (one of `SPACE_NAMES`).
    values: float32 [T, D]: row k describes the film from times[k] for one frame period or hop.
    times: float64 [T], seconds from the start of the film's video stream (start of each row's
        frame or window), strictly increasing.
    columns: D column names, e.g. "lum_r0c1", "mel03", "moten0123".
    """

    space: str
    values: np.ndarray
    times: np.ndarray
    columns: tuple[str, ...]

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float32)
        times = np.asarray(self.times, dtype=np.float64)
        columns = tuple(str(c) for c in self.columns)
        problem = shape_problem(values, times, columns)
        if problem:
            raise ValueError(f"{self.space}: {problem}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "columns", columns)

    @property
    def period(self) -> float:
        """Seconds between rows (median step; 0 for a single row)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0


def shape_problem(values: np.ndarray, times: np.ndarray, columns: tuple[str, ...]) -> str | None:
    """What breaks the `TimedFeatures` contract, or None: values finite [T, D] with T >= 1, times
    finite, strictly increasing [T], D column names."""
    if values.ndim != 2 or values.shape[0] == 0:
        return f"values must be [T, D] with T >= 1, got shape {values.shape}"
    if times.shape != (values.shape[0],):
        return f"times {times.shape} do not match values {values.shape}"
    if len(columns) != values.shape[1]:
        return f"{len(columns)} column names for {values.shape[1]} columns"
    if not np.all(np.isfinite(values)):
        return "values hold NaN or infinity"
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        return "times are not finite and strictly increasing"
    return None


def expected_samples(duration: float | None, fps: float) -> int | None:
    """About how many frames `sample_frames` gives at `fps` for a video of `duration` seconds (for
    progress bars; None when the length is unknown)."""
    return None if duration is None else max(1, int(np.ceil(duration * fps)))


def aspect_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """(height, width) of a frame `target_width` wide with the film's aspect kept (height even,
    at least 8 so that a 4x4 grid and the motion filters have pixels to work on)."""
    h = round(target_width * height / max(width, 1) / 2) * 2
    return max(8, h), target_width
