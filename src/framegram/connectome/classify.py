"""Classifying participants from their denoised series, with splits that keep a site out.

    result = classify(series, labels, sites, feature_set="both")   # ClassificationResult

Outer loop: leave one site out. In each fold the unsupervised feature steps (`features.py`: the
tangent reference, the persistence image's ranges, the scalers) are fitted on the training sites
only, then a ridge classifier whose penalty is chosen inside the training participants (efficient
leave-one-out, RidgeClassifierCV) — nested: nothing of the held-out site reaches either choice.
Held-out decision values are pooled over folds: accuracy (sign), ROC AUC, a bootstrap 95 % interval
of the AUC (participants resampled within class), and a permutation p-value: labels shuffled within
each site (the site-label balance kept), the whole supervised part refitted, p = (1 + #{AUC_perm >=
AUC}) / (1 + n). Shuffling labels cannot change the unsupervised steps, whose folds depend on the
sites alone, so their features are computed once and reused by every permutation.

`motion_features` is the control: the classifier given only the participant's head motion (mean,
median, sd, 90th percentile and maximum of framewise displacement, share of volumes over 0.2 and
0.5 mm).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from framegram.connectome.features import FEATURE_SETS, feature_pipeline

ALPHAS = np.logspace(-1, 6, 15)


@dataclass
class ClassificationResult:
    feature_set: str
    participants: int
    accuracy: float
    auc: float
    auc_ci: tuple[float, float]
    permutation_p: float | None   #: None when no permutation was run
    permutations: int
    site_auc: dict[str, float]           #: AUC within each held-out site
    scores: list[float] = field(repr=False)  #: held-out decision values, in the participants' order
    labels: list[int] = field(repr=False)

    def to_json(self) -> dict:
        out = asdict(self)
        out["auc_ci"] = list(self.auc_ci)
        return out


def p_text(p: float | None) -> str:
    """A permutation p-value for a table: three decimals, or n/a without permutations."""
    return "n/a" if p is None else f"{p:.3f}"


def motion_features(fd: list[np.ndarray]) -> np.ndarray:
    """Per participant: mean, median, sd, 90th percentile, max of FD, share of volumes > 0.2 and > 0.5 mm:
    float [N, 7] (the first volume, n/a in fMRIPrep's table, left out)."""
    rows = []
    for f in fd:
        f = np.asarray(f, np.float64)[1:]
        rows.append([f.mean(), np.median(f), f.std(), np.percentile(f, 90), f.max(), (f > 0.2).mean(), (f > 0.5).mean()])
    return np.array(rows)


def fold_features(X, sites: np.ndarray, feature_sets: tuple[str, ...] = FEATURE_SETS, kind: str = "tangent",
                  confounds: np.ndarray | None = None) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per feature set, per held-out site: (test indices, training features, test features), the
    feature steps fitted on the training sites. X: a list of [T_i, P] series (feature sets
    "connectivity", "tda", "both": both is the two blocks side by side, each fitted once), or an array
    [N, F] of ready features (key "features", only standardised per fold). `confounds` [N, K] (e.g.
    `motion_features`): regressed out of every feature, coefficients fitted on the training sites
    (Snoek et al. 2019)."""
    from sklearn.preprocessing import StandardScaler

    blocks = ["features"] if isinstance(X, np.ndarray) else sorted({"connectivity", "tda"} & set(
        b for name in feature_sets for b in (("connectivity", "tda") if name == "both" else (name,))))
    folds: dict[str, list] = {b: [] for b in blocks}
    for site in sorted(set(sites)):
        test, train = np.flatnonzero(sites == site), np.flatnonzero(sites != site)
        for block in blocks:
            if block == "features":
                steps = StandardScaler().fit(X[train])
                f_train, f_test = steps.transform(X[train]), steps.transform(X[test])
            else:
                steps = feature_pipeline(block, kind).fit([X[i] for i in train])
                f_train, f_test = steps.transform([X[i] for i in train]), steps.transform([X[i] for i in test])
            folds[block].append((test, f_train, f_test))
    if confounds is not None:
        folds = {b: regress_folds(f, confounds) for b, f in folds.items()}
    if "both" in feature_sets and not isinstance(X, np.ndarray):
        folds["both"] = side_by_side(folds["connectivity"], folds["tda"])
    return {name: folds[name] for name in (["features"] if isinstance(X, np.ndarray) else feature_sets)}


def side_by_side(first, second):
    """Two feature sets' folds joined column-wise (the "both" set), fold by fold."""
    return [(a[0], np.hstack([a[1], b[1]]), np.hstack([a[2], b[2]])) for a, b in zip(first, second)]


def regress_folds(folds, confounds: np.ndarray):
    """The same folds with `confounds` [N, K] regressed out of their features (fitted on each training part)."""
    out = []
    for test, f_train, f_test in folds:
        train = np.setdiff1d(np.arange(len(confounds)), test)
        out.append((test, *regress_out(f_train, f_test, confounds[train], confounds[test])))
    return out


def regress_out(f_train: np.ndarray, f_test: np.ndarray, c_train: np.ndarray, c_test: np.ndarray):
    """Features minus their linear fit on the confounds (intercept included), fitted on the training rows."""
    mean, sd = c_train.mean(0), c_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    design = lambda c: np.column_stack([np.ones(len(c)), (c - mean) / sd])  # noqa: E731
    beta = np.linalg.lstsq(design(c_train), f_train, rcond=None)[0]
    return f_train - design(c_train) @ beta, f_test - design(c_test) @ beta


def _held_out_scores(folds, sites, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import RidgeClassifierCV

    scores = np.empty(len(y))
    for test, f_train, f_test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        model = RidgeClassifierCV(alphas=ALPHAS).fit(f_train, y[train])
        scores[test] = model.decision_function(f_test)
    return scores


def classify(X, labels, sites, feature_set: str = "both", kind: str = "tangent", permutations: int = 200,
             bootstrap: int = 2000, seed: int = 0, confounds: np.ndarray | None = None) -> ClassificationResult:
    """Leave-site-out nested classification of `labels` (0/1 [N]) from X (series list or feature
    array [N, F]); `sites` [N] any labels (at least 2 sites)."""
    sites = np.asarray(sites).astype(str)
    if len(set(sites)) < 2:
        raise ValueError("leave-site-out classification needs participants from at least 2 sites")
    folds = fold_features(X, sites, (feature_set,), kind, confounds)
    return classify_folds(next(iter(folds.values())), labels, sites, feature_set, permutations, bootstrap, seed)


def classify_folds(folds, labels, sites, feature_set: str, permutations: int = 200, bootstrap: int = 2000,
                   seed: int = 0) -> ClassificationResult:
    """The supervised part of `classify` on one feature set's ready folds (see `fold_features`)."""
    y = np.asarray(labels, int)
    sites = np.asarray(sites).astype(str)
    scores = _held_out_scores(folds, sites, y)
    auc = float(auc_scores(y, scores))
    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    for k in range(permutations):
        shuffled = y.copy()
        for site in sorted(set(sites)):
            at = np.flatnonzero(sites == site)
            shuffled[at] = rng.permutation(y[at])
        null[k] = auc_scores(shuffled, _held_out_scores(folds, sites, shuffled))
    site_auc = {s: float(auc_scores(y[sites == s], scores[sites == s]))
                for s in sorted(set(sites)) if len(set(y[sites == s])) == 2}
    return ClassificationResult(
        feature_set=feature_set, participants=len(y), accuracy=float(((scores > 0).astype(int) == y).mean()),
        auc=auc, auc_ci=bootstrap_auc_ci(y, scores, bootstrap, rng),
        permutation_p=float((1 + (null >= auc).sum()) / (1 + permutations)) if permutations else None,
        permutations=permutations,
        site_auc=site_auc, scores=scores.tolist(), labels=y.tolist())


def auc_scores(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC by the Mann-Whitney rank sum (ties averaged), for one row or many: y int [..., N] (0/1),
    scores [..., N] → float [...]. Equal to sklearn's roc_auc_score; written out because the bootstrap
    and the permutations ask for thousands, and sklearn's input checks cost more than the AUC itself."""
    from scipy.stats import rankdata

    y = np.asarray(y)
    ranks = rankdata(scores, axis=-1)
    n_pos = y.sum(-1)
    n_neg = y.shape[-1] - n_pos
    return ((ranks * y).sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_auc_ci(y: np.ndarray, scores: np.ndarray, n: int, rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC, participants resampled within each class."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    take = np.concatenate([rng.choice(pos, (n, len(pos))), rng.choice(neg, (n, len(neg)))], axis=1)
    aucs = auc_scores(y[take], scores[take])
    tail = (1 - level) / 2 * 100
    return float(np.percentile(aucs, tail)), float(np.percentile(aucs, 100 - tail))
