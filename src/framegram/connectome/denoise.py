"""Denoising: each run's parcel time series under each strategy, written as TSV + JSON sidecar.

    summary = denoise_runs(runs, atlas, ["none", "simple", "scrubbing.5+gsr"], out)
    series = load_series(out, "scrubbing.5+gsr")     # SeriesSet: [T_kept, P] per participant

The image is read once per run and averaged within parcels (nilearn's NiftiLabelsMasker, the atlas
resampled to the run's grid when they differ); each strategy then cleans those parcel means with
nilearn's `signal.clean` (confound regression on the volumes the strategy keeps, z-scored) — the same
as the masker cleaning each time, since regression and averaging commute. Output per strategy:
`<out>/<strategy>/sub-<id>_..._seg-<atlas>_desc-<label>_timeseries.tsv` (one column per parcel, one
row per kept volume) and its `.json` (strategy, confound columns, kept volumes, framewise
displacement of every volume, the atlas's sha256). A finished file is skipped on a rerun (resume);
a run with too few volumes left after scrubbing is listed in `<out>/<strategy>/excluded.tsv`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framegram.connectome.atlas import Atlas
from framegram.connectome.errors import AtlasError, ConnectomeError, ParcellationMismatchError, ScrubbedTooShortError
from framegram.connectome.runs import PreprocRun
from framegram.connectome.strategies import MIN_VOLUMES, confounds_file, get_strategy, strategy_confounds
from framegram.errors import InputError
from framegram.io.atomic import atomic_write_bytes

SERIES_FORMAT = 1


def series_paths(out: Path, run: PreprocRun, atlas: Atlas, strategy: str) -> tuple[Path, Path]:
    label = get_strategy(strategy).bids_label
    stem = f"{run.key}_space-{run.space}_seg-{atlas.name}_desc-{label}_timeseries"
    folder = Path(out) / strategy
    return folder / f"{stem}.tsv", folder / f"{stem}.json"


def parcel_means(run: PreprocRun, atlas: Atlas) -> np.ndarray:
    """The run's mean signal in each parcel: float64 [n_volumes, P]. AtlasError when a parcel has no
    voxel on the run's grid."""
    import nibabel as nib
    from nilearn.maskers import NiftiLabelsMasker

    try:
        img = nib.load(run.bold)
        if img.ndim != 4:
            raise InputError(run.bold, f"a BOLD run must be 4-D, this image has shape {img.shape}")
        masker = NiftiLabelsMasker(labels_img=str(atlas.path), resampling_target="data", standardize=None)
        means = masker.fit_transform(img)
    except (EOFError, OSError, ValueError) as exc:
        raise InputError(run.bold, f"unreadable BOLD image ({str(exc).splitlines()[0]})") from None
    if means.shape[1] != len(atlas.indices):
        raise AtlasError(atlas.path, f"{len(atlas.indices) - means.shape[1]} of its parcels have no voxel on the grid "
                                     f"of {run.bold.name}: is the atlas in space {run.space}?")
    return means.astype(np.float64)


def framewise_displacement(run: PreprocRun) -> np.ndarray | None:
    """fMRIPrep's framewise_displacement (mm, first volume n/a → 0): float [n], or None without the column."""
    import pandas as pd

    tsv = confounds_file(run.bold)
    if not tsv.is_file():
        return None
    frame = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    if "framewise_displacement" not in frame:
        return None
    return np.nan_to_num(frame["framewise_displacement"].to_numpy(np.float64), nan=0.0)


def clean_series(means: np.ndarray, run: PreprocRun, strategy: str, min_volumes: int = MIN_VOLUMES):
    """(series float32 [kept, P] z-scored, confound column names, kept volume indices int [kept])."""
    from nilearn import signal

    confounds, sample_mask = strategy_confounds(run.bold, strategy, len(means), min_volumes)
    columns = [] if confounds is None else list(confounds.columns)
    cleaned = signal.clean(means, confounds=None if confounds is None else confounds.to_numpy(),
                           sample_mask=sample_mask, detrend=False, standardize="zscore_sample",
                           standardize_confounds=True, t_r=run.tr)
    kept = np.arange(len(means)) if sample_mask is None else np.asarray(sample_mask)
    return cleaned.astype(np.float32), columns, kept


@dataclass
class DenoiseSummary:
    written: int = 0
    skipped: int = 0                                          #: already done (resume)
    excluded: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  #: strategy -> (subject, why)
    failed: list[ConnectomeError | InputError] = field(default_factory=list)


def denoise_runs(runs: list[PreprocRun], atlas: Atlas, strategies: list[str], out: str | Path,
                 min_volumes: int = MIN_VOLUMES, show_progress: bool = True) -> DenoiseSummary:
    """Write every run's series under every strategy (see the module's docstring). A run that cannot be
    read or lacks confounds is recorded in `failed` and the others go on; nothing finished is redone."""
    from framegram.progress import extraction_progress

    for s in strategies:
        get_strategy(s)
    out = Path(out)
    summary = DenoiseSummary(excluded={s: [] for s in strategies})
    with extraction_progress(show_progress) as bar:
        task = bar.add_task("denoising", total=len(runs))
        for run in runs:
            todo = [s for s in strategies if not _done(series_paths(out, run, atlas, s)[1], run, atlas, min_volumes)]
            summary.skipped += len(strategies) - len(todo)
            if todo:
                try:
                    means = parcel_means(run, atlas)
                    fd = framewise_displacement(run)
                except (ConnectomeError, InputError) as exc:
                    summary.failed.append(exc)
                    bar.advance(task)
                    continue
                for s in todo:
                    try:
                        series, columns, kept = clean_series(means, run, s, min_volumes)
                    except ScrubbedTooShortError as exc:
                        summary.excluded[s].append((run.subject, exc.reason))
                        _write_sidecar(out, run, atlas, s, {"Excluded": exc.reason}, min_volumes)
                        continue
                    except (ConnectomeError, InputError) as exc:
                        summary.failed.append(exc)
                        continue
                    _write_series(out, run, atlas, s, series, columns, kept, len(means), fd, min_volumes)
                    summary.written += 1
            bar.advance(task)
    for s in strategies:
        rows = ["participant_id\treason"] + [f"sub-{sub}\t{why}" for sub, why in summary.excluded[s]]
        (out / s).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / s / "excluded.tsv", ("\n".join(rows) + "\n").encode())
    return summary


