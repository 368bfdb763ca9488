"""fMRI as the target of a signal model: a BIDS dataset of participants who watched one film.

Each participant's run is read, masked and cleaned exactly as the brain encoding pipeline does
(`framegram.fmri`: the mask of `fmri.masks.run_mask`, nuisance regression fitted per stretch of time, the first
`train_fraction` of the volumes for training, the rest held out). One PCA, fitted on the training
volumes of every participant stacked, gives the shared target space (`n_components`): a
conditional model predicts each participant's scores on it through the participant's own read-out;
predictions go back to voxels through the same PCA and are scored per voxel against the cleaned
held-out BOLD itself, not against its PCA reconstruction.

Inputs (`vae.fmri_stimulus`): the film's feature spaces (`spaces`; by default its framegram alone)
averaged within each TR (`fmri.stimulus.frames_to_tr`), each reduced to `n_features` principal
components (fitted on the film's TR rows: the stimulus only) and z-scored, side by side, then
convolved with the SPM HRF started at each of `hrf_delays_s` (the brain pipeline's response model;
the network weighs the delays per participant), and cleaned by the participant's nuisance
projection, as the brain pipeline cleans its design. Without the HRF basis, networks given the raw
per-TR features (even with a 10-s window of them) learned the slow, delayed response from ~450
volumes a participant far too poorly (r 0.1-0.2 where ridge on the HRF basis reached 0.7-0.8).
Predictions are passed through the same nuisance projection before they are scored or written,
so they are compared with the BOLD in the form it was cleaned to.

Memory: the stacked training volumes (participants x training volumes x mask voxels, float32;
4.3 GB for 30 full-grid participants) exist once, while the PCA is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from framegram.fmri.bids import BoldRun, find_runs
from framegram.fmri.clean import BoldCleaner, nuisance_cleaner
from framegram.fmri.config import BrainConfig
from framegram.fmri.errors import MaskError
from framegram.fmri.masks import load_mask, run_mask
from framegram.fmri.metrics import pearson_r
from framegram.fmri.split import split
from framegram.progress import extraction_progress
from framegram.vae.data import LinearMap, SignalSequence, SignalSet, fit_pca_map
from framegram.vae.fmri_stimulus import (  # noqa: F401  (HRF_DELAYS_S, model_inputs: this module's API before)
    DEFAULT_SPACES,
    HRF_DELAYS_S,
    check_spaces,
    fit_space_map,
    model_inputs,
    space_rows,
)


@dataclass
class HeldOut:
    """What scoring in voxel space needs: mask bool [X, Y, Z] and affine [4, 4] of the shared space,
    per participant the held-out volume indices, cleaned BOLD float32 [n_test, V] and its fitted
    nuisance cleaner (to clean predictions alike)."""

    mask: np.ndarray
    affine: np.ndarray
    test: dict[str, np.ndarray] = field(default_factory=dict)
    bold: dict[str, np.ndarray] = field(default_factory=dict)
    cleaners: dict[str, BoldCleaner] = field(default_factory=dict)


def masked_bold(run: BoldRun, mask: np.ndarray, bold=None) -> np.ndarray:
    """The run's BOLD inside `mask`: float32 [n_volumes, V], voxels in the C order of data[mask]."""
    _, data = bold if bold is not None else run.read_bold()
    # NIfTI arrays are column-major: viewed as [n, X*Y*Z] without a copy (as brain.pipeline does)
    flat = data.reshape(-1, run.n_volumes, order="F").T
    columns = np.arange(mask.size).reshape(mask.shape, order="F")[mask]
    return np.take(flat, columns, axis=1)


