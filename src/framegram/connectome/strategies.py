"""Denoising strategies by name: nilearn's `load_confounds_strategy` presets and the variants the
fMRIPrep denoising benchmarks compare (Ciric 2017, Parkes 2018, Wang 2024), plus `none` (raw).

    confounds, sample_mask = strategy_confounds(bold_file, "scrubbing.5+gsr", n_volumes)

A strategy's confounds are read from fMRIPrep's `desc-confounds_timeseries.tsv` beside the image;
a file lacking a column the strategy needs, or a run with too few volumes left after scrubbing, is
refused with the file and the problem named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.connectome.errors import ConfoundsError, ScrubbedTooShortError

#: fewer volumes than this after scrubbing leave a 100-parcel correlation matrix mostly noise
MIN_VOLUMES = 60


@dataclass(frozen=True)
class Strategy:
    """A named denoising strategy: nilearn preset plus keyword arguments (None: the raw series)."""

    name: str
    preset: str | None
    options: tuple[tuple[str, object], ...] = ()
    about: str = ""

    @property
    def bids_label(self) -> str:
        """The name as a BIDS desc- label (alphanumeric): simple+gsr -> simpleGSR, scrubbing.5 -> scrubbing05."""
        label = self.name.replace("+gsr", "GSR").replace(".5", "05").replace(".2", "02")
        return re.sub(r"[^A-Za-z0-9]", "", label)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("none", None, about="parcel means, z-scored: no confound removed"),
    Strategy("simple", "simple", about="high-pass (cosines), 24 motion terms, mean WM and CSF"),
    Strategy("simple+gsr", "simple", (("global_signal", "basic"),), "simple plus the global signal"),
    Strategy("scrubbing.5", "scrubbing", (("fd_threshold", 0.5), ("std_dvars_threshold", 1.5)),
             "high-pass, 24 motion terms, WM/CSF with expansions, volumes with FD > 0.5 mm or std DVARS > 1.5 "
             "censored (and segments under 5 volumes)"),
    Strategy("scrubbing.5+gsr", "scrubbing", (("fd_threshold", 0.5), ("std_dvars_threshold", 1.5),
                                              ("global_signal", "basic")), "scrubbing.5 plus the global signal"),
    Strategy("scrubbing.2", "scrubbing", (("fd_threshold", 0.2), ("std_dvars_threshold", 1.5)),
             "scrubbing at FD > 0.2 mm (Power 2014's stricter threshold)"),
    Strategy("scrubbing.2+gsr", "scrubbing", (("fd_threshold", 0.2), ("std_dvars_threshold", 1.5),
                                              ("global_signal", "basic")), "scrubbing.2 plus the global signal"),
    Strategy("compcor", "compcor", about="high-pass, 24 motion terms, every aCompCor component (50 % variance, combined mask)"),
    Strategy("compcor6", "compcor", (("n_compcor", 6),), "compcor with the first 6 aCompCor components"),
)}

#: the columns each kind of confound needs, for a message that names what a file lacks
_NEEDS = {
    "motion": ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"),
    "high_pass": ("cosine00",),
    "wm_csf": ("csf", "white_matter"),
    "global_signal": ("global_signal",),
    "scrub": ("framewise_displacement", "std_dvars"),
    "compcor": ("a_comp_cor_00",),
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown denoising strategy {name!r}; known: {', '.join(STRATEGIES)}") from None


def needed_columns(strategy: Strategy) -> list[str]:
    """The confound columns (or first of a family) the strategy reads."""
    if strategy.preset is None:
        return []
    from nilearn.interfaces.fmriprep.load_confounds_strategy import preset_strategies

    kinds = list(preset_strategies[strategy.preset]["strategy"])
    if dict(strategy.options).get("global_signal"):
        kinds.append("global_signal")
    return [c for kind in kinds for c in _NEEDS.get(kind, ())]


def confounds_file(bold: Path) -> Path:
    """fMRIPrep's confounds beside `bold`: its name up to the space entity + desc-confounds_timeseries.tsv."""
    stem = bold.name.split("_space-")[0] if "_space-" in bold.name else bold.name.split("_desc-")[0]
    for suffix in ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv"):
        if (bold.parent / (stem + suffix)).is_file():
            return bold.parent / (stem + suffix)
    return bold.parent / (stem + "_desc-confounds_timeseries.tsv")


def _steady_state(tsv: Path, n_volumes: int) -> np.ndarray | None:
    """The volumes fMRIPrep did not flag as non-steady-state (`non_steady_state_outlier*` columns), or
    None when none is flagged: the raw series drop them too, as every nilearn preset does."""
    import pandas as pd

    try:
        table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    except (OSError, ValueError):
        return None
    flags = [c for c in table if c.startswith("non_steady_state_outlier")]
    if not flags or len(table) != n_volumes:
        return None
    dummy = table[flags].fillna(0).to_numpy().any(axis=1)
    return np.flatnonzero(~dummy) if dummy.any() else None


def strategy_confounds(bold: Path, name: str, n_volumes: int, min_volumes: int = MIN_VOLUMES):
    """(confounds DataFrame [n_volumes, C] or None, sample_mask int [kept] or None) of `bold` under
    strategy `name`. Raises ConfoundsError (missing file or columns, wrong length) and
    ScrubbedTooShortError (fewer than `min_volumes` volumes kept)."""
    strategy = get_strategy(name)
    import pandas as pd

    tsv = confounds_file(Path(bold))
    if strategy.preset is None:
        return None, _steady_state(tsv, n_volumes)
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    if not tsv.is_file():
        raise ConfoundsError(tsv, f"no fMRIPrep confounds file beside {Path(bold).name} (strategy {name} needs one)")
    try:
        header = pd.read_csv(tsv, sep="\t", nrows=0).columns
    except (OSError, ValueError) as exc:
        raise ConfoundsError(tsv, f"unreadable confounds table ({exc})") from None
    missing = [c for c in needed_columns(strategy) if c not in header]
    if missing:
        raise ConfoundsError(tsv, f"strategy {name} needs the column{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(missing)}, which this confounds file lacks")
    try:
        confounds, sample_mask = load_confounds_strategy(str(bold), denoise_strategy=strategy.preset,
                                                         **dict(strategy.options))
    except (KeyError, ValueError, FileNotFoundError, OSError) as exc:  # nilearn's bare errors, one line each
        raise ConfoundsError(tsv, f"strategy {name}: {str(exc).strip().splitlines()[0]}") from None
    if len(confounds) != n_volumes:
        raise ConfoundsError(tsv, f"{len(confounds)} rows of confounds for {n_volumes} volumes in {Path(bold).name}")
    kept = n_volumes if sample_mask is None else len(sample_mask)
    if kept < min_volumes:
        raise ScrubbedTooShortError(Path(bold), f"strategy {name} keeps {kept} of {n_volumes} volumes, fewer than "
                                                f"the {min_volumes} a connectivity estimate needs (too much motion)")
    return confounds, (None if sample_mask is None else np.asarray(sample_mask))
