"""A generated multi-site resting-state dataset in fMRIPrep's derivatives layout, with a known answer,
for the denoising and participant-classification pipeline (`framegram.connectome`).

    generate_connectome_sites(out, variant="network")   # or "motion": groups differ in head motion only

What is written (`out/`):
- `participants.tsv`: participant_id, site, group (control / patient), age, sex;
- `derivatives/fmriprep/sub-<id>/func/`: `*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz` (+ JSON
  sidecar with RepetitionTime), `*_desc-brain_mask.nii.gz`, `*_desc-confounds_timeseries.tsv` and its
  JSON (fMRIPrep's column names: 24 motion terms, framewise_displacement, dvars / std_dvars,
  global_signal, csf, white_matter with their expansions, cosine drifts, a_comp_cor_NN of the combined
  WM + CSF mask);
- `atlas/`: the parcellation (`atlas-synth<N>_dseg.nii.gz`, a labels table naming each parcel's network);
- `truth/` (apart from the derivatives: no pipeline reads it): every participant's true parcel
  correlation matrix, computed analytically from the generator's parameters, the true group
  difference, each participant's motion level.

The model. Each participant's parcel activity is a factor model over 7 named networks: parcel p of
network n(p) carries lambda_p * f_n(t) + sqrt(1 - lambda_p^2) * u_p(t), the network factors correlated
by Phi. In the "network" variant patients have weaker coupling inside the Default network and a
positive Default-Control coupling (both jittered per participant); in the "motion" variant both groups
share one connectivity and patients move 2.5 times as much. On top, in the voxels (7.5 mm grid):
thermal noise, slow drift, cardiac and respiratory terms (aliased) and a respiratory-volume
fluctuation strongest in CSF, a site artefact (a fixed spatial map per site with a slow time course),
and head motion: an intensity change linear in the six parameters and their squares (edge voxels
most), and at every volume a spin-history change proportional to framewise displacement: a global
dip plus a spatially smooth field (30 mm), which makes nearby parcels' correlations rise with motion
(the distance-dependent QC-FC artefact), decaying over the next volume. Sites differ in TR, run
length, noise, drift, intensity and motion. The confounds are measured from the generated images
with fMRIPrep's definitions (Power's FD, Nichols' standardised DVARS, masks' means, aCompCor).
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.errors import InputError
from framegram.io.atomic import atomic_write_bytes
from framegram.io.settings import claim_generated_folder

#: bump when the output of a given seed changes (a folder of another version is refused)
GENERATOR_VERSION = 1
VARIANTS = ("network", "motion")
NETWORKS = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")
SPACE = "MNI152NLin2009cAsym"
TASK = "rest"
#: per site: TR in seconds (runs last ~6.5 min), thermal noise %, drift %, intensity, motion multiplier
SITES = (
    dict(tr=2.0, thermal=1.0, drift=1.5, intensity=800.0, motion=1.0),
    dict(tr=2.5, thermal=1.4, drift=2.5, intensity=1100.0, motion=1.3),
    dict(tr=1.5, thermal=1.2, drift=1.0, intensity=650.0, motion=0.8),
    dict(tr=2.0, thermal=0.8, drift=2.0, intensity=950.0, motion=1.1),
    dict(tr=3.0, thermal=1.6, drift=1.2, intensity=700.0, motion=0.9),
)
RUN_SECONDS = 390.0
VOXEL_MM = 7.5
#: network anchors in units of the brain's radii (x right, y anterior, z superior): a parcel belongs
#: to the network of its nearest anchor, so Default and Control span frontal and parietal cortex
ANCHORS = {
    "Vis": [(0, -1, 0.1)],
    "SomMot": [(0.7, -0.1, 0.7), (-0.7, -0.1, 0.7)],
    "DorsAttn": [(0.6, -0.6, 0.55), (-0.6, -0.6, 0.55)],
    "SalVentAttn": [(0.85, 0.3, 0.2), (-0.85, 0.3, 0.2)],
    "Limbic": [(0.5, 0.4, -0.75), (-0.5, 0.4, -0.75)],
    "Cont": [(0.6, 0.75, 0.35), (-0.6, 0.75, 0.35), (0.8, -0.5, 0.15), (-0.8, -0.5, 0.15)],
    "Default": [(0, 0.95, 0.3), (0, -0.75, 0.6), (0.9, -0.2, -0.35), (-0.9, -0.2, -0.35)],
}
#: the group effect of the "network" variant (patients vs controls), as the truth file names it
DEFAULT_LOADING = {"control": 0.75, "patient": 0.66}
DEFAULT_CONTROL_COUPLING = {"control": 0.0, "patient": 0.2}


@dataclass(frozen=True)
class Anatomy:
    """The shared standard-space anatomy: grid shape, affine (mm), tissue masks, parcels."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    brain: np.ndarray        #: bool [X, Y, Z]
    grey: np.ndarray         #: bool [X, Y, Z]
    white: np.ndarray        #: bool [X, Y, Z]
    csf: np.ndarray          #: bool [X, Y, Z]
    parcels: np.ndarray      #: int [X, Y, Z], 0 outside grey matter, 1..P inside
    networks: tuple[str, ...]  #: [P] each parcel's network
    mm: np.ndarray           #: float [X, Y, Z, 3] voxel centres in mm


