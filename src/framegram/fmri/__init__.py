"""fMRI data as the brain pipeline (`framegram.brain`) and the signal models (`framegram.vae.fmri`)
both read them: one BOLD run per participant of a film, prepared the same way for both.

    from framegram.fmri import BrainConfig, find_runs, frames_to_tr
    runs = find_runs("ds003688/")                      # BoldRun per participant: TR, volumes, confounds

Pieces (one job each): `bids` (runs, TR, confounds and fMRIPrep brain masks via pybids), `masks`
(which voxels: a given mask file, fMRIPrep's, or nilearn's EPI mask), `stimulus` (frames → TR
averages; a run shorter than the film is refused), `hrf` (the delayed SPM HRF, convolution),
`split` (training first, held-out last), `clean` (nuisance regression fitted per stretch of
time), `metrics` (per-voxel r, R², shift null, FDR), `nifti` (values back on the grid, atomic
NIfTI writes), `config` (`BrainConfig`), `errors`, `spaces` (named, cached stimulus feature spaces
beside the framegram: Lite0 blocks, image statistics, motion energy, sound; `spaces_per_tr`).
"""

from framegram.fmri.bids import BoldRun, find_runs
from framegram.fmri.config import BrainConfig
from framegram.fmri.errors import (
    BadBoldError, BadMetadataError, BrainError, DerivativesWarning, MaskError, MissingMetadataError, NoBoldError,
    RunTooShortError, StimulusTooShortError, TRMismatchError, UnknownSubjectError,
)
from framegram.fmri.stimulus import frames_to_tr

__all__ = [
    "BadBoldError", "BadMetadataError", "BoldRun", "BrainConfig", "BrainError", "DerivativesWarning", "MaskError",
    "MissingMetadataError", "NoBoldError", "RunTooShortError", "StimulusTooShortError", "TRMismatchError",
    "UnknownSubjectError", "find_runs", "frames_to_tr",
]
