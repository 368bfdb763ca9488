"""Brain encoding benchmark on the generated ds003688-shaped dataset (known ground truth).

Two signal models (`--signal`, see `framegram.datasets.bids.SIGNALS`):

- "film" (the default, v2): the BOLD follows properties of the film measured by the generator's own
  code (`framegram.datasets.film_drivers`: luma, saturation and R - B per pixel at 640x480 and 25 fps,
  frame differences, the loudness and spectral centroid of the soundtrack it made, the on-screen
  times of the objects it inserted), each group in its own region; the pipeline fits its feature
  spaces (`--spaces`, default all) with banded ridge. Per region: the framegram alone, each space
  alone (the best one), the banded model and the oracle (a ridge given the true drivers through the
  true HRF, cleaned like the design) side by side, with the noise ceiling; checks: banded >=
  ORACLE_SHARE x oracle in every region, no region with a negative mean r, and the space with the
  largest unique R² in each region is one of EXPECTED_SPACES. `--null N` also fits N participants of
  the "null" signal (the same regions following random time courses unrelated to the film) and
  prints each region's held-out r distribution: with no signal it must centre on zero.
- "framegram" (v1, a check of the machinery and circular by design: the BOLD follows the framegram's
  own principal components; `--small` for its 20x20x12 grid, else 64x64x40), with these checks:

Both run what a user runs, `framegram.brain.fit_dataset` (read, clean, fit, write every participant's
maps and held-out predictions), and score each fit against the ground truth as it comes. The
"framegram" signal's checks:
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

The "film" signal runs on the small grid (20x20x12: banded ridge, each space alone and the banded
model without each space cost ~12 fits a participant) unless `--full`.

    nice -n 19 .venv/bin/python bench/brain.py [--subjects 30] [--null 30] [--twice]
    nice -n 19 .venv/bin/python bench/brain.py --signal framegram [--subjects 30] [--twice] [--fir 4] [--small]
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
from framegram.fmri.spaces import SPACE_NAMES  # noqa: E402
from framegram.fmri.metrics import pearson_r  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402

MARGIN = 0.05
TIME_LIMIT_S = 600.0
MEMORY_LIMIT_GB = 8.0
#: the "film" signal with every space: banded ridge, each space alone and without each space
SPACES_TIME_LIMIT_S = 900.0
ORACLE_SHARE = 0.8
#: which feature spaces can see each region's drivers (what variance partitioning should name):
#: pixel statistics are image-stats' own terms and the early Lite0 blocks' (colour, brightness);
#: the objects' presence is what ImageNet features are for
EXPECTED_SPACES = {
    "low-level": ("image-stats", "lite0-blocks"),
    "motion": ("motion-energy",),
    "sound": ("sound",),
    "semantic": ("framegram", "lite0-blocks"),
}


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

    def regions(self) -> dict[str, np.ndarray]:
        """Region name -> bool [X, Y, Z] mask (the "film" and "null" signals)."""
        import nibabel as nib

        return {name: nib.load(self.synth / r["mask"]).get_fdata() > 0 for name, r in self.truth.get("regions", {}).items()}

    def regressors(self, subject: str) -> np.ndarray:
        """The true drivers through the participant's true HRF: float32 [n_volumes, K]."""
        with np.load(self.synth / "weights.npz") as w:
            return w["regressors"][list(w["subjects"]).index(subject)]


def oracle_r(fit: SubjectFit, truth: GroundTruth, config: BrainConfig) -> np.ndarray:
    """Held-out r per voxel [V] of a ridge given the true drivers through the true HRF, cleaned like
    the pipeline's design and fitted on the same cleaned training volumes."""
    from framegram.brain.model import BrainEncoder

    _, data = fit.run.read_bold()
    y_raw = data[fit.mask].T.astype(np.float32)  # [n, V], the C order of every per-voxel array
    cleaner = nuisance_cleaner(fit.run, config)
    y = cleaner.fit_transform(y_raw, fit.train)
    x = cleaner.residualize(truth.regressors(fit.run.subject))
    model = BrainEncoder(alphas=config.alphas, cv=config.cv, gap=config.gap).fit(x[fit.train], y[fit.train])
    return pearson_r(model.predict(x[fit.test]), y[fit.test])


