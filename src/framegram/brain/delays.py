"""Delay profiles: when after a volume's stimulus the BOLD responds.

- FIR basis: one weight block per delay; the profile is each delay's share of the weight norm,
  averaged over the significant voxels, and every voxel gets its own peak delay.
- HRF basis: the SPM canonical HRF started late by each candidate delay (`HRF_DELAYS_S`); the
  participant's delay is the one with the best inner cross-validated R² on the training volumes,
  and the profile is that R² against the candidate HRF's peak time. The held-out volumes play no
  part in the choice. One delay per participant, not per voxel: choosing among 21 kernels per voxel
  would let noise voxels pick whichever fits their noise best, and the search would cost 21 full fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from framegram.brain.stimulus import HRF_DELAYS_S, Design
from framegram.brain.threads import one_blas_thread
from framegram.fmri.hrf import hrf_peak_s

#: Voxels sampled (evenly over the mask) to score the candidate HRF delays.
SEARCH_VOXELS = 2000
#: Of those, the best-fitting share decides (most brain voxels do not respond to a film).
SEARCH_TOP_FRACTION = 0.1


@dataclass(frozen=True)
class DelayProfile:
    """times_s: float [K] seconds (FIR delays, or the peak times of the candidate HRFs); values:
    float [K]; kind: what the values are, for plots and summaries."""

    times_s: np.ndarray
    values: np.ndarray
    kind: str

    @property
    def peak_s(self) -> float | None:
        return float(self.times_s[int(np.argmax(self.values))]) if len(self.values) else None


def fir_profile(blocks: np.ndarray, design: Design, r: np.ndarray, significant: np.ndarray) -> tuple[DelayProfile, np.ndarray]:
    """Profile of a FIR fit and every voxel's peak delay (s, float [V]).

    blocks: float [K, V] squared weight norm per delay block (`BrainEncoder.coef_blocks`). The
    profile averages each delay's share over the significant voxels (the best 1 % when none are)."""
    voxels = np.flatnonzero(significant)
    if len(voxels) == 0:
        voxels = np.argsort(r)[-max(1, len(r) // 100):]
    share = blocks / np.maximum(blocks.sum(0, keepdims=True), 1e-30)
    profile = DelayProfile(design.lags_s, share[:, voxels].mean(1), "share of weight norm")
    return profile, design.lags_s[np.argmax(blocks, axis=0)]


def search_hrf_delay(
    design: Design,
    y: np.ndarray,
    train: np.ndarray,
    residualize: Callable[[np.ndarray], np.ndarray],
    make_encoder: Callable,
    delays_s: tuple[float, ...] = HRF_DELAYS_S,
    max_voxels: int = SEARCH_VOXELS,
    top_fraction: float = SEARCH_TOP_FRACTION,
) -> tuple[float, DelayProfile]:
    """Choose the participant's HRF delay on the training volumes.

    design: an "hrf" design; y: cleaned BOLD float [n_volumes, V]; train: row indices;
    residualize: the cleaner's projection of a design; make_encoder: () → unfitted `BrainEncoder`.
    Each candidate design is fitted on `max_voxels` voxels spread evenly over the mask; the voxels
    whose best inner-CV R² over all candidates is in the top `top_fraction` score each candidate by
    their mean R². Returns (chosen delay s, profile over the candidates' peak times).
    """
    n_vox = y.shape[1]
    sample = np.unique(np.linspace(0, n_vox - 1, min(max_voxels, n_vox)).round().astype(int))
    y_train = y[np.ix_(np.asarray(train), sample)]  # only the sampled columns are copied
    with one_blas_thread():
        scores = np.stack([
            make_encoder().fit(residualize(design.with_hrf_delay(d).matrix)[train], y_train).cv_scores_
            for d in delays_s
        ])  # [K, S] validation R²
    best = scores.max(0)
    keep = best >= np.quantile(best, 1.0 - top_fraction)
    values = scores[:, keep].mean(1)
    peaks = np.array([hrf_peak_s(d) for d in delays_s])
    return float(delays_s[int(np.argmax(values))]), DelayProfile(peaks, values, "validation R² (training volumes)")
