"""Stimulus to brain: predict fMRI responses to a film from its framegram.

    from framegram.brain import fit_dataset, BrainConfig
    fit_dataset("ds003688/", "film.mp4", "out/", subjects=["01"], config=BrainConfig())

Pieces (one job each): `bids` (runs, TR, confounds and fMRIPrep brain masks via pybids), `masks` (which
voxels: a given mask file, fMRIPrep's, or nilearn's EPI mask), `stimulus` (frames → TR averages →
FIR delays / a delayed HRF), `delays` (the participant's HRF delay, delay profiles), `clean`
(nuisance regression fitted on training volumes), `model` (`BrainEncoder`: himalaya ridge, one
alpha per voxel, contiguous folds), `metrics` (r, R², shift null, FDR), `controls` (constant / shifted features, previous volume, the published protocol),
`pipeline` (one participant end to end), `outputs` (NIfTI maps, predictions, JSON), `report`.
"""

from framegram.brain.bids import BoldRun, find_runs
from framegram.brain.errors import (
    BadBoldError, BadMetadataError, BrainError, FitFolderError, MaskError, MissingMetadataError, NoBoldError, RunTooShortError, StimulusTooShortError,
    TRMismatchError, UnknownSubjectError,
)
from framegram.brain.model import BrainEncoder, contiguous_folds
from framegram.brain.pipeline import BrainConfig, SubjectFit, fit_dataset, fit_subject
from framegram.brain.stimulus import add_delays, build_design, frames_to_tr

__all__ = [
    "BadBoldError", "BadMetadataError", "BoldRun", "BrainConfig", "BrainEncoder", "BrainError", "FitFolderError", "MaskError", "MissingMetadataError", "NoBoldError", "RunTooShortError", "StimulusTooShortError", "SubjectFit",
    "TRMismatchError", "UnknownSubjectError", "add_delays", "build_design", "contiguous_folds", "find_runs",
    "fit_dataset", "fit_subject", "frames_to_tr",
]