def _done(sidecar: Path, run: PreprocRun, atlas: Atlas, min_volumes: int) -> bool:
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    same = (meta.get("AtlasSHA256") == atlas.digest and meta.get("Source") == str(run.bold.resolve())
            and meta.get("MinVolumes") == min_volumes and meta.get("Format") == SERIES_FORMAT)
    return same and ("Excluded" in meta or sidecar.with_suffix(".tsv").is_file())


def _write_sidecar(out: Path, run: PreprocRun, atlas: Atlas, strategy: str, extra: dict, min_volumes: int) -> None:
    tsv, sidecar = series_paths(out, run, atlas, strategy)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Format": SERIES_FORMAT, "Strategy": strategy, "Subject": run.subject, "Source": str(run.bold.resolve()),
            "RepetitionTime": run.tr, "Atlas": atlas.name, "AtlasPath": str(atlas.path.resolve()), "AtlasSHA256": atlas.digest, "Parcels": len(atlas.indices),
            "MinVolumes": min_volumes, **extra}
    if "Excluded" in meta:
        tsv.unlink(missing_ok=True)
    atomic_write_bytes(sidecar, json.dumps(meta, indent=1).encode())


def _write_series(out, run, atlas, strategy, series, columns, kept, n_volumes, fd, min_volumes) -> None:
    tsv, _ = series_paths(out, run, atlas, strategy)
    tsv.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(atlas.names)] + ["\t".join(f"{v:.6g}" for v in row) for row in series]
    atomic_write_bytes(tsv, ("\n".join(lines) + "\n").encode())
    _write_sidecar(out, run, atlas, strategy, {
        "ConfoundColumns": columns, "VolumesTotal": n_volumes, "KeptVolumes": kept.tolist(),
        # temporal degrees of freedom lost: one per regressor and one per censored volume
        "TDOFLost": len(columns) + n_volumes - len(kept),
        "FramewiseDisplacement": None if fd is None else [round(float(v), 5) for v in fd],
    }, min_volumes)


@dataclass(frozen=True)
class SeriesSet:
    """One strategy's denoised series of many participants, all on one parcellation."""

    strategy: str
    subjects: list[str]
    series: list[np.ndarray]           #: float32 [T_kept_i, P] each
    fd: list[np.ndarray | None]        #: framewise displacement of every volume [n_i] (mm)
    tdof_lost: list[int]
    volumes: list[int]                 #: n_i, volumes before censoring
    parcel_names: tuple[str, ...]
    atlas_digest: str
    excluded: list[str]                #: participants the strategy left out (too few volumes)


def load_series(folder: str | Path, strategy: str) -> SeriesSet:
    """Read `<folder>/<strategy>/*_timeseries.{tsv,json}`. ParcellationMismatchError (naming the file)
    when participants' series come from different atlases or parcel counts; ConnectomeError when
    the folder holds none."""
    import pandas as pd

    root = Path(folder) / strategy
    sidecars = sorted(root.glob("*_timeseries.json"))
    if not sidecars:
        raise ParcellationMismatchError(root, f"no denoised time series of strategy {strategy} here "
                                              f"(run `framegram fmri denoise` with --strategy {strategy})")
    subjects, series, fds, tdof, volumes, excluded = [], [], [], [], [], []
    first = None
    for sidecar in sidecars:
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            raise ParcellationMismatchError(sidecar, "unreadable sidecar JSON") from None
        if "Excluded" in meta:
            excluded.append(meta.get("Subject", "?"))
            continue
        try:
            frame = pd.read_csv(sidecar.with_suffix(".tsv"), sep="\t")
        except (OSError, ValueError) as exc:
            raise ParcellationMismatchError(sidecar.with_suffix(".tsv"), f"unreadable time series ({exc})") from None
        names = tuple(frame.columns)
        if first is None:
            first = (sidecar, meta.get("AtlasSHA256"), names)
        elif meta.get("AtlasSHA256") != first[1] or names != first[2]:
            raise ParcellationMismatchError(
                sidecar.with_suffix(".tsv"),
                f"{len(names)} parcels of atlas {meta.get('Atlas')!r}, but {first[0].name} has {len(first[2])} "
                f"parcels{' of another atlas' if meta.get('AtlasSHA256') != first[1] else ' named differently'}: "
                "denoise every participant with one parcellation")
        subjects.append(str(meta["Subject"]))
        series.append(frame.to_numpy(np.float32))
        fd = meta.get("FramewiseDisplacement")
        fds.append(None if fd is None else np.asarray(fd, np.float64))
        tdof.append(int(meta.get("TDOFLost", 0)))
        volumes.append(int(meta.get("VolumesTotal", len(frame))))
    if not series:
        raise ParcellationMismatchError(root, f"strategy {strategy} excluded every participant")
    return SeriesSet(strategy, subjects, series, fds, tdof, volumes, first[2], first[1], excluded)