def score_regions(fit: SubjectFit, truth: GroundTruth, config: BrainConfig, regions: dict[str, np.ndarray]) -> dict:
    """Per region of the "film" signal: each model's mean held-out r, the ceiling, and the variance
    partitioning (mean unique and split R² of each space, each space's mean kernel weight)."""
    signal = truth.signal(fit.run.subject, fit.mask)
    cleaned_signal = nuisance_cleaner(fit.run, config).fit(signal, fit.train).residualize(signal)
    ceiling = pearson_r(cleaned_signal[fit.test], fit.y_test)
    oracle = oracle_r(fit, truth, config)
    out = {"subject": fit.run.subject, "hrf_delay_s": fit.hrf_delay_s, "true_lag_s": truth.lag(fit.run.subject), "regions": {}}
    for name, mask in regions.items():
        inside = mask[fit.mask]
        alone = {s: float(fit.space_r[s][inside].mean()) for s in fit.spaces}
        best = max(alone, key=alone.get)
        out["regions"][name] = {
            "voxels": int(inside.sum()), "ceiling_r": float(ceiling[inside].mean()), "oracle_r": float(oracle[inside].mean()),
            "banded_r": float(fit.r[inside].mean()), "framegram_r": alone.get("framegram"),
            "best_single_space": best, "best_single_r": alone[best], "space_r": alone,
            # without config.partition there is no unique or shared R²: NaN
            "unique_r2": {s: float(fit.unique_r2[s][inside].mean()) if fit.unique_r2 else float("nan") for s in fit.spaces},
            "shared_r2": {s: float(fit.shared_r2[s][inside].mean()) if fit.shared_r2 else float("nan") for s in fit.spaces},
            "split_r2": {s: float(fit.split_r2[b][inside].mean()) for b, s in enumerate(fit.spaces)},
            "space_weight": {s: float(fit.space_weights[b][inside].mean()) for b, s in enumerate(fit.spaces)},
            "significant": float(fit.significant[inside].mean()),
        }
    outside = ~np.any([m[fit.mask] for m in regions.values()], axis=0)
    out["significant_outside"] = float(fit.significant[outside].mean())
    return out