def connectome_anatomy(n_parcels: int = 100, small: bool = False, seed: int = 0) -> Anatomy:
    """The grid (20x24x20 at 7.5 mm; small: 14x16x14 at 10.5 mm), an ellipsoid brain with a grey-matter
    shell, white matter, ventricles and an outer CSF rim, and `n_parcels` parcels (k-means of the grey
    voxels' positions) each given to the network of its nearest anchor."""
    from scipy.cluster.vq import kmeans2

    shape, voxel = ((14, 16, 14), 10.5) if small else ((20, 24, 20), VOXEL_MM)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = [-(s - 1) / 2 * voxel for s in shape]
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(float)
    mm = idx * voxel + affine[:3, 3]
    radii = np.array([68.0, 84.0, 64.0])
    rho = np.sqrt(((mm / radii) ** 2).sum(-1))
    ventricles = np.zeros(shape, bool)
    for side in (-1, 1):
        ventricles |= (((mm - [side * 12.0, 5.0, 5.0]) / [9.0, 24.0, 11.0]) ** 2).sum(-1) <= 1
    brain = rho <= 1.0
    csf = (brain & (rho > 0.9)) | ventricles
    grey = brain & (rho > 0.7) & (rho <= 0.9) & ~ventricles
    white = brain & ~grey & ~csf
    coords = mm[grey]
    rng = np.random.default_rng(seed)
    n_parcels = min(n_parcels, len(coords) // 4)
    _, assignment = kmeans2(coords, coords[rng.choice(len(coords), n_parcels, replace=False)], iter=30, minit="matrix",
                            seed=rng)
    # parcels numbered from posterior to anterior, then bottom to top (a stable, readable order)
    centres = np.stack([coords[assignment == k].mean(0) for k in range(n_parcels)])
    order = np.lexsort((centres[:, 2], centres[:, 1]))
    rank = np.empty(n_parcels, int)
    rank[order] = np.arange(n_parcels)
    parcels = np.zeros(shape, np.int16)
    parcels[grey] = rank[assignment] + 1
    anchor_names, anchor_points = zip(*[(n, a) for n, pts in ANCHORS.items() for a in pts])
    unit = centres[order] / radii
    nearest = np.argmin(((unit[:, None, :] - np.array(anchor_points)[None]) ** 2).sum(-1), axis=1)
    networks = tuple(anchor_names[k] for k in nearest)
    return Anatomy(shape, affine, brain, grey, white, csf, parcels, networks, mm)


def true_correlation(loadings: np.ndarray, phi: np.ndarray, networks: np.ndarray) -> np.ndarray:
    """The factor model's parcel correlation: float [P, P] = lambda_p lambda_q Phi[n(p), n(q)], 1 on the diagonal."""
    c = np.outer(loadings, loadings) * phi[np.ix_(networks, networks)]
    np.fill_diagonal(c, 1.0)
    return c


def _group_parameters(group: str, variant: str, net_of: np.ndarray, rng: np.random.Generator):
    """One participant's loadings [P] and network correlation Phi [7, 7] (jittered around the group's)."""
    n_net = len(NETWORKS)
    dmn, cont = NETWORKS.index("Default"), NETWORKS.index("Cont")
    effective = group if variant == "network" else "control"
    loadings = np.full(len(net_of), 0.7)
    loadings[net_of == dmn] = DEFAULT_LOADING[effective]
    loadings = np.clip(loadings + rng.normal(0, 0.06, len(loadings)), 0.2, 0.92)
    phi = np.full((n_net, n_net), 0.1)
    phi[dmn, cont] = phi[cont, dmn] = DEFAULT_CONTROL_COUPLING[effective]
    jitter = rng.normal(0, 0.06, (n_net, n_net))
    phi = np.clip(phi + (jitter + jitter.T) / 2, -0.6, 0.8)
    np.fill_diagonal(phi, 1.0)
    w, v = np.linalg.eigh(phi)  # nearest positive-definite correlation
    phi = (v * np.maximum(w, 0.05)) @ v.T
    d = np.sqrt(np.diag(phi))
    return loadings, phi / np.outer(d, d)


def _band_noise(rng: np.random.Generator, n: int, k: int, tr: float, low: float = 0.01, high: float = 0.1) -> np.ndarray:
    """k independent band-limited series (low-high Hz, as resting BOLD), unit variance: float [n, k]."""
    from scipy.signal import butter, sosfiltfilt

    nyquist = 0.5 / tr
    sos = butter(2, [low / nyquist, min(high / nyquist, 0.95)], btype="band", output="sos")
    x = sosfiltfilt(sos, rng.standard_normal((n + 200, k)), axis=0)[100:-100]
    x -= x.mean(0)
    return x / x.std(0)


def _motion(rng: np.random.Generator, n: int, level: float) -> np.ndarray:
    """Six rigid-body parameters [n, 6] (mm, radians): a slow drift plus jerks, some returning, at a
    rate and size that grow with `level` (the participant's typical FD in mm)."""
    drift = np.cumsum(rng.normal(0, 0.15 * level, (n, 6)), axis=0)
    jerks = np.zeros((n, 6))
    events = rng.random(n) < min(0.03 + 0.12 * level, 0.5)
    for t in np.flatnonzero(events):
        step = rng.normal(0, 1, 6) * rng.exponential(1.5 * level)
        hold = rng.integers(1, 4) if rng.random() < 0.6 else n  # most jerks return within 1-3 volumes
        jerks[t: t + hold] += step
    params = drift + jerks + rng.normal(0, 0.03 * level, (n, 6))
    params[:, 3:] *= np.pi / 180.0 / 1.2  # rotations: ~1 degree per 1.2 mm of the same size
    return params - params[0]


def framewise_displacement(params: np.ndarray) -> np.ndarray:
    """Power et al. 2012: sum of absolute differences of the translations (mm) and of the rotations
    as arc length on a 50-mm sphere; float [n], the first volume NaN (fMRIPrep writes n/a)."""
    d = np.abs(np.diff(params, axis=0))
    fd = d[:, :3].sum(1) + 50.0 * d[:, 3:].sum(1)
    return np.concatenate([[np.nan], fd])


def standardized_dvars(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dvars, std_dvars) of brain voxels [V, n] as nipype's ComputeDVARS (Nichols 2017): intensity
    normalised to median 1000, RMS of the volume-to-volume change, divided by its expectation under
    each voxel's AR(1) noise (robust IQR sd); float [n] each, the first NaN."""
    m = data / np.median(data) * 1000.0
    sd = (np.percentile(m, 75, axis=1) - np.percentile(m, 25, axis=1)) / 1.349
    centred = m - m.mean(1, keepdims=True)
    ar1 = (centred[:, 1:] * centred[:, :-1]).sum(1) / np.maximum((centred**2).sum(1), 1e-12)
    expected = (np.sqrt(np.maximum(2 * (1 - ar1), 0)) * sd).mean()
    dvars = np.sqrt((np.diff(m, axis=1) ** 2).mean(0))
    return np.concatenate([[np.nan], dvars]), np.concatenate([[np.nan], dvars / expected])


def cosine_drifts(n: int, tr: float, cutoff_s: float = 128.0) -> np.ndarray:
    """fMRIPrep's cosine regressors (SPM's DCT high-pass at `cutoff_s`): float [n, K], K >= 1."""
    k = max(int(np.floor(2 * n * tr / cutoff_s)), 1)
    t = np.arange(n)
    basis = np.stack([np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * j / (2 * n)) for j in range(1, k + 1)], 1)
    return basis


