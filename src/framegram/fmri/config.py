"""`BrainConfig`: the settings of an fMRI fit, how each run is prepared (start offset, split,
cleaning, mask) and how the brain pipeline's encoding model is fitted; a signal model on fMRI
(`framegram.vae.fmri`) uses the preparation settings and records them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Per-voxel ridge penalties tried (features z-scored): responsive voxels of the generated data
#: choose 1-100 with the HRF basis, ~100-1000 with FIR; 1e7 is "predict nothing" for the rest.
DEFAULT_ALPHAS = np.logspace(-2, 7, 10)


@dataclass
class BrainConfig:
    """Settings of a fit. Times in seconds.

    offset_s: scan time at which the film starts; basis: "hrf" (the SPM HRF with a delay chosen
    per participant on the training volumes, see `framegram.brain.delays`) or "fir" (one weight
    per delay 0..max_delay_s: any response shape, ~17x the parameters, so noisier with ~450
    training volumes); n_components: principal components of the per-TR stimulus kept (None: all
    D features); train_fraction: the first part of the run used to fit cleaning and model, the
    rest is held out; cv/gap: contiguous inner folds for the per-voxel alphas; high_pass_hz:
    cosine drift cut-off; motion: regress the motion confounds; fd_threshold_mm: volumes whose
    framewise displacement exceeds it get an indicator regressor (None: none); held_out_cleaning:
    see `BoldCleaner`; fdr_q: false discovery rate of the significance map; controls/published:
    also run those; mask: a brain mask file (NIfTI on the BOLD's grid) to use instead of fMRIPrep's
    `desc-brain_mask` or nilearn's EPI mask (see `framegram.fmri.masks`).
    """

    offset_s: float = 0.0
    basis: str = "hrf"
    max_delay_s: float = 10.0
    n_components: int | None = 20
    train_fraction: float = 0.7
    cv: int = 5
    gap: int = 8
    alphas: tuple[float, ...] = tuple(float(a) for a in DEFAULT_ALPHAS)
    solver: str = "auto"
    high_pass_hz: float = 0.01
    motion: bool = True
    fd_threshold_mm: float | None = 0.3
    held_out_cleaning: str = "own"
    fdr_q: float = 0.05
    controls: bool = True
    published: bool = True
    mask: str | None = None

    def settings(self) -> dict:
        """The settings a fit folder records (settings.json): every field, but `mask` only when set,
        so folders fitted before the field existed resume."""
        out = asdict(self)
        if out["mask"] is None:
            del out["mask"]
        else:
            out["mask"] = str(out["mask"])
        return out
