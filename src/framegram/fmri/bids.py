"""Reading a BIDS dataset: one BOLD run per participant, its TR, motion confounds and events.

Uses pybids (`BIDSLayout(root, derivatives=True)`) for the raw files and the fMRIPrep confounds.
Only the raw scope is searched for BOLD images, so derivative images (e.g. a generator's ground
truth) are never taken for data. Derivatives folders pybids skips (no dataset_description.json,
common for fMRIPrep outputs copied by hand) are searched by BIDS file name, with a warning.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.fmri.errors import BadBoldError, BadMetadataError, DerivativesWarning, MissingMetadataError, NoBoldError, TRMismatchError, UnknownSubjectError

#: Motion confounds regressed out of the BOLD (fMRIPrep column names); derivatives are added when present.
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
TR_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class BoldRun:
    """One participant's run.

    `tr`: seconds (from the JSON sidecar, checked against the NIfTI header); `n_volumes`: scans;
    `shape`: the 3-D matrix; `confounds`: fMRIPrep `desc-confounds_timeseries.tsv` or None;
    `events`: `_events.tsv` or None; `brain_masks`: fMRIPrep's `desc-brain_mask` images of the run
    (any space: `fmri.masks.run_mask` takes one on the BOLD's grid).
    """

    subject: str
    bold: Path
    tr: float
    n_volumes: int
    shape: tuple[int, int, int]
    confounds: Path | None
    events: Path | None
    brain_masks: tuple[Path, ...] = ()

    @property
    def scan_times(self) -> np.ndarray:
        """Onset of each volume in seconds from the first scan: float64 [n_volumes]."""
        return np.arange(self.n_volumes) * self.tr

    def load_bold(self):
        """The 4-D image (nibabel, data not read until used)."""
        import nibabel as nib

        return nib.load(self.bold)

    def read_bold(self):
        """(image, data float32 [X, Y, Z, n_volumes]); BadBoldError naming the file when a value is
        NaN or infinite (a half-written or badly resampled run: no fit can use it)."""
        img = self.load_bold()
        data = np.asarray(img.dataobj, dtype=np.float32)
        if not np.isfinite(data.sum(dtype=np.float64)):  # one pass; NaN or inf make the sum non-finite
            bad = ~np.isfinite(data)
            voxels = np.argwhere(bad.any(axis=3))
            first = tuple(int(v) for v in voxels[0])
            volume = int(np.flatnonzero(bad[first])[0])
            raise BadBoldError(self.bold, f"{len(voxels)} voxels hold NaN or infinite values "
                                          f"(the first at voxel {first}, volume {volume})")
        return img, data

    def load_confounds(self) -> np.ndarray | None:
        """Motion parameters and their derivatives: float64 [n_volumes, C] (n/a → 0), or None."""
        if self.confounds is None:
            return None
        import pandas as pd

        table = pd.read_csv(self.confounds, sep="\t", na_values=["n/a"])
        columns = [c for c in MOTION_COLUMNS if c in table]
        columns += [f"{c}_derivative1" for c in columns if f"{c}_derivative1" in table]
        if not columns:
            return None
        values = table[columns].to_numpy(dtype=np.float64)
        if len(values) != self.n_volumes:
            raise NoBoldError(self.confounds, f"{len(values)} rows of confounds for {self.n_volumes} volumes")
        return np.nan_to_num(values, nan=0.0)


def load_framewise_displacement(run: BoldRun) -> np.ndarray | None:
    """fMRIPrep's `framewise_displacement` column (mm, first row n/a → 0): float [n_volumes], or None."""
    if run.confounds is None:
        return None
    import pandas as pd

    table = pd.read_csv(run.confounds, sep="\t", na_values=["n/a"])
    if "framewise_displacement" not in table:
        return None
    return np.nan_to_num(table["framewise_displacement"].to_numpy(dtype=np.float64), nan=0.0)


def find_runs(root: str | Path, subjects: list[str] | None = None, task: str = "film") -> list[BoldRun]:
    """The first BOLD run of `task` of each participant (all, or `subjects` in the given order).

    Raises NoBoldError for a root without such runs, UnknownSubjectError for a subject without one,
    TRMismatchError when the sidecar's RepetitionTime disagrees with the NIfTI header.
    """
    root = Path(root)
    if not root.is_dir():
        raise NoBoldError(root, "no such folder")
    layout = _layout(root)
    derivatives = _Derivatives(root, layout)
    files = layout.get(scope="raw", task=task, suffix="bold", extension=[".nii", ".nii.gz"])
    by_subject: dict[str, object] = {}
    for f in sorted(files, key=lambda f: f.path):
        by_subject.setdefault(f.entities["subject"], f)
    if not by_subject:
        raise NoBoldError(root, f"no BOLD runs of task {task!r} (sub-*/[ses-*/]func/*_task-{task}_*bold.nii[.gz])")
    wanted = sorted(by_subject) if not subjects else [s.removeprefix("sub-") for s in subjects]
    for s in wanted:
        if s not in by_subject:
            raise UnknownSubjectError(s, sorted(by_subject))
    runs = []
    for s in wanted:  # a loop, not a comprehension: a DerivativesWarning's stacklevel reaches the caller
        runs.append(_run(layout, derivatives, by_subject[s]))
    return runs


def _layout(root: Path):
    import bids

    with warnings.catch_warnings():  # pybids warns about derivatives folders it cannot index
        warnings.simplefilter("ignore")
        if (root / "derivatives").is_dir():
            try:  # pybids skips (with a warning) derivatives folders without dataset_description.json
                return bids.BIDSLayout(root, derivatives=True, validate=False)
            except Exception:  # e.g. a dataset_description.json pybids refuses: raw files only (see _Derivatives)
                pass
        return bids.BIDSLayout(root, derivatives=False, validate=False)


#: Name endings of the fMRIPrep files a run uses: its confounds (fMRIPrep < 1.2 wrote
#: desc-confounds_regressors.tsv) and its BOLD brain mask.
CONFOUNDS_ENDINGS = ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv")
BRAIN_MASK_ENDINGS = ("_desc-brain_mask.nii.gz", "_desc-brain_mask.nii")
#: Entities that derivatives add to the raw file's: ignored when a derivative is matched to its run by name.
DERIVATIVE_ENTITIES = ("space", "res", "den", "cohort", "desc", "label")


class _Derivatives:
    """A run's derivative files: pybids' index of the derivatives folders it accepts, and, in the
    folders it skips (no dataset_description.json, as in a folder of fMRIPrep outputs copied by
    hand), the files whose BIDS names match the run (a DerivativesWarning says so, once a folder)."""

    def __init__(self, root: Path, layout):
        self.layout = layout
        self.indexed = bool(getattr(layout, "derivatives", None))
        roots = {Path(d.root).resolve() for d in (layout.derivatives.values() if self.indexed else ())}
        top = root / "derivatives"
        folders = []
        if top.is_dir() and top.resolve() not in roots:
            if any(p.is_dir() and p.name.startswith("sub-") for p in top.iterdir()):
                folders.append(top)  # derivatives/sub-XX/...: one pipeline's outputs directly in derivatives/
            folders += [p for p in sorted(top.iterdir()) if p.is_dir() and not p.name.startswith("sub-")
                        and p.resolve() not in roots]
        self.unindexed = {folder: None for folder in folders}  # folder -> files (scanned when first needed)
        self.warned: set[Path] = set()

    def find(self, bold_file, endings: tuple[str, ...], **pybids_query) -> list[Path]:
        """Derivative files of `bold_file`'s run: pybids' matches of `pybids_query` (desc, suffix,
        extension), then those in unindexed folders whose names end with one of `endings`."""
        entities = bold_file.entities
        query = {k: entities[k] for k in ("subject", "session", "task", "acquisition", "run") if k in entities}
        found = []
        if self.indexed:
            found = [Path(f.path) for f in self.layout.get(scope="derivatives", **pybids_query, **query)]
        key = _run_key(Path(bold_file.path).name.split("_bold.nii")[0])
        for folder in self.unindexed:
            if self.unindexed[folder] is None:
                every = BRAIN_MASK_ENDINGS + CONFOUNDS_ENDINGS
                self.unindexed[folder] = sorted(Path(d) / n for d, _, names in os.walk(folder)
                                                for n in names if n.endswith(every))
            matches = [p for p in self.unindexed[folder] for end in endings
                       if p.name.endswith(end) and _run_key(p.name[: -len(end)]) == key]
            if matches and folder not in self.warned:
                self.warned.add(folder)
                why = ("has no dataset_description.json" if not (folder / "dataset_description.json").is_file()
                       else "has a dataset_description.json pybids does not accept")
                warnings.warn(f"{folder} {why}, so pybids does not index it as a derivatives folder; its files are "
                              f"matched to the runs by their BIDS names (e.g. {matches[0].relative_to(folder)})",
                              DerivativesWarning, stacklevel=4)
            found += matches
        return found


def _run_key(stem: str) -> frozenset[str]:
    """The raw entities of a BIDS file name without its suffix ("sub-01_task-film_run-01_space-T1w"
    → {sub-01, task-film, run-1}): derivative-only entities dropped, run and echo indices unpadded."""
    parts = set()
    for part in stem.split("_"):
        key, _, value = part.partition("-")
        if key in DERIVATIVE_ENTITIES:
            continue
        if key in ("run", "echo") and value.isdigit():
            value = str(int(value))
        parts.add(f"{key}-{value}")
    return frozenset(parts)


def _run(layout, derivatives: _Derivatives, bold_file) -> BoldRun:
    import nibabel as nib

    path = Path(bold_file.path)
    img = nib.load(path)
    if img.ndim != 4:
        raise NoBoldError(path, f"a BOLD image must be 4-D, this one has shape {img.shape}")
    meta = bold_file.get_metadata()
    zooms = img.header.get_zooms()
    header_tr = float(zooms[3]) if len(zooms) > 3 else 0.0
    unit = img.header.get_xyzt_units()[1]
    if unit == "msec":
        header_tr /= 1000.0
    hint = f"the NIfTI header says {header_tr:g} s" if header_tr > 0 else ""
    sidecar = None
    if "RepetitionTime" not in meta:  # pybids drops null values: a sidecar may still hold the key
        sidecar = _sidecar_holding(Path(layout.root), path, "RepetitionTime")
        if sidecar is None:
            raise MissingMetadataError(path, f"no RepetitionTime in its JSON sidecar (BIDS requires one for BOLD{'; ' + hint if hint else ''})")
    value = meta.get("RepetitionTime")
    tr = _seconds(value)
    if tr is None:
        sidecar = sidecar or _sidecar_holding(Path(layout.root), path, "RepetitionTime") or path
        shown = json.dumps(value)
        raise BadMetadataError(sidecar, f"RepetitionTime is {shown}, not a positive number of seconds "
                                        f"(the time between volumes of {path.name}{'; ' + hint if hint else ''})")
    if header_tr > 0 and abs(header_tr - tr) > TR_TOLERANCE_S:
        raise TRMismatchError(path, f"RepetitionTime {tr:g} s in the sidecar but {header_tr:g} s in the NIfTI header")
    entities = bold_file.entities
    query = {k: entities[k] for k in ("subject", "session", "task", "run") if k in entities}
    confounds = derivatives.find(bold_file, CONFOUNDS_ENDINGS, desc="confounds", suffix=["timeseries", "regressors"],
                                 extension=".tsv")
    masks = derivatives.find(bold_file, BRAIN_MASK_ENDINGS, desc="brain", suffix="mask", extension=[".nii.gz", ".nii"])
    events = layout.get(scope="raw", suffix="events", extension=".tsv", **query)
    return BoldRun(
        subject=entities["subject"],
        bold=path,
        tr=tr,
        n_volumes=int(img.shape[3]),
        shape=tuple(int(n) for n in img.shape[:3]),
        confounds=confounds[0] if confounds else None,
        events=Path(events[0].path) if events else None,
        brain_masks=tuple(masks),
    )


def _seconds(value) -> float | None:
    """A sidecar's time value as positive finite seconds, or None (null, text, a list, NaN, <= 0).
    A number written as a JSON string ("0.608") is read: BIDS wants a number, the meaning is clear."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _sidecar_holding(root: Path, data_file: Path, key: str) -> Path | None:
    """The JSON sidecar whose `key` applies to `data_file` under BIDS inheritance: the file's own
    folder first, then each parent up to `root`; in a folder, the name with the most entities
    (all of them the data file's) first. None when no sidecar holds the key."""
    stem = data_file.name.split(".")[0]
    *entities, suffix = stem.split("_")
    folder = data_file.parent
    while True:
        candidates = []
        for sidecar in folder.glob(f"*_{suffix}.json"):
            parts = sidecar.name[: -len(".json")].split("_")[:-1]
            if set(parts) <= set(entities):
                candidates.append((len(parts), sidecar.name, sidecar))
        for *_, sidecar in sorted(candidates, reverse=True):
            try:
                if key in json.loads(sidecar.read_text()):
                    return sidecar
            except (OSError, ValueError):
                continue
        if folder == root or folder.parent == folder:
            return None
        folder = folder.parent
