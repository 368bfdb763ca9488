"""The fMRI model's inputs from the film: stimulus feature spaces on the scan clock, reduced, on the HRF basis.

    blocks = space_rows(film, ("framegram", "image-stats"), run, offset_s=0.0)   # [n, 1280], [n, 85]
    features = fit_space_map(blocks, n_features=20)                             # LinearMap [n, 1365] -> [n, 40]
    inputs = model_inputs(features(np.concatenate(blocks, 1)), run.tr, cleaner)  # [n, 40 * 4]

Each space (`framegram.fmri.spaces`, its own clock) is averaged within each TR
(`fmri.stimulus.frames_to_tr`) and reduced to its own top `n_features` principal components,
each z-scored (the PCA is fitted on the film's TR rows only: the stimulus, no BOLD, so nothing
crosses the split); the blocks lie side by side in the order of the spaces. The map from the
spaces' TR rows side by side to the components is one block-diagonal `LinearMap`, stored with a
model (`SignalSet.features`), so a prediction rebuilds the same inputs from the film. The
components are then convolved with the SPM HRF started at each of the delays (`HRF_DELAYS_S` unless
asked otherwise) and cleaned by the participant's nuisance projection.

With the one space "framegram" (the default) this is the model's input as it always was: the
framegram of the stimulus (a video, or a `.framegram.npz` file, which holds no other space).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from framegram.errors import InputError
from framegram.fmri.bids import BoldRun
from framegram.fmri.clean import BoldCleaner
from framegram.fmri.hrf import convolve_kernel, hrf_kernel
from framegram.fmri.spaces import SPACE_NAMES, UnknownSpaceError, space_features, spaces_per_tr
from framegram.fmri.stimulus import check_run_covers_stimulus
from framegram.vae.data import LinearMap, fit_pca_map

#: Late starts of the SPM HRF whose responses are the model's inputs: peaks at about 5, 6, 7, 8 s.
HRF_DELAYS_S = (0.0, 1.0, 2.0, 3.0)
#: The same with an early start (peak ~4 s): for participants whose responses peak at 4-6.5 s (the
#: film dataset of `datasets.bids`); an option, so that models trained on HRF_DELAYS_S keep their inputs.
EARLY_HRF_DELAYS_S = (-1.0, 0.0, 1.0, 2.0, 3.0)
#: The spaces of a model trained before there were spaces (and of `framegram vae train` by default).
DEFAULT_SPACES = ("framegram",)


class SpacesMismatchError(InputError):
    """A model trained on other feature spaces (or other widths of them) than a prediction asks for."""


def check_spaces(spaces: Sequence[str], stimulus: str | Path) -> tuple[str, ...]:
    """`spaces` as a tuple, after checking: at least one, distinct, each in SPACE_NAMES
    (UnknownSpaceError lists them), and only "framegram" for a `.framegram.npz` stimulus (InputError)."""
    from framegram.cache import is_framegram_file

    spaces = tuple(spaces)
    for name in spaces:
        if name not in SPACE_NAMES:
            raise UnknownSpaceError(name, SPACE_NAMES)
    if not spaces or len(set(spaces)) != len(spaces):
        raise ValueError(f"feature spaces must be one or more distinct names, got {', '.join(spaces) or 'none'}")
    if is_framegram_file(stimulus) and spaces != DEFAULT_SPACES:
        raise InputError(stimulus, f"a framegram file holds only the \"framegram\" space, not {', '.join(spaces)}: "
                                   "give the film itself for other spaces")
    return spaces


def trained_spaces(info: dict) -> tuple[str, ...]:
    """The spaces a signal set's (or a checkpoint's) `info` records: ("framegram",) where it records none."""
    return tuple(info.get("spaces", DEFAULT_SPACES))


def space_rows(stimulus, spaces: Sequence[str], run: BoldRun, offset_s: float) -> list[np.ndarray]:
    """Each space's rows averaged per TR of `run`, in the order of `spaces`: float32 [n_volumes, D_s]
    each (`fmri.spaces.spaces_per_tr`, cached per film). RunTooShortError when the run stops before
    the film, StimulusTooShortError when the film stops before the run; NoAudioError for "sound" on a
    silent film."""
    spaces = check_spaces(spaces, stimulus)
    for name in spaces:  # the run must cover each space's rows (cached: reading them again costs little)
        check_run_covers_stimulus(run, space_features(stimulus, name).times, offset_s)
    rows = spaces_per_tr(stimulus, spaces, run.tr, run.n_volumes, offset_s)
    return [rows[name] for name in spaces]


def fit_space_map(blocks: Sequence[np.ndarray], n_features: int) -> LinearMap:
    """Per block [n, D_s]: its top `n_features` principal components (fewer when D_s or n is
    smaller), each z-scored over the rows; one block-diagonal map from the blocks side by side
    [n, sum D_s] to the components side by side [n, sum K_s]. One block: `fit_pca_map` itself."""
    maps = [fit_pca_map(block, n_features) for block in blocks]
    if len(maps) == 1:
        return maps[0]
    components = np.zeros((sum(m.dims for m in maps), sum(len(m.mean) for m in maps)), np.float32)
    row = col = 0
    for m in maps:
        components[row : row + m.dims, col : col + len(m.mean)] = m.components
        row, col = row + m.dims, col + len(m.mean)
    side_by_side = {k: np.concatenate([getattr(m, k) for m in maps]).astype(np.float32) for k in ("mean", "shift", "scale")}
    return LinearMap(side_by_side["mean"], components, side_by_side["shift"], side_by_side["scale"])


def model_inputs(components: np.ndarray, tr: float, cleaner: BoldCleaner,
                 delays_s: Sequence[float] = HRF_DELAYS_S) -> np.ndarray:
    """Per-TR feature components [n, K] -> the model's inputs [n, K * len(delays_s)]: each
    convolved with the SPM HRF started at every delay (delay-major), then cleaned like the BOLD."""
    responses = [convolve_kernel(components, hrf_kernel(tr, delay)) for delay in delays_s]
    return cleaner.residualize(np.concatenate(responses, axis=1))


def film_components(stimulus, spaces: Sequence[str], run: BoldRun, offset_s: float, features: LinearMap,
                    source: str | Path = "the model") -> np.ndarray:
    """The film's components on `run`'s clock through a fitted map: float32 [n_volumes, features.dims].
    SpacesMismatchError (naming `source`) when the spaces' widths are not the ones the map was fitted on
    (e.g. a space's settings changed since)."""
    rows = np.concatenate(space_rows(stimulus, spaces, run, offset_s), axis=1)
    if rows.shape[1] != len(features.mean):
        raise SpacesMismatchError(source, f"was fitted on {len(features.mean)} feature columns of the spaces "
                                          f"{', '.join(spaces)}, but the film gives {rows.shape[1]} now")
    return features(rows)
