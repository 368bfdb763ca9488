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
from framegram.brain.banded import BandedEncoder, split_r2
from framegram.brain.stimulus import Design, build_space_design, reduce_spaces
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
    With several feature spaces (banded ridge): spaces: their names; space_weights: float [B, V] each
    space's share of the voxel's kernel; split_r2: float [B, V] each space's share of the held-out R²
    (they add up to r2); space_r: name → r [V] of a ridge on that space alone; unique_r2: name → float
    [V], R² of the banded model minus R² of the banded model without that space (held out);
    shared_r2: name → float [V], that space's R² alone minus its unique R² (what the others explain too).
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
    spaces: tuple[str, ...] = ("framegram",)
    space_weights: np.ndarray | None = None
    split_r2: np.ndarray | None = None
    space_r: dict[str, np.ndarray] = field(default_factory=dict)
    unique_r2: dict[str, np.ndarray] = field(default_factory=dict)
    shared_r2: dict[str, np.ndarray] = field(default_factory=dict)

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
        if len(self.spaces) > 1:
            out["spaces"] = {
                name: {
                    "mean_r_alone": float(self.space_r[name].mean()),
                    "mean_r_alone_significant": float(self.space_r[name][sig].mean()) if sig.any() else None,
                    "mean_weight_significant": float(self.space_weights[b][sig].mean()) if sig.any() else None,
                    "mean_split_r2_significant": float(self.split_r2[b][sig].mean()) if sig.any() else None,
                    "mean_unique_r2_significant": float(self.unique_r2[name][sig].mean()) if sig.any() and self.unique_r2 else None,
                    "mean_shared_r2_significant": float(self.shared_r2[name][sig].mean()) if sig.any() and self.shared_r2 else None,
                    "voxels_best": int((self.split_r2.argmax(0)[sig] == b).sum()),
                }
                for b, name in enumerate(self.spaces)
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
    spaces: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> SubjectFit:
    """Fit and score one participant. features: float [T, D] framegram rows at `frame_times` (film s);
    spaces: the feature spaces of the design, name -> (values [T_s, D_s], film times [T_s]) (default:
    the framegram alone, named after `stimulus_name`); several are fitted with banded ridge;
    mask: bool [X, Y, Z] (default: `config.mask`, else fMRIPrep's brain mask of the run on its grid,
    else nilearn's EPI mask: `masks.run_mask`; MaskError for an unusable one); bold: `run.read_bold()`
    when already read (`fit_dataset` reads the next run while this one is fitted)."""
    config = config or BrainConfig()
    check_run_covers_stimulus(run, frame_times, config.offset_s)
    if spaces is None:
        spaces = {stimulus_name: (features, frame_times)}
    else:
        for _, times in spaces.values():
            check_run_covers_stimulus(run, times, config.offset_s)
    design = build_space_design(
        spaces, run.tr, run.n_volumes, config.offset_s, config.basis, config.max_delay_s, components(config, len(spaces)),
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
    banded = len(design.spaces) > 1
    if banded:
        model = _banded(design.band_columns(), config).fit(design.matrix[train], y[train])
    else:
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
        spaces=tuple(spaces) if banded else ("framegram",),
    )
    if banded:
        _partition(fit, model, design, y, train, test, encoder, config)
    if config.controls:
        fit.controls = _controls(design, y, train, test, encoder, cleaner)
    if config.published:
        fit.published = published_protocol(flat, features, frame_times, run.tr, config.offset_s, columns=columns)
    return fit


def components(config: BrainConfig, n_spaces: int) -> int | None:
    """Principal components kept per space: `space_components` in a banded design, else `n_components`."""
    return config.space_components if n_spaces > 1 else config.n_components


def _banded(bands: list[np.ndarray], config: BrainConfig) -> BandedEncoder:
    return BandedEncoder(bands, alphas=config.alphas, cv=config.cv, gap=config.gap, n_mixtures=config.banded_mixtures)


def _partition(fit: SubjectFit, model: BandedEncoder, design: Design, y: np.ndarray, train: np.ndarray,
               test: np.ndarray, encoder, config: BrainConfig) -> None:
    """Variance partitioning on the held-out volumes: each space's share of the banded model's R²,
    each space alone (ridge), and each space's unique R² (the banded model's R² minus that of a banded
    model of the other spaces; for two spaces, the other alone), and the R² it shares with the others
    (its R² alone minus its unique R²). Held-out R² below zero counts as zero in these
    differences: a model that predicts worse than the mean explains nothing, and without the floor a
    spurious space that scores R² -1 without the right one made "unique" shares above 1."""
    x_train, x_test = design.matrix[train], design.matrix[test]
    fit.space_weights = model.space_weights_
    fit.split_r2 = split_r2(model.predict(x_test, split=True), y[test])
    bands = design.band_columns()
    alone_r2 = {}
    for name, cols in zip(design.space_names, bands):
        alone = encoder().fit(x_train[:, cols], y[train]).predict(x_test[:, cols])
        fit.space_r[name] = pearson_r(alone, y[test])
        alone_r2[name] = np.maximum(r2_score(alone, y[test]), 0.0)
    if not config.partition:
        return
    for b, name in enumerate(design.space_names):
        rest = [cols for i, cols in enumerate(bands) if i != b]
        if len(rest) == 1:
            others = encoder().fit(x_train[:, rest[0]], y[train])
            without = others.predict(x_test[:, rest[0]])
        else:
            columns = np.concatenate(rest)
            offsets = np.cumsum([0] + [len(c) for c in rest])
            sub = [np.arange(a, e) for a, e in zip(offsets[:-1], offsets[1:])]
            without = _banded(sub, config).fit(x_train[:, columns], y[train]).predict(x_test[:, columns])
        fit.unique_r2[name] = np.maximum(fit.r2, 0.0) - np.maximum(r2_score(without, y[test]), 0.0)
        fit.shared_r2[name] = alone_r2[name] - fit.unique_r2[name]


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


def stimulus_spaces(stimulus: str | Path, names: tuple[str, ...], show_progress: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The feature spaces of the stimulus film, name -> (values [T_s, D_s], film times [T_s]),
    computed once and cached (`framegram.fmri.spaces`). A framegram file offers only "framegram"."""
    from framegram.cache import is_framegram_file
    from framegram.fmri.errors import BrainError
    from framegram.fmri.spaces import space_features

    if is_framegram_file(stimulus):
        raise BrainError(f"{stimulus}: the feature spaces {', '.join(names)} are computed from the film itself; "
                         "give the video, not its framegram")
    out = {}
    for name in names:
        features = space_features(stimulus, name, show_progress=show_progress)
        out[name] = (features.values, features.times)
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
    spaces = stimulus_spaces(stimulus, config.spaces, show_progress) if config.spaces != ("framegram",) else None
    inputs = {"bids": str(bids_root), "stimulus": str(stimulus), "task": task}
    write_settings(out, config.settings(), inputs)
    todo = [run for run in runs if read_summary(out, run.subject) is None]
    with extraction_progress(show_progress) as bars, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        task_id = bars.add_task("fitting participants", total=len(runs), completed=len(runs) - len(todo))
        next_bold = reader.submit(todo[0].read_bold) if todo else None
        writing: Future | None = None  # at most one participant's files wait to be written
        on_clock: dict[tuple[float, int], dict] = {}  # the spaces reduced per TR, once per scan clock
        for i, run in enumerate(todo):
            bars.update(task_id, description=f"sub-{run.subject}")
            if spaces is not None and (run.tr, run.n_volumes) not in on_clock:
                on_clock[run.tr, run.n_volumes] = reduce_spaces(spaces, run.tr, run.n_volumes, config.offset_s,
                                                                components(config, len(spaces)))
            bold = next_bold.result()
            next_bold = reader.submit(todo[i + 1].read_bold) if i + 1 < len(todo) else None
            fit = fit_subject(run, framegram.features, framegram.times, config, stimulus_name=str(stimulus), bold=bold,
                              spaces=None if spaces is None else on_clock[run.tr, run.n_volumes])
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
