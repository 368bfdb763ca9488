"""The stimulus on the scan clock: a framegram's frames averaged per volume, and the check that a run
lasts as long as the film.

Clock convention: volume k is acquired during [k*TR, (k+1)*TR) seconds after the first scan;
the film starts `offset_s` seconds after the first scan, so film time t is scan time t + offset_s.
"""

from __future__ import annotations

import numpy as np

from framegram.fmri.bids import BoldRun
from framegram.fmri.errors import RunTooShortError, StimulusTooShortError


def frames_to_tr(
    features: np.ndarray,
    times: np.ndarray,
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    frame_period: float | None = None,
    source: str = "stimulus",
) -> np.ndarray:
    """Average the frames shown during each volume.

    features: float [T, D]; times: film seconds [T] (frame k is on screen from times[k] for one
    frame period); tr: seconds; offset_s: scan time at which the film starts. Returns float32
    [n_volumes, D]: row k is the mean of the frames whose scan time lies in [k*TR, (k+1)*TR);
    a volume that catches no frame takes the frame on screen at its midpoint; volumes before the
    film starts take the first frame. Raises StimulusTooShortError when the film ends (last frame
    time + one frame period) before the last volume does (tolerance: one frame period).
    """
    features = np.asarray(features, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(times) != len(features) or len(times) == 0:
        raise ValueError(f"features {features.shape} and times {times.shape} must have the same, non-zero length")
    if frame_period is None:
        frame_period = float(np.median(np.diff(times))) if len(times) > 1 else tr
    film_end = times[-1] + frame_period
    needed = n_volumes * tr - offset_s
    if film_end + frame_period < needed:
        raise StimulusTooShortError(
            source, f"the stimulus lasts {film_end:.2f} s but the run needs {needed:.2f} s "
            f"({n_volumes} volumes x {tr:g} s, film starting {offset_s:g} s after the first scan)"
        )
    scan = times + offset_s
    bins = np.floor(scan / tr + 1e-9).astype(np.int64)  # a frame exactly on a volume boundary belongs to the later one
    inside = (bins >= 0) & (bins < n_volumes)
    sums = np.zeros((n_volumes, features.shape[1]))
    np.add.at(sums, bins[inside], features[inside])
    counts = np.bincount(bins[inside], minlength=n_volumes)
    out = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        mid = (empty + 0.5) * tr - offset_s
        nearest = np.clip(np.searchsorted(times, mid, side="right") - 1, 0, len(times) - 1)
        out[empty] = features[nearest]
    return out.astype(np.float32)


#: How much longer than the run the film may last (s): a fraction of a second is rounding of the
#: video's length; more means scans are missing and the end of the film would be fitted to nothing.
RUN_SHORTFALL_TOLERANCE_S = 2.0


def check_run_covers_stimulus(run: BoldRun, frame_times: np.ndarray, offset_s: float) -> None:
    """RunTooShortError (naming the BOLD file and both durations) when the run stops more than
    `RUN_SHORTFALL_TOLERANCE_S` before the film ends."""
    times = np.asarray(frame_times, dtype=np.float64)
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    film_end = offset_s + times[-1] + period  # scan time at which the film ends
    run_s = run.n_volumes * run.tr
    if film_end > run_s + RUN_SHORTFALL_TOLERANCE_S:
        raise RunTooShortError(run.bold, f"{run.n_volumes} volumes x {run.tr:g} s = {run_s:.2f} s of scanning, but the "
                                         f"stimulus lasts {times[-1] + period:.2f} s (starting {offset_s:g} s after "
                                         f"the first scan): the run is {film_end - run_s:.2f} s too short")
