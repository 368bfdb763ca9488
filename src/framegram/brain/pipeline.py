"""One participant, end to end: BOLD → mask → split → clean (train-fitted) → encoder → scores,
delay profile, controls and the published protocol. `fit_dataset` loops over participants and
writes everything with `outputs.write_subject`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from framegram.brain.controls import PublishedResult, persistence_r, published_protocol
from framegram.brain.delays import DelayProfile, fir_profile, search_hrf_delay
from framegram.brain.model import BrainEncoder
from framegram.brain.stimulus import Design, build_design
from framegram.fmri.bids import BoldRun, find_runs
from framegram.fmri.clean import nuisance_cleaner
from framegram.fmri.config import BrainConfig
from framegram.fmri.masks import load_mask, run_mask
from framegram.fmri.metrics import fdr_bh, pearson_r, r2_score, shift_null_pvalues
from framegram.fmri.split import split
from framegram.fmri.stimulus import check_run_covers_stimulus


@dataclass
class SubjectFit:
    """What one participant's fit produced. V = voxels inside `mask` (bool [X, Y, Z]).

    r, r2, pvalues, significant, alphas: [V] on the held-out part; pred_test, y_test: float32
    [n_test, V] predicted and cleaned measured BOLD; profile: the delay profile; peak_delay_s:
    float [V] each voxel's peak delay (FIR basis) or None; hrf_delay_s: the chosen late start
    of the HRF (HRF basis); controls: name → r [V]; published: the published protocol's result;
    mask_source: the mask file's path, or "epi" (nilearn's EPI mask), or "given" (fit_subject's `mask`).
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
    profile: DelayProfile
    peak_delay_s: np.ndarray | None
    hrf_delay_s: float | None = None
    controls: dict[str, np.ndarray] = field(default_factory=dict)
    published: PublishedResult | None = None
    mask_source: str = "given"

    @property
    def profile_peak_s(self) -> float | None:
        return self.profile.peak_s

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
            "mask": self.mask_source,
            "significant": int(sig.sum()),
            "mean_r": float(self.r.mean()),
            "mean_r_significant": float(self.r[sig].mean()) if sig.any() else None,
            "top1pct_r": float(np.mean(np.sort(self.r)[-max(1, len(self.r) // 100):])),
            "delay_profile": [float(v) for v in self.profile.values],
            "profile_times_s": [float(v) for v in self.profile.times_s],
            "profile_kind": self.profile.kind,
            "profile_peak_s": self.profile_peak_s,
            "hrf_delay_s": self.hrf_delay_s,
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


def fit_subject(
    run: BoldRun,
    features: np.ndarray,
    frame_times: np.ndarray,
    config: BrainConfig | None = None,
    stimulus_name: str = "stimulus",
    mask: np.ndarray | None = None,
    bold: tuple | None = None,
) -> SubjectFit:
    """Fit and score one participant. features: float [T, D] framegram rows at `frame_times` (film s);
    mask: bool [X, Y, Z] (default: `config.mask`, else fMRIPrep's brain mask of the run on its grid,
    else nilearn's EPI mask: `masks.run_mask`; MaskError for an unusable one); bold: `run.read_bold()`
    when already read (`fit_dataset` reads the next run while this one is fitted)."""
    config = config or BrainConfig()
    check_run_covers_stimulus(run, frame_times, config.offset_s)
    design = build_design(
        features, frame_times, run.tr, run.n_volumes, config.offset_s, config.basis,
        config.max_delay_s, config.n_components, source=stimulus_name,
    )
    img, data = bold if bold is not None else run.read_bold()  # data float32 [X, Y, Z, n]
    source = "given"
    if mask is None:  # config.mask, fMRIPrep's, or the EPI mask of the array already read (not the file again)
        mask, source = run_mask(run, img, data, config.mask)
    # nibabel returns the array in NIfTI's column-major order: viewed as [n, X*Y*Z] it is row-major
    # with voxels in Fortran order, free of copies; `columns` lists the mask's voxels in the C order
    # of data[mask] (the order of every per-voxel array here and in the outputs)
    flat = data.reshape(-1, run.n_volumes, order="F").T
    columns = np.arange(mask.size).reshape(mask.shape, order="F")[mask]
    y_raw = np.take(flat, columns, axis=1)  # [n, V] row-major (flat[:, columns] is neither, and slower)
    train, test = split(run.n_volumes, config.train_fraction)
    cleaner = nuisance_cleaner(run, config)
    y = cleaner.fit_transform(y_raw, train)

    def encoder() -> BrainEncoder:
        return BrainEncoder(alphas=config.alphas, cv=config.cv, gap=config.gap, solver=config.solver)

    hrf_delay = None
    if design.basis == "hrf":
        hrf_delay, profile = search_hrf_delay(design, y, train, cleaner.residualize, encoder)
        design = design.with_hrf_delay(hrf_delay)
    design = replace(design, matrix=cleaner.residualize(design.matrix))
    model = encoder().fit(design.matrix[train], y[train])
    pred = model.predict(design.matrix[test])
    r = pearson_r(pred, y[test])
    pvalues = shift_null_pvalues(pred, y[test])
    significant = fdr_bh(pvalues, config.fdr_q)
    peak = None
    if design.basis == "fir":
        profile, peak = fir_profile(model.coef_blocks(design.n_blocks), design, r, significant)
    fit = SubjectFit(
        run=run, mask=mask, affine=img.affine, train=train, test=test, r=r, r2=r2_score(pred, y[test]),
        pvalues=pvalues, significant=significant, alphas=model.best_alphas_, pred_test=pred, y_test=y[test],
        profile=profile, peak_delay_s=peak, hrf_delay_s=hrf_delay, mask_source=source,
    )
    if config.controls:
        fit.controls = _controls(design, y, train, test, encoder, cleaner)
    if config.published:
        fit.published = published_protocol(flat, features, frame_times, run.tr, config.offset_s, columns=columns)
    return fit


def _controls(design: Design, y: np.ndarray, train: np.ndarray, test: np.ndarray, encoder, cleaner) -> dict[str, np.ndarray]:
    n = len(y)
    out = {}
    # a ridge on a constant feature predicts the training mean: computed directly (a himalaya fit
    # over every voxel costs as much as the real model's)
    out["constant features"] = pearson_r(np.broadcast_to(y[train].mean(0), (len(test), y.shape[1])), y[test])
    shifted = cleaner.residualize(design.with_per_tr(np.roll(design.per_tr, n // 2, axis=0)).matrix)
    out["shifted features"] = pearson_r(encoder().fit(shifted[train], y[train]).predict(shifted[test]), y[test])
    out["previous volume"] = persistence_r(y, test)
    return out


def fit_dataset(
    bids_root: str | Path,
    stimulus: str | Path,
    out: str | Path,
    subjects: list[str] | None = None,
    config: BrainConfig | None = None,
    show_progress: bool = False,
    task: str = "film",
    on_fit: Callable[[SubjectFit], None] | None = None,
) -> Path:
    """Fit every (or the listed) participant's run against the stimulus video (or .framegram.npz)
    and write the maps, predictions and summaries under `out`. Returns the path of results.json.

    Resumes: a participant whose summary.json is already in `out` (written last, atomically) is
    not fitted again, provided `out` was started with the same settings (settings.json; other
    settings are refused). While one participant is fitted, the next one's BOLD is read and the
    previous one's files are written in background threads (gzip runs outside the GIL).
    `on_fit(fit)` is called with each new fit (the benchmark scores it against the ground truth).
    """
    from framegram.brain.outputs import read_summary, write_results, write_settings, write_subject
    from framegram.cache import framegram_for
    from framegram.progress import extraction_progress

    config = config or BrainConfig()
    out = Path(out)
    runs = find_runs(bids_root, subjects, task)
    if config.mask is not None:  # a mask on another grid is refused before any fit (headers only)
        for run in runs:
            load_mask(config.mask, run.load_bold(), run.bold)
    framegram, _ = framegram_for(stimulus, show_progress=show_progress)
    inputs = {"bids": str(bids_root), "stimulus": str(stimulus), "task": task}
    write_settings(out, config.settings(), inputs)
    todo = [run for run in runs if read_summary(out, run.subject) is None]
    with extraction_progress(show_progress) as bars, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        task_id = bars.add_task("fitting participants", total=len(runs), completed=len(runs) - len(todo))
        next_bold = reader.submit(todo[0].read_bold) if todo else None
        writing: Future | None = None  # at most one participant's files wait to be written
        for i, run in enumerate(todo):
            bars.update(task_id, description=f"sub-{run.subject}")
            bold = next_bold.result()
            next_bold = reader.submit(todo[i + 1].read_bold) if i + 1 < len(todo) else None
            fit = fit_subject(run, framegram.features, framegram.times, config, stimulus_name=str(stimulus), bold=bold)
            del bold
            if writing is not None:
                writing.result()
            writing = writer.submit(write_subject, fit, out)
            if on_fit is not None:
                on_fit(fit)
            bars.advance(task_id)
        if writing is not None:
            writing.result()
    return write_results(out, [read_summary(out, run.subject) for run in runs], config.settings(), inputs)