def region_r(fit: SubjectFit, regions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Held-out r of every voxel, per region and outside them (the null benchmark's distributions)."""
    inside_any = np.any([m[fit.mask] for m in regions.values()], axis=0)
    out = {name: fit.r[m[fit.mask]] for name, m in regions.items()}
    out["outside"] = fit.r[~inside_any]
    return out


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


def fit_all(root: Path, film: Path, labels: list[str], config: BrainConfig, on_fit, twice: bool):
    """fit_dataset into `<root>-fit` (scored by on_fit), and again into another folder when `twice`.
    Returns (wall seconds of each fit, identical summaries and r maps or None, peak memory GB)."""
    fits = root.parent / f"{root.name}-fit"
    wall = [timed_fit(root, film, fits, labels, config, on_fit)]
    identical = None
    if twice:
        again = root.parent / f"{root.name}-fit-again"
        wall.append(timed_fit(root, film, again, labels, config))
        identical = all(fingerprint(fits, s) == fingerprint(again, s) for s in labels)
        shutil.rmtree(again, ignore_errors=True)
    return wall, identical, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


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


def parse_config(ap: argparse.ArgumentParser, overrides: list[str], **fields) -> BrainConfig:
    """BrainConfig with `fields`, then the --set KEY=VALUE overrides (JSON values, else words)."""
    for item in overrides:
        key, _, text = item.partition("=")
        if key not in BrainConfig.__dataclass_fields__:
            ap.error(f"BrainConfig has no field {key!r}")
        try:
            fields[key] = json.loads(text)  # numbers, lists, true/false, null
        except json.JSONDecodeError:
            fields[key] = text  # words such as fir or train
    return BrainConfig(**fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--signal", choices=("film", "framegram"), default="film")
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--small", action="store_true", help="framegram signal: 20x20x12 grid instead of 64x64x40")
    ap.add_argument("--full", action="store_true", help="film signal: 64x64x40 grid instead of 20x20x12")
    ap.add_argument("--spaces", default=",".join(SPACE_NAMES), help="film signal: comma-separated feature spaces")
    ap.add_argument("--null", type=int, default=0, metavar="N", help="film signal: also fit N participants of the null signal")
    ap.add_argument("--fresh-spaces", action="store_true",
                    help="film signal: delete the film's cached feature spaces first, to time their first computation")
    ap.add_argument("--twice", action="store_true", help="fit again into a second folder and compare")
    ap.add_argument("--fir", type=int, default=4, metavar="N", help="framegram signal: also fit the first N participants with FIR delays")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default: in the cache)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a BrainConfig field, e.g. --set basis=fir --set held_out_cleaning=train")
    ap.add_argument("--out", type=Path, default=None,
                    help="result file (default: results/brain.json, or results/brain_framegram.json for the framegram signal)")
    args = ap.parse_args()
    results = Path(__file__).resolve().parent / "results"
    args.out = args.out or results / ("brain.json" if args.signal == "film" else "brain_framegram.json")

    from framegram.datasets.bids import generate_dataset

    small = args.small if args.signal == "framegram" else not args.full
    grid = "small" if small else "full"
    name = f"brain-{grid}" if args.signal == "framegram" else f"brain-{args.signal}-{grid}"
    root = args.data or cache_dir() / "bench" / name
    t0 = time.perf_counter()
    generate_dataset(root, subjects=args.subjects, small=small, signal=args.signal, show_progress=False)
    t_gen = time.perf_counter() - t0
    truth = GroundTruth(root)
    if args.signal == "framegram":
        main_framegram(args, root, truth, parse_config(ap, args.set, offset_s=truth.truth["stimulus_offset_s"]), t_gen)
        return
    spaces = tuple(args.spaces.split(","))
    config = parse_config(ap, args.set, offset_s=truth.truth["stimulus_offset_s"], spaces=spaces, published=False)
    main_film(args, root, truth, config, t_gen, small)


def main_film(args, root: Path, truth: GroundTruth, config: BrainConfig, t_gen: float, small: bool) -> None:
    """The v2 benchmark: regions following the film's pixels, motion, sound and objects."""
    from framegram.brain.pipeline import stimulus_spaces

    film = root / truth.truth["stimulus"]
    if args.fresh_spaces:
        forget_spaces(film)
    t0 = time.perf_counter()
    stimulus_spaces(film, config.spaces)  # computed once and cached, outside the timed fits
    t_spaces = time.perf_counter() - t0
    labels = [f"{i:02d}" for i in range(1, args.subjects + 1)]
    regions = truth.regions()
    records: list[dict] = []

    def on_fit(fit: SubjectFit) -> None:
        rec = score_regions(fit, truth, config, regions)
        records.append(rec)
        print(f"sub-{rec['subject']}: " + ", ".join(
            f"{k} {v['banded_r']:.3f}/{v['oracle_r']:.3f}" for k, v in rec["regions"].items()), file=sys.stderr)

    wall, identical, peak_gb = fit_all(root, film, labels, config, on_fit, args.twice)
    # a second fit must not compute the feature spaces again: they come from the cache
    t0 = time.perf_counter()
    stimulus_spaces(film, config.spaces)
    t_spaces_again = time.perf_counter() - t0

    region_names = list(regions)
    summary = {}
    for name in region_names:
        per = [r["regions"][name] for r in records]
        best_counts = {s: sum(p["best_single_space"] == s for p in per) for s in config.spaces}
        best = max(best_counts, key=best_counts.get)
        unique = {s: float(np.mean([p["unique_r2"][s] for p in per])) for s in config.spaces}
        # the space the partitioning names: largest unique R², or largest split R² without config.partition
        named_by = unique if config.partition else {s: float(np.mean([p["split_r2"][s] for p in per])) for s in config.spaces}
        summary[name] = {
            "oracle_r": float(np.mean([p["oracle_r"] for p in per])),
            "framegram_r": float(np.mean([p["framegram_r"] for p in per])) if "framegram" in config.spaces else None,
            "banded_r": float(np.mean([p["banded_r"] for p in per])),
            "best_single_space": best,
            "best_single_r": float(np.mean([p["space_r"][best] for p in per])),
            "ceiling_r": float(np.mean([p["ceiling_r"] for p in per])),
            "min_banded_over_oracle": float(min(p["banded_r"] / p["oracle_r"] for p in per)),
            "space_r": {s: float(np.mean([p["space_r"][s] for p in per])) for s in config.spaces},
            "unique_r2": unique,
            "shared_r2": {s: float(np.mean([p["shared_r2"][s] for p in per])) for s in config.spaces},
            "split_r2": {s: float(np.mean([p["split_r2"][s] for p in per])) for s in config.spaces},
            "space_weight": {s: float(np.mean([p["space_weight"][s] for p in per])) for s in config.spaces},
            "largest_unique": max(named_by, key=named_by.get),
            "expected_spaces": list(EXPECTED_SPACES.get(name, ())),
            "participants_negative_banded": int(sum(p["banded_r"] < 0 for p in per)),
        }
    checks = {
        f"banded >= {ORACLE_SHARE} x oracle in every region": all(
            v["banded_r"] >= ORACLE_SHARE * v["oracle_r"] for v in summary.values()),
        "no region with negative mean r": all(v["banded_r"] >= 0 for v in summary.values()),
        f"largest {'unique' if config.partition else 'split'} R² names an expected space": all(
            v["largest_unique"] in v["expected_spaces"] for v in summary.values()),
        f"wall time <= {SPACES_TIME_LIMIT_S:.0f} s": wall[0] <= SPACES_TIME_LIMIT_S,
        f"peak memory <= {MEMORY_LIMIT_GB:.0f} GB": peak_gb <= MEMORY_LIMIT_GB,
    }
    if identical is not None:
        checks["identical when run twice"] = identical

    grid = "small 20x20x12" if small else "full 64x64x40"
    print(f"\n## Brain encoding, film signal ({args.subjects} participants, {grid} grid, spaces "
          f"{', '.join(config.spaces)}; mean held-out r over each region's voxels, averaged over participants)\n")
    print(markdown_table(
        ["region", "voxels", "oracle", "framegram only", "best single space", "best single r", "banded",
         "banded / oracle", "min banded / oracle", "ceiling"],
        [[name, records[0]["regions"][name]["voxels"], f"{v['oracle_r']:.3f}",
          "n/a" if v["framegram_r"] is None else f"{v['framegram_r']:.3f}", v["best_single_space"],
          f"{v['best_single_r']:.3f}", f"{v['banded_r']:.3f}", f"{v['banded_r'] / v['oracle_r']:.2f}",
          f"{v['min_banded_over_oracle']:.2f}", f"{v['ceiling_r']:.3f}"] for name, v in summary.items()]))
    print("\n## Each space alone (mean r per region)\n")
    print(markdown_table(["region", *config.spaces],
                         [[name, *(f"{v['space_r'][s]:.3f}" for s in config.spaces)] for name, v in summary.items()]))
    print("\n## Variance partitioning: unique R² per space and region (banded R² minus the banded model without "
          "the space), expected spaces marked *\n")
    print(markdown_table(["region", *config.spaces, "largest"], [
        [name, *(f"{v['unique_r2'][s]:.4f}{'*' if s in v['expected_spaces'] else ''}" for s in config.spaces),
         v["largest_unique"]] for name, v in summary.items()]))
    print("\n## Shared R² per space and region (the space's R² alone minus its unique R²: what other spaces explain too)\n")
    print(markdown_table(["region", *config.spaces], [
        [name, *(f"{v['shared_r2'][s]:.4f}" for s in config.spaces)] for name, v in summary.items()]))
    print("\n## Each space's share of the banded model's held-out R² (split R²) and mean space weight\n")
    print(markdown_table(["region", *(f"{s} R² / weight" for s in config.spaces)], [
        [name, *(f"{v['split_r2'][s]:.4f} / {v['space_weight'][s]:.2f}" for s in config.spaces)]
        for name, v in summary.items()]))
    rows = []
    for rec in records:
        rows.append([f"sub-{rec['subject']}", f"{rec['true_lag_s']:.2f}", f"{rec['hrf_delay_s']:.2f}",
                     *(f"{rec['regions'][n]['banded_r']:.3f} / {rec['regions'][n]['oracle_r']:.3f}" for n in region_names),
                     f"{100 * rec['significant_outside']:.1f}"])
    print("\n## Per participant: banded r / oracle r per region\n")
    print(markdown_table(["participant", "true lag s", "HRF delay s", *region_names, "% sig. outside"], rows))

    null = run_null(args, root, config, small) if args.null else None
    if null is not None:
        checks["null: every region's mean r within ±0.05 of zero"] = all(abs(v["mean"]) <= 0.05 for v in null["regions"].values())
    passed = all(checks.values())
    print(f"\nfit_dataset wall time: {', '.join(f'{w:.0f} s' for w in wall)} for {args.subjects} participants "
          f"(limit {SPACES_TIME_LIMIT_S:.0f} s); peak memory {peak_gb:.2f} GB (limit {MEMORY_LIMIT_GB:.0f} GB); "
          f"feature spaces first {t_spaces:.0f} s, again {t_spaces_again:.1f} s (cached); generation {t_gen:.0f} s; "
          f"identical when run twice: {'not run' if identical is None else identical}")
    for k, v in checks.items():
        print(f"- {k}: {'yes' if v else 'NO'}")
    print(f"all checks passed: {passed}")
    write_result(args.out, {
        "dataset": str(root), "signal": "film", "subjects": args.subjects, "small": small,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "wall_s": wall, "peak_memory_gb": peak_gb, "identical_twice": identical,
        "spaces_s": {"first": t_spaces, "again": t_spaces_again},
        "records": records, "fir_records": [], "regions": summary, "null": null, "checks": checks,
        "all_checks_passed": passed,
    })


def forget_spaces(film: Path) -> None:
    """Delete the film's cached feature spaces and framegram (the next use computes them again)."""
    from framegram.cache import cached_path
    from framegram.encoders import get_encoder
    from framegram.extract import DEFAULT_FPS
    from framegram.io.hashing import sha256_file

    digest = sha256_file(film)
    shutil.rmtree(cache_dir() / "spaces" / digest, ignore_errors=True)
    cached_path(digest, get_encoder(), DEFAULT_FPS).unlink(missing_ok=True)


def run_null(args, film_root: Path, config: BrainConfig, small: bool) -> dict:
    """Fit the "null" signal (random time courses in the same regions) and summarise each region's
    held-out r over every voxel of every participant; plots the distributions beside the results."""
    from framegram.datasets.bids import generate_dataset

    root = film_root.parent / film_root.name.replace("-film-", "-null-")
    generate_dataset(root, subjects=args.null, small=small, signal="null", show_progress=False)
    truth = GroundTruth(root)
    regions = truth.regions()
    collected: dict[str, list[np.ndarray]] = {}
    per_participant: list[dict] = []

    def on_fit(fit: SubjectFit) -> None:
        found = region_r(fit, regions)
        per_participant.append({k: float(v.mean()) for k, v in found.items()})
        for k, v in found.items():
            collected.setdefault(k, []).append(v)

    labels = [f"{i:02d}" for i in range(1, args.null + 1)]
    timed_fit(root, root / truth.truth["stimulus"], root.parent / f"{root.name}-fit", labels, config, on_fit)
    out = {"subjects": args.null, "regions": {}}
    for k, chunks in collected.items():
        r = np.concatenate(chunks)
        means = [p[k] for p in per_participant]
        out["regions"][k] = {
            "voxels": int(len(r)), "mean": float(r.mean()), "median": float(np.median(r)),
            "p5": float(np.percentile(r, 5)), "p95": float(np.percentile(r, 95)),
            "participant_means_min": float(min(means)), "participant_means_max": float(max(means)),
            "participant_means_sd": float(np.std(means)),
        }
    print(f"\n## Null signal ({args.null} participants: the same regions follow random time courses, not the film): "
          "held-out r of the banded model over every voxel\n")
    print(markdown_table(["region", "voxels", "mean r", "median", "5th pct", "95th pct", "participant means (min..max)",
                          "sd of participant means"],
                         [[k, v["voxels"], f"{v['mean']:+.3f}", f"{v['median']:+.3f}", f"{v['p5']:+.3f}", f"{v['p95']:+.3f}",
                           f"{v['participant_means_min']:+.3f}..{v['participant_means_max']:+.3f}",
                           f"{v['participant_means_sd']:.3f}"] for k, v in out["regions"].items()]))
    plot_null(collected, args.out.parent / "brain_null.png")
    return out


def plot_null(collected: dict[str, list[np.ndarray]], path: Path) -> None:
    """Histograms of the null benchmark's held-out r per region (all voxels of all participants)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(collected), figsize=(3.2 * len(collected), 2.6), sharex=True)
    for ax, (k, chunks) in zip(np.atleast_1d(axes), collected.items()):
        r = np.concatenate(chunks)
        ax.hist(r, bins=40, range=(-0.6, 0.6), color="0.4")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.axvline(r.mean(), color="tab:red", lw=1.2, label=f"mean {r.mean():+.3f}")
        ax.set_title(k, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel("held-out r")
    fig.suptitle("No signal: held-out r per region (banded model)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_framegram(args, root: Path, truth: GroundTruth, config: BrainConfig, t_gen: float) -> None:
    """The v1 benchmark: BOLD made from the framegram's own components (the machinery's check)."""
    film = root / truth.truth["stimulus"]
    framegram_for(film)  # extracted once and cached, outside the timed fits
    labels = [f"{i:02d}" for i in range(1, args.subjects + 1)]  # a folder generated earlier may hold more
    records: list[dict] = []

    def on_fit(fit: SubjectFit) -> None:
        rec = score(fit, truth, config)
        records.append(rec)
        print(f"sub-{rec['subject']}: r {rec['r_region']:.3f} / ceiling {rec['ceiling_region']:.3f}", file=sys.stderr)

    wall, identical, peak_gb = fit_all(root, film, labels, config, on_fit, args.twice)

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