def acompcor(noise: np.ndarray, drifts: np.ndarray, variance: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """aCompCor (Behzadi 2007, as fMRIPrep): voxels [V, n] of the combined WM + CSF mask, detrended by
    the drifts, centred and scaled per voxel, SVD; the components [n, K] explaining `variance` of it
    and their cumulative explained variance [K]."""
    y = noise.T.astype(np.float64)
    design = np.column_stack([np.ones(len(y)), np.linspace(-1, 1, len(y)), drifts])
    y = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    y = y / np.where(y.std(0) > 0, y.std(0), 1.0)
    u, s, _ = np.linalg.svd(y, full_matrices=False)
    explained = np.cumsum(s**2) / (s**2).sum()
    k = int(np.searchsorted(explained, variance) + 1)
    return u[:, :k], explained[:k]


@dataclass(frozen=True)
class Participant:
    label: str
    site: int
    group: str
    age: float
    sex: str
    motion_level: float  #: the participant's typical framewise displacement (mm) the motion was drawn with


def plan_participants(n_sites: int, per_site: int, variant: str, seed: int) -> list[Participant]:
    """Half controls, half patients in every site (balanced: the site is no shortcut to the group)."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for s in range(n_sites):
        groups = ["control", "patient"] * (per_site // 2) + ["control"] * (per_site % 2)
        rng.shuffle(groups)
        for k, group in enumerate(groups):
            level = 0.12 * np.exp(rng.normal(0, 0.55)) * SITES[s % len(SITES)]["motion"]
            if variant == "motion" and group == "patient":
                level *= 2.5
            out.append(Participant(f"{s + 1}{k + 1:03d}", s + 1, group, float(rng.uniform(8, 40)),
                                   "M" if rng.random() < 0.7 else "F", float(level)))
    return out


def _smooth_field(rng: np.random.Generator, shape, sigma_vox: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), sigma_vox)
    return f / f.std()


def simulate_participant(p: Participant, anatomy: Anatomy, variant: str, seed: int) -> dict:
    """One participant's BOLD [X, Y, Z, n] float32, motion parameters [n, 6], true correlation [P, P]
    and the site's TR; deterministic per (seed, participant)."""
    site = SITES[(p.site - 1) % len(SITES)]
    tr = site["tr"]
    n = int(round(RUN_SECONDS / tr))
    rng = np.random.default_rng([seed, p.site, int(p.label)])
    net_of = np.array([NETWORKS.index(k) for k in anatomy.networks])
    loadings, phi = _group_parameters(p.group, variant, net_of, rng)
    truth = true_correlation(loadings, phi, net_of)
    n_parcels = len(net_of)
    factors = _band_noise(rng, n, len(NETWORKS), tr) @ np.linalg.cholesky(phi).T
    unique = _band_noise(rng, n, n_parcels, tr)
    neural = factors[:, net_of] * loadings + unique * np.sqrt(1 - loadings**2)  # [n, P]

    shape, brain = anatomy.shape, anatomy.brain
    voxel_mm = anatomy.affine[0, 0]
    signal = np.zeros((*shape, n), np.float32)  # percent of baseline
    grey_idx = anatomy.parcels[anatomy.grey] - 1
    signal[anatomy.grey] += 1.2 * neural[:, grey_idx].T
    # voxel-level structured noise inside grey matter (not shared across a parcel's voxels)
    signal[anatomy.grey] += 0.6 * _band_noise(rng, n, int(anatomy.grey.sum()), tr, 0.01, 0.2).T

    # physiology: cardiac and respiratory (aliased at this TR) and a slow respiratory-volume fluctuation
    t = np.arange(n) * tr
    cardiac = np.sin(2 * np.pi * rng.uniform(0.95, 1.3) * t + rng.uniform(0, 2 * np.pi))
    breathing = np.sin(2 * np.pi * rng.uniform(0.22, 0.33) * t + rng.uniform(0, 2 * np.pi))
    rv = _band_noise(rng, n, 1, tr, 0.005, 0.05)[:, 0]
    tissue_weight = np.where(anatomy.csf, 1.0, np.where(anatomy.grey, 0.4, 0.2)) * brain
    physio_map = tissue_weight * (1 + 0.3 * _smooth_field(rng, shape, 2.0))
    signal += (physio_map[..., None] * (0.8 * cardiac + 0.8 * breathing + 1.5 * rv)).astype(np.float32)

    # the site's artefact: a fixed spatial map (per site) with a slow time course (per run)
    site_map = _smooth_field(np.random.default_rng([seed, 7, p.site]), shape, 30.0 / voxel_mm) * brain
    signal += (0.5 * site_map[..., None] * _band_noise(rng, n, 1, tr, 0.005, 0.08)[:, 0]).astype(np.float32)

    # drift: linear and quadratic, smooth maps
    ramp = np.linspace(-1, 1, n)
    for order in (1, 2):
        signal += (site["drift"] / order * _smooth_field(rng, shape, 3.0)[..., None] * ramp**order).astype(np.float32)

    # head motion: intensity linear in the parameters and their squares (edges of the brain most)
    params = _motion(rng, n, p.motion_level)
    fd = np.nan_to_num(framewise_displacement(params))
    from scipy.ndimage import distance_transform_edt

    edge = np.exp(-distance_transform_edt(brain) * voxel_mm / 12.0) * brain
    scaled = params / np.array([1.0] * 3 + [np.pi / 180] * 3)  # mm and degrees
    for k in range(6):
        g = edge * _smooth_field(rng, shape, 2.0)
        signal += (2.0 * g[..., None] * scaled[:, k] + 0.8 * g[..., None] * scaled[:, k] ** 2).astype(np.float32)
    # spin history at every volume, in proportion to FD: a global dip and a 30-mm smooth field,
    # half of it left in the next volume
    hit = np.zeros((*shape, n), np.float32)
    for v in np.flatnonzero(fd > 0.02):
        field = _smooth_field(rng, shape, 30.0 / voxel_mm)
        hit[..., v] += (fd[v] * (-3.0 + 3.0 * field)).astype(np.float32)
    hit[..., 1:] += 0.5 * hit[..., :-1]
    signal += hit * brain[..., None]

    signal += site["thermal"] * rng.standard_normal(signal.shape).astype(np.float32)
    contrast = np.where(anatomy.csf, 1.4, np.where(anatomy.white, 1.15, 1.0))
    baseline = site["intensity"] * contrast * (1 + 0.05 * _smooth_field(rng, shape, 3.0)) * brain
    bold = (baseline[..., None] * (1 + signal / 100.0)).astype(np.float32) * brain[..., None]
    return {"bold": bold, "params": params, "truth": truth, "tr": tr, "loadings": loadings, "phi": phi}


def confounds_table(bold: np.ndarray, params: np.ndarray, anatomy: Anatomy, tr: float):
    """fMRIPrep's confounds of a run measured from its image (pandas DataFrame, n rows) and the
    JSON metadata of its aCompCor columns."""
    import pandas as pd

    n = bold.shape[-1]
    columns: dict[str, np.ndarray] = {}

    def expand(name: str, x: np.ndarray) -> None:
        d = np.concatenate([[np.nan], np.diff(x)])
        columns.update({name: x, f"{name}_derivative1": d, f"{name}_power2": x**2, f"{name}_derivative1_power2": d**2})

    for name, mask in (("global_signal", anatomy.brain), ("csf", anatomy.csf), ("white_matter", anatomy.white)):
        expand(name, bold[mask].mean(0).astype(np.float64))
    columns["csf_wm"] = bold[anatomy.csf | anatomy.white].mean(0).astype(np.float64)
    dvars, std_dvars = standardized_dvars(bold[anatomy.brain].astype(np.float64))
    columns["std_dvars"], columns["dvars"] = std_dvars, dvars
    columns["framewise_displacement"] = framewise_displacement(params)
    for k, name in enumerate(("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")):
        expand(name, params[:, k])
    drifts = cosine_drifts(n, tr)
    for k in range(drifts.shape[1]):
        columns[f"cosine{k:02d}"] = drifts[:, k]
    components, explained = acompcor(bold[anatomy.white | anatomy.csf], drifts)
    meta = {}
    for k in range(components.shape[1]):
        columns[f"a_comp_cor_{k:02d}"] = components[:, k]
        meta[f"a_comp_cor_{k:02d}"] = {"Method": "aCompCor", "Mask": "combined", "Retained": True,
                                       "CumulativeVarianceExplained": float(explained[k])}
    return pd.DataFrame(columns), meta


def _nifti_bytes(volume: np.ndarray, affine: np.ndarray, dtype, tr: float | None = None) -> bytes:
    """A .nii.gz file's bytes (int16 data get a scale factor nibabel chooses)."""
    import nibabel as nib

    img = nib.Nifti1Image(volume, affine)
    img.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        img.header.set_zooms(img.header.get_zooms()[:3] + (float(tr),))
    return gzip.compress(img.to_bytes(), compresslevel=1, mtime=0)


def participant_files(root: Path, label: str) -> dict[str, Path]:
    func = root / "derivatives" / "fmriprep" / f"sub-{label}" / "func"
    stem = f"sub-{label}_task-{TASK}"
    return {
        "bold": func / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz",
        "sidecar": func / f"{stem}_space-{SPACE}_desc-preproc_bold.json",
        "mask": func / f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz",
        "confounds": func / f"{stem}_desc-confounds_timeseries.tsv",
        "confounds_json": func / f"{stem}_desc-confounds_timeseries.json",
    }


def atlas_files(root: Path, n_parcels: int) -> tuple[Path, Path]:
    return root / "atlas" / f"atlas-synth{n_parcels}_dseg.nii.gz", root / "atlas" / f"atlas-synth{n_parcels}_dseg.tsv"


def generate_connectome_sites(out: str | Path, variant: str = "network", n_sites: int = 5, per_site: int = 32,
                              n_parcels: int = 100, small: bool = False, seed: int = 0,
                              show_progress: bool = True) -> Path:
    """Write the dataset (see the module's docstring) into `out`; resumes an interrupted run (each
    file atomic, the bold image last), refuses a folder made with other settings. Returns `out`."""
    if variant not in VARIANTS:
        raise InputError(Path(out), f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if n_sites < 2 or per_site < 2:
        raise InputError(Path(out), "a multi-site dataset needs at least 2 sites of at least 2 participants")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    settings = {"generator": "connectome-sites", "version": GENERATOR_VERSION, "variant": variant, "sites": n_sites,
                "per_site": per_site, "parcels": n_parcels, "small": small, "seed": seed}
    claim_generated_folder(root, settings, "a generated connectome dataset")
    anatomy = connectome_anatomy(n_parcels, small, seed)
    people = plan_participants(n_sites, per_site, variant, seed)
    _write_fixed_files(root, anatomy, people, variant, settings)
    from framegram.progress import extraction_progress

    truths = {}
    with extraction_progress(show_progress) as bar:
        task = bar.add_task(f"connectome dataset ({variant})", total=len(people))
        for p in people:
            files = participant_files(root, p.label)
            truth_file = root / "truth" / f"sub-{p.label}_truth.npz"
            if not (files["bold"].is_file() and truth_file.is_file()):
                _write_participant(root, p, anatomy, variant, seed, files, truth_file)
            with np.load(truth_file) as z:
                truths[p.label] = z["correlation"]
            bar.advance(task)
    _write_truth_summary(root, anatomy, people, truths, variant)
    return root


def _write_fixed_files(root: Path, anatomy: Anatomy, people: list[Participant], variant: str, settings: dict) -> None:
    deriv = root / "derivatives" / "fmriprep"
    deriv.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(deriv / "dataset_description.json", json.dumps({
        "Name": f"framegram generated connectome dataset ({variant})", "BIDSVersion": "1.8.0",
        "DatasetType": "derivative", "GeneratedBy": [{"Name": "framegram-connectome-sites",
                                                      "Version": str(GENERATOR_VERSION)}]}, indent=2).encode())
    rows = ["participant_id\tsite\tgroup\tage\tsex"]
    rows += [f"sub-{p.label}\tsite{p.site}\t{p.group}\t{p.age:.1f}\t{p.sex}" for p in people]
    atomic_write_bytes(root / "participants.tsv", ("\n".join(rows) + "\n").encode())
    atlas, labels = atlas_files(root, int(anatomy.parcels.max()))
    atlas.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(atlas, _nifti_bytes(anatomy.parcels.astype(np.int16), anatomy.affine, np.int16))
    table = ["index\tname\tnetwork"] + [f"{k + 1}\t{net}_{k + 1}\t{net}" for k, net in enumerate(anatomy.networks)]
    atomic_write_bytes(labels, ("\n".join(table) + "\n").encode())


def _write_participant(root: Path, p: Participant, anatomy: Anatomy, variant: str, seed: int,
                       files: dict[str, Path], truth_file: Path) -> None:
    run = simulate_participant(p, anatomy, variant, seed)
    files["bold"].parent.mkdir(parents=True, exist_ok=True)
    table, compcor_meta = confounds_table(run["bold"], run["params"], anatomy, run["tr"])
    atomic_write_bytes(files["confounds"], table.to_csv(sep="\t", index=False, na_rep="n/a").encode())
    atomic_write_bytes(files["confounds_json"], json.dumps(compcor_meta, indent=1).encode())
    atomic_write_bytes(files["sidecar"], json.dumps({"RepetitionTime": run["tr"], "TaskName": TASK,
                                                     "SkullStripped": True}).encode())
    atomic_write_bytes(files["mask"], _nifti_bytes(anatomy.brain.astype(np.uint8), anatomy.affine, np.uint8))
    truth_file.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, correlation=run["truth"].astype(np.float32), loadings=run["loadings"], phi=run["phi"],
             motion_level=p.motion_level)
    atomic_write_bytes(truth_file, buf.getvalue())
    atomic_write_bytes(files["bold"], _nifti_bytes(run["bold"], anatomy.affine, np.int16, tr=run["tr"]))


def _write_truth_summary(root: Path, anatomy: Anatomy, people: list[Participant], truths: dict, variant: str) -> None:
    """truth/truth.json (and group_difference.npy): the group mean Fisher-z of the true correlations,
    patients minus controls, [P, P] (zero in the motion variant up to the per-participant jitter)."""
    z = {g: np.mean([np.arctanh(np.clip(truths[p.label], -0.999, 0.999)) for p in people if p.group == g], axis=0)
         for g in ("control", "patient")}
    difference = z["patient"] - z["control"]
    np.fill_diagonal(difference, 0.0)
    buf = io.BytesIO()
    np.save(buf, difference.astype(np.float32))
    atomic_write_bytes(root / "truth" / "group_difference.npy", buf.getvalue())
    atomic_write_bytes(root / "truth" / "truth.json", json.dumps({
        "variant": variant, "networks": list(NETWORKS), "parcel_networks": list(anatomy.networks),
        "effect": ({"Default loading": DEFAULT_LOADING, "Default-Cont factor correlation": DEFAULT_CONTROL_COUPLING}
                   if variant == "network" else "none: the groups differ in head motion only (patients 2.5x)"),
        "participants": {f"sub-{p.label}": {"group": p.group, "site": p.site, "motion_level_mm": p.motion_level}
                         for p in people},
    }, indent=1).encode())
