"""fMRI denoising and participant classification on the generated multi-site dataset
(`framegram.datasets.connectome_sites`; ground truth kept apart).

Two variants, generated with the benchmark's seed (2026; the generator's effect sizes were set on
seed 1, never on this one):
- "network": patients' Default network is less coupled inside and coupled to the Control network;
  motion is the same in both groups;
- "motion": no difference in connectivity, patients move 2.5 times as much (the confound that
  fools classifiers).

Per variant: every strategy's series (`denoise_runs`), the denoising benchmark (QC-FC share and
median |r|, distance dependence, tDOF lost, and on the network variant the recovery of the true
group difference), then leave-site-out nested classification for every strategy and feature set
(connectivity = tangent, tda, both), with the motion-only control, with and without regressing the
head-motion summaries out of the features inside each fold (never for "none", the raw series). Every
strategy is measured and classified on the same participants: those no lenient strategy left out.
Scrubbing at FD 0.2 (STRICT) drops many high movers; its rows use the part of that set it kept (their
participant count is in the JSON): it is credited there for whom it dropped as well as for what it cleaned.

    nice -n 19 .venv/bin/python bench/fmri_classify.py [--per-site 32] [--permutations 100]

Writes bench/results/fmri_classify.json:
  denoising {strategy: {qcfc_share, qcfc_median_abs_r, distance_dependence, tdof_lost, truth_recovery_r, ...}}
  classification {"<features>/<strategy>": {accuracy, auc, auc_ci, permutation_p, ...}}   (network variant)
  motion_only_variant {"<features>/<strategy>": {auc, permutation_p, ...}}
  motion_control {auc, permutation_p}   (network variant; the motion variant's under motion_only_variant_control)
  without_motion_regression {"network" | "motion": {"<features>/<strategy>": {...}}}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import markdown_table, write_result  # noqa: E402

from framegram.connectome.atlas import load_atlas
from framegram.connectome.classify import classify_folds, fold_features, motion_features, regress_folds, side_by_side
from framegram.connectome.denoise import common_subjects, denoise_runs, load_series
from framegram.connectome.features import FEATURE_SETS
from framegram.connectome.pipeline import measure_quality, subject_table
from framegram.connectome.runs import find_preprocessed_runs
from framegram.connectome.strategies import STRATEGIES
from framegram.datasets.connectome_sites import atlas_files, generate_connectome_sites
from framegram.paths import cache_dir

SEED = 2026
RESULTS = Path(__file__).parent / "results" / "fmri_classify.json"
KEYS = ("accuracy", "auc", "auc_ci", "permutation_p", "participants")
#: strategies that leave out many participants: not part of the set every strategy is compared on
STRICT = ("scrubbing.2", "scrubbing.2+gsr")


def run_variant(variant: str, args) -> dict:
    root = cache_dir() / "bench" / f"connectome-v1-{args.per_site}" / variant
    t0 = time.time()
    generate_connectome_sites(root, variant, n_sites=5, per_site=args.per_site, seed=SEED, show_progress=False)
    atlas = load_atlas(atlas_files(root, 100)[0])
    runs = find_preprocessed_runs(root / "derivatives" / "fmriprep")
    out = root.parent / f"{variant}-denoised"
    summary = denoise_runs(runs, atlas, list(STRATEGIES), out, show_progress=False)
    if summary.failed:
        raise SystemExit(f"denoising failed: {summary.failed[0]}")
    prepared = time.time() - t0
    truth = np.load(root / "truth" / "group_difference.npy")
    participants = root / "participants.tsv"
    # every strategy on the same people: those the lenient strategies all kept. Scrubbing at FD 0.2 leaves
    # out the high movers (in the motion variant mostly patients); its rows are measured on the part of
    # these it kept, and say how many
    subjects = common_subjects(out, [s for s in STRATEGIES if s not in STRICT])
    quality = measure_quality(out, list(STRATEGIES), atlas, participants, true_difference=truth, subjects=subjects)
    with_regression, without_regression, control = {}, {}, None
    for name in STRATEGIES:
        t = time.time()
        series = load_series(out, name, subjects)
        table = subject_table(series, participants, "group", "site", None)
        sites, labels = np.array(table.sites), table.labels
        motion = motion_features(series.fd)
        folds = fold_features(series.series, sites, FEATURE_SETS)
        if control is None and name not in STRICT:
            control = classify_folds(fold_features(motion, sites)["features"], labels, sites, "motion", args.permutations)
        regressed = {fs: regress_folds(f, motion) for fs, f in folds.items() if fs != "both"}
        regressed["both"] = side_by_side(regressed["connectivity"], regressed["tda"])
        for fs in FEATURE_SETS:
            raw = classify_folds(folds[fs], labels, sites, fs, args.permutations)
            without_regression[f"{fs}/{name}"] = raw
            with_regression[f"{fs}/{name}"] = raw if name == "none" else classify_folds(regressed[fs], labels, sites, fs, args.permutations)
        print(f"  {variant} {name}: {time.time() - t:.0f} s", flush=True)
    return {"quality": quality, "classification": with_regression, "without": without_regression, "control": control,
            "excluded": {k: len(load_series(out, k).excluded) for k in STRATEGIES}, "prepare_s": prepared,
            "participants": len(runs), "compared": len(subjects)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-site", type=int, default=32)
    parser.add_argument("--permutations", type=int, default=100)
    args = parser.parse_args()
    t0 = time.time()
    network = run_variant("network", args)
    motion = run_variant("motion", args)
    pick = lambda r, keys=KEYS: {k: r.to_json()[k] for k in keys}  # noqa: E731
    result = {
        "settings": {"seed": SEED, "sites": 5, "per_site": args.per_site, "parcels": 100, "permutations": args.permutations,
                     "connectivity_kind": "tangent", "classifier": "RidgeClassifierCV (penalty by leave-one-out inside training sites)",
                     "splits": "leave one site out", "motion_regression": "mean, median, sd, p90, max FD, share > 0.2 and > 0.5 mm; "
                     "fitted inside each training fold; not applied to 'none'"},
        "denoising": {k: q.to_json() for k, q in network["quality"].items()},
        "denoising_motion_variant": {k: q.to_json() for k, q in motion["quality"].items()},
        "classification": {k: pick(r) for k, r in network["classification"].items()},
        "motion_only_variant": {k: pick(r) for k, r in motion["classification"].items()},
        "motion_control": pick(network["control"]),
        "motion_only_variant_control": pick(motion["control"]),
        "without_motion_regression": {"network": {k: pick(r) for k, r in network["without"].items()},
                                      "motion": {k: pick(r) for k, r in motion["without"].items()}},
        "excluded_by_scrubbing": {"network": network["excluded"], "motion": motion["excluded"]},
        "participants": {"network": network["participants"], "motion": motion["participants"]},
        "participants_compared": {"network": network["compared"], "motion": motion["compared"]},
        "seconds": {"total": round(time.time() - t0), "generate_and_denoise": {"network": round(network["prepare_s"]),
                                                                              "motion": round(motion["prepare_s"])}},
    }
    write_result(RESULTS, result)
    rows = [[k, q.participants, f"{q.qcfc_share:.3f}", f"{q.qcfc_median_abs_r:.3f}", f"{q.distance_dependence:+.3f}",
             f"{q.tdof_lost:.1f}", f"{q.truth_recovery_r:.3f}"] for k, q in network["quality"].items()]
    print("\n## Denoising (network variant)\n")
    print(markdown_table(["strategy", "N", "QC-FC share", "median |r|", "distance dep.", "tDOF lost", "truth r"], rows))
    rows = [[k, q.participants, f"{q.qcfc_share:.3f}", f"{q.qcfc_median_abs_r:.3f}", f"{q.distance_dependence:+.3f}",
             f"{q.tdof_lost:.1f}"] for k, q in motion["quality"].items()]
    print("\n## Denoising (motion variant)\n")
    print(markdown_table(["strategy", "N", "QC-FC share", "median |r|", "distance dep.", "tDOF lost"], rows))
    for title, variant in (("network variant", network), ("motion-only variant", motion)):
        rows = []
        for name in STRATEGIES:
            row = [name]
            for fs in FEATURE_SETS:
                r, w = variant["classification"][f"{fs}/{name}"], variant["without"][f"{fs}/{name}"]
                row += [f"{r.auc:.3f} [{r.auc_ci[0]:.2f}, {r.auc_ci[1]:.2f}] p={r.permutation_p:.3f}",
                        f"{w.auc:.3f} p={w.permutation_p:.3f}"]
            rows.append(row)
        c = variant["control"]
        print(f"\n## Classification, {title} (AUC, leave-site-out; motion-only control AUC {c.auc:.3f} "
              f"[{c.auc_ci[0]:.2f}, {c.auc_ci[1]:.2f}] p={c.permutation_p:.3f})\n")
        print(markdown_table(["denoising"] + [f"{fs}{suffix}" for fs in FEATURE_SETS
                                              for suffix in ("", " (no motion regression)")], rows))
    print(f"\n{time.time() - t0:.0f} s -> {RESULTS}")


if __name__ == "__main__":
    main()
