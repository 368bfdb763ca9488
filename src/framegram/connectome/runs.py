"""The inputs: preprocessed runs in an fMRIPrep derivatives folder, and the participants table.

fMRIPrep's outputs are found by their BIDS names (`sub-*/[ses-*/]func/*_desc-preproc_bold.nii[.gz]`),
so a folder copied without its dataset_description.json is read all the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.connectome.errors import NoRunsError, ParticipantsError


@dataclass(frozen=True)
class PreprocRun:
    """One preprocessed run: `subject` without "sub-", `bold` the image, `tr` seconds (sidecar, else header)."""

    subject: str
    bold: Path
    space: str
    tr: float

    @property
    def key(self) -> str:
        """The run's name up to its space entity (sub-01_ses-1_task-rest_run-1)."""
        return self.bold.name.split("_space-")[0]


def _entities(name: str) -> dict[str, str]:
    return dict(part.split("-", 1) for part in name.split("_") if "-" in part)


def find_preprocessed_runs(derivatives: str | Path, task: str | None = None, space: str | None = None) -> list[PreprocRun]:
    """Every `desc-preproc_bold` run of `task` in `space` (the only space present when None), in
    subject order. NoRunsError names the folder and what was looked for; several spaces and no
    choice is refused too (their series would not be comparable)."""
    import nibabel as nib

    root = Path(derivatives)
    if not root.is_dir():
        raise NoRunsError(root, "no such folder")
    # .nii.gz only: nilearn's confound loader refuses other image names (fMRIPrep writes .nii.gz)
    found = sorted(p for pattern in ("sub-*/func/*_desc-preproc_bold.nii.gz", "sub-*/ses-*/func/*_desc-preproc_bold.nii.gz")
                   for p in root.glob(pattern))
    if task:
        found = [p for p in found if _entities(p.name).get("task") == task]
    if not found:
        raise NoRunsError(root, "no preprocessed BOLD runs (sub-*/[ses-*/]func/*_desc-preproc_bold.nii[.gz])"
                                + (f" of task {task!r}" if task else "") + ": is this an fMRIPrep output folder?")
    spaces = sorted({_entities(p.name).get("space", "native") for p in found})
    if space is None and len(spaces) > 1:
        raise NoRunsError(root, f"runs in several spaces ({', '.join(spaces)}): choose one with --space")
    chosen = space or spaces[0]
    runs = []
    for p in found:
        if _entities(p.name).get("space", "native") != chosen:
            continue
        sidecar = p.with_name(p.name.split(".nii")[0] + ".json")
        tr = None
        if sidecar.is_file():
            try:
                tr = float(json.loads(sidecar.read_text()).get("RepetitionTime"))
            except (OSError, ValueError, TypeError):
                tr = None
        if tr is None:
            try:
                tr = float(nib.load(p).header.get_zooms()[3])
            except Exception:  # nibabel raises many kinds for a damaged header
                raise NoRunsError(p, "unreadable NIfTI image and no RepetitionTime in a sidecar") from None
        if not tr > 0:
            raise NoRunsError(p, f"RepetitionTime {tr} is not a positive number of seconds")
        runs.append(PreprocRun(_entities(p.name)["sub"], p, chosen, tr))
    if not runs:
        raise NoRunsError(root, f"no preprocessed BOLD runs in space {chosen!r} (spaces here: {', '.join(spaces)})")
    keys: dict[str, Path] = {}
    for run in runs:  # e.g. res-1 and res-2 of one run: their outputs would share a name
        if run.key in keys:
            raise NoRunsError(run.bold, f"is the same run as {keys[run.key].name} in another resolution or cohort; "
                                        "keep one of them in the folder")
        keys[run.key] = run.bold
    return runs


@dataclass(frozen=True)
class Participants:
    """The table's rows for the participants asked about: labels (0/1), sites, covariates."""

    subjects: list[str]
    labels: list[int]
    classes: tuple[str, str]     #: the label column's values for 0 and 1
    sites: list[str]
    covariates: dict[str, list[float]]


def load_covariates(table: str | Path, subjects: list[str]) -> np.ndarray | None:
    """Age and sex of `subjects` as QC-FC covariates: float [N, K], or None when the table lacks them
    (or a participant's row, or a value)."""
    import pandas as pd

    try:
        frame = pd.read_csv(table, sep="\t", dtype=str, na_values=["n/a"])
    except (OSError, ValueError):
        return None
    if "participant_id" not in frame:
        return None
    frame = frame.set_index(frame["participant_id"].str.removeprefix("sub-"))
    if not set(subjects) <= set(frame.index):
        return None
    rows = frame.loc[subjects]
    columns = []
    if "age" in rows:
        age = pd.to_numeric(rows["age"], errors="coerce")
        if age.notna().all():
            columns.append(age.to_numpy(float))
    if "sex" in rows and rows["sex"].notna().all() and rows["sex"].nunique() == 2:
        columns.append((rows["sex"] == sorted(rows["sex"].unique())[0]).to_numpy(float))
    return np.column_stack(columns) if columns else None


def load_participants(table: str | Path, subjects: list[str], label: str = "group", site: str = "site",
                      positive: str | None = None) -> Participants:
    """Rows of `subjects` (without "sub-") from a BIDS participants.tsv. The label column must have two
    values (`positive`, else the second in sorted order, is 1); age and sex, when present, are the
    QC-FC covariates. ParticipantsError names the file and what is missing."""
    import pandas as pd

    path = Path(table)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a"])
    except (OSError, ValueError) as exc:
        raise ParticipantsError(path, f"unreadable participants table ({exc})") from None
    for column in ("participant_id", label, site):
        if column not in frame:
            raise ParticipantsError(path, f"no column {column!r} (columns: {', '.join(frame.columns)})")
    frame["participant_id"] = frame["participant_id"].str.removeprefix("sub-")
    frame = frame.set_index("participant_id")
    absent = [s for s in subjects if s not in frame.index]
    if absent:
        raise ParticipantsError(path, f"no row for sub-{absent[0]}" + (f" and {len(absent) - 1} more" if len(absent) > 1 else ""))
    rows = frame.loc[subjects]
    if rows[label].isna().any() or rows[site].isna().any():
        bad = rows.index[rows[label].isna() | rows[site].isna()][0]
        raise ParticipantsError(path, f"sub-{bad} has no {label} or no {site}")
    values = sorted(rows[label].unique())
    if len(values) != 2:
        raise ParticipantsError(path, f"column {label!r} must hold two classes for these participants, it holds "
                                      f"{len(values)}: {', '.join(values[:6])}")
    if positive is not None and positive not in values:
        raise ParticipantsError(path, f"no participant has {label} = {positive!r} (values: {', '.join(values)})")
    pos = positive or values[1]
    neg = values[0] if values[1] == pos else values[1]
    covariates = {}
    if "age" in rows:
        age = pd.to_numeric(rows["age"], errors="coerce")
        if age.notna().all():
            covariates["age"] = age.tolist()
    if "sex" in rows and rows["sex"].notna().all() and rows["sex"].nunique() == 2:
        covariates["sex"] = (rows["sex"] == sorted(rows["sex"].unique())[0]).astype(float).tolist()
    return Participants(list(subjects), (rows[label] == pos).astype(int).tolist(), (neg, pos),
                        rows[site].tolist(), covariates)
