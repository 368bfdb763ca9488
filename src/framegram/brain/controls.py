"""Controls, and a faithful reproduction of the published linear baseline.

Controls of our pipeline (scored like it, per-voxel r on the cleaned held-out BOLD):
- constant features: the design replaced by a constant (the model can only predict the mean);
- shifted features: the stimulus rolled circularly by half the run before the delays (same
  statistics, wrong alignment);
- persistence: each held-out volume predicted by the previous measured one.

The published protocol (Dorin, Kiselev, Grabovoy, Strijov 2024): raw BOLD min-max scaled over the
whole 4-D run, the features of the one frame shown `delta_s` = 5 s before each scan, ridge
(alpha = 1000, with intercept) from those features to the change between consecutive volumes,
first 70 % of the volumes to train, last 30 % to test, prediction = previous volume + predicted
change, MSE over every voxel of the volume. Its controls: persistence (predicted change 0) and
constant features (predicted change = the mean training change). The paper used ResNet152
features; here the features are the framegram's (EfficientNet-Lite0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.fmri.metrics import pearson_r


def persistence_r(y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """r per voxel of y[t-1] as the prediction of y[t] over the `test` indices: float [V]."""
    test = np.asarray(test)
    return pearson_r(y[test - 1], y[test])


def frame_before(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at film times `at` (the last frame starting at or before; clipped to 0)."""
    return np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 1)


@dataclass
class PublishedResult:
    """MSE on the test volumes (min-max scaled BOLD, every voxel) of the model and its controls, and
    per-voxel r inside the mask of the predicted volumes (`r_volume`) and predicted changes (`r_change`)."""

    mse_model: float
    mse_persistence: float
    mse_constant: float
    r_volume: np.ndarray
    r_change: np.ndarray
    r_volume_persistence: np.ndarray
    n_train: int
    n_test: int


def published_protocol(
    bold: np.ndarray,
    features: np.ndarray,
    frame_times: np.ndarray,
    tr: float,
    offset_s: float = 0.0,
    columns: np.ndarray | None = None,
    delta_s: float = 5.0,
    alpha: float = 1000.0,
    train_fraction: float = 0.7,
    batch: int = 20000,
) -> PublishedResult:
    """Run the published protocol.

    bold: raw BOLD float [n_volumes, V_all] (every voxel of the matrix); features: [T, D] framegram
    rows at `frame_times` (film seconds); tr, offset_s (scan time at which the film starts), delta_s:
    seconds; columns: int [V], the voxels (columns of `bold`) whose r's are returned, in that order
    (all, in order, when None).
    """
    n = len(bold)
    lo, hi = float(np.min(bold)), float(np.max(bold))
    scale = (hi - lo) or 1.0
    scan_film_times = np.arange(n) * tr - offset_s - delta_s
    x = np.asarray(features, dtype=np.float64)[frame_before(frame_times, scan_film_times)]
    # target t = 1..n-1: change from volume t-1 to t; its features: the frame delta_s before scan t
    n_train = int(round(train_fraction * n))
    train = np.arange(1, n_train)
    test = np.arange(n_train, n)
    xtr = x[train]
    x_mean = xtr.mean(0)
    xc = xtr - x_mean
    kernel = xc @ xc.T
    solve = np.linalg.solve(kernel + alpha * np.eye(len(train)), np.eye(len(train)))  # (K + aI)^-1
    # float32 for the big product over every voxel (2x faster); sums of squares stay float64
    cross = ((x[test] - x_mean) @ xc.T @ solve).astype(np.float32)  # [n_test, n_train]
    se_model = se_pers = se_const = 0.0
    r_vol, r_chg, r_pers = (np.zeros(bold.shape[1]) for _ in range(3))
    wanted = np.ones(bold.shape[1], dtype=bool)
    if columns is not None:
        wanted[:] = False
        wanted[np.asarray(columns)] = True
    for a in range(0, bold.shape[1], batch):
        y = ((np.asarray(bold[:, a : a + batch], dtype=np.float64) - lo) / scale).astype(np.float32)
        diff = y[1:] - y[:-1]  # row t-1 holds the change into volume t
        dtr = diff[train - 1]
        d_mean = dtr.mean(0)
        pred_change = cross @ (dtr - d_mean) + d_mean
        prev = y[test - 1]
        truth = y[test]
        sse = lambda e: float(np.square(e, dtype=np.float64).sum())  # noqa: E731
        se_model += sse(prev + pred_change - truth)
        se_pers += sse(prev - truth)
        se_const += sse(prev + d_mean - truth)
        m = wanted[a : a + batch]
        at = a + np.flatnonzero(m)
        r_vol[at] = pearson_r((prev + pred_change)[:, m], truth[:, m])
        r_chg[at] = pearson_r(pred_change[:, m], diff[test - 1][:, m])
        r_pers[at] = pearson_r(prev[:, m], truth[:, m])
    total = len(test) * bold.shape[1]
    pick = slice(None) if columns is None else np.asarray(columns)
    return PublishedResult(
        mse_model=se_model / total,
        mse_persistence=se_pers / total,
        mse_constant=se_const / total,
        r_volume=r_vol[pick],
        r_change=r_chg[pick],
        r_volume_persistence=r_pers[pick],
        n_train=len(train) + 1,
        n_test=len(test),
    )


__all__ = ["PublishedResult", "frame_before", "persistence_r", "published_protocol"]
