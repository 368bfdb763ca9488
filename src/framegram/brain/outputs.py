"""Writing a fit: per participant `sub-XX/` with NIfTI maps (r, R², alpha, p-value, significance,
mask, and each voxel's peak delay for the FIR basis; with several feature spaces, per space
`space-<name>_weight` (its share of the banded kernel), `_split_r2` (its share of the held-out R²),
`_r_alone` (a ridge on it alone), `_unique_r2` and `_shared_r2` maps), the predicted and cleaned measured BOLD of the held-out volumes (4-D NIfTI), and
`summary.json`; `results.json` at the top lists the settings and every participant's summary.
All writes are atomic.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from framegram.fmri.nifti import unmask, write_nifti
from framegram.io.atomic import atomic_write_bytes

RESULTS = "results.json"
SETTINGS = "settings.json"


def subject_dir(out: Path, subject: str) -> Path:
    return Path(out) / f"sub-{subject}"


def write_subject(fit, out: Path) -> dict:
    """Write one participant's maps, held-out predictions and summary; returns the summary."""
    folder = subject_dir(out, fit.run.subject)
    maps = {
        "r": fit.r, "r2": fit.r2, "alpha": fit.alphas, "significant": fit.significant.astype(np.float32),
        "pvalue": fit.pvalues,
    }
    if fit.peak_delay_s is not None:  # per-voxel delays exist for the FIR basis only
        maps["peak_delay"] = fit.peak_delay_s
    if fit.space_weights is not None:
        for b, name in enumerate(fit.spaces):
            maps[f"space-{name}_weight"] = fit.space_weights[b]
            maps[f"space-{name}_split_r2"] = fit.split_r2[b]
            maps[f"space-{name}_r_alone"] = fit.space_r[name]
            if fit.unique_r2:  # config.partition
                maps[f"space-{name}_unique_r2"] = fit.unique_r2[name]
                maps[f"space-{name}_shared_r2"] = fit.shared_r2[name]
    for name, values in maps.items():
        write_nifti(folder / f"{name}.nii.gz", unmask(values, fit.mask), fit.affine)
    write_nifti(folder / "mask.nii.gz", fit.mask.astype(np.float32), fit.affine)
    # the 4-D held-out series are most of the bytes: int16 with a scale factor
    write_nifti(folder / "pred_test_bold.nii.gz", unmask(fit.pred_test, fit.mask), fit.affine, fit.run.tr, np.int16)
    write_nifti(folder / "clean_test_bold.nii.gz", unmask(fit.y_test, fit.mask), fit.affine, fit.run.tr, np.int16)
    summary = fit.summary()
    summary["test_first_volume"] = int(fit.test[0])
    arrays = {"r": fit.r.astype(np.float32), **{f"control_{k}": v.astype(np.float32) for k, v in fit.controls.items()}}
    if fit.space_weights is not None:
        arrays["spaces"] = np.array(fit.spaces)
        arrays["space_weights"] = fit.space_weights.astype(np.float32)
        arrays["split_r2"] = fit.split_r2.astype(np.float32)
        arrays["r_alone"] = np.stack([fit.space_r[name] for name in fit.spaces]).astype(np.float32)
        if fit.unique_r2:
            arrays["unique_r2"] = np.stack([fit.unique_r2[name] for name in fit.spaces]).astype(np.float32)
            arrays["shared_r2"] = np.stack([fit.shared_r2[name] for name in fit.spaces]).astype(np.float32)
    if fit.published is not None:
        arrays["published_r_volume"] = fit.published.r_volume.astype(np.float32)
        arrays["published_r_change"] = fit.published.r_change.astype(np.float32)
    buf = io.BytesIO()  # np.savez adds ".npz" to a path that lacks it: write bytes instead
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / "scores.npz", buf.getvalue())
    atomic_write_bytes(folder / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def write_settings(out: Path, config: dict, inputs: dict) -> None:
    """Record the settings of a fit folder, or check that an existing folder used the same ones
    (BrainError otherwise: resuming under other settings would mix two fits). A folder in which no
    participant was finished (a first try refused, e.g. for its mask) takes the new settings."""
    from framegram.fmri.errors import BrainError

    from framegram.io.settings import claim_folder

    settings = json.loads(json.dumps({"inputs": inputs, "config": config}, default=float))
    if (Path(out) / SETTINGS).is_file() and not any(Path(out).glob("sub-*/summary.json")):
        (Path(out) / SETTINGS).unlink()  # nothing fitted under the old settings: nothing to mix
    if claim_folder(Path(out), settings, SETTINGS) is not None:
        raise BrainError(f"{out}: holds a fit with other settings or inputs (see {SETTINGS}); "
                         "choose another --out or delete it")


def read_summary(out: Path, subject: str) -> dict | None:
    """A participant's summary.json (its fit is complete: written last), or None."""
    path = subject_dir(out, subject) / "summary.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_results(out: Path, summaries: list[dict], config: dict, inputs: dict) -> Path:
    """The top-level results.json (settings, inputs, participants' summaries)."""
    path = Path(out) / RESULTS
    data = {"inputs": inputs, "config": config, "subjects": summaries}
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=float) + "\n").encode())
    return path


def read_results(out: Path) -> dict:
    """Load results.json of a fit folder (FramegramError-typed when missing or damaged)."""
    from framegram.fmri.errors import BrainError

    path = Path(out) / RESULTS
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BrainError(f"{path}: no such file (run `framegram brain fit ... --out {out}` first)") from None
    except json.JSONDecodeError as exc:
        raise BrainError(f"{path}: damaged results file ({exc})") from None
