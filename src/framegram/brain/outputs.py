"""Writing a fit: per participant `sub-XX/` with NIfTI maps (r, R², alpha, significance, peak
delay, mask), the predicted and cleaned measured BOLD of the held-out volumes (4-D NIfTI), and
`summary.json`; `results.json` at the top lists the settings and every participant's summary.
All writes are atomic.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_write_bytes

MAPS = ("r", "r2", "alpha", "significant", "peak_delay", "pvalue")
RESULTS = "results.json"


def subject_dir(out: Path, subject: str) -> Path:
    return Path(out) / f"sub-{subject}"


def write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray, tr: float | None = None) -> Path:
    """Write a 3-D or 4-D float32 image atomically (TR in the header's 4th zoom for 4-D)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine)
    if tr is not None and volume.ndim == 4:
        img.header.set_zooms(img.header.get_zooms()[:3] + (float(tr),))
        img.header.set_xyzt_units("mm", "sec")
    data = img.to_bytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=4, mtime=0)
    atomic_write_bytes(path, data)
    return path


def unmask(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[V] → [X, Y, Z] (or [n, V] → [X, Y, Z, n]) with zeros outside the mask."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        out = np.zeros(mask.shape, dtype=np.float32)
        out[mask] = values
        return out
    out = np.zeros((*mask.shape, values.shape[0]), dtype=np.float32)
    out[mask] = values.T
    return out


def write_subject(fit, out: Path) -> dict:
    """Write one participant's maps, held-out predictions and summary; returns the summary."""
    folder = subject_dir(out, fit.run.subject)
    maps = {
        "r": fit.r, "r2": fit.r2, "alpha": fit.alphas, "significant": fit.significant.astype(np.float32),
        "peak_delay": fit.peak_delay_s, "pvalue": fit.pvalues,
    }
    for name, values in maps.items():
        write_nifti(folder / f"{name}.nii.gz", unmask(values, fit.mask), fit.affine)
    write_nifti(folder / "mask.nii.gz", fit.mask.astype(np.float32), fit.affine)
    write_nifti(folder / "pred_test_bold.nii.gz", unmask(fit.pred_test, fit.mask), fit.affine, fit.run.tr)
    write_nifti(folder / "clean_test_bold.nii.gz", unmask(fit.y_test, fit.mask), fit.affine, fit.run.tr)
    summary = fit.summary()
    summary["test_first_volume"] = int(fit.test[0])
    arrays = {"r": fit.r.astype(np.float32), **{f"control_{k}": v.astype(np.float32) for k, v in fit.controls.items()}}
    if fit.published is not None:
        arrays["published_r_volume"] = fit.published.r_volume.astype(np.float32)
        arrays["published_r_change"] = fit.published.r_change.astype(np.float32)
    buf = io.BytesIO()  # np.savez adds ".npz" to a path that lacks it: write bytes instead
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / "scores.npz", buf.getvalue())
    atomic_write_bytes(folder / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def write_results(out: Path, summaries: list[dict], config: dict, inputs: dict) -> Path:
    """The top-level results.json (settings, inputs, participants' summaries)."""
    path = Path(out) / RESULTS
    data = {"inputs": inputs, "config": config, "subjects": summaries}
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=float) + "\n").encode())
    return path


def read_results(out: Path) -> dict:
    """Load results.json of a fit folder (FramegramError-typed when missing or damaged)."""
    from framegram.brain.errors import BrainError

    path = Path(out) / RESULTS
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BrainError(f"{path}: no such file (run `framegram brain fit ... --out {out}` first)") from None
    except json.JSONDecodeError as exc:
        raise BrainError(f"{path}: damaged results file ({exc})") from None
