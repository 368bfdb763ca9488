"""BOLD cleaning fitted on training volumes only: drifts (nilearn's cosine high-pass basis plus a
polynomial detrend) and motion confounds are regressed out with coefficients estimated on the
training rows, then every row is standardised with the training mean and deviation.

nilearn's `signal.clean` estimates its regression on whatever it is given; fitting on the training
split and applying the same coefficients to held-out volumes keeps the test part unseen.
"""

from __future__ import annotations

import numpy as np

from framegram.fmri.bids import BoldRun, load_framewise_displacement
from framegram.fmri.config import BrainConfig


def nuisance_regressors(
    n_volumes: int, tr: float, high_pass_hz: float = 0.01, detrend_order: int = 1, confounds: np.ndarray | None = None,
    spikes: np.ndarray | None = None,
) -> np.ndarray:
    """Nuisance design: float64 [n_volumes, R] = constant, polynomial trend, cosine drifts below
    `high_pass_hz` (nilearn's `make_first_level_design_matrix` basis), the confounds (high-passed
    by that basis, unit variance) and one indicator per volume flagged in `spikes` (bool [n_volumes]:
    sudden head motion, whose spin-history artefacts no motion regressor describes)."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(n_volumes) * tr
    with np.errstate(all="ignore"):
        cosines = make_first_level_design_matrix(
            frame_times, events=None, drift_model="cosine", high_pass=high_pass_hz
        )
    columns = [np.ones(n_volumes)]
    ramp = np.linspace(-1, 1, n_volumes)
    columns += [ramp**k for k in range(1, detrend_order + 1)]
    drift = cosines[[c for c in cosines.columns if str(c).startswith("drift")]].to_numpy()
    columns += list(drift.T)
    if confounds is not None and confounds.size:
        # Confounds high-passed with the same drift basis (no BOLD involved): a random-walk motion
        # trace otherwise wanders in the held-out part far outside its training range, and noise in
        # its training-fitted coefficient is multiplied by that excursion.
        base = np.stack(columns, axis=1)
        c = np.asarray(confounds, dtype=np.float64)
        c = c - base @ np.linalg.lstsq(base, c, rcond=None)[0]
        c = c / np.where(c.std(0) > 0, c.std(0), 1.0)
        columns += list(c.T)
    for v in [] if spikes is None else np.flatnonzero(spikes):
        one = np.zeros(n_volumes)
        one[v] = 1.0
        columns.append(one)
    return np.stack(columns, axis=1)


class BoldCleaner:
    """Nuisance regression per stretch of time, fitted on training volumes (scikit-learn style).

    fit(Y, train) with Y float [n_volumes, V] and `train` (contiguous) row indices estimates the
    nuisance coefficients on the training rows only; transform(Y) → float32 [n_volumes, V]
    residuals z-scored with the training statistics; residualize(X) applies the same projection to
    a design.

    `held_out`: how the rows outside `train` are cleaned.
    "own" (default): each stretch (training rows, held-out rows) gets its own nuisance design —
    drifts below `high_pass_hz` over that stretch's own duration, its confounds and spikes — and
    the held-out rows are regressed on theirs using only their own BOLD and confounds (never the
    stimulus, the model or the training rows): nothing crosses the split in either direction.
    "train": the training coefficients of a whole-run nuisance design are applied to the held-out
    rows. Extrapolated drift and random-walk motion terms add their estimation noise, multiplied by
    how far the regressors wander, to the held-out part: on a 641-volume run this drops the
    held-out r of an ideal model several-fold, so it is kept only for comparison.
    """

    def __init__(self, tr: float, high_pass_hz: float = 0.01, detrend_order: int = 1,
                 confounds: np.ndarray | None = None, held_out: str = "own", spikes: np.ndarray | None = None):
        self.tr = tr
        self.high_pass_hz = high_pass_hz
        self.detrend_order = detrend_order
        self.confounds = confounds
        self.held_out = held_out
        self.spikes = spikes

    def _design(self, rows: np.ndarray) -> np.ndarray:
        take = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
        return nuisance_regressors(len(rows), self.tr, self.high_pass_hz, self.detrend_order,
                                   take(self.confounds), take(self.spikes))

    def fit(self, y: np.ndarray, train: np.ndarray) -> BoldCleaner:
        self._fit(y, train)
        return self

    def fit_transform(self, y: np.ndarray, train: np.ndarray) -> np.ndarray:
        return self._fit(y, train)

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Cleaned y: float32 [n_volumes, V], z-scored with the training rows' statistics."""
        return ((self._project(y) - self.mean_) / self.scale_).astype(np.float32, copy=False)

    def _fit(self, y: np.ndarray, train: np.ndarray) -> np.ndarray:
        if self.held_out not in ("own", "train"):
            raise ValueError(f"held_out must be 'own' or 'train', got {self.held_out!r}")
        n = len(y)
        self.train_ = np.asarray(train)
        self.other_ = np.setdiff1d(np.arange(n), self.train_)
        if self.held_out == "own":
            self.designs_ = [self._design(self.train_), self._design(self.other_) if len(self.other_) else None]
        else:
            full = self._design(np.arange(n))
            self.designs_ = [full[self.train_], full[self.other_]]
        # pseudo-inverses once: each projection is then two matrix products (lstsq over 80 000
        # voxel columns is several times slower)
        self.pinvs_ = [None if d is None else np.linalg.pinv(d) for d in self.designs_]
        resid = self._project(y)
        rows = resid[self.train_]
        self.mean_ = rows.mean(0)
        std = rows.std(0)
        self.scale_ = np.where(std > 0, std, 1.0).astype(resid.dtype)
        return ((resid - self.mean_) / self.scale_).astype(np.float32, copy=False)

    def _project(self, x: np.ndarray) -> np.ndarray:
        """x float [n_volumes, F] minus its nuisance fit in each stretch (float32 stays float32)."""
        x = np.asarray(x)
        x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=False)
        cast = lambda m: m.astype(x.dtype, copy=False)  # noqa: E731
        out = np.empty_like(x)
        tr, other = self.train_, self.other_
        out[tr] = x[tr] - cast(self.designs_[0]) @ (cast(self.pinvs_[0]) @ x[tr])
        if len(other):
            # "own": the held-out rows fitted on their own design; "train": the training coefficients
            fit_rows, pinv = (other, self.pinvs_[1]) if self.held_out == "own" else (tr, self.pinvs_[0])
            out[other] = x[other] - cast(self.designs_[1]) @ (cast(pinv) @ x[fit_rows])
        return out

    def residualize(self, x: np.ndarray) -> np.ndarray:
        """The same nuisance projection applied to a design x float [n_volumes, F] (float32 out).
        Filtering stimulus and BOLD alike means the model is not asked to predict the slow parts
        that cleaning removed from the BOLD (Frisch-Waugh-Lovell: the same fit as one regression on
        stimulus and nuisance together); no BOLD is used here."""
        return self._project(x).astype(np.float32)


def nuisance_cleaner(run: BoldRun, config: BrainConfig) -> BoldCleaner:
    """The (unfitted) nuisance cleaner of `run` under `config`: drifts, motion confounds, FD spikes."""
    confounds = run.load_confounds() if config.motion else None
    fd = load_framewise_displacement(run) if config.fd_threshold_mm is not None else None
    spikes = fd > config.fd_threshold_mm if fd is not None else None
    return BoldCleaner(run.tr, config.high_pass_hz, confounds=confounds, held_out=config.held_out_cleaning, spikes=spikes)
