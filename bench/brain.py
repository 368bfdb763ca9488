"""Brain encoding benchmark on the generated ds003688-shaped dataset (known ground truth).

Runs what a user runs, `framegram.brain.fit_dataset` (read, clean, fit, write every participant's
maps and held-out predictions), and scores each fit against the ground truth as it comes:
- held-out mean r in the responsive region >= 0.9 x the ceiling (per-voxel r between the
  noise-free signal, cleaned like the BOLD, and the cleaned noisy BOLD on the held-out part,
  averaged over the region);
- outside the region, <= 5 % of the mask's voxels declared significant (circular-shift null, FDR 0.05);
- the delay profile peaks within one TR of the true lag;
- our r in the region beats constant features, circularly shifted features and the previous
  volume by at least MARGIN; also printed: the previous volume plus our predicted change (the
  previous volume is a forecaster that sees the measured BOLD up to t-1);
and prints the published protocol's MSE beside its persistence and constant-feature controls.

Timing and memory: wall-clock seconds of `fit_dataset` (the time spent scoring against the ground
truth in the callback is subtracted) and the process's peak resident memory. `--twice` fits the
dataset a second time into another folder and checks that every participant's summary and r map
are identical. `--fir N` also fits the first N participants with the FIR basis, for comparison.

    nice -n 19 .venv/bin/python bench/brain.py [--subjects 30] [--twice] [--fir 4] [--small]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_result  # noqa: E402

from framegram.brain.pipeline import SubjectFit, fit_dataset, fit_subject  # noqa: E402
from framegram.cache import framegram_for  # noqa: E402
from framegram.fmri.bids import find_runs  # noqa: E402
from framegram.fmri.clean import nuisance_cleaner  # noqa: E402
from framegram.fmri.config import BrainConfig  # noqa: E402
from framegram.fmri.metrics import pearson_r  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402

MARGIN = 0.05
TIME_LIMIT_S = 600.0
MEMORY_LIMIT_GB = 8.0


class GroundTruth:
    """The generator's answer: masks, lags and each participant's noise-free signal."""

    def __init__(self, root: Path):
        import nibabel as nib

        self.synth = root / "derivatives" / "framegram-synth"
        self.truth = json.loads((self.synth / "truth.json").read_text())
        self.brain = nib.load(self.synth / "desc-brain_mask.nii.gz").get_fdata() > 0
        self.responsive = nib.load(self.synth / "desc-responsive_mask.nii.gz").get_fdata() > 0

    def signal(self, subject: str, mask: np.ndarray) -> np.ndarray:
        """Noise-free signal inside `mask`: float32 [n_volumes, V]."""
        import nibabel as nib

        path = self.synth / f"sub-{subject}" / "ses-mri3t" / "func" / f"sub-{subject}_ses-mri3t_task-film_run-1_desc-signal_bold.nii.gz"
        return np.asarray(nib.load(path).dataobj, dtype=np.float32)[mask].T

    def lag(self, subject: str) -> float:
        return self.truth["subjects"][subject]["lag_s"]


def score(fit: SubjectFit, truth: GroundTruth, config: BrainConfig) -> dict:
    """Every check of one participant's fit against the ground truth."""
    in_region = truth.responsive[fit.mask]
    signal = truth.signal(fit.run.subject, fit.mask)
    # the noise-free signal cleaned exactly as the BOLD was (same nuisance projection): the ceiling
    # asks for what the scored target still contains of the stimulus
    cleaned_signal = nuisance_cleaner(fit.run, config).fit(signal, fit.train).residualize(signal)
    ceiling = float(pearson_r(cleaned_signal[fit.test], fit.y_test)[in_region].mean())
    r_in = float(fit.r[in_region].mean())
    outside_sig = float(fit.significant[~in_region].mean())
    lag, peak = truth.lag(fit.run.subject), fit.profile_peak_s
    controls = {k: float(v[in_region].mean()) for k, v in fit.controls.items()}
    # the previous volume sees the measured BOLD up to t-1, which a model of the film never does;
    # given the same (previous volume + our predicted change), does the film add anything?
    persistence = float(pearson_r(fit.y_test[:-1], fit.y_test[1:])[in_region].mean())
    forecast = fit.y_test[:-1] + np.diff(fit.pred_test, axis=0)
    forecast_in = float(pearson_r(forecast, fit.y_test[1:])[in_region].mean())
    pub = fit.published
    return {
        "subject": fit.run.subject, "r_region": r_in, "ceiling_region": ceiling, "ratio": r_in / ceiling,
        "significant_outside": outside_sig, "significant_inside": float(fit.significant[in_region].mean()),
        "mask_voxels": int(fit.mask.sum()), "region_voxels_in_mask": int(in_region.sum()),
        "true_lag_s": lag, "profile_peak_s": peak, "lag_error_s": None if peak is None else abs(peak - lag),
        "hrf_delay_s": fit.hrf_delay_s, "controls_r_region": controls,
        "margin_over_controls": {k: r_in - v for k, v in controls.items()},
        "forecast": {"r_previous_volume": persistence, "r_previous_volume_plus_ours": forecast_in},
        "published": None if pub is None else {
            "mse_model": pub.mse_model, "mse_persistence": pub.mse_persistence, "mse_constant": pub.mse_constant,
            "r_volume_region": float(pub.r_volume[in_region].mean()),
            "r_change_region": float(pub.r_change[in_region].mean()),
        },
        "checks": {
            "r >= 0.9 ceiling": r_in >= 0.9 * ceiling,
            "outside significant <= 5 %": outside_sig <= 0.05,
            "peak within one TR": peak is not None and abs(peak - lag) <= fit.run.tr + 1e-6,
            f"beats every control by {MARGIN}": all(r_in >= v + MARGIN for v in controls.values()),
            "previous volume + ours beats previous volume": forecast_in > persistence,
        },
    }


