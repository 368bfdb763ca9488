"""The brain mask of a run: which voxels a fit (or a signal model's target) uses.

In order: a mask file the user gives (`BrainConfig.mask`, `--mask FILE`); else fMRIPrep's
`desc-brain_mask` of the run (`BoldRun.brain_masks`) on the BOLD's grid; else nilearn's EPI mask of
the run's mean image. The EPI mask needs intensities that separate brain from background: on
skull-stripped or detrended data it comes out empty or a few voxels, which is refused here (one
line naming `--mask`) rather than passed to the ridge as a problem with zero voxels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.fmri.errors import MaskError

#: The fewest voxels a mask found without the user (EPI or fMRIPrep's) may hold. Fewer means it
#: failed; a mask file given on purpose may be smaller (a region of interest), but not empty.
MIN_MASK_VOXELS = 100
#: How far (mm, per affine entry) a mask's affine may be from the BOLD's: header float rounding.
AFFINE_TOLERANCE = 1e-3
#: `mask_source` of nilearn's EPI mask.
EPI = "epi"


def compute_mask(bold_img) -> np.ndarray:
    """Brain mask from the mean EPI (nilearn's `compute_epi_mask`): bool [X, Y, Z], possibly empty."""
    import warnings

    from nilearn.masking import compute_epi_mask

    with warnings.catch_warnings():  # nilearn warns of a mask it computed empty: refused by the caller in one line
        warnings.simplefilter("ignore")
        return np.asarray(compute_epi_mask(bold_img).get_fdata() > 0)


def grid_problem(img, bold_img, bold: Path) -> str | None:
    """Why the 3-D image `img` is not on the grid of `bold_img` (the BOLD file `bold`), or None."""
    shape, bold_shape = tuple(img.shape[:3]), tuple(bold_img.shape[:3])
    if shape != bold_shape:
        return f"shape {shape}, but the BOLD {bold} has {bold_shape}"
    gap = float(np.abs(np.asarray(img.affine) - np.asarray(bold_img.affine)).max())
    if gap > AFFINE_TOLERANCE:
        return f"its affine differs from that of the BOLD {bold} (by up to {gap:.3g} mm)"
    return None


def _read(path: Path):
    """(image, bool [X, Y, Z] voxels > 0) of a mask file; MaskError for a missing, unreadable or not 3-D one."""
    import zlib

    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    if not path.is_file():
        raise MaskError(path, "no such mask file")
    try:
        img = nib.load(path)
        values = np.asarray(img.dataobj)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MaskError(path, f"not a readable NIfTI image ({first})") from None
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise MaskError(path, f"a mask must be a 3-D image, this one has shape {values.shape}")
    with np.errstate(invalid="ignore"):
        return img, np.asarray(values > 0)  # NaN is outside


def load_mask(path: str | Path, bold_img, bold: Path) -> np.ndarray:
    """The mask file `path` as bool [X, Y, Z] on the grid of `bold_img` (the BOLD file `bold`):
    MaskError naming the file when it is missing, unreadable, not 3-D, on another grid or empty."""
    path = Path(path)
    img, mask = _read(path)
    problem = grid_problem(img, bold_img, bold)
    if problem:
        raise MaskError(path, f"{problem}: a mask must be on the BOLD's grid (resample it to the BOLD with "
                              f"nearest-neighbour interpolation, e.g. nilearn.image.resample_to_img)")
    if not mask.any():
        raise MaskError(path, "the mask holds no voxel (no value above 0)")
    return mask


def run_mask(run, bold_img, data: np.ndarray | None = None, mask_file: str | Path | None = None) -> tuple[np.ndarray, str]:
    """(bool [X, Y, Z], source) of a run: `mask_file` when given (source: its path); else the first
    of the run's fMRIPrep brain masks on the BOLD's grid (its path); else the EPI mask of `data`
    (float [X, Y, Z, n], `bold_img`'s data when None) ("epi"). MaskError for a mask found this way
    that holds fewer than MIN_MASK_VOXELS voxels, saying to pass --mask."""
    if mask_file is not None:
        return load_mask(mask_file, bold_img, run.bold), str(mask_file)
    elsewhere = []
    for path in getattr(run, "brain_masks", ()):
        img, mask = _read(Path(path))
        if grid_problem(img, bold_img, run.bold) is not None:
            elsewhere.append(Path(path))  # another space (T1w, MNI): not this BOLD's grid
            continue
        if mask.sum() < MIN_MASK_VOXELS:
            raise MaskError(path, f"fMRIPrep's brain mask of {run.bold.name} holds {int(mask.sum())} voxels (fewer than "
                                  f"{MIN_MASK_VOXELS}); pass a brain mask on the BOLD's grid with --mask FILE (BrainConfig.mask)")
        return mask, str(path)
    if data is not None:
        bold_img = bold_img.__class__(data, bold_img.affine, bold_img.header)
    mask = compute_mask(bold_img)
    if mask.sum() < MIN_MASK_VOXELS:
        also = (f"; the fMRIPrep brain masks found ({', '.join(p.name for p in elsewhere)}) are on another grid"
                if elsewhere else "")
        raise MaskError(run.bold, f"nilearn's EPI mask of this run holds {int(mask.sum())} voxels (fewer than "
                                  f"{MIN_MASK_VOXELS}): its intensities do not separate brain from background "
                                  f"(skull-stripped or detrended data?){also}; pass a brain mask on the BOLD's grid "
                                  f"with --mask FILE (BrainConfig.mask)")
    return mask, EPI
