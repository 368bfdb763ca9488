"""A generated BIDS fMRI dataset shaped like OpenNeuro ds003688 (a film watched in the scanner), with a
known answer: which voxels respond to the film, through which weights, with which delay.

Layout (OUT, subjects XX = 01, 02, ...)::

    dataset_description.json  participants.tsv  README  task-film_bold.json
    stimuli/film.mp4                                   390 s, 25 fps, 640x480, H.264 (Big Buck Bunny)
    sub-XX/ses-mri3t/func/sub-XX_ses-mri3t_task-film_run-1_bold.nii.gz   (+ .json, _events.tsv)
    sub-XX/ses-mri3t/anat/sub-XX_ses-mri3t_run-1_T1w.nii.gz
    derivatives/fmriprep/sub-XX/ses-mri3t/func/sub-XX_ses-mri3t_task-film_run-1_desc-confounds_timeseries.tsv
    derivatives/framegram-synth/   the ground truth: desc-brain_mask.nii.gz, desc-responsive_mask.nii.gz,
        truth.json, weights.npz, generator.json, and per subject
        sub-XX/ses-mri3t/func/sub-XX_ses-mri3t_task-film_run-1_desc-signal_bold.nii.gz

BOLD runs: 641 volumes at TR 0.608 s on a 64x64x40 grid of 3.5 mm voxels (small: 20x20x12, same
voxels and TR), int16 (scl_slope 1, scl_inter 0), RAS affine in sform and qform. All subjects share
the grid, the brain mask and the responsive region (as data normalised to a template would).

Signal model (what `desc-signal_bold` holds; `bold - signal` is everything else)
---------------------------------------------------------------------------------
1. Stimulus features: the framegram of stimuli/film.mp4 (`framegram_for`, EfficientNet-Lite0, 5 fps),
   rows averaged within each TR: TR j takes the frames with times in [j*TR, (j+1)*TR) -> [641, 1280].
2. Reduced to K = 20 components by PCA fitted on those 641 TR rows (centred), each component z-scored,
   then high-passed (a constant and DCT regressors k = 1..7, i.e. below 0.01 Hz, projected out: what any
   drift model removes from the BOLD) and z-scored again -> X [641, K]. `weights.npz` keeps the
   projection (`pca_mean`, `pca_components`, `component_mean`, `component_std`; `highpass_components`
   does the rest) and X itself (`components`).
3. Weights over the responsive voxels: for subject s, U_s = sqrt(0.5) * shared + sqrt(0.5) * individual_s
   (spatially smooth random fields, unit variance; participants differ clearly: their weight maps
   correlate ~0.5), component k scaled by 1/sqrt(1 + k/4) (earlier components matter more).
4. Hemodynamics: nilearn's SPM HRF (`spm_hrf`) delayed by a per-subject extra delay d_s ~ U(0.6, 2.4) s:
   h_s(t) = spm(t - d_s). The features of TR j drive volume i through h_s((i - j) * TR) (feature time
   and volume time both taken at the middle of their TR, so only whole-TR differences matter):
   R_s = sum_j X[j] h_s((i - j) TR) -> [641, K] (`regressors` in weights.npz).
   `lag_s` in truth.json is the peak time of h_s (= SPM peak ~5.0 s + d_s, so 5.6-7.4 s): the delay at
   which the signal's response to a feature change peaks; a delay profile over whole-TR lags peaks at
   round(lag_s / TR).
5. signal_s = R_s @ W_s with W_s = U_s scaled per voxel (`weights` in weights.npz, intensity units) so
   that std(signal) / std(noise) = snr_s * profile(v), profile 1 at the region's centre falling to 0.6
   at its rim; "noise" is the part no confound regression removes (AR(1) + physiological below).
   snr_s ~ U(3.0, 5.0) per subject (`snr` in truth.json; `snr_mean` is the voxel average).

Everything else (in bold, not in signal), per subject, in intensity units:
- baseline ~500-1000 inside the brain mask (smooth tissue pattern, brighter rim), Rayleigh noise
  (sigma 3) outside it;
- slow drift: DCT regressors below 0.01 Hz (k = 1..7) with smooth spatial maps, ~1-2 % of baseline;
- head motion: 6 parameters (smoothed random walks, 0-4 sudden jumps of 0.3-1.5 mm lasting 1-3
  volumes), applied as -grad(baseline) . displacement (rotations about the grid centre); a 2-4 %
  intensity dip in alternate slices at each jump onset (spin history). The confounds file holds the
  parameters (plus 0.01 mm / 0.0002 rad estimation noise), their derivatives and framewise displacement;
- cardiac (~1.1 Hz, per-subject rate 0.95-1.25 Hz drifting slowly, aliased at TR 0.608) and respiratory
  (0.25-0.33 Hz) oscillations with smooth spatial amplitude and phase maps, ~0.4 % each;
- AR(1) noise, rho ~ U(0.3, 0.5) per subject, sigma ~1 % of baseline (smoothly varying);
- rounding to int16.
None of these depends on the stimulus, so bold - signal is uncorrelated with the features in
expectation. With these settings a ridge model on delayed framegram features reaches held-out r
of roughly 0.4-0.7 in the responsive region.

Determinism and resumption: every random draw comes from `numpy.random.default_rng((seed, stream,
subject))`, so a subject's data does not depend on how many subjects are made; files are written
atomically; a subject whose files all exist is skipped; truth.json and weights.npz are written last.
A folder generated with another seed or size is refused.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framegram.datasets.film_drivers import (
    REGION_DRIVERS,
    annotation_tables,
    driver_film,
    film_drivers,
    read_appearances,
)
from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.io.ffmpeg import ffmpeg_executable
from framegram.media import fetch_media
from framegram.paths import cache_dir

TR = 0.608
N_VOLUMES = 641
FILM_SECONDS = 390.0
FILM_VERSION = 1
FPS = 5.0
N_COMPONENTS = 20
VOXEL_MM = 3.5
FULL_SHAPE = (64, 64, 40)
SMALL_SHAPE = (20, 20, 12)
SESSION = "ses-mri3t"
TASK = "film"
GENERATOR_VERSION = 1
#: the generator's name in the folders it writes (generator.json, sidecars, dataset_description.json);
#: kept from before the module moved to framegram.datasets, so folders generated earlier resume
GENERATOR_NAME = "framegram.synth.bids"
BLOCK_SECONDS = 30.0
N_BLOCKS = 13
RESPONSIVE_FRACTION = 0.12
SHARED_FRACTION = 0.5
#: what the BOLD answers to: "framegram" (the film's own framegram components: the pipeline's features,
#: a check of the machinery, not of the features), "film" (properties measured on the film's pixels,
#: sound and annotation by `framegram.datasets.film_drivers`, one region each) or "null" (the same
#: regions answering to random time courses unrelated to the film: held-out r must centre on zero)
SIGNALS = ("framegram", "film", "null")
#: the driver regions of "film" and "null": centre (unit grid coordinates x, y, z) and share of the brain
REGION_CENTRES = {
    "low-level": ((0.0, -0.85, 0.05), 0.05),
    "motion": ((0.6, -0.5, 0.0), 0.04),
    "sound": ((-0.7, 0.05, -0.15), 0.04),
    "semantic": ((0.45, 0.05, -0.45), 0.04),
}
N_NULL_DRIVERS = 128

# random streams (the second element of every seed tuple)
_S_MASK, _S_SHARED, _S_SUBJECT, _S_INDIVIDUAL, _S_NOISE, _S_ANAT, _S_PARTICIPANT = range(7)


class SynthBidsError(FramegramError):
    """A generated-BIDS folder that cannot be (re)used: made with other settings, or damaged."""


# ---------------------------------------------------------------------------------------------------------
# the stimulus


def stimulus_film() -> Path:
    """The stimulus: the first 390 s of Big Buck Bunny, centre-cropped to 4:3, 640x480, 25 fps, H.264
    (CRF 23, one thread: reproducible), no audio; rendered once into the cache folder."""
    target = cache_dir() / "synth" / f"bids-film-v{FILM_VERSION}.mp4"
    if target.exists():
        return target
    source = fetch_media("bbb-full.mp4")
    cmd = [
        ffmpeg_executable("making the stimulus film"), "-loglevel", "error", "-y", "-i", str(source), "-t", f"{FILM_SECONDS:.3f}",
        "-vf", "crop=ih*4/3:ih,scale=640:480,setsar=1,fps=25", "-an",
        "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", "-threads", "1", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-f", "mp4",
    ]
    with atomic_path(target, suffix=".mp4") as tmp:
        proc = subprocess.run([*cmd, str(tmp)], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FramegramError(f"{source}: ffmpeg could not render the stimulus film: {proc.stderr.strip()[-300:]}")
    return target


def tr_features(features: np.ndarray, times: np.ndarray, tr: float = TR, n_volumes: int = N_VOLUMES) -> np.ndarray:
    """Framegram rows averaged within each TR: row j = mean of rows with times in [j*tr, (j+1)*tr).

    features: float [T, D]; times: seconds [T]. Returns float64 [n_volumes, D]; a TR without frames
    (past the end of the video) repeats the last TR that has some.
    """
    index = np.floor(np.asarray(times) / tr + 1e-9).astype(int)
    keep = (index >= 0) & (index < n_volumes)
    sums = np.zeros((n_volumes, features.shape[1]))
    np.add.at(sums, index[keep], np.asarray(features, dtype=np.float64)[keep])
    counts = np.bincount(index[keep], minlength=n_volumes)
    out = sums / np.maximum(counts, 1)[:, None]
    for j in range(1, n_volumes):
        if counts[j] == 0:
            out[j] = out[j - 1]
    return out


@dataclass(frozen=True)
class FeatureProjection:
    """TR features -> z-scored PCA components: z = ((f - pca_mean) @ pca_components.T - component_mean) / component_std."""

    pca_mean: np.ndarray  #: float64 [D]
    pca_components: np.ndarray  #: float64 [K, D], orthonormal rows
    component_mean: np.ndarray  #: float64 [K]
    component_std: np.ndarray  #: float64 [K]

    def transform(self, tr_rows: np.ndarray) -> np.ndarray:
        scores = (np.asarray(tr_rows, dtype=np.float64) - self.pca_mean) @ self.pca_components.T
        return (scores - self.component_mean) / self.component_std


def fit_projection(tr_rows: np.ndarray, n_components: int = N_COMPONENTS) -> FeatureProjection:
    """PCA of the film's own TR rows (centred), K components, each z-scored over the run.
    Component signs are fixed (largest loading positive) so the projection is deterministic."""
    mean = tr_rows.mean(axis=0)
    _, _, vt = np.linalg.svd(tr_rows - mean, full_matrices=False)
    comps = vt[:n_components]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    scores = (tr_rows - mean) @ comps.T
    return FeatureProjection(mean, comps, scores.mean(axis=0), scores.std(axis=0))


def highpass_components(z: np.ndarray, n_dct: int = 7) -> np.ndarray:
    """Remove the slow part of the components (a constant and DCT regressors k = 1..n_dct: below
    0.01 Hz for 641 TRs of 0.608 s, what any drift model removes from the BOLD), then z-score again.
    z: [T, K] -> float64 [T, K]."""
    n = len(z)
    basis = np.column_stack([np.ones(n), _dct(n, n_dct)])
    resid = z - basis @ np.linalg.lstsq(basis, z, rcond=None)[0]
    return resid / resid.std(axis=0)


# ---------------------------------------------------------------------------------------------------------
# hemodynamics


def delayed_hrf(extra_delay: float, tr: float = TR, n_lags: int = 53) -> tuple[np.ndarray, float]:
    """nilearn's SPM HRF delayed by `extra_delay` seconds, sampled at whole-TR lags 0..n_lags-1.

    Returns (kernel [n_lags], peak time in seconds of the continuous delayed HRF).
    """
    from nilearn.glm.first_level import spm_hrf

    oversampling = 64
    fine = spm_hrf(tr, oversampling=oversampling, time_length=32.0)
    # nilearn samples its kernel on linspace(0, 32, n): take those times, not i * dt
    t_fine = np.linspace(0.0, 32.0, len(fine))
    lags = np.arange(n_lags) * tr
    kernel = np.interp(lags - extra_delay, t_fine, fine, left=0.0, right=0.0)
    peak = float(t_fine[int(np.argmax(fine))] + extra_delay)
    return kernel / kernel.max(), peak


def convolve_lags(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """R[i] = sum_j x[j] kernel[i - j] (causal, whole-TR lags). x: [T, K] -> [T, K]."""
    n = len(x)
    out = np.zeros_like(x, dtype=np.float64)
    for lag, h in enumerate(kernel):
        if lag >= n or h == 0.0:
            continue
        out[lag:] += h * x[: n - lag]
    return out


# ---------------------------------------------------------------------------------------------------------
# geometry


def _affine(shape: tuple[int, int, int]) -> np.ndarray:
    """RAS, 3.5 mm isotropic, grid centre at (0, -18, 10) mm."""
    aff = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    aff[:3, 3] = -VOXEL_MM * (np.asarray(shape) - 1) / 2 + np.array([0.0, -18.0, 10.0])
    return aff


def _smooth_field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / f.std()


def _unit_coords(shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel coordinates scaled to [-1, 1] along each axis (ij-indexing)."""
    axes = [np.linspace(-1, 1, n) for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def _brain_mask(shape, seed: int) -> np.ndarray:
    """A superellipsoid (exponent 2.6) with a softly deformed surface, filling ~45 % of the grid."""
    rng = np.random.default_rng((seed, _S_MASK, 0))
    x, y, z = _unit_coords(shape)
    deform = 0.04 * _smooth_field(rng, shape, sigma=max(shape) / 8)
    r = (np.abs(x / 0.93) ** 2.6 + np.abs(y / 0.95) ** 2.6 + np.abs((z + 0.05) / 0.9) ** 2.6) ** (1 / 2.6)
    return r + deform < 1.0


def _responsive_mask(brain: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The brain voxels nearest a posterior centre (ellipsoidal distance with a smooth deformation):
    RESPONSIVE_FRACTION of the brain, one compact blob. Returns (mask, profile) where profile is 1 at
    the centre falling linearly to 0.6 at the rim (0 outside)."""
    rng = np.random.default_rng((seed, _S_MASK, 1))
    shape = brain.shape
    x, y, z = _unit_coords(shape)
    d = np.sqrt((x / 0.8) ** 2 + ((y + 0.62) / 0.6) ** 2 + ((z - 0.1) / 0.7) ** 2)
    d = d + 0.06 * _smooth_field(rng, shape, sigma=max(shape) / 10)
    n = round(RESPONSIVE_FRACTION * int(brain.sum()))
    order = np.argsort(np.where(brain, d, np.inf), axis=None, kind="stable")[:n]
    mask = np.zeros(shape, bool)
    mask.flat[order] = True
    profile = np.zeros(shape)
    dd = d.flat[order]
    profile.flat[order] = 1.0 - 0.4 * (dd - dd.min()) / max(dd.max() - dd.min(), 1e-9)
    return mask, profile


def _region_masks(brain: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The driver regions of the "film" and "null" signals: one compact blob per region of
    REGION_CENTRES (the brain voxels nearest its centre, none shared). name -> (mask, profile), the
    profile 1 at the centre falling to 0.6 at the rim."""
    rng = np.random.default_rng((seed, _S_MASK, 3))
    x, y, z = _unit_coords(brain.shape)
    taken = ~brain
    out = {}
    for name, ((cx, cy, cz), share) in REGION_CENTRES.items():
        d = np.sqrt(((x - cx) / 0.5) ** 2 + ((y - cy) / 0.5) ** 2 + ((z - cz) / 0.5) ** 2)
        d = d + 0.05 * _smooth_field(rng, brain.shape, sigma=max(brain.shape) / 10)
        n = round(share * int(brain.sum()))
        order = np.argsort(np.where(taken, np.inf, d), axis=None, kind="stable")[:n]
        mask = np.zeros(brain.shape, bool)
        mask.flat[order] = True
        dd = d.flat[order]
        profile = np.zeros(brain.shape)
        profile.flat[order] = 1.0 - 0.4 * (dd - dd.min()) / max(dd.max() - dd.min(), 1e-9)
        taken |= mask
        out[name] = (mask, profile)
    return out


def _region_of(driver: str) -> int:
    """Index (in REGION_CENTRES' order) of the region a film driver acts in."""
    return next(i for i, drivers in enumerate(REGION_DRIVERS.values()) if driver in drivers)


def _region_mask_name(region: str) -> str:
    """BIDS file name of a region's mask in derivatives/framegram-synth (desc takes letters only)."""
    return f"desc-{region.replace('-', '')}_mask.nii.gz"


def _baseline(brain: np.ndarray, seed: int) -> np.ndarray:
    """Mean EPI intensity: ~500-1000 inside the brain (brighter rim, smooth texture), 0 outside, soft edge."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    rng = np.random.default_rng((seed, _S_MASK, 2))
    depth = distance_transform_edt(brain)
    rim = np.exp(-depth / 2.0)
    texture = _smooth_field(rng, brain.shape, sigma=1.5)
    base = 720 + 180 * rim + 60 * texture
    base = np.clip(base, 520, 980) * brain
    soft = gaussian_filter(brain.astype(float), 0.7)
    return np.where(brain, base * (0.85 + 0.15 * soft), 0.0)


# ---------------------------------------------------------------------------------------------------------
# the answer


@dataclass
class DatasetTruth:
    """A generated dataset: its paths (absolute) and the known answer. See the module docstring."""

    root: Path
    subjects: list[str]  #: "01", "02", ...
    tr: float
    n_volumes: int
    shape: tuple[int, int, int]  #: functional grid (x, y, z)
    seed: int
    small: bool
    n_components: int
    lag_s: dict[str, float]  #: per subject: peak time of the signal's impulse response to the features
    snr: dict[str, float]  #: per subject: std(signal) / std(AR + physiological noise) at the region centre
    stimulus: Path
    brain_mask: Path
    responsive_mask: Path
    truth_json: Path
    weights: Path
    bold: dict[str, Path] = field(default_factory=dict)
    signal: dict[str, Path] = field(default_factory=dict)
    confounds: dict[str, Path] = field(default_factory=dict)
    events: dict[str, Path] = field(default_factory=dict)
    t1w: dict[str, Path] = field(default_factory=dict)
    subject_info: dict[str, dict] = field(default_factory=dict)  #: truth.json's per-subject entries
    signal_model: str = "framegram"  #: what the BOLD answers to (SIGNALS)
    regions: dict[str, Path] = field(default_factory=dict)  #: "film"/"null": region name -> its mask
    region_drivers: dict[str, list[str]] = field(default_factory=dict)  #: region name -> the drivers it follows

    @classmethod
    def load(cls, out: str | Path) -> DatasetTruth:
        """Read the truth of a generated dataset folder (its truth.json and generator.json)."""
        root = Path(out).resolve()
        tj = root / "derivatives" / "framegram-synth" / "truth.json"
        gj = root / "derivatives" / "framegram-synth" / "generator.json"
        if not tj.is_file() or not gj.is_file():
            raise SynthBidsError(f"{root}: not a complete generated dataset (no truth.json; interrupted?)")
        truth, gen = json.loads(tj.read_text()), json.loads(gj.read_text())
        return _make_truth(root, sorted(truth["subjects"]), gen["seed"], gen["small"], truth)


def _subject_paths(root: Path, label: str) -> dict[str, Path]:
    sub = f"sub-{label}"
    func = root / sub / SESSION / "func"
    stem = f"{sub}_{SESSION}_task-{TASK}_run-1"
    return {
        "bold": func / f"{stem}_bold.nii.gz",
        "bold_json": func / f"{stem}_bold.json",
        "events": func / f"{stem}_events.tsv",
        "t1w": root / sub / SESSION / "anat" / f"{sub}_{SESSION}_run-1_T1w.nii.gz",
        "confounds": root / "derivatives" / "fmriprep" / sub / SESSION / "func" / f"{stem}_desc-confounds_timeseries.tsv",
        "signal": root / "derivatives" / "framegram-synth" / sub / SESSION / "func" / f"{stem}_desc-signal_bold.nii.gz",
    }


def _make_truth(root: Path, labels: list[str], seed: int, small: bool, truth: dict) -> DatasetTruth:
    synth = root / "derivatives" / "framegram-synth"
    paths = {label: _subject_paths(root, label) for label in labels}
    return DatasetTruth(
        root=root, subjects=labels, tr=truth["tr"], n_volumes=truth["n_volumes"],
        shape=tuple(SMALL_SHAPE if small else FULL_SHAPE), seed=seed, small=small,
        n_components=truth["n_components"],
        lag_s={k: truth["subjects"][k]["lag_s"] for k in labels},
        snr={k: truth["subjects"][k]["snr"] for k in labels},
        stimulus=root / truth["stimulus"],
        brain_mask=synth / "desc-brain_mask.nii.gz",
        responsive_mask=synth / "desc-responsive_mask.nii.gz",
        truth_json=synth / "truth.json",
        weights=synth / "weights.npz",
        bold={k: p["bold"] for k, p in paths.items()},
        signal={k: p["signal"] for k, p in paths.items()},
        confounds={k: p["confounds"] for k, p in paths.items()},
        events={k: p["events"] for k, p in paths.items()},
        t1w={k: p["t1w"] for k, p in paths.items()},
        subject_info={k: truth["subjects"][k] for k in labels},
        signal_model=truth.get("signal", "framegram"),
        regions={name: synth / r["mask"] for name, r in truth.get("regions", {}).items()},
        region_drivers={name: list(r["drivers"]) for name, r in truth.get("regions", {}).items()},
    )


# ---------------------------------------------------------------------------------------------------------
# per-subject draws that are cheap (made for every subject on every run, skipped or not)


@dataclass
class _SubjectPlan:
    label: str
    index: int
    extra_delay: float
    lag_s: float
    snr: float
    rho: float
    age: int
    sex: str
    kernel: np.ndarray  #: [n_lags]
    regressors: np.ndarray  #: float64 [T, K]
    individual: np.ndarray  #: float32 [K, V_r] unit fields
    unit_weights: np.ndarray  #: float32 [K, V_r] before per-voxel scaling


def _component_scale(k: int) -> np.ndarray:
    s = 1.0 / np.sqrt(1.0 + np.arange(k) / 4.0)
    return s / np.sqrt((s**2).mean())


#: per signal: the range of the extra HRF delay (s; the SPM HRF peaks ~5 s, so "film" and "null"
#: peak at 4-6.5 s, the lags of the participants a user met) and of the SNR at a region's centre
_DELAY_RANGE = {"framegram": (0.6, 2.4), "film": (-1.0, 1.5), "null": (-1.0, 1.5)}
_SNR_RANGE = {"framegram": (3.0, 5.0), "film": (1.0, 2.0), "null": (1.0, 2.0)}


def _plan_subject(index: int, seed: int, x: np.ndarray, shared: np.ndarray, geo: _Geometry, signal: str,
                  driver_region: np.ndarray) -> _SubjectPlan:
    """One participant's draws. x: float64 [T, K] the drivers; shared: float32 [K, V_r] the weight fields
    all share; driver_region: int [K] the region each driver acts in (film; -1: every region)."""
    resp = geo.responsive
    rng = np.random.default_rng((seed, _S_SUBJECT, index))
    extra = float(rng.uniform(*_DELAY_RANGE[signal]))
    snr = float(rng.uniform(*_SNR_RANGE[signal]))
    rho = float(rng.uniform(0.3, 0.5))
    age = int(rng.integers(18, 41))
    sex = "F" if rng.random() < 0.5 else "M"
    kernel, peak = delayed_hrf(extra)
    k = x.shape[1]
    irng = np.random.default_rng((seed, _S_INDIVIDUAL, index))
    sigma = max(resp.shape) / 16
    if signal == "null":
        individual = np.zeros((k, resp.sum()), np.float32)
    else:
        individual = np.stack([_smooth_field(irng, resp.shape, sigma)[resp] for _ in range(k)]).astype(np.float32)
        individual /= individual.std(axis=1, keepdims=True)
    if signal == "null":
        # each voxel follows one of many random time courses with its own sign: independent drivers
        unit = np.zeros((k, resp.sum()), np.float32)
        unit[irng.integers(0, k, resp.sum()), np.arange(resp.sum())] = np.sign(irng.standard_normal(resp.sum()))
    else:
        unit = np.sqrt(SHARED_FRACTION) * shared + np.sqrt(1 - SHARED_FRACTION) * individual
        if signal == "framegram":
            unit = unit * _component_scale(k)[:, None]
        else:  # a driver acts only in its own region
            unit = unit * (driver_region[:, None] == geo.voxel_region[None, :])
    return _SubjectPlan(
        label=f"{index + 1:02d}", index=index, extra_delay=extra, lag_s=peak, snr=snr, rho=rho, age=age, sex=sex,
        kernel=kernel, regressors=convolve_lags(x, kernel), individual=individual, unit_weights=unit.astype(np.float32),
    )


# ---------------------------------------------------------------------------------------------------------
# per-subject heavy part: the 4D volumes


def _motion(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[int]]:
    """6 motion parameters [n, 6] (mm, mm, mm, rad, rad, rad) and the volumes where jumps start."""
    from scipy.ndimage import gaussian_filter1d

    steps = rng.standard_normal((n, 6)) * np.array([0.02, 0.03, 0.04, 0.0004, 0.0003, 0.0003])
    walk = gaussian_filter1d(np.cumsum(steps, axis=0), 2.0, axis=0)
    walk -= walk[0]
    jumps = sorted(int(j) for j in rng.choice(np.arange(20, n - 10), size=int(rng.integers(0, 5)), replace=False))
    for j in jumps:
        length = int(rng.integers(1, 4))
        size = rng.uniform(0.3, 1.5)
        direction = rng.standard_normal(6) * np.array([1, 1, 1, 0.01, 0.01, 0.01])
        direction /= np.linalg.norm(direction[:3])
        walk[j : j + length] += size * direction
    return walk, jumps


def _confounds_table(params: np.ndarray) -> str:
    names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    deriv = np.vstack([np.full((1, 6), np.nan), np.diff(params, axis=0)])
    fd = np.concatenate([[np.nan], np.abs(deriv[1:, :3]).sum(axis=1) + 50.0 * np.abs(deriv[1:, 3:]).sum(axis=1)])
    cols = names + [f"{n}_derivative1" for n in names] + ["framewise_displacement"]
    data = np.column_stack([params, deriv, fd])
    lines = ["\t".join(cols)]
    for row in data:
        lines.append("\t".join("n/a" if np.isnan(v) else f"{v:.6g}" for v in row))
    return "\n".join(lines) + "\n"


def _events_table() -> str:
    lines = ["onset\tduration\ttrial_type"]
    for b in range(N_BLOCKS):
        lines.append(f"{b * BLOCK_SECONDS:.1f}\t{BLOCK_SECONDS:.1f}\t{'speech' if b % 2 == 0 else 'music'}")
    return "\n".join(lines) + "\n"


def _dct(n: int, kmax: int) -> np.ndarray:
    t = (np.arange(n) + 0.5) / n
    return np.column_stack([np.cos(np.pi * k * t) for k in range(1, kmax + 1)])


@dataclass
class _Geometry:
    shape: tuple[int, int, int]
    affine: np.ndarray
    brain: np.ndarray
    responsive: np.ndarray
    profile: np.ndarray  #: [V_r]
    region_names: tuple[str, ...]  #: ("responsive",) for the "framegram" signal, REGION_CENTRES' names otherwise
    regions: np.ndarray  #: bool [n_regions, X, Y, Z] the region masks (their union is `responsive`)
    voxel_region: np.ndarray  #: int [V_r] each responsive voxel's region (index into region_names)
    baseline: np.ndarray  #: float64 grid
    brain_idx: np.ndarray  #: C-order flat indices into a (z, y, x) grid of the brain voxels
    resp_in_brain: np.ndarray  #: positions of the responsive voxels within brain_idx
    motion_maps: np.ndarray  #: [6, V_brain] intensity change per mm / per rad


def _geometry(shape, seed: int, signal: str = "framegram") -> _Geometry:
    brain = _brain_mask(shape, seed)
    if signal == "framegram":
        responsive, profile = _responsive_mask(brain, seed)
        names, regions = ("responsive",), responsive[None]
    else:
        found = _region_masks(brain, seed)
        names = tuple(found)
        regions = np.stack([mask for mask, _ in found.values()])
        responsive = regions.any(axis=0)
        profile = sum(p for _, p in found.values())
    voxel_region = np.argmax(regions[:, responsive], axis=0)
    base = _baseline(brain, seed)
    # C-order flat index of the transposed (z, y, x) grid = NIfTI's on-disk (Fortran) order of (x, y, z)
    zyx = np.arange(brain.size).reshape(shape[::-1]).transpose(2, 1, 0)  # zyx[i, j, k] = flat index of (k, j, i)
    brain_idx = zyx[brain]  # brain voxels in (x, y, z) C order
    resp_in_brain = np.flatnonzero(responsive[brain])
    grads = np.stack(np.gradient(base, VOXEL_MM))  # [3, x, y, z] per mm
    centre = (np.asarray(shape) - 1) / 2
    pos = np.stack(np.meshgrid(*[(np.arange(n) - c) * VOXEL_MM for n, c in zip(shape, centre)], indexing="ij"))
    maps = [-grads[a] for a in range(3)]  # translation along axis a by 1 mm
    for a in range(3):  # rotation about axis a by 1 rad: displacement = e_a x r
        e = np.zeros(3)
        e[a] = 1.0
        disp = np.cross(e[:, None, None, None], pos, axis=0)
        maps.append(-(grads * disp).sum(axis=0))
    motion_maps = np.stack([m[brain] for m in maps]).astype(np.float32)
    return _Geometry(tuple(shape), _affine(shape), brain, responsive, profile[responsive], names, regions,
                     voxel_region, base, brain_idx, resp_in_brain, motion_maps)


def _subject_volumes(plan: _SubjectPlan, geo: _Geometry, seed: int) -> dict:
    """The 4D data of one subject. Returns bold (int16 [T, Z*Y*X] C order = NIfTI order), signal
    (float32 [T, V_r]), final weights [K, V_r], motion parameters as reported, achieved snr."""
    rng = np.random.default_rng((seed, _S_NOISE, plan.index))
    n = N_VOLUMES
    base = geo.baseline[geo.brain].astype(np.float32)  # [V]
    nv = base.size

    # spatial maps of the nuisance terms (smooth fields over the grid, sampled in the brain)
    sig = max(geo.shape) / 12

    def field_(scale: float) -> np.ndarray:
        return (_smooth_field(rng, geo.shape, sig)[geo.brain] * scale).astype(np.float32)

    # low-rank nuisance: drift (7 DCT), motion (6), cardiac (2), respiration (2)
    drift_t = _dct(n, 7)
    drift_maps = np.stack([field_(0.012 / k) for k in range(1, 8)]) * base
    params, jumps = _motion(rng, n)
    f_card = rng.uniform(0.95, 1.25) + 0.04 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n)
    phase_c = 2 * np.pi * np.cumsum(f_card) * TR + rng.uniform(0, 2 * np.pi)
    f_resp = rng.uniform(0.25, 0.33) + 0.02 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n)
    phase_r = 2 * np.pi * np.cumsum(f_resp) * TR + rng.uniform(0, 2 * np.pi)
    amp_c = 0.004 * np.abs(1 + 0.6 * field_(1.0)) * base
    amp_r = 0.004 * np.abs(1 + 0.5 * field_(1.0)) * base
    psi_c, psi_r = field_(1.5), field_(1.0)
    time_courses = np.column_stack([drift_t, params, np.cos(phase_c), np.sin(phase_c), np.cos(phase_r), np.sin(phase_r)])
    maps = np.vstack([
        drift_maps, geo.motion_maps,
        amp_c * np.cos(psi_c), -amp_c * np.sin(psi_c), amp_r * np.cos(psi_r), -amp_r * np.sin(psi_r),
    ]).astype(np.float32)
    physio_cols = slice(7 + 6, None)

    # AR(1) noise, sigma ~1 % of baseline
    sigma = (0.01 * base * (1 + 0.2 * field_(1.0))).astype(np.float32)
    white = rng.standard_normal((n, nv), dtype=np.float32)
    noise = np.empty_like(white)
    noise[0] = white[0]
    c = np.float32(math.sqrt(1 - plan.rho**2))
    rho = np.float32(plan.rho)
    for i in range(1, n):
        np.multiply(noise[i - 1], rho, out=noise[i])
        noise[i] += c * white[i]
    del white
    noise *= sigma

    # the signal, scaled per voxel against the noise no confound regression removes
    r = geo.resp_in_brain
    unremovable = noise[:, r] + time_courses[:, physio_cols].astype(np.float32) @ maps[physio_cols][:, r]
    raw = (plan.regressors.astype(np.float32) @ plan.unit_weights).astype(np.float32)
    target = plan.snr * geo.profile * unremovable.std(axis=0)
    scale = (target / raw.std(axis=0)).astype(np.float32)
    weights = plan.unit_weights * scale[None, :]
    signal = (plan.regressors.astype(np.float32) @ weights).astype(np.float32)
    achieved = float((signal.std(axis=0) / unremovable.std(axis=0)).mean())

    data = noise
    data += base
    data += time_courses.astype(np.float32) @ maps
    data[:, r] += signal
    # spin-history dip in alternate slices at each jump onset
    slice_of = geo.brain_idx // (geo.shape[0] * geo.shape[1])
    odd = (slice_of % 2 == 1)
    for j in jumps:
        data[j, odd] *= np.float32(1 - rng.uniform(0.02, 0.04))

    bold = np.zeros((n, int(np.prod(geo.shape))), dtype=np.int16)
    bold[:, geo.brain_idx] = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    del data, noise
    out_idx = np.setdiff1d(np.arange(bold.shape[1]), geo.brain_idx, assume_unique=True)
    bg = 3.0 * np.sqrt(2.0 * rng.standard_exponential((n, out_idx.size), dtype=np.float32))
    bold[:, out_idx] = np.rint(bg).astype(np.int16)

    reported = params + rng.standard_normal(params.shape) * np.array([0.01] * 3 + [0.0002] * 3)
    return {"bold": bold, "signal": signal, "weights": weights, "params": reported, "snr_mean": achieved,
            "jumps": jumps}


def _write_nifti(path: Path, data_tzyx: np.ndarray | None, geo: _Geometry, *, volume=None, dtype=None,
                 zooms_t: float | None = TR) -> None:
    """Write a NIfTI-1 .nii.gz atomically. 4D data comes as C-order [T, Z*Y*X] (written without a copy)."""
    import nibabel as nib

    if volume is None:
        n = data_tzyx.shape[0]
        arr = data_tzyx.reshape((n, *geo.shape[::-1])).transpose(3, 2, 1, 0)  # F-contiguous (x, y, z, t)
    else:
        arr = volume
    img = nib.Nifti1Image(arr, geo.affine)
    hdr = img.header
    hdr.set_data_dtype(dtype or arr.dtype)
    hdr.set_xyzt_units("mm", "sec")
    if arr.ndim == 4:
        hdr.set_zooms((VOXEL_MM, VOXEL_MM, VOXEL_MM, zooms_t))
    img.set_sform(geo.affine, code=1)
    img.set_qform(geo.affine, code=1)
    if np.dtype(dtype or arr.dtype).kind in "iu":
        hdr.set_slope_inter(1.0, 0.0)
    _save_nifti(img, path)


def _save_nifti(img, path: Path) -> None:
    """Atomic .nii.gz at gzip level 1 (fast; noisy data barely compresses further at higher levels)."""
    import gzip

    from nibabel.fileholders import FileHolder

    with (
        atomic_path(path, suffix=".nii.gz") as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as gz,
    ):
        img.to_file_map({"image": FileHolder(fileobj=gz), "header": FileHolder(fileobj=gz)})


def _t1w(geo: _Geometry, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A plausible T1w head at twice the functional resolution: scalp, skull, CSF, grey and white matter."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom

    rng = np.random.default_rng((seed, _S_ANAT, index))
    brain = zoom(geo.brain.astype(np.float32), 2, order=1) > 0.5
    depth = distance_transform_edt(brain) * VOXEL_MM / 2  # mm inside the brain
    outside = distance_transform_edt(~brain) * VOXEL_MM / 2  # mm outside
    img = np.zeros(brain.shape, np.float32)
    img[brain] = np.where(depth[brain] < 3.0 + 1.0 * rng.random(), 600.0, 900.0)  # grey rim, white core
    img[(~brain) & (outside < 2.5)] = 150.0  # CSF
    img[(outside >= 2.5) & (outside < 6.0)] = 80.0  # skull
    img[(outside >= 6.0) & (outside < 10.0)] = 750.0  # scalp
    img = gaussian_filter(img, 0.8) + rng.normal(0, 15, img.shape).astype(np.float32)
    aff = geo.affine.copy()
    aff[:3, :3] /= 2
    aff[:3, 3] -= VOXEL_MM / 4
    return np.clip(np.rint(img), 0, 4000).astype(np.int16), aff


def _write_t1w(path: Path, geo: _Geometry, seed: int, index: int) -> None:
    import nibabel as nib

    vol, aff = _t1w(geo, seed, index)
    img = nib.Nifti1Image(vol, aff)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_slope_inter(1.0, 0.0)
    _save_nifti(img, path)


def _write_text(path: Path, text: str, only_if_changed: bool = True) -> None:
    if only_if_changed and path.is_file() and path.read_text() == text:
        return
    atomic_write_bytes(path, text.encode())


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------
# the dataset


def generate_dataset(
    out: str | Path, subjects: int = 30, small: bool = False, seed: int = 20261122, show_progress: bool = True,
    signal: str = "framegram",
) -> DatasetTruth:
    """Write (or complete) a generated ds003688-shaped BIDS dataset in `out`; return its truth.

    subjects: number of participants (sub-01 ...); small: 20x20x12 grid instead of 64x64x40 (same 641
    volumes, TR and stimulus); seed: every random draw follows from it (a subject's data does not depend
    on `subjects`); signal: what the BOLD answers to (SIGNALS: "framegram" as described above; "film":
    the properties `framegram.datasets.film_drivers` measures on its film, each group in its own region;
    "null": random time courses in the same regions). A subject whose files all exist is skipped, so an
    interrupted run resumes; truth.json and weights.npz are written last. Raises SynthBidsError for a
    folder made with another seed, size or signal.
    """
    from framegram.cache import framegram_for
    from framegram.progress import extraction_progress

    if subjects < 1 or subjects > 99:
        raise SynthBidsError(f"{out}: subjects must be 1..99, not {subjects}")
    if signal not in SIGNALS:
        raise SynthBidsError(f"{out}: signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
    root = Path(out).resolve()
    synth = root / "derivatives" / "framegram-synth"
    shape = SMALL_SHAPE if small else FULL_SHAPE
    generator = {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": seed, "small": small,
                 "shape": list(shape), "n_volumes": N_VOLUMES, "tr": TR}
    if signal != "framegram":  # folders of the first signal model keep their generator.json
        generator["signal"] = signal
    gen_path = synth / "generator.json"
    if gen_path.is_file():
        previous = json.loads(gen_path.read_text())
        if previous != generator:
            raise SynthBidsError(
                f"{root}: generated earlier with other settings ({previous.get('seed')=}, {previous.get('small')=}, "
                f"signal {previous.get('signal', 'framegram')}, version {previous.get('version')}); use another folder"
            )
    root.mkdir(parents=True, exist_ok=True)
    _write_json(gen_path, generator)

    with extraction_progress(show_progress) as bars:
        # stimulus and its features
        task = bars.add_task("stimulus film and framegram", total=None)
        film = stimulus_film() if signal == "framegram" else driver_film()
        stim = root / "stimuli" / "film.mp4"
        if not stim.is_file() or stim.stat().st_size != film.stat().st_size:
            with atomic_path(stim, suffix=".mp4") as tmp:
                shutil.copyfile(film, tmp)
        projection, encoder_name = None, None
        if signal == "framegram":
            framegram, _ = framegram_for(film, fps=FPS)
            encoder_name = framegram.meta.encoder.name
            rows = tr_features(framegram.features, framegram.times)
            projection = fit_projection(rows)
            x = highpass_components(projection.transform(rows))
            driver_names = tuple(f"component{k:02d}" for k in range(N_COMPONENTS))
            driver_region = np.zeros(N_COMPONENTS, int)
        elif signal == "film":
            raw, driver_names = film_drivers(film, TR, N_VOLUMES)
            x = highpass_components((raw - raw.mean(0)) / raw.std(0))
            driver_region = np.array([_region_of(name) for name in driver_names])
        else:
            from scipy.ndimage import gaussian_filter1d

            # smooth to different degrees (1.5-15 TRs, ~1-9 s), so that some wander as slowly as a
            # film's 30-s speech and music blocks, where chance agreement with a feature is largest
            nrng = np.random.default_rng((seed, _S_SHARED, 1))
            widths = np.geomspace(1.5, 15.0, N_NULL_DRIVERS)
            white = nrng.standard_normal((N_VOLUMES, N_NULL_DRIVERS))
            x = highpass_components(np.column_stack([gaussian_filter1d(white[:, k], w) for k, w in enumerate(widths)]))
            driver_names = tuple(f"random{k:03d}" for k in range(N_NULL_DRIVERS))
            driver_region = np.full(N_NULL_DRIVERS, -1)
        if signal != "framegram":
            for label, table in annotation_tables(read_appearances(film)).items():
                _write_text(root / "stimuli" / "annotations" / f"{label}.tsv", table)
        bars.update(task, total=1, completed=1)

        geo = _geometry(shape, seed, signal)
        srng = np.random.default_rng((seed, _S_SHARED, 0))
        sigma = max(shape) / 16
        k = x.shape[1] if signal != "null" else 0
        shared = np.stack([_smooth_field(srng, shape, sigma)[geo.responsive] for _ in range(k)]) if k else np.zeros((0, 0))
        shared = (shared / shared.std(axis=1, keepdims=True)).astype(np.float32) if k else shared
        plans = [_plan_subject(i, seed, x, shared, geo, signal, driver_region) for i in range(subjects)]

        _write_top_level(root, plans, geo, seed)

        # subjects
        task = bars.add_task(f"subjects ({'small' if small else 'full'} grid)", total=subjects)
        results: dict[str, dict] = {}
        for plan in plans:
            paths = _subject_paths(root, plan.label)
            meta_path = synth / "parts" / f"sub-{plan.label}_truth.json"
            if all(p.is_file() for p in paths.values()) and meta_path.is_file():
                results[plan.label] = json.loads(meta_path.read_text())
                bars.advance(task)
                continue
            vols = _subject_volumes(plan, geo, seed)
            _write_nifti(paths["signal"], None, geo,
                         volume=_signal_volume(vols["signal"], geo), dtype=np.float32)
            _write_text(paths["confounds"], _confounds_table(vols["params"]))
            _write_text(paths["events"], _events_table())
            _write_json(paths["bold_json"], {"TaskName": TASK, "RepetitionTime": TR, "SkullStripped": False,
                                              "Manufacturer": f"{GENERATOR_NAME} (generated)"})
            _write_t1w(paths["t1w"], geo, seed, plan.index)
            _write_nifti(paths["bold"], vols["bold"], geo)
            entry = {"lag_s": round(plan.lag_s, 4), "extra_delay_s": round(plan.extra_delay, 4), "snr": round(plan.snr, 4),
                     "snr_mean": round(vols["snr_mean"], 4), "ar1_rho": round(plan.rho, 4), "motion_jumps": vols["jumps"]}
            _write_weights_part(synth / "parts" / f"sub-{plan.label}_weights.npy", vols["weights"])
            _write_json(meta_path, entry)  # last: marks the subject complete
            results[plan.label] = entry
            bars.advance(task)

        # the answer, last
        labels = [p.label for p in plans]
        truth = {
            "tr": TR, "n_volumes": N_VOLUMES, "stimulus": "stimuli/film.mp4", "stimulus_offset_s": 0.0, "fps": FPS,
            "encoder": encoder_name, "signal": signal, "drivers": list(driver_names),
            "regions": {name: {"drivers": [d for d, r in zip(driver_names, driver_region) if r in (i, -1)],
                               "voxels": int(geo.regions[i].sum()), "mask": _region_mask_name(name)}
                        for i, name in enumerate(geo.region_names)} if signal != "framegram" else {},
            "n_components": N_COMPONENTS, "hrf": "spm (nilearn)", "shape": list(shape), "voxel_mm": VOXEL_MM,
            "shared_fraction": SHARED_FRACTION, "responsive_voxels": int(geo.responsive.sum()),
            "brain_voxels": int(geo.brain.sum()),
            "lag_definition": "peak time (s) of the signal's impulse response to the TR-averaged features: "
                              "SPM HRF peak + extra_delay_s; features of TR j drive volume i through h((i-j)*TR)",
            "snr_definition": "snr: std(signal)/std(AR(1)+physiological noise) at the region centre (0.6x at the "
                              "rim); snr_mean: its average over responsive voxels",
            "subjects": {k: {**results[k], "age": p.age, "sex": p.sex} for k, p in zip(labels, plans)},
            "seed": seed, "small": small,
        }
        weights = {
            "subjects": np.array(labels),
            "voxels": np.argwhere(geo.responsive).astype(np.int16),  # ijk, the column order of every weight array
            **({"pca_mean": projection.pca_mean, "pca_components": projection.pca_components,
                "component_mean": projection.component_mean, "component_std": projection.component_std}
               if projection is not None else {}),
            "components": x.astype(np.float32), "driver_names": np.array(driver_names),
            "voxel_region": geo.voxel_region.astype(np.int16), "region_names": np.array(geo.region_names),
            "shared": shared,
            "individual": np.stack([p.individual for p in plans]),
            "weights": np.stack([np.load(synth / "parts" / f"sub-{k}_weights.npy") for k in labels]),
            "regressors": np.stack([p.regressors for p in plans]).astype(np.float32),
            "kernels": np.stack([p.kernel for p in plans]),
            "lag_s": np.array([p.lag_s for p in plans]),
        }
        with atomic_path(synth / "weights.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **weights)
        _write_json(synth / "truth.json", truth)
    return _make_truth(root, labels, seed, small, truth)


def _signal_volume(signal: np.ndarray, geo: _Geometry) -> np.ndarray:
    vol = np.zeros((*geo.shape, signal.shape[0]), dtype=np.float32, order="F")
    idx = np.nonzero(geo.responsive)
    vol[idx[0], idx[1], idx[2], :] = signal.T
    return vol


def _write_weights_part(path: Path, weights: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, weights.astype(np.float32))


def _write_top_level(root: Path, plans: list[_SubjectPlan], geo: _Geometry, seed: int) -> None:
    synth = root / "derivatives" / "framegram-synth"
    _write_json(root / "dataset_description.json", {
        "Name": "framegram synthetic film-watching fMRI (shaped like OpenNeuro ds003688)",
        "BIDSVersion": "1.8.0", "DatasetType": "raw", "License": "CC0",
        "Authors": [GENERATOR_NAME],
        "GeneratedBy": [{"Name": GENERATOR_NAME, "Version": str(GENERATOR_VERSION)}],
    })
    lines = ["participant_id\tage\tsex"] + [f"sub-{p.label}\t{p.age}\t{p.sex}" for p in plans]
    _write_text(root / "participants.tsv", "\n".join(lines) + "\n")
    _write_text(root / "README", (
        "Generated data, not a recording. framegram.datasets.bids made this dataset in the layout of OpenNeuro\n"
        "ds003688 (participants watching a 6.5-minute film: one run, TR 0.608 s, 641 volumes). The stimulus\n"
        "is the first 390 s of Big Buck Bunny (stimuli/film.mp4). The BOLD runs hold a known stimulus-driven\n"
        "signal in a responsive region plus drift, motion, physiological and AR(1) noise; the answer is in\n"
        "derivatives/framegram-synth (see truth.json). Seed: " + str(seed) + "\n"
    ))
    _write_json(root / f"task-{TASK}_bold.json", {"TaskName": TASK, "RepetitionTime": TR})
    _write_text(root / ".bidsignore", "stimuli/\n")
    _write_json(root / "derivatives" / "fmriprep" / "dataset_description.json", {
        "Name": "fMRIPrep-style confounds (generated)", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "synthetic",
                         "Description": f"motion parameters as fMRIPrep writes them, from {GENERATOR_NAME}"}],
    })
    _write_json(synth / "dataset_description.json", {
        "Name": "framegram synthetic ground truth", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "framegram-synth", "Version": str(GENERATOR_VERSION)}],
    })
    brain = synth / "desc-brain_mask.nii.gz"
    if not brain.is_file():
        _write_nifti(brain, None, geo, volume=geo.brain.astype(np.uint8))
    resp = synth / "desc-responsive_mask.nii.gz"
    if not resp.is_file():
        _write_nifti(resp, None, geo, volume=geo.responsive.astype(np.uint8))
    if geo.region_names != ("responsive",):
        for name, mask in zip(geo.region_names, geo.regions):
            path = synth / _region_mask_name(name)
            if not path.is_file():
                _write_nifti(path, None, geo, volume=mask.astype(np.uint8))