def fitted_cleaner(run: BoldRun, config: BrainConfig, y: np.ndarray | None = None) -> tuple[BoldCleaner, np.ndarray | None]:
    """The run's nuisance cleaner fitted on its training volumes, and y [n, V] cleaned (when given)."""
    train, _ = split(run.n_volumes, config.train_fraction)
    cleaner = nuisance_cleaner(run, config)
    if y is None:  # the projection needs only the nuisance design: fit on a dummy column
        return cleaner.fit(np.zeros((run.n_volumes, 1), np.float32), train), None
    return cleaner, cleaner.fit_transform(y, train)


def build_fmri_set(
    bids_root: str | Path,
    stimulus: str | Path,
    subjects: list[str] | None = None,
    n_components: int = 128,
    n_features: int = 20,
    config: BrainConfig | None = None,
    show_progress: bool = False,
    spaces: Sequence[str] | None = None,
    hrf_delays_s: Sequence[float] = HRF_DELAYS_S,
) -> tuple[SignalSet, HeldOut]:
    """The signal set of every (or the listed) participant, and the held-out BOLD for scoring.

    The shared mask is the first participant's (participants normalised to one template share it):
    `config.mask` (a file on the BOLD's grid), else fMRIPrep's brain mask of that run, else its EPI
    mask (`fmri.masks.run_mask`; MaskError for an empty or tiny one, and for a participant whose
    grid has another shape); config: also the brain pipeline's cleaning and split settings
    (offset_s, train_fraction, high_pass_hz, motion, fd_threshold_mm, held_out_cleaning).

    spaces: the stimulus feature spaces (`framegram.fmri.spaces.SPACE_NAMES`; None: `config.spaces`,
    by default ("framegram",)), each reduced to its own `n_features` components: inputs float32
    [n_volumes, sum of the spaces' components x len(hrf_delays_s)]. Checked before any file is read
    (UnknownSpaceError; InputError for other spaces than "framegram" of a .framegram.npz stimulus).
    hrf_delays_s: the HRF's late starts (`fmri_stimulus.HRF_DELAYS_S`; `EARLY_HRF_DELAYS_S` adds -1 s).
    Both are recorded in the set's `info` (spaces only when not the default), and the feature map
    goes from the spaces' TR rows side by side to the components, so predictions rebuild the inputs.
    """
    config = config or BrainConfig()
    if spaces is not None:
        config = replace(config, spaces=check_spaces(spaces, stimulus))
    spaces = check_spaces(config.spaces, stimulus)
    hrf_delays_s = tuple(float(d) for d in hrf_delays_s)
    if not hrf_delays_s:
        raise ValueError("hrf_delays_s needs at least one delay")
    runs = find_runs(bids_root, subjects)
    if config.mask is not None:  # refused before any BOLD is read
        load_mask(config.mask, runs[0].load_bold(), runs[0].bold)
    first_img, first_data = runs[0].read_bold()
    mask, mask_source = run_mask(runs[0], first_img, first_data, config.mask)
    for run in runs[1:]:
        if run.shape != mask.shape:
            raise MaskError(run.bold, f"shape {run.shape}, but the shared mask ({mask_source}, from {runs[0].bold.name}) "
                                      f"has {mask.shape}: every participant's run must be on one grid")
    held = HeldOut(mask, np.asarray(first_img.affine))
    blocks = space_rows(stimulus, spaces, runs[0], config.offset_s)
    feature_map = fit_space_map(blocks, n_features)  # the stimulus only: no BOLD
    rows = np.concatenate(blocks, axis=1)
    splits = {run.subject: split(run.n_volumes, config.train_fraction) for run in runs}
    offsets = np.cumsum([0] + [len(splits[run.subject][0]) for run in runs])
    stacked = np.empty((offsets[-1], int(mask.sum())), np.float32)  # every participant's training volumes
    inputs = []
    with extraction_progress(show_progress) as bars:
        task = bars.add_task("reading and cleaning runs", total=len(runs))
        for i, run in enumerate(runs):
            bold = (first_img, first_data) if i == 0 else run.read_bold()
            cleaner, y = fitted_cleaner(run, config, masked_bold(run, mask, bold))
            del bold
            train, test = splits[run.subject]
            stacked[offsets[i] : offsets[i + 1]] = y[train]
            held.test[run.subject], held.bold[run.subject], held.cleaners[run.subject] = test, y[test], cleaner
            same_clock = run.n_volumes == len(rows) and run.tr == runs[0].tr
            run_rows = rows if same_clock else np.concatenate(space_rows(stimulus, spaces, run, config.offset_s), axis=1)
            inputs.append(model_inputs(feature_map(run_rows), run.tr, cleaner, hrf_delays_s))
            bars.advance(task)
    del first_data
    target_map = fit_pca_map(stacked, n_components, centred=True)  # one PCA over all participants
    sequences = []
    for i, run in enumerate(runs):
        train, test = splits[run.subject]
        y = np.empty((run.n_volumes, stacked.shape[1]), np.float32)
        y[train], y[test] = stacked[offsets[i] : offsets[i + 1]], held.bold[run.subject]
        is_train = np.zeros(run.n_volumes, bool)
        is_train[train] = True
        sequences.append(SignalSequence(f"sub-{run.subject}", inputs[i], target_map(y), is_train, participant=i))
    del stacked
    info = {"bids": str(bids_root), "stimulus": str(stimulus), "subjects": [r.subject for r in runs],
            "tr": runs[0].tr, "n_components": target_map.dims, "n_features": feature_map.dims,
            "hrf_delays_s": list(hrf_delays_s), "voxels": int(mask.sum()), "mask": mask_source,
            "brain_config": _recorded_config(config), **_spaces_info(spaces, blocks, n_features)}
    arrays = {"mask": mask.astype(np.uint8), "affine": held.affine.astype(np.float64)}
    data = SignalSet("fmri", sequences, tuple(r.subject for r in runs), runs[0].tr, feature_map, target_map, info, arrays)
    return data, held


