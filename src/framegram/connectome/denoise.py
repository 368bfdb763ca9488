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

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framegram.connectome.atlas import Atlas
from framegram.connectome.errors import AtlasError, ConfoundsError, ConnectomeError, ParcellationMismatchError, ScrubbedTooShortError
from framegram.connectome.runs import PreprocRun
from framegram.connectome.strategies import MIN_VOLUMES, confounds_file, get_strategy, strategy_confounds
from framegram.errors import InputError
from framegram.io.atomic import atomic_write_bytes

SERIES_FORMAT = 1


def bold_path(out: Path, run: PreprocRun, strategy: str) -> Path:
    """Where `save_bold` writes a run's denoised image under `strategy`."""
    return Path(out) / strategy / f"{run.key}_space-{run.space}_desc-{get_strategy(strategy).bids_label}_bold.nii.gz"


def write_denoised_bold(run: PreprocRun, strategy: str, out: Path, min_volumes: int = MIN_VOLUMES) -> Path:
    """The run's voxels cleaned as its parcel series are (kept volumes only, z-scored), inside fMRIPrep's
    brain mask beside it (else nilearn's EPI mask), written atomically as a 4-D NIfTI."""
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    confounds, sample_mask = strategy_confounds(run.bold, strategy, nib.load(run.bold).shape[3], min_volumes)
    mask = run.bold.with_name(run.bold.name.split("_desc-")[0] + "_desc-brain_mask.nii.gz")
    masker = NiftiMasker(mask_img=str(mask) if mask.is_file() else None, standardize="zscore_sample", t_r=run.tr)
    voxels = masker.fit_transform(run.bold, confounds=confounds, sample_mask=sample_mask)
    target = bold_path(out, run, strategy)
    target.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(masker.inverse_transform(voxels).get_fdata(dtype=np.float32), nib.load(run.bold).affine)
    image.header.set_zooms(image.header.get_zooms()[:3] + (run.tr,))
    atomic_write_bytes(target, gzip.compress(image.to_bytes(), compresslevel=1, mtime=0))
    return target


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
    except (ConnectomeError, InputError):
        raise
    except Exception as exc:  # nibabel and nilearn raise many kinds (ImageFileError, zlib.error, ...) for a bad file
        raise InputError(run.bold, f"unreadable BOLD image ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if means.shape[1] != len(atlas.indices):
        raise AtlasError(atlas.path, f"{len(atlas.indices) - means.shape[1]} of its parcels have no voxel on the grid "
                                     f"of {run.bold.name}: is the atlas in space {run.space}?")
    flat = [atlas.names[k] for k in np.flatnonzero(means.std(0) == 0)]
    if flat:  # a parcel outside the field of view: its correlations would be NaN and its topology empty
        raise AtlasError(run.bold, f"no signal in {len(flat)} parcel{'s' if len(flat) > 1 else ''} of atlas {atlas.name} "
                                   f"({', '.join(flat[:5])}{' ...' if len(flat) > 5 else ''}): outside this run's field "
                                   "of view? Use an atlas without them")
    return means.astype(np.float64)


def framewise_displacement(run: PreprocRun) -> np.ndarray | None:
    """fMRIPrep's framewise_displacement (mm, first volume n/a → 0): float [n], or None without the column."""
    import pandas as pd

    tsv = confounds_file(run.bold)
    if not tsv.is_file():
        return None
    try:
        frame = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    except (OSError, ValueError) as exc:
        raise ConfoundsError(tsv, f"unreadable confounds table ({str(exc).splitlines()[0]})") from None
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
                 min_volumes: int = MIN_VOLUMES, show_progress: bool = True, save_bold: bool = False) -> DenoiseSummary:
    """Write every run's series under every strategy (see the module's docstring); `save_bold`: the
    denoised 4-D image too (`write_denoised_bold`). A run that cannot be read or lacks confounds is
    recorded in `failed` and the others go on; nothing finished is redone."""
    from framegram.progress import extraction_progress

    for s in strategies:
        get_strategy(s)
    out = Path(out)
    summary = DenoiseSummary(excluded={s: [] for s in strategies})
    with extraction_progress(show_progress) as bar:
        task = bar.add_task("denoising", total=len(runs))
        for run in runs:
            todo = [s for s in strategies if not _done(series_paths(out, run, atlas, s)[1], run, atlas, min_volumes)
                    or (save_bold and not _bold_done(out, run, atlas, s, min_volumes))]
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
                    if save_bold:
                        try:
                            write_denoised_bold(run, s, out, min_volumes)
                        except (ConnectomeError, InputError) as exc:
                            summary.failed.append(exc)
                            continue
                        except Exception as exc:  # nilearn's own errors on a strange image: this run only
                            summary.failed.append(InputError(run.bold, f"denoised image not written ({exc})"))
                            continue
                    _write_series(out, run, atlas, s, series, columns, kept, len(means), fd, min_volumes)
                    summary.written += 1
            bar.advance(task)
    for s in strategies:  # from every sidecar, so that a resumed run lists the earlier exclusions too
        rows = ["participant_id\treason"]
        for sidecar in sorted((out / s).glob("*_timeseries.json")):
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            if "Excluded" in meta:
                rows.append(f"sub-{meta.get('Subject')}\t{meta['Excluded']}")
        (out / s).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / s / "excluded.tsv", ("\n".join(rows) + "\n").encode())
    return summary


