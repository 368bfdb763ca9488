"""The encoding model: per-voxel ridge with one alpha per voxel, chosen by cross-validation over
folds that are contiguous in time (himalaya's KernelRidgeCV or RidgeCV, numpy backend).

Scikit-learn conventions: hyperparameters in `__init__`, `fit(X, Y)`, `predict(X)`, `score(X, Y)`.
"""

from __future__ import annotations

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin

from framegram.fmri.config import DEFAULT_ALPHAS


def contiguous_folds(n: int, n_folds: int = 5, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n_folds` (train, validation) index pairs; each validation block is one contiguous stretch of
    time, and `gap` samples on each side of it are left out of training (BOLD is autocorrelated, so
    the neighbours of a validation volume would leak its value)."""
    if n_folds < 2 or n_folds > n:
        raise ValueError(f"n_folds must be in 2..{n}, got {n_folds}")
    edges = np.linspace(0, n, n_folds + 1).astype(int)
    folds = []
    for a, b in zip(edges[:-1], edges[1:]):
        val = np.arange(a, b)
        train = np.concatenate([np.arange(0, max(a - gap, 0)), np.arange(min(b + gap, n), n)])
        folds.append((train, val))
    return folds


class BrainEncoder(RegressorMixin, BaseEstimator):
    """Ridge from a delayed stimulus design to many voxels.

    X: float [n_volumes, F] (e.g. D features x K delays); Y: float [n_volumes, V] cleaned BOLD.
    Features are z-scored with the training statistics. `solver`: "kernel" (KernelRidgeCV, fast
    when F > n), "primal" (RidgeCV, fast when F < n) or "auto" (whichever of the two is faster
    for the X given). `cv`: number of contiguous folds; `gap`: volumes dropped from training on
    each side of a validation fold. After fit: `best_alphas_` float [V], `cv_scores_` float [V]
    (validation R² per voxel at its best alpha, averaged over the folds).
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, cv: int = 5, gap: int = 8, solver: str = "auto", n_alphas_batch: int | None = None):
        self.alphas = alphas
        self.cv = cv
        self.gap = gap
        self.solver = solver
        self.n_alphas_batch = n_alphas_batch

    def fit(self, X, Y):
        from himalaya.backend import set_backend
        from himalaya.scoring import r2_score

        set_backend("numpy", on_error="warn")
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float32)
        self.x_mean_ = X.mean(0)
        std = X.std(0)
        self.x_scale_ = np.where(std > 0, std, 1.0).astype(np.float32)
        self.y_mean_ = Y.mean(0)
        Xs = (X - self.x_mean_) / self.x_scale_
        folds = contiguous_folds(len(X), self.cv, self.gap)
        alphas = np.asarray(self.alphas, dtype=np.float64)
        solver = self.solver
        if solver == "auto":
            solver = "primal" if X.shape[1] < X.shape[0] else "kernel"
        self.solver_ = solver
        params = {"n_targets_batch": 2000, "score_func": r2_score}  # himalaya's default score is -MSE
        if solver == "kernel":
            from himalaya.kernel_ridge import KernelRidgeCV

            if self.n_alphas_batch:
                params["n_alphas_batch"] = self.n_alphas_batch
            model = KernelRidgeCV(alphas=alphas, kernel="linear", cv=folds, solver_params=params, warn=False)
        elif solver == "primal":
            from himalaya.ridge import RidgeCV

            model = RidgeCV(alphas=alphas, cv=folds, solver_params=params)
        else:
            raise ValueError(f"solver must be 'auto', 'kernel' or 'primal', got {self.solver!r}")
        with config_context(assume_finite=True):  # BOLD checked on reading; himalaya's check copies Y
            model.fit(Xs, Y - self.y_mean_)
        self.model_ = model
        self.best_alphas_ = np.asarray(model.best_alphas_)
        self.cv_scores_ = np.asarray(model.cv_scores_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted BOLD: float32 [n, V]."""
        Xs = (np.asarray(X, dtype=np.float32) - self.x_mean_) / self.x_scale_
        with config_context(assume_finite=True):
            return np.asarray(self.model_.predict(Xs), dtype=np.float32) + self.y_mean_

    def score(self, X, Y) -> np.ndarray:
        """Per-voxel Pearson r on (X, Y): float [V]."""
        from framegram.fmri.metrics import pearson_r

        return pearson_r(self.predict(X), Y)

    def coef_blocks(self, n_blocks: int, voxels: np.ndarray | None = None, batch: int = 2000) -> np.ndarray:
        """Squared weight norm of each delay block per voxel: float [n_blocks, V'] (V' = len(voxels)).

        The weights are those of the z-scored features (primal, recovered from the dual for the
        kernel solver), split into `n_blocks` equal blocks of columns (delays are the outer index).
        """
        voxels = np.arange(len(self.best_alphas_)) if voxels is None else np.asarray(voxels)
        out = np.zeros((n_blocks, len(voxels)))
        for a in range(0, len(voxels), batch):
            sel = voxels[a : a + batch]
            if self.solver_ == "kernel":
                w = self._primal(sel)
            else:
                w = np.asarray(self.model_.coef_)[:, sel]
            w = w.reshape(n_blocks, -1, len(sel))
            out[:, a : a + batch] = (w**2).sum(1)
        return out

    def _primal(self, voxels: np.ndarray) -> np.ndarray:
        X = np.asarray(self.model_.X_fit_)
        return X.T @ np.asarray(self.model_.dual_coef_)[:, voxels]
