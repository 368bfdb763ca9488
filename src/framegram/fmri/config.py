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


@dataclass(frozen=True)
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
    `desc-brain_mask` or nilearn's EPI mask (see `framegram.fmri.masks`); spaces: the stimulus
    feature spaces of the design (`framegram.fmri.spaces`; n_components applies to each), fitted
    with banded ridge (`framegram.brain.banded`) when there are several, each reduced to
    space_components principal components (n_components then applies to a lone space);
    banded_mixtures: space weightings a voxel may choose besides each space alone
    (`banded.candidate_weights`: each pair, all equal, then random ones; 0: one space a voxel);
    partition: also fit the banded model without each space, for unique and shared R² (about 70 %
    of a banded fit's time: 77 of 106 s a participant on the full 64x64x40 grid).
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
    spaces: tuple[str, ...] = ("framegram",)
    space_components: int = 10
    banded_mixtures: int = 0
    partition: bool = True

    def __post_init__(self):
        from framegram.fmri.spaces import SPACE_NAMES

        problems = []
        object.__setattr__(self, "spaces", tuple(self.spaces))
        unknown = [name for name in self.spaces if name not in SPACE_NAMES]
        if not self.spaces or unknown or len(set(self.spaces)) != len(self.spaces):
            problems.append(f"spaces must be distinct names among {', '.join(SPACE_NAMES)}, got {', '.join(self.spaces) or 'none'}")
        if self.space_components < 1:
            problems.append(f"space_components must be at least 1, got {self.space_components}")
        if self.banded_mixtures < 0:
            problems.append(f"banded_mixtures must be at least 0, got {self.banded_mixtures}")
        if self.basis not in ("hrf", "fir"):
            problems.append(f"basis must be 'hrf' or 'fir', got {self.basis!r}")
        if not 0.2 <= self.train_fraction <= 0.95:
            problems.append(f"train_fraction must be within 0.2..0.95, got {self.train_fraction}")
        if self.n_components is not None and self.n_components < 1:
            problems.append(f"n_components must be at least 1 (None: all features), got {self.n_components}")
        if self.max_delay_s <= 0:
            problems.append(f"max_delay_s must be positive, got {self.max_delay_s}")
        if self.cv < 2 or self.gap < 0:
            problems.append(f"cv must be at least 2 and gap at least 0, got cv={self.cv}, gap={self.gap}")
        if not self.alphas or min(self.alphas) <= 0:
            problems.append(f"alphas must be positive ridge penalties, got {self.alphas}")
        if self.high_pass_hz < 0:
            problems.append(f"high_pass_hz must be at least 0, got {self.high_pass_hz}")
        if self.fd_threshold_mm is not None and self.fd_threshold_mm <= 0:
            problems.append(f"fd_threshold_mm must be positive (None: no spike regressors), got {self.fd_threshold_mm}")
        if self.held_out_cleaning not in ("own", "train"):
            problems.append(f"held_out_cleaning must be 'own' or 'train', got {self.held_out_cleaning!r}")
        if not 0 < self.fdr_q < 1:
            problems.append(f"fdr_q must be within (0, 1), got {self.fdr_q}")
        if problems:
            raise ValueError("; ".join(problems))

    def settings(self) -> dict:
        """The settings a fit folder records (settings.json): every field, but `mask` only when set,
        so folders fitted before the field existed resume."""
        out = asdict(self)
        out["spaces"] = list(self.spaces)
        if self.spaces == ("framegram",):  # folders fitted before there were spaces resume
            del out["spaces"], out["banded_mixtures"], out["space_components"], out["partition"]
        if out["mask"] is None:
            del out["mask"]
        else:
            out["mask"] = str(out["mask"])
        return out
