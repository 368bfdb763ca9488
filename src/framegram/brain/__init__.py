"""Stimulus to brain: predict fMRI responses to a film from its framegram.

    from framegram.brain import fit_dataset
    from framegram.fmri import BrainConfig
    fit_dataset("ds003688/", "film.mp4", "out/", subjects=["01"], config=BrainConfig())

Reading and preparing the runs (BIDS runs, masks, TR averages, the HRF, cleaning, split, settings,
errors) is `framegram.fmri`'s. Pieces here (one job each): `stimulus` (TR averages → FIR delays / a
delayed HRF), `delays` (the participant's HRF delay, delay profiles), `model` (`BrainEncoder`:
himalaya ridge, one alpha per voxel, contiguous folds), `controls` (constant / shifted features,
previous volume, the published protocol), `pipeline` (one participant end to end), `outputs`
(NIfTI maps, predictions, JSON), `report`.
"""

from framegram.brain.errors import FitFolderError
from framegram.brain.model import BrainEncoder, contiguous_folds
from framegram.brain.pipeline import SubjectFit, fit_dataset, fit_subject
from framegram.brain.stimulus import add_delays, build_design

__all__ = [
    "BrainEncoder", "FitFolderError", "SubjectFit", "add_delays", "build_design", "contiguous_folds", "fit_dataset",
    "fit_subject",
]
