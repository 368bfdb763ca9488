"""The SPM canonical HRF (nilearn's) started late, sampled at whole TRs, and causal convolution with it."""

from __future__ import annotations

import numpy as np


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
