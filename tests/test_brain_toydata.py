"""A tiny BIDS dataset with a known region and lag, and a quick fit of the generated dataset (no tests
here: helpers of test_brain_pipeline.py and test_bad_input.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TR = 0.608


def toy_stimulus(seconds: float = 400.0, fps: float = 5.0, dim: int = 8, seed: int = 0):
    """Smooth random 'framegram' rows: features float32 [T, dim], times s [T]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    # piecewise-constant scenes of 0.6-2.5 s
    edges = np.cumsum(rng.uniform(0.6, 2.5, size=400))
    scene = np.searchsorted(edges, t)
    values = rng.random((scene.max() + 1, dim)).astype(np.float32)
    return values[scene] + 0.05 * rng.random((len(t), dim)).astype(np.float32), t


def write_toy_bids(root: Path, subjects=("01", "02"), n_volumes: int = 641, shape=(6, 6, 4), lag_s: float = 6.0,
                   snr: float = 2.0, seed: int = 0, tr_header: float = TR, with_tr: bool = True,
                   nan_voxel: tuple[int, int, int] | None = None) -> dict:
    """Write a BIDS root whose responsive voxels (the first two x-planes) follow the stimulus's
    per-TR features through fixed random weights and the SPM HRF peaking `lag_s` after each
    volume's stimulus; the rest is noise. with_tr=False leaves RepetitionTime out of the sidecars;
    nan_voxel puts NaN into that voxel's 10th volume."""
    import nibabel as nib

    from framegram.fmri.hrf import convolve_kernel, hrf_kernel, hrf_peak_s
    from framegram.fmri.stimulus import frames_to_tr

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy", "BIDSVersion": "1.8.0"}))
    sidecar = json.dumps({"RepetitionTime": TR, "TaskName": "film"} if with_tr else {"TaskName": "film"})
    (root / "task-film_bold.json").write_text(sidecar)
    features, times = toy_stimulus(seconds=n_volumes * TR)
    per_tr = frames_to_tr(features, times, TR, n_volumes)
    per_tr = per_tr - per_tr.mean(0)
    rng = np.random.default_rng(seed)
    responsive = np.zeros(shape, dtype=bool)
    responsive[:2] = True
    weights = rng.normal(size=(per_tr.shape[1], responsive.sum()))
    drive = convolve_kernel(per_tr, hrf_kernel(TR, lag_s - hrf_peak_s(0.0)))
    signal = drive @ weights
    signal /= signal.std(0)
    for sub in subjects:
        func = root / f"sub-{sub}" / "ses-mri3t" / "func"
        func.mkdir(parents=True, exist_ok=True)
        noise = rng.normal(size=(n_volumes, *shape))
        data = 1000 + noise * 10
        sig = np.zeros((n_volumes, *shape))
        sig[:, responsive] = signal * 10 * np.sqrt(snr)
        data = (data + sig).transpose(1, 2, 3, 0).astype(np.float32)
        if nan_voxel is not None:
            data[nan_voxel][10] = np.nan
        img = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
        img.header.set_zooms((3.0, 3.0, 3.0, tr_header))
        img.header.set_xyzt_units("mm", "sec")
        stem = f"sub-{sub}_ses-mri3t_task-film_run-1"
        nib.save(img, func / f"{stem}_bold.nii.gz")
        (func / f"{stem}_bold.json").write_text(sidecar)
        conf = root / "derivatives" / "fmriprep" / f"sub-{sub}" / "ses-mri3t" / "func"
        conf.mkdir(parents=True, exist_ok=True)
        motion = rng.normal(scale=0.01, size=(n_volumes, 6)).cumsum(0)
        cols = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
        lines = ["\t".join(cols + [c + "_derivative1" for c in cols])]
        for i in range(n_volumes):
            deriv = ["n/a"] * 6 if i == 0 else [f"{v:.6f}" for v in motion[i] - motion[i - 1]]
            lines.append("\t".join([f"{v:.6f}" for v in motion[i]] + deriv))
        (conf / f"{stem}_desc-confounds_timeseries.tsv").write_text("\n".join(lines) + "\n")
    (root / "derivatives" / "fmriprep" / "dataset_description.json").write_text(
        json.dumps({"Name": "fmriprep", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    return {"features": features, "times": times, "responsive": responsive, "lag_s": lag_s}


#: A quick fit: no controls, two inner folds, three alphas (the maps are real, the scores rougher).
QUICK_FIT = {"controls": False, "published": False, "cv": 2, "alphas": (1e1, 1e3, 1e5)}


def quick_fit(synth: Path, tmp_path_factory) -> Path:
    """The fit folder of sub-01 of the generated dataset `synth` (the `synth` fixture), made once per
    test session and shared: copy it before damaging it."""
    from framegram.brain import fit_dataset
    from framegram.fmri import BrainConfig

    out = tmp_path_factory.getbasetemp() / "brain-quick-fit" / "fit"
    if not (out / "results.json").is_file():
        fit_dataset(synth, synth / "stimuli" / "film.mp4", out, subjects=["01"], config=BrainConfig(**QUICK_FIT))
    return out


def damage_fit_file(out: Path, name: str, damage: str) -> Path:
    """Damage one file of a fit folder the way a full disk, a copy or a hand edit does; returns its path."""
    import gzip

    import nibabel as nib

    path = out / name
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not what it should be\n")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "no r":
        np.savez(path.with_suffix(""), something=np.zeros(3))  # np.savez adds .npz back
    elif damage == "other shape":
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    elif damage == "4-D":
        path.write_bytes(gzip.compress(nib.Nifti1Image(np.zeros((20, 20, 12, 2), np.float32), np.eye(4)).to_bytes()))
    elif damage == "no subjects":
        path.write_text('{"config": {}}')
    elif damage == "entry lacks voxels":
        results = json.loads(path.read_text())
        del results["subjects"][0]["voxels"]
        path.write_text(json.dumps(results))
    else:
        raise ValueError(f"unknown damage {damage!r}")
    return path


def copy_run(synth: Path, root: Path, subject: str = "01", derivatives: tuple[str, ...] = ("fmriprep",)) -> Path:
    """A BIDS root at `root` holding one participant of the generated dataset `synth`: its raw run
    and its files in the named derivatives folders (each with its dataset_description.json)."""
    import shutil

    root.mkdir(parents=True)
    for name in ("dataset_description.json", "task-film_bold.json"):
        shutil.copy(synth / name, root / name)
    shutil.copytree(synth / f"sub-{subject}", root / f"sub-{subject}")
    for name in derivatives:
        shutil.copytree(synth / "derivatives" / name / f"sub-{subject}", root / "derivatives" / name / f"sub-{subject}")
        shutil.copy(synth / "derivatives" / name / "dataset_description.json", root / "derivatives" / name)
    return root


BOLD_01 = Path("sub-01") / "ses-mri3t" / "func" / "sub-01_ses-mri3t_task-film_run-1_bold.nii.gz"


def detrended_copy(synth: Path, tmp_path_factory) -> Path:
    """sub-01 of the generated dataset with its BOLD skull-stripped (zero outside the brain) and
    detrended (each voxel's mean removed), float32: nilearn's EPI mask of it is empty. Made once
    per session (do not change it); the brain mask that fits it is `synth_brain_mask(synth)`."""
    import nibabel as nib

    root = tmp_path_factory.getbasetemp() / "brain-detrended" / "bids"
    if not (root / "dataset_description.json").is_file():
        work = copy_run(synth, root.with_name("partial"))
        img = nib.load(work / BOLD_01)
        data = np.asarray(img.dataobj, dtype=np.float32)
        data -= data.mean(axis=3, keepdims=True)
        data[~(nib.load(synth_brain_mask(synth)).get_fdata() > 0)] = 0
        out = nib.Nifti1Image(data, img.affine, img.header)
        out.set_data_dtype(np.float32)
        nib.save(out, work / BOLD_01)
        work.rename(root)
    return root


def synth_brain_mask(synth: Path) -> Path:
    """The generated dataset's brain mask (ground truth, on the BOLD's grid)."""
    return synth / "derivatives" / "framegram-synth" / "desc-brain_mask.nii.gz"
