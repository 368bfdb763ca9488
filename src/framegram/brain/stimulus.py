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

#: Candidate late starts of the SPM HRF (s): peaks from about 4 s to 9 s.
HRF_DELAYS_S = tuple(float(d) for d in np.arange(-1.0, 4.001, 0.25))


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


def _spm_fine(oversampling: int = 64, length_s: float = 32.0) -> tuple[np.ndarray, np.ndarray]:
    """nilearn's SPM canonical HRF on a fine grid: (times s, values), peak near 5 s."""
    from nilearn.glm.first_level import spm_hrf

    values = spm_hrf(1.0, oversampling=oversampling, time_length=length_s)
    return np.linspace(0.0, length_s, len(values)), values  # nilearn samples linspace(0, length, n)


def hrf_kernel(tr: float, delay_s: float = 0.0, length_s: float = 32.0) -> np.ndarray:
    """The SPM canonical HRF started `delay_s` seconds late, sampled at whole-TR lags 0, TR, 2 TR, ...
    up to `length_s`: float [L], peak 1. Volume i responds to the stimulus of volume j through
    kernel[i - j]."""
    t_fine, fine = _spm_fine(length_s=length_s)
    lags = np.arange(int(length_s / tr)) * tr
    kernel = np.interp(lags - delay_s, t_fine, fine, left=0.0, right=0.0)
    return kernel / kernel.max()


def hrf_peak_s(delay_s: float) -> float:
    """Peak time in seconds of the SPM HRF started `delay_s` seconds late."""
    t_fine, fine = _spm_fine()
    return float(t_fine[int(np.argmax(fine))] + delay_s)


def convolve_kernel(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution of every column with `kernel` (whole-TR lags): [n, D] → float32 [n, D]."""
    n = len(x)
    out = np.zeros(x.shape, dtype=np.float64)
    for lag, h in enumerate(kernel[:n]):
        if h != 0.0:
            out[lag:] += h * x[: n - lag]
    return out.astype(np.float32)


@dataclass(frozen=True)
class Design:
    """The stimulus on the scan clock.

    `per_tr`: float32 [n_volumes, D] (frames averaged per TR, centred; principal components when
    asked); `matrix`: float32 [n_volumes, D * K], K = FIR delays (basis "fir") or 1 (basis "hrf":
    per_tr convolved with the HRF started `hrf_delay_s` late); `lags_s`: seconds of each FIR delay
    (empty for "hrf").
    """

    per_tr: np.ndarray
    matrix: np.ndarray
    lags_s: np.ndarray
    basis: str
    tr: float
    hrf_delay_s: float = 0.0

    @property
    def n_blocks(self) -> int:
        return self.matrix.shape[1] // self.per_tr.shape[1]

    def with_per_tr(self, per_tr: np.ndarray) -> Design:
        """The same basis and delays applied to other per-TR rows [n_volumes, D] (e.g. shifted)."""
        centred = (per_tr - per_tr.mean(0)).astype(np.float32)
        if self.basis == "fir":
            matrix = add_delays(centred, np.round(self.lags_s / self.tr).astype(int))
        else:
            matrix = convolve_kernel(centred, hrf_kernel(self.tr, self.hrf_delay_s))
        return Design(centred, matrix, self.lags_s, self.basis, self.tr, self.hrf_delay_s)

    def with_hrf_delay(self, delay_s: float) -> Design:
        """This design's stimulus through the HRF started `delay_s` late (basis "hrf")."""
        return Design(self.per_tr, self.matrix, np.zeros(0), "hrf", self.tr, float(delay_s)).with_per_tr(self.per_tr)


def build_design(
    features: np.ndarray,
    times: np.ndarray,
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    basis: str = "hrf",
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    n_components: int | None = None,
    source: str = "stimulus",
    hrf_delay_s: float = 0.0,
) -> Design:
    """Frames → TR averages → (optionally) the top `n_components` principal components → delays.

    basis: "fir" (delays 0..max_delay_s, one block per TR) or "hrf" (the SPM HRF started
    `hrf_delay_s` late; `framegram.brain.pipeline` chooses that delay per participant).
    The PCA here uses the stimulus only (no BOLD), so fitting it on the whole film leaks nothing.
    """
    per_tr = frames_to_tr(features, times, tr, n_volumes, offset_s, source=source)
    if n_components:
        centred = per_tr - per_tr.mean(0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        per_tr = (u[:, :n_components] * s[:n_components]).astype(np.float32)
    if basis == "fir":
        lags = fir_delays(tr, max_delay_s) * tr
        return Design(per_tr, per_tr, lags, "fir", tr).with_per_tr(per_tr)
    if basis == "hrf":
        return Design(per_tr, per_tr, np.zeros(0), "hrf", tr, float(hrf_delay_s)).with_per_tr(per_tr)
    raise ValueError(f"basis must be 'fir' or 'hrf', got {basis!r}")
