"""Per-voxel scores and their significance.

- `pearson_r`: correlation of prediction and measurement over time, per voxel (0 where either is constant).
- `r2_score`: 1 - SS_res / SS_tot per voxel (SS_tot around the measured mean of the same part).
- `shift_null_pvalues`: one-sided p-value of r against a null made by circularly shifting the
  measured series by at least `min_shift` volumes (keeps each series' autocorrelation, breaks its
  alignment with the prediction); the null's variance is exact (mean r² over every shift) and p is
  its normal tail, continuous as FDR over thousands of voxels needs.
- `fdr_bh`: Benjamini-Hochberg false discovery rate control.
"""

from __future__ import annotations

import numpy as np


def pearson_r(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """pred, y: float [n, V] → r float [V] (0 where a column is constant)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    p = p - p.mean(0)
    t = t - t.mean(0)
    denom = np.sqrt((p**2).sum(0) * (t**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * t).sum(0) / denom
    return np.where(denom > 1e-12, r, 0.0)


def r2_score(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """pred, y: float [n, V] → R² float [V] (can be negative; 0 where y is constant)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    ss_res = ((t - p) ** 2).sum(0)
    ss_tot = ((t - t.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - ss_res / ss_tot
    return np.where(ss_tot > 1e-12, r2, 0.0)


def mse(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over every element."""
    return float(np.mean((np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def shift_null_pvalues(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-sided p-values of the per-voxel r against circular shifts of `y`: float [V].

    pred, y: float [n, V]. Under the null (y unrelated to pred) the r obtained by rolling y by a
    random number of volumes has mean ~0 and variance (1/n) sum_k acf_pred(k) acf_y(k) (circular
    autocorrelations): the mean of r_s² over all n shifts s, computed at once by FFT
    cross-correlation. Shift 0 and its neighbours are kept in that mean, which only makes the test
    conservative for responsive voxels. p = P(Z >= r / sd_null) with Z standard normal: this uses
    each series' autocorrelation, which is what makes naive r-to-p conversions of smooth BOLD
    predictions far too optimistic, and gives the continuous p-values FDR needs over many voxels.
    """
    from scipy.stats import norm as normal

    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    n = len(p)
    p = p - p.mean(0)
    t = t - t.mean(0)
    norm = np.sqrt((p**2).sum(0) * (t**2).sum(0))
    norm = np.where(norm > 1e-12, norm, np.inf)
    z = np.zeros(p.shape[1])
    batch = 4096
    for a in range(0, p.shape[1], batch):
        fp = np.fft.rfft(p[:, a : a + batch], axis=0)
        ft = np.fft.rfft(t[:, a : a + batch], axis=0)
        xcorr = np.fft.irfft(np.conj(fp) * ft, n=n, axis=0)  # xcorr[s] = sum_i p[i] * t[(i + s) % n]
        null = xcorr / norm[a : a + batch]
        sd = np.sqrt((null**2).mean(0))
        z[a : a + batch] = null[0] / np.where(sd > 1e-12, sd, np.inf)
    return normal.sf(z)


def fdr_bh(pvalues: np.ndarray, q: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg: bool [V], True where the p-value is declared significant at FDR q."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p)
    passed = p[order] <= q * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if passed.any():
        k = np.flatnonzero(passed).max()
        out[order[: k + 1]] = True
    return out
