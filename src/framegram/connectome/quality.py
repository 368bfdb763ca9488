"""The denoising benchmark's metrics (Ciric 2017, Parkes 2018; SIMEXP fmriprep-denoise-benchmark):

- QC-FC: per edge, the partial correlation across participants between its connectivity (Pearson r)
  and the participant's mean framewise displacement (age and sex partialled out when known); the
  share of edges with p < 0.05 (uncorrected, as the benchmarks report) and the median |r|;
- distance dependence: Spearman's rho between the edges' QC-FC r and the distance of their parcels;
- temporal degrees of freedom lost: confound regressors plus censored volumes (mean per participant);
- truth recovery (generated data only): Pearson r between the estimated group difference of
  connectivity (mean Fisher z, positive class minus the other) and the true one, over edges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def connectivity_edges(series: list[np.ndarray]) -> np.ndarray:
    """Pearson correlation of every pair of parcels: float [N, P(P-1)/2] (upper triangle, row-major)."""
    p = series[0].shape[1]
    iu = np.triu_indices(p, 1)
    return np.stack([np.corrcoef(s.T)[iu] for s in series])


def qcfc(edges: np.ndarray, mean_fd: np.ndarray, covariates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(r, p) per edge: partial correlation of edges [N, E] with mean_fd [N] given covariates [N, K]."""
    from scipy import stats

    n = len(mean_fd)
    design = np.ones((n, 1)) if covariates is None else np.column_stack([np.ones(n), covariates])
    resid = lambda y: y - design @ np.linalg.lstsq(design, y, rcond=None)[0]  # noqa: E731
    e = resid(edges.astype(np.float64))
    f = resid(np.asarray(mean_fd, np.float64)[:, None])[:, 0]
    e = e - e.mean(0)
    f = f - f.mean()
    r = (e * f[:, None]).sum(0) / np.sqrt((e**2).sum(0) * (f**2).sum() + 1e-300)
    dof = n - design.shape[1] - 1
    t = r * np.sqrt(dof / np.maximum(1 - r**2, 1e-12))
    return r, 2 * stats.t.sf(np.abs(t), dof)


@dataclass(frozen=True)
class StrategyQuality:
    participants: int
    qcfc_share: float               #: share of edges whose QC-FC p < 0.05
    qcfc_median_abs_r: float
    distance_dependence: float      #: Spearman rho(QC-FC r, parcel distance)
    tdof_lost: float                #: mean confounds + censored volumes
    tdof_lost_share: float          #: the same over the run's volumes
    mean_fd_mm: float
    truth_recovery_r: float | None  #: None without a known group difference

    def to_json(self) -> dict:
        return asdict(self)


def strategy_quality(series: list[np.ndarray], mean_fd: np.ndarray, tdof_lost: list[int], volumes: list[int],
                     distances: np.ndarray, covariates: np.ndarray | None = None,
                     labels: np.ndarray | None = None, true_difference: np.ndarray | None = None) -> StrategyQuality:
    """Every metric above for one strategy. `distances` [P, P] mm; `labels` [N] 0/1 and
    `true_difference` [P, P] (Fisher z, class 1 minus class 0) for the truth recovery."""
    from scipy import stats

    edges = connectivity_edges(series)
    r, p = qcfc(edges, mean_fd, covariates)
    iu = np.triu_indices(distances.shape[0], 1)
    recovery = None
    if labels is not None and true_difference is not None:
        recovery = float(np.corrcoef(group_difference(edges, np.asarray(labels)), true_difference[iu])[0, 1])
    return StrategyQuality(
        participants=len(series),
        qcfc_share=float((p < 0.05).mean()),
        qcfc_median_abs_r=float(np.median(np.abs(r))),
        distance_dependence=float(stats.spearmanr(r, distances[iu]).statistic),
        tdof_lost=float(np.mean(tdof_lost)),
        tdof_lost_share=float(np.mean(np.asarray(tdof_lost) / np.asarray(volumes))),
        mean_fd_mm=float(np.mean(mean_fd)),
        truth_recovery_r=recovery,
    )


def group_difference(edges: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean Fisher z of class 1 minus class 0, per edge: float [E]."""
    z = np.arctanh(np.clip(edges, -0.999999, 0.999999))
    return z[labels == 1].mean(0) - z[labels == 0].mean(0)
