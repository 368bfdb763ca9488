"""One participant, end to end: BOLD → mask → split → clean (train-fitted) → encoder → scores,
delay profile, controls and the published protocol. `fit_dataset` loops over participants and
writes everything with `outputs.write_subject`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from framegram.brain.bids import BoldRun, find_runs, load_framewise_displacement
from framegram.brain.clean import BoldCleaner
from framegram.brain.controls import PublishedResult, persistence_r, published_protocol
from framegram.brain.metrics import fdr_bh, pearson_r, r2_score, shift_null_pvalues
from framegram.brain.model import DEFAULT_ALPHAS, BrainEncoder
from framegram.brain.stimulus import Design, build_design


@dataclass
class BrainConfig:
    """Settings of a fit. Times in seconds.

    offset_s: scan time at which the film starts; basis: "fir" (delays 0..max_delay_s) or "hrf";
    n_components: principal components of the per-TR stimulus kept (None: all D features; the
    default 20 is what worked on the generated data, whose signal lives in 20 components: with all
    1280 features x 17 delays and ~450 training volumes the ridge is variance-limited);
    train_fraction: the first part of the run used to fit cleaning and model, the rest is held out;
    cv/gap: contiguous inner folds for the per-voxel alphas; high_pass_hz: cosine drift cut-off;
    motion: regress the motion confounds; fd_threshold_mm: volumes whose framewise displacement
    exceeds it get an indicator regressor (None: none); held_out_cleaning: see `BoldCleaner`;
    fdr_q: false discovery rate of the significance map; controls/published: also run those.
    """

    offset_s: float = 0.0
    basis: str = "fir"
    max_delay_s: float = 10.0
    n_components: int | None = 20
    train_fraction: float = 0.7
    cv: int = 5
    gap: int = 8
    alphas: tuple[float, ...] = tuple(float(a) for a in DEFAULT_ALPHAS)
    solver: str = "kernel"
    high_pass_hz: float = 0.01
    motion: bool = True
    fd_threshold_mm: float | None = 0.3
    held_out_cleaning: str = "own"
    fdr_q: float = 0.05
    controls: bool = True
    published: bool = True


@dataclass
class SubjectFit:
    """What one participant's fit produced. V = voxels inside `mask` (bool [X, Y, Z]).

    r, r2, pvalues, significant, alphas: [V] on the held-out part; pred_test, y_test: float32
    [n_test, V] predicted and cleaned measured BOLD; delay_profile: [K] mean share of the weight
    norm per delay over significant voxels (lags in `lags_s`); controls: name → r [V];
    published: the published protocol's result.
    """

    run: BoldRun
    mask: np.ndarray
    affine: np.ndarray
    train: np.ndarray
    test: np.ndarray
    r: np.ndarray
    r2: np.ndarray
    pvalues: np.ndarray
    significant: np.ndarray
    alphas: np.ndarray
    pred_test: np.ndarray
    y_test: np.ndarray
    lags_s: np.ndarray
    delay_profile: np.ndarray
    peak_delay_s: np.ndarray
    controls: dict[str, np.ndarray] = field(default_factory=dict)
    published: PublishedResult | None = None

    @property
    def profile_peak_s(self) -> float | None:
        return float(self.lags_s[int(np.argmax(self.delay_profile))]) if len(self.lags_s) else None

    def summary(self) -> dict:
        """Scalars for results.json and the report."""
        sig = self.significant
        out = {
            "subject": self.run.subject,
            "tr": self.run.tr,
            "n_volumes": self.run.n_volumes,
            "n_train": int(len(self.train)),
            "n_test": int(len(self.test)),
            "voxels": int(self.mask.sum()),
            "significant": int(sig.sum()),
            "mean_r": float(self.r.mean()),
            "mean_r_significant": float(self.r[sig].mean()) if sig.any() else None,
            "top1pct_r": float(np.mean(np.sort(self.r)[-max(1, len(self.r) // 100):])),
            "delay_profile": [float(v) for v in self.delay_profile],
            "lags_s": [float(v) for v in self.lags_s],
            "profile_peak_s": self.profile_peak_s,
            "controls_mean_r": {k: float(v.mean()) for k, v in self.controls.items()},
            "controls_mean_r_significant": {k: float(v[sig].mean()) if sig.any() else None for k, v in self.controls.items()},
        }
        if self.published is not None:
            p = self.published
            out["published"] = {
                "mse_model": p.mse_model,
                "mse_persistence": p.mse_persistence,
                "mse_constant": p.mse_constant,
                "mean_r_volume": float(p.r_volume.mean()),
                "mean_r_change": float(p.r_change.mean()),
                "mean_r_volume_persistence": float(p.r_volume_persistence.mean()),
                "n_train": p.n_train,
                "n_test": p.n_test,
            }
        return out


def compute_mask(bold_img) -> np.ndarray:
    """Brain mask from the mean EPI (nilearn's `compute_epi_mask`): bool [X, Y, Z]."""
    from nilearn.masking import compute_epi_mask

    return np.asarray(compute_epi_mask(bold_img).get_fdata() > 0)


def split(n: int, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """First `train_fraction` of the volumes to train, the rest held out (contiguous)."""
    n_train = int(round(train_fraction * n))
    if not 10 <= n_train <= n - 10:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} volumes to train")
    return np.arange(n_train), np.arange(n_train, n)


def nuisance_cleaner(run: BoldRun, config: BrainConfig) -> BoldCleaner:
    """The (unfitted) nuisance cleaner of `run` under `config`: drifts, motion confounds, FD spikes."""
    confounds = run.load_confounds() if config.motion else None
    fd = load_framewise_displacement(run) if config.fd_threshold_mm is not None else None
    spikes = fd > config.fd_threshold_mm if fd is not None else None
    return BoldCleaner(run.tr, config.high_pass_hz, confounds=confounds, held_out=config.held_out_cleaning, spikes=spikes)


def fit_subject(
    run: BoldRun,
    features: np.ndarray,
    frame_times: np.ndarray,
    config: BrainConfig | None = None,
    stimulus_name: str = "stimulus",
    mask: np.ndarray | None = None,
) -> SubjectFit:
    """Fit and score one participant. features: float [T, D] framegram rows at `frame_times` (film s)."""
    config = config or BrainConfig()
    img = run.load_bold()
    design = build_design(
        features, frame_times, run.tr, run.n_volumes, config.offset_s, config.basis,
        config.max_delay_s, config.n_components, source=stimulus_name,
    )
    data = np.asarray(img.dataobj, dtype=np.float32)  # [X, Y, Z, n]
    if mask is None:  # from the array already read, not the file again
        mask = compute_mask(img.__class__(data, img.affine, img.header))
    y_raw = data[mask].T  # [n, V]
    train, test = split(run.n_volumes, config.train_fraction)
    cleaner = nuisance_cleaner(run, config)
    y = cleaner.fit_transform(y_raw, train)
    design = replace(design, matrix=cleaner.residualize(design.matrix))

    def encoder() -> BrainEncoder:
        return BrainEncoder(alphas=config.alphas, cv=config.cv, gap=config.gap, solver=config.solver)

    model = encoder().fit(design.matrix[train], y[train])
    pred = model.predict(design.matrix[test])
    r = pearson_r(pred, y[test])
    pvalues = shift_null_pvalues(pred, y[test])
    significant = fdr_bh(pvalues, config.fdr_q)
    lags, profile, peak = _delay_profile(model, design, r, significant)
    fit = SubjectFit(
        run=run, mask=mask, affine=img.affine, train=train, test=test, r=r, r2=r2_score(pred, y[test]),
        pvalues=pvalues, significant=significant, alphas=model.best_alphas_, pred_test=pred, y_test=y[test],
        lags_s=lags, delay_profile=profile, peak_delay_s=peak,
    )
    if config.controls:
        fit.controls = _controls(design, y, train, test, encoder, cleaner)
    if config.published:
        fit.published = published_protocol(
            data.reshape(-1, run.n_volumes).T, features, frame_times, run.tr, config.offset_s, mask=mask.reshape(-1)
        )
    return fit


def _delay_profile(model: BrainEncoder, design: Design, r: np.ndarray, significant: np.ndarray):
    """Mean over the significant voxels (else the best 1 %) of each delay's share of the weight norm."""
    if design.basis != "fir":
        return np.zeros(0), np.zeros(0), np.zeros(len(r))
    voxels = np.flatnonzero(significant)
    if len(voxels) == 0:
        voxels = np.argsort(r)[-max(1, len(r) // 100):]
    blocks = model.coef_blocks(design.n_blocks)  # [K, V]
    share = blocks / np.maximum(blocks.sum(0, keepdims=True), 1e-30)
    profile = share[:, voxels].mean(1)
    peak = design.lags_s[np.argmax(blocks, axis=0)]
    return design.lags_s, profile, peak


def _controls(design: Design, y: np.ndarray, train: np.ndarray, test: np.ndarray, encoder, cleaner) -> dict[str, np.ndarray]:
    n = len(y)
    out = {}
    constant = np.ones((n, 1), dtype=np.float32)
    out["constant features"] = pearson_r(encoder().fit(constant[train], y[train]).predict(constant[test]), y[test])
    rolled = np.roll(design.per_tr, n // 2, axis=0)
    shifted = cleaner.residualize(build_shifted(design, rolled))
    out["shifted features"] = pearson_r(encoder().fit(shifted[train], y[train]).predict(shifted[test]), y[test])
    out["previous volume"] = persistence_r(y, test)
    return out


def build_shifted(design: Design, rolled_per_tr: np.ndarray) -> np.ndarray:
    """The design rebuilt from circularly shifted per-TR features (same basis and delays)."""
    from framegram.brain.stimulus import add_delays, convolve_basis, hrf_basis

    centred = rolled_per_tr - rolled_per_tr.mean(0)
    if design.basis == "fir":
        return add_delays(centred, np.round(design.lags_s / design.tr).astype(int))
    return convolve_basis(centred, hrf_basis(design.tr))


def fit_dataset(
    bids_root: str | Path,
    stimulus: str | Path,
    out: str | Path,
    subjects: list[str] | None = None,
    config: BrainConfig | None = None,
    show_progress: bool = False,
    task: str = "film",
) -> Path:
    """Fit every (or the listed) participant's run against the stimulus video (or .framegram.npz)
    and write the maps, predictions and summaries under `out`. Returns the path of results.json."""
    from framegram.brain.outputs import write_results, write_subject
    from framegram.cache import framegram_for
    from framegram.progress import extraction_progress

    config = config or BrainConfig()
    runs = find_runs(bids_root, subjects, task)
    framegram, _ = framegram_for(stimulus, show_progress=show_progress)
    summaries = []
    with extraction_progress(show_progress) as bars:
        task_id = bars.add_task("fitting participants", total=len(runs))
        for run in runs:
            bars.update(task_id, description=f"sub-{run.subject}")
            fit = fit_subject(run, framegram.features, framegram.times, config, stimulus_name=str(stimulus))
            summaries.append(write_subject(fit, Path(out)))
            bars.advance(task_id)
    return write_results(Path(out), summaries, asdict(config), {"bids": str(bids_root), "stimulus": str(stimulus), "task": task})