def fingerprint(out: Path, subject: str) -> str:
    """sha256 of a participant's summary.json and r map (equal digests = identical numbers)."""
    h = hashlib.sha256()
    for name in ("summary.json", "r.nii.gz"):
        h.update((out / f"sub-{subject}" / name).read_bytes())
    return h.hexdigest()


def timed_fit(root: Path, film: Path, out: Path, subjects: list[str], config: BrainConfig, on_fit=None) -> float:
    """fit_dataset into a fresh `out`; returns wall seconds minus those spent in `on_fit`."""
    shutil.rmtree(out, ignore_errors=True)
    spent = [0.0]

    def callback(fit):
        t = time.perf_counter()
        on_fit(fit)
        spent[0] += time.perf_counter() - t

    t0 = time.perf_counter()
    fit_dataset(root, film, out, subjects=subjects, config=config, on_fit=callback if on_fit else None)
    return time.perf_counter() - t0 - spent[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--small", action="store_true", help="20x20x12 grid instead of 64x64x40")
    ap.add_argument("--twice", action="store_true", help="fit again into a second folder and compare")
    ap.add_argument("--fir", type=int, default=4, metavar="N", help="also fit the first N participants with FIR delays")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default: in the cache)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a BrainConfig field, e.g. --set basis=fir --set held_out_cleaning=train")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "brain.json")
    args = ap.parse_args()

    from framegram.datasets.bids import generate_dataset

    root = args.data or cache_dir() / "bench" / f"brain-{'small' if args.small else 'full'}"
    t0 = time.perf_counter()
    generate_dataset(root, subjects=args.subjects, small=args.small, show_progress=False)
    t_gen = time.perf_counter() - t0
    truth = GroundTruth(root)
    config = BrainConfig(offset_s=truth.truth["stimulus_offset_s"])
    for item in args.set:
        key, _, text = item.partition("=")
        if not hasattr(config, key):
            ap.error(f"BrainConfig has no field {key!r}")
        try:
            setattr(config, key, json.loads(text))  # numbers, true/false, null
        except json.JSONDecodeError:
            setattr(config, key, text)  # words such as fir or train
    film = root / truth.truth["stimulus"]
    framegram_for(film)  # extracted once and cached, outside the timed fits
    labels = [f"{i:02d}" for i in range(1, args.subjects + 1)]  # a folder generated earlier may hold more
    records: list[dict] = []

    def on_fit(fit: SubjectFit) -> None:
        rec = score(fit, truth, config)
        records.append(rec)
        print(f"sub-{rec['subject']}: r {rec['r_region']:.3f} / ceiling {rec['ceiling_region']:.3f}", file=sys.stderr)

    fits = root.parent / f"{root.name}-fit"
    wall = [timed_fit(root, film, fits, labels, config, on_fit)]
    identical = None
    if args.twice:
        again = root.parent / f"{root.name}-fit-again"
        wall.append(timed_fit(root, film, again, labels, config))
        identical = all(fingerprint(fits, s) == fingerprint(again, s) for s in labels)
        shutil.rmtree(again, ignore_errors=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB

    fir_rows, fir_records = [], []
    fir_config = BrainConfig(**{**vars(config), "basis": "fir", "controls": False, "published": False})
    fg, _ = framegram_for(film)
    for run in find_runs(root, labels[: args.fir]):
        fir_records.append(score(fit_subject(run, fg.features, fg.times, fir_config), truth, fir_config))
    for basis, recs in (("hrf (delay fitted)" if config.basis == "hrf" else config.basis, records[: args.fir]), ("fir 0-10 s", fir_records)):
        if recs:
            fir_rows.append([basis, f"{np.mean([r['ratio'] for r in recs]):.3f}", f"{min(r['ratio'] for r in recs):.3f}",
                             f"{np.mean([r['lag_error_s'] for r in recs]):.2f}",
                             f"{np.mean([r['significant_outside'] for r in recs]) * 100:.1f}"])

    rows, pub_rows = [], []
    for rec in records:
        c, f, p = rec["controls_r_region"], rec["forecast"], rec["published"]
        rows.append([
            f"sub-{rec['subject']}", f"{rec['r_region']:.3f}", f"{rec['ceiling_region']:.3f}", f"{rec['ratio']:.2f}",
            f"{100 * rec['significant_outside']:.1f}", f"{100 * rec['significant_inside']:.0f}", f"{rec['true_lag_s']:.2f}",
            "n/a" if rec["profile_peak_s"] is None else f"{rec['profile_peak_s']:.2f}",
            f"{c['constant features']:.3f}", f"{c['shifted features']:.3f}", f"{c['previous volume']:.3f}",
            f"{f['r_previous_volume_plus_ours']:.3f}",
            "yes" if all(rec["checks"].values()) else "NO: " + ", ".join(k for k, v in rec["checks"].items() if not v),
        ])
        pub_rows.append([
            f"sub-{rec['subject']}", f"{p['mse_model']:.6f}", f"{p['mse_persistence']:.6f}", f"{p['mse_constant']:.6f}",
            f"{p['r_volume_region']:.3f}", f"{p['r_change_region']:.3f}", f"{rec['r_region']:.3f}",
        ])
    grid = "small 20x20x12" if args.small else "full 64x64x40"
    print(f"\n## Brain encoding on the generated dataset ({args.subjects} participants, {grid} grid, "
          f"{int(truth.brain.sum())} brain voxels, {int(truth.responsive.sum())} responsive; basis {config.basis})\n")
    print(markdown_table(
        ["participant", "r region", "ceiling", "r / ceiling", "% sig. outside", "% sig. inside", "true lag s",
         "profile peak s", "r constant", "r shifted", "r prev. volume", "r prev. volume + ours", "all checks"], rows))
    ratios = [r["ratio"] for r in records]
    margins = [min(r["margin_over_controls"].values()) for r in records]
    print(f"\nr / ceiling: mean {np.mean(ratios):.3f}, min {min(ratios):.3f}; smallest margin over a control "
          f"{min(margins):.3f}; % significant outside: max {100 * max(r['significant_outside'] for r in records):.1f}; "
          f"lag error: max {max(r['lag_error_s'] for r in records):.2f} s")
    if records and records[0]["published"] is not None:
        print("\n## The published protocol (min-max scaled raw BOLD, frame 5 s before, ridge alpha 1000 on the change, "
              "70/30 split) beside its controls\n")
        print(markdown_table(
            ["participant", "MSE published", "MSE previous volume", "MSE constant features", "r region (volumes)",
             "r region (changes)", "r region ours"], pub_rows))
    if fir_rows:
        print(f"\n## Response model, first {len(fir_records)} participants\n")
        print(markdown_table(["basis", "mean r / ceiling", "min r / ceiling", "mean lag error s", "% sig. outside"], fir_rows))
    run_ok = wall[0] <= TIME_LIMIT_S and peak_gb <= MEMORY_LIMIT_GB and identical is not False
    print(f"\nfit_dataset wall time: {', '.join(f'{w:.0f} s' for w in wall)} for {args.subjects} participants "
          f"(limit {TIME_LIMIT_S:.0f} s); peak memory {peak_gb:.2f} GB (limit {MEMORY_LIMIT_GB:.0f} GB); "
          f"identical when run twice: {'not run' if identical is None else identical}")
    passed = all(all(r["checks"].values()) for r in records) and run_ok
    print(f"all checks passed: {passed}  (generation {t_gen:.0f} s)")
    write_result(args.out, {
        "dataset": str(root), "subjects": args.subjects, "small": args.small,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "wall_s": wall, "peak_memory_gb": peak_gb, "identical_twice": identical,
        "records": records, "fir_records": fir_records, "all_checks_passed": passed,
    })


if __name__ == "__main__":
    main()
