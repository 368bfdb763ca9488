"""The three steps as the CLI and the benchmark run them, each reading what the one before wrote:

    denoise:  fMRIPrep folder + atlas → <out>/<strategy>/*_timeseries.tsv   (denoise.py)
              + <out>/quality.json, quality.tsv: the benchmark metrics per strategy (quality.py)
    features: <out>/<strategy> → connectivity and topological features per participant (TSV)
    classify: <out>/<strategy> + participants.tsv → classification.json: leave-site-out results per
              feature set and strategy, and the motion-only control (classify.py)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from framegram.connectome.atlas import Atlas
from framegram.connectome.classify import ClassificationResult, classify_folds, fold_features, motion_features
from framegram.connectome.denoise import SeriesSet, common_subjects, load_series
from framegram.connectome.errors import ParticipantsError
from framegram.connectome.quality import StrategyQuality, strategy_quality
from framegram.connectome.runs import Participants, load_covariates, load_participants
from framegram.io.atomic import atomic_write_bytes


def _write_json(path: Path, data) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def mean_fd(series: SeriesSet) -> np.ndarray | None:
    """Each participant's mean framewise displacement (mm), None when a run had no FD column."""
    if any(f is None for f in series.fd):
        return None
    return np.array([f[1:].mean() for f in series.fd])


def measure_quality(out: str | Path, strategies: list[str], atlas: Atlas, participants: str | Path | None = None,
                    label: str = "group", site: str = "site", positive: str | None = None,
                    true_difference: np.ndarray | None = None, subjects: list[str] | None = None) -> dict[str, StrategyQuality]:
    """QC-FC, distance dependence, tDOF lost per strategy, on `subjects` (default: those every strategy kept; age
    and sex from `participants` as covariates when it has them), and the truth recovery when
    `true_difference` [P, P] is given (then the table's `label` column is read too); written to
    <out>/quality.json and quality.tsv. Without framewise displacement for everyone, nothing is measured."""
    out = Path(out)
    subjects = common_subjects(out, strategies) if subjects is None else subjects
    results = {}
    for name in strategies:
        series = load_series(out, name, subjects)
        fd = mean_fd(series)
        if fd is None or len(series.series) < 4:
            continue
        covariates = load_covariates(participants, series.subjects) if participants is not None else None
        labels = None
        if participants is not None and true_difference is not None:
            labels = np.array(load_participants(participants, series.subjects, label, site, positive).labels)
        results[name] = strategy_quality(series.series, fd, series.tdof_lost, series.volumes, atlas.distances(),
                                         covariates, labels, true_difference)
    _write_json(out / "quality.json", {name: q.to_json() for name, q in results.items()})
    columns = ["strategy", "participants", "qcfc_share", "qcfc_median_abs_r", "distance_dependence", "tdof_lost",
               "tdof_lost_share", "mean_fd_mm", "truth_recovery_r"]
    rows = ["\t".join(columns)] + ["\t".join([name] + [_cell(getattr(q, c)) for c in columns[1:]]) for name, q in results.items()]
    atomic_write_bytes(out / "quality.tsv", ("\n".join(rows) + "\n").encode())
    return results


def _cell(value) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def subject_table(series: SeriesSet, participants: str | Path, label: str, site: str, positive: str | None) -> Participants:
    table = load_participants(participants, series.subjects, label, site, positive)
    if len(set(table.sites)) < 2:
        raise ParticipantsError(Path(participants), f"leave-site-out classification needs at least 2 values of {site!r}; "
                                                    f"these participants all have {table.sites[0]!r}")
    for s in sorted(set(table.sites)):
        rest = {y for y, t in zip(table.labels, table.sites) if t != s}
        if len(rest) < 2:
            raise ParticipantsError(Path(participants), f"without site {s!r} only one {label} is left to train on")
    return table


def classify_strategy(out: str | Path, strategy: str, participants: str | Path, feature_sets: tuple[str, ...],
                      label: str = "group", site: str = "site", positive: str | None = None, kind: str = "tangent",
                      permutations: int = 200, motion_regression: bool = True, subjects: list[str] | None = None,
                      seed: int = 0) -> tuple[dict[str, ClassificationResult], ClassificationResult | None]:
    """Every feature set on one strategy's series ({feature set: result}) and the motion-only control on
    the same participants (None without framewise displacement). `subjects`: only these (e.g.
    `common_subjects`, so that strategies are compared on the same people). `motion_regression`: the
    motion summary regressed out of the features inside each fold (not for the raw series, "none")."""
    series = load_series(out, strategy, subjects)
    table = subject_table(series, participants, label, site, positive)
    sites = np.array(table.sites)
    motion = None if mean_fd(series) is None else motion_features(series.fd)
    confounds = motion if motion_regression and strategy != "none" else None
    folds = fold_features(series.series, sites, feature_sets, kind, confounds)
    results = {name: classify_folds(folds[name], table.labels, sites, name, permutations, seed=seed) for name in feature_sets}
    control = None
    if motion is not None:
        control = classify_folds(fold_features(motion, sites)["features"], table.labels, sites, "motion",
                                 permutations, seed=seed)
    return results, control


def classification_json(results: dict[str, dict[str, ClassificationResult]], control: ClassificationResult | None,
                        keys=("accuracy", "auc", "auc_ci", "permutation_p", "participants", "site_auc")) -> dict:
    """{"classification": {"<features>/<strategy>": {...}}, "motion_control": {...}} (the results file's layout)."""
    out = {"classification": {f"{fs}/{strategy}": {k: r.to_json()[k] for k in keys}
                              for strategy, by_set in results.items() for fs, r in by_set.items()}}
    if control is not None:
        out["motion_control"] = {k: control.to_json()[k] for k in keys}
    return out
