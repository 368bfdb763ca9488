"""Banded ridge: several feature spaces, each voxel weighting each space on its own (himalaya's
`GroupRidgeCV`, alias `BandedRidgeCV`: random search over the space weights and the ridge penalty
with folds contiguous in time), and the variance each space explains.

The primal solver, not `MultipleKernelRidgeCV`: the design has ~20 columns per space against ~450
training volumes, so each candidate costs an SVD of [n, F] instead of an eigendecomposition of
[n, n] (about 10x less; the kernel solver took ~65 s a participant for 40 candidates on 2 busy cores).

Why banded: one penalty for a concatenation of spaces lets the widest or noisiest space set the
penalty for all; per-space weights let early visual voxels lean on motion energy and auditory ones
on sound (Nunez-Elizalde et al. 2019; the Gallant lab's voxelwise tutorials).
"""

from __future__ import annotations

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin

from framegram.brain.model import contiguous_folds
from framegram.brain.threads import one_blas_thread
from framegram.fmri.config import DEFAULT_ALPHAS


class BandedEncoder(RegressorMixin, BaseEstimator):
    """Per-voxel banded ridge over B feature spaces.

    bands: B arrays of column indices of X, one per space; X: float [n_volumes, F]; Y: float
    [n_volumes, V] cleaned BOLD. Columns are z-scored with the training statistics. The candidate
    space weightings (`candidate_weights`: each space alone, then `n_mixtures` mixtures) are each
    tried with every alpha on `cv` contiguous folds (`gap` volumes dropped on each side of a
    validation fold); each voxel keeps its best. With no mixtures (the default) each voxel selects
    one space (himalaya's winner-take-all search): on a 6.5-min film, mixtures that won the
    inner cross-validation lost on the held-out minutes (see `candidate_weights`). After fit:
    `space_weights_` float [B, V] (sum 1 per voxel: each space's weight, the square of the scale of its columns),
    `best_alphas_` float [V], `cv_scores_` float [V] (the best validation R²).
    """

    def __init__(self, bands, alphas=DEFAULT_ALPHAS, cv: int = 5, gap: int = 8, n_mixtures: int = 0, random_state: int = 0):
        self.bands = bands
        self.alphas = alphas
        self.cv = cv
        self.gap = gap
        self.n_mixtures = n_mixtures
        self.random_state = random_state

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """X z-scored with the training statistics, columns in band order: float32 [n, F]."""
        return ((np.asarray(X, dtype=np.float32) - self.x_mean_) / self.x_scale_)[:, self.order_]

    def fit(self, X, Y):
        from himalaya.backend import set_backend
        from himalaya.ridge import GroupRidgeCV
        from himalaya.scoring import r2_score

        set_backend("numpy", on_error="warn")
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float32)
        self.bands_ = [np.asarray(b, dtype=int) for b in self.bands]
        if len(self.bands_) < 2:
            raise ValueError(f"banded ridge needs at least 2 bands, got {len(self.bands_)}")
        self.x_mean_ = X.mean(0)
        std = X.std(0)
        self.x_scale_ = np.where(std > 0, std, 1.0).astype(np.float32)
        self.order_ = np.concatenate(self.bands_)
        groups = np.concatenate([np.full(len(cols), b) for b, cols in enumerate(self.bands_)])
        self.y_mean_ = Y.mean(0)
        params = {
            "n_iter": candidate_weights(len(self.bands_), self.n_mixtures, self.random_state),
            "alphas": np.asarray(self.alphas, dtype=np.float64), "score_func": r2_score,
            "n_targets_batch": 2000, "n_targets_batch_refit": 2000, "n_alphas_batch": 5, "progress_bar": False,
        }
        model = GroupRidgeCV(groups=groups, solver="random_search", solver_params=params,
                             cv=contiguous_folds(len(X), self.cv, self.gap), random_state=self.random_state)
        with config_context(assume_finite=True), one_blas_thread():
            model.fit(self._scaled(X), Y - self.y_mean_)
        self.model_ = model
        # himalaya's deltas are log(space weight / alpha) with the weights summing to 1
        weighted = np.exp(np.asarray(model.deltas_, dtype=np.float64))
        self.best_alphas_ = 1.0 / weighted.sum(0)
        self.space_weights_ = weighted * self.best_alphas_
        self.cv_scores_ = np.asarray(model.cv_scores_).max(0)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X, split: bool = False) -> np.ndarray:
        """Predicted BOLD: float32 [n, V]; split=True: each space's part, float32 [B, n, V] (their
        sum plus the training mean is the prediction)."""
        with config_context(assume_finite=True):
            pred = np.asarray(self.model_.predict(self._scaled(X), split=split), dtype=np.float32)
        return pred if split else pred + self.y_mean_

    def score(self, X, Y) -> np.ndarray:
        """Per-voxel Pearson r on (X, Y): float [V]."""
        from framegram.fmri.metrics import pearson_r

        return pearson_r(self.predict(X), Y)


def candidate_weights(n_spaces: int, n_mixtures: int = 0, seed: int = 0) -> np.ndarray:
    """The space weightings a banded fit tries: float [n_spaces + n_mixtures, n_spaces], rows summing
    to 1. Each space alone, then `n_mixtures` mixtures: each pair in equal parts, all spaces equal,
    then Dirichlet draws (concentration 0.3).

    Why no mixtures by default: on the generated film benchmark (participants 01-03, 10 components
    a space), mixtures that won the inner folds of the first 70 % lost on the last 30 %: held-out r
    in the motion region 0.64 / 0.58 / 0.52 with one space a voxel, 0.56 / 0.47 / 0.42 with the 11
    pair and equal mixtures added (bench/brain.py --subjects 3 --set banded_mixtures=11).
    Spaces share slow structure of the film (speech and music blocks, scenes) that holds over the
    training minutes and turns at the split, which folds inside those minutes cannot see. Himalaya's
    own random search, without the corners, rarely comes near one space alone."""
    eps = 1e-6  # exact zeros become log(0) in himalaya's deltas
    eye = np.eye(n_spaces)
    pairs = [(eye[i] + eye[j]) / 2 for i in range(n_spaces) for j in range(i + 1, n_spaces)]
    mixtures = np.array(pairs + [np.full(n_spaces, 1.0 / n_spaces)]).reshape(-1, n_spaces)[:n_mixtures]
    draws = np.random.default_rng(seed).dirichlet(np.full(n_spaces, 0.3), size=max(0, n_mixtures - len(mixtures)))
    out = np.maximum(np.concatenate([eye, mixtures, draws]), eps)
    return out / out.sum(1, keepdims=True)


def split_r2(pred_split: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each space's share of the held-out R² (himalaya's `r2_score_split`, the product measure).
    pred_split: [B, n, V] from `predict(split=True)`; y: [n, V]. Both are centred on their held-out
    means first, so the shares add up to the R² of the prediction around the held-out mean (the
    pipeline's `r2` also charges the model for the shift between training and held-out means).
    Returns float [B, V]."""
    from himalaya.scoring import r2_score_split

    centred = y - y.mean(0)
    return np.asarray(r2_score_split(centred, pred_split - pred_split.mean(1, keepdims=True)), dtype=np.float64)
