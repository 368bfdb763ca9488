"""From a stimulus framegram to a design matrix on the scan clock: TR averaging, then delays.

Clock convention: volume k is acquired during [k*TR, (k+1)*TR) seconds after the first scan;
the film starts `offset_s` seconds after the first scan, so film time t is scan time t + offset_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.brain.errors import StimulusTooShortError

#: FIR delays from 0 to 10 s.
DEFAULT_MAX_DELAY_S = 10.0


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


def fir_delays(tr: float, max_delay_s: float = DEFAULT_MAX_DELAY_S) -> np.ndarray:
    """Delays in volumes 0, 1, ..., floor(max_delay_s / tr): int [n_delays] (0..16 at TR 0.608 s)."""
    return np.arange(int(np.floor(max_delay_s / tr + 1e-9)) + 1)


def add_delays(x: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """Stack delayed copies: x float [n, D] → [n, D * len(delays)], block j = x shifted down by delays[j].

    Row t of block j holds x[t - delays[j]] (zeros before the start): the response at t to what was
    shown delays[j] volumes earlier.
    """
    n, d = x.shape
    out = np.zeros((n, d * len(delays)), dtype=x.dtype)
    for j, lag in enumerate(delays):
        lag = int(lag)
        if lag >= n:
            continue
        out[lag:, j * d : (j + 1) * d] = x[: n - lag] if lag > 0 else x
    return out


def hrf_basis(tr: float, length_s: float = 32.0) -> np.ndarray:
    """SPM canonical HRF, its time derivative and dispersion derivative sampled at the TR: [L, 3]."""
    from nilearn.glm.first_level import spm_dispersion_derivative, spm_hrf, spm_time_derivative

    kernels = [f(tr, oversampling=1, time_length=length_s) for f in (spm_hrf, spm_time_derivative, spm_dispersion_derivative)]
    return np.stack(kernels, axis=1)


def convolve_basis(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Causal convolution of every column with every basis kernel: [n, D] x [L, B] → [n, D * B]."""
    n, d = x.shape
    out = np.zeros((n, d * basis.shape[1]), dtype=np.float32)
    for b in range(basis.shape[1]):
        kernel = basis[:, b]
        conv = np.apply_along_axis(lambda col: np.convolve(col, kernel)[:n], 0, x)
        out[:, b * d : (b + 1) * d] = conv
    return out


@dataclass(frozen=True)
class Design:
    """The stimulus on the scan clock.

    `per_tr`: float32 [n_volumes, D] (frames averaged per TR); `matrix`: float32 [n_volumes, D * K]
    (K delays or basis functions); `lags_s`: seconds of each FIR delay (empty for an HRF basis).
    """

    per_tr: np.ndarray
    matrix: np.ndarray
    lags_s: np.ndarray
    basis: str
    tr: float

    @property
    def n_blocks(self) -> int:
        return self.matrix.shape[1] // self.per_tr.shape[1]


def build_design(
    features: np.ndarray,
    times: np.ndarray,
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    basis: str = "fir",
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    n_components: int | None = None,
    source: str = "stimulus",
) -> Design:
    """Frames → TR averages → (optionally) the top `n_components` principal components → delays.

    basis: "fir" (delays 0..max_delay_s, one block per TR) or "hrf" (SPM HRF + derivatives).
    The PCA here uses the stimulus only (no BOLD), so fitting it on the whole film leaks nothing.
    """
    per_tr = frames_to_tr(features, times, tr, n_volumes, offset_s, source=source)
    if n_components:
        centred = per_tr - per_tr.mean(0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        per_tr = (u[:, :n_components] * s[:n_components]).astype(np.float32)
    centred = per_tr - per_tr.mean(0)  # the zeros padded before the start are then "average stimulus"
    if basis == "fir":
        delays = fir_delays(tr, max_delay_s)
        return Design(per_tr, add_delays(centred, delays), delays * tr, "fir", tr)
    if basis == "hrf":
        return Design(per_tr, convolve_basis(centred, hrf_basis(tr)), np.zeros(0), "hrf", tr)
    raise ValueError(f"basis must be 'fir' or 'hrf', got {basis!r}")