def _bold_done(out: Path, run: PreprocRun, atlas: Atlas, strategy: str, min_volumes: int) -> bool:
    """The denoised image exists, or the strategy left the run out (no image to write)."""
    try:
        excluded = "Excluded" in json.loads(series_paths(out, run, atlas, strategy)[1].read_text())
    except (OSError, ValueError):
        excluded = False
    return excluded or bold_path(out, run, strategy).is_file()


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


def load_series(folder: str | Path, strategy: str, subjects: list[str] | None = None) -> SeriesSet:
    """Read `<folder>/<strategy>/*_timeseries.{tsv,json}`, one entry per participant: a participant's
    runs (sessions, repeated runs) are joined in time, each z-scored on its own, so that every
    statistic and every cross-validation split counts people, not runs. `subjects`: only these (in
    this order; those the strategy left out are listed in `excluded`). ParcellationMismatchError
    (naming the file) when series come from different atlases or parcel counts, or none is there."""
    import pandas as pd

    root = Path(folder) / strategy
    sidecars = sorted(root.glob("*_timeseries.json"))
    if not sidecars:
        raise ParcellationMismatchError(root, f"no denoised time series of strategy {strategy} here "
                                              f"(run `framegram fmri denoise` with --strategy {strategy})")
    runs: dict[str, list] = {}
    left_out: set[str] = set()
    first = None
    for sidecar in sidecars:
        try:
            meta = json.loads(sidecar.read_text())
            subject = str(meta["Subject"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ParcellationMismatchError(sidecar, "unreadable sidecar JSON") from None
        if subjects is not None and subject not in subjects:
            continue
        if "Excluded" in meta:
            left_out.add(subject)
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
        fd = meta.get("FramewiseDisplacement")
        runs.setdefault(subject, []).append((frame.to_numpy(np.float32), None if fd is None else np.asarray(fd, np.float64),
                                             int(meta.get("TDOFLost", 0)), int(meta.get("VolumesTotal", len(frame)))))
    order = [s for s in (subjects if subjects is not None else sorted(runs)) if s in runs]
    if not order:
        raise ParcellationMismatchError(root, f"strategy {strategy} excluded every participant")
    joined = [runs[s] for s in order]
    return SeriesSet(
        strategy, order,
        [np.concatenate([r[0] for r in parts]) for parts in joined],
        [None if any(r[1] is None for r in parts) else np.concatenate([r[1] for r in parts]) for parts in joined],
        [sum(r[2] for r in parts) for parts in joined], [sum(r[3] for r in parts) for parts in joined],
        first[2], first[1], sorted(left_out - set(runs)))


def common_subjects(folder: str | Path, strategies: list[str]) -> list[str]:
    """The participants every one of `strategies` kept (scrubbing leaves out high movers: comparing
    strategies on different people would credit a strategy for whom it dropped)."""
    kept = [set(load_series(folder, s).subjects) for s in strategies]
    return sorted(set.intersection(*kept))
