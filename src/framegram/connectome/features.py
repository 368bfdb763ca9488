"""Features of a participant's parcel time series, as scikit-learn transformers (X: a list of
float arrays [T_i, P], one per participant; y unused: every step here is unsupervised).

- `ConnectivityFeatures(kind)`: nilearn's ConnectivityMeasure ("correlation", "partial correlation",
  "tangent"; Ledoit-Wolf covariance), the upper triangle without the diagonal, Fisher z for the two
  correlation kinds. The tangent kind's reference (the group's geometric mean) is fitted on the
  training participants only.
- `TopologicalFeatures()`: persistent homology of the connectome as a weighted graph. The distance
  between parcels is sqrt(2 (1 - r)) (the Euclidean distance of the z-scored series, a metric);
  ripser's Vietoris-Rips filtration gives the H0 (components) and H1 (loops) persistence diagrams.
  Features: the Betti curves of H0 and H1 on a fixed grid of distances, a persistence image of H1
  (persim, its ranges fitted on the training participants) and summaries (total and maximum
  persistence, number of loops). Infinite bars (the one component alive at the end) are dropped.
- `feature_pipeline(name, kind)`: "connectivity", "tda" or "both" (each block standardised, then
  scaled by 1/sqrt(its width), so that 4,950 edges do not drown 100 topological numbers).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

CONNECTIVITY_KINDS = ("correlation", "partial correlation", "tangent")
FEATURE_SETS = ("connectivity", "tda", "both")


class ConnectivityFeatures(BaseEstimator, TransformerMixin):
    """[T_i, P] series → float [N, P(P-1)/2] connectivity edges of `kind`."""

    def __init__(self, kind: str = "tangent"):
        self.kind = kind

    def fit(self, X, y=None):
        from nilearn.connectome import ConnectivityMeasure
        from sklearn.covariance import LedoitWolf

        if self.kind not in CONNECTIVITY_KINDS:
            raise ValueError(f"connectivity kind must be one of {', '.join(CONNECTIVITY_KINDS)}, not {self.kind!r}")
        self.measure_ = ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False), kind=self.kind,
                                            vectorize=True, discard_diagonal=True, standardize=False)
        self.measure_.fit(list(X))
        return self

    def transform(self, X):
        X = list(X)
        # nilearn refuses the tangent transform of one participant (each is mapped on its own against
        # the fitted reference, so a lone held-out participant is transformed as a pair with itself)
        edges = self.measure_.transform(X * 2)[:1] if len(X) == 1 else self.measure_.transform(X)
        if self.kind != "tangent":
            edges = np.arctanh(np.clip(edges, -0.999999, 0.999999))
        return edges


def correlation_distance(series: np.ndarray) -> np.ndarray:
    """sqrt(2 (1 - r)) between parcels: float [P, P], 0 on the diagonal."""
    r = np.corrcoef(np.asarray(series, np.float64).T)
    d = np.sqrt(np.clip(2.0 * (1.0 - r), 0.0, None))
    np.fill_diagonal(d, 0.0)
    return d


def persistence_diagrams(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H0 [k0, 2], H1 [k1, 2]) birth-death pairs of the Vietoris-Rips filtration, finite bars only."""
    from ripser import ripser

    dgms = ripser(correlation_distance(series), distance_matrix=True, maxdim=1)["dgms"]
    return tuple(d[np.isfinite(d[:, 1])] for d in dgms[:2])


_DIAGRAMS: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def cached_diagrams(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`persistence_diagrams` memoised by the series' bytes (cross-validation asks for each many times)."""
    import hashlib

    a = np.ascontiguousarray(series)
    key = hashlib.blake2b(a.tobytes(), digest_size=16).digest() + str(a.shape).encode()
    if key not in _DIAGRAMS:
        if len(_DIAGRAMS) > 20000:
            _DIAGRAMS.clear()
        _DIAGRAMS[key] = persistence_diagrams(a)
    return _DIAGRAMS[key]


def betti_curve(diagram: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Number of bars alive at each grid value (birth <= t < death): float [len(grid)]."""
    if len(diagram) == 0:
        return np.zeros(len(grid))
    return ((diagram[:, :1] <= grid[None]) & (grid[None] < diagram[:, 1:])).sum(0).astype(float)


class TopologicalFeatures(BaseEstimator, TransformerMixin):
    """[T_i, P] series → float [N, 2 * grid + image pixels + 5] topological features (module docstring).
    Diagrams are computed once per series content (ripser dominates; folds and clones reuse them)."""

    def __init__(self, grid_points: int = 40, max_distance: float = 2.0, image_pixels: int = 8):
        self.grid_points = grid_points
        self.max_distance = max_distance
        self.image_pixels = image_pixels

    def _diagrams(self, X):
        return [cached_diagrams(s) for s in X]

    def fit(self, X, y=None):
        from persim import PersistenceImager

        loops = [d[1] for d in self._diagrams(X) if len(d[1])]
        every = np.concatenate(loops) if loops else np.zeros((1, 2))
        birth = (float(every[:, 0].min()), float(every[:, 0].max()) + 1e-6)
        pers = every[:, 1] - every[:, 0]
        persistence = (0.0, float(pers.max()) + 1e-6)
        size = max(birth[1] - birth[0], persistence[1]) / self.image_pixels
        self.imager_ = PersistenceImager(birth_range=birth, pers_range=persistence, pixel_size=size,
                                         kernel_params={"sigma": [[size**2, 0.0], [0.0, size**2]]})
        self.grid_ = np.linspace(0.0, self.max_distance, self.grid_points)
        return self

    def transform(self, X):
        rows = []
        for h0, h1 in self._diagrams(X):
            image = self.imager_.transform(h1, skew=True).ravel() if len(h1) else np.zeros(self._image_size())
            life0, life1 = h0[:, 1] - h0[:, 0], h1[:, 1] - h1[:, 0]
            summary = [life0.sum(), life0.max(initial=0), life1.sum(), life1.max(initial=0), len(h1)]
            rows.append(np.concatenate([betti_curve(h0, self.grid_), betti_curve(h1, self.grid_), image, summary]))
        return np.stack(rows)

    def _image_size(self) -> int:
        return int(np.prod(self.imager_.resolution))


class BlockWeight(BaseEstimator, TransformerMixin):
    """Multiply a standardised block by 1/sqrt(its width): each block then weighs the same in a ridge."""

    def fit(self, X, y=None):
        self.scale_ = 1.0 / np.sqrt(X.shape[1])
        return self

    def transform(self, X):
        return X * self.scale_


def feature_pipeline(name: str, kind: str = "tangent") -> Pipeline:
    """The unsupervised feature steps of feature set `name` ("connectivity", "tda", "both")."""
    blocks = {
        "connectivity": Pipeline([("edges", ConnectivityFeatures(kind)), ("scale", StandardScaler()), ("weight", BlockWeight())]),
        "tda": Pipeline([("topology", TopologicalFeatures()), ("scale", StandardScaler()), ("weight", BlockWeight())]),
    }
    if name in blocks:
        return blocks[name]
    if name == "both":
        return Pipeline([("union", FeatureUnion(list(blocks.items())))])
    raise ValueError(f"feature set must be one of {', '.join(FEATURE_SETS)}, not {name!r}")