def _recorded_config(config: BrainConfig) -> dict:
    """The preparation settings a set records (`BrainConfig(**them)` rebuilds the config): every
    field but the brain model's spaces and banded ridge (the set records its spaces itself), so sets
    built before those fields existed record the same."""
    out = {**asdict(config), "mask": None if config.mask is None else str(config.mask)}
    for name in ("spaces", "space_components", "banded_mixtures", "partition"):
        out.pop(name, None)
    return out


def _spaces_info(spaces: tuple[str, ...], blocks: list[np.ndarray], n_features: int) -> dict:
    """What a set records of its feature spaces: nothing for the default ("framegram" alone, as sets
    recorded before there were spaces); else their names, columns per TR row and components."""
    if spaces == DEFAULT_SPACES:
        return {}
    return {"spaces": list(spaces), "space_columns": [int(b.shape[1]) for b in blocks],
            "space_features": [int(min(n_features, *b.shape)) for b in blocks]}


def to_voxels(prediction: np.ndarray, targets: LinearMap, cleaner: BoldCleaner) -> np.ndarray:
    """A prediction over the whole run [n_volumes, n_components] (model units) as cleaned BOLD
    [n_volumes, V]: the run's nuisance projection, then back through the PCA. The projection acts
    on time and the PCA on voxels, so they commute: projecting the components is the same as
    projecting every voxel, and cheaper. (The map's mean, a constant, is projected out too.)"""
    scores = cleaner.residualize(np.asarray(prediction, np.float32) * targets.scale + targets.shift)
    return scores @ targets.components


def voxel_r(prediction: np.ndarray, data: SignalSet, held: HeldOut, subject: str) -> np.ndarray:
    """Per-voxel r [V] on `subject`'s held-out volumes of a prediction over the whole run
    [n_volumes, n_components] (model units): back to voxels, cleaned like the BOLD."""
    test = held.test[subject]
    return pearson_r(to_voxels(prediction, data.targets, held.cleaners[subject])[test], held.bold[subject])
