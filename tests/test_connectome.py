"""Noise-aware fMRI denoising and participant classification (framegram.connectome) on the generated
multi-site fMRIPrep dataset (framegram.datasets.connectome_sites), whose answer is known, and on
generated features with a planted answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framegram.connectome.atlas import load_atlas
from framegram.connectome.classify import auc_scores, classify, fold_features, motion_features
from framegram.connectome.denoise import denoise_runs, load_series
from framegram.connectome.errors import AtlasError, ConfoundsError, NoRunsError, ParcellationMismatchError, ScrubbedTooShortError
from framegram.connectome.features import ConnectivityFeatures, TopologicalFeatures, betti_curve, persistence_diagrams
from framegram.connectome.quality import connectivity_edges, qcfc, strategy_quality
from framegram.connectome.runs import find_preprocessed_runs, load_participants
from framegram.connectome.strategies import strategy_confounds
from framegram.datasets.connectome_sites import (
    NETWORKS, atlas_files, framewise_displacement, generate_connectome_sites, participant_files,
)

PARCELS = 30


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Path:
    """3 sites x 8 participants on the small grid, 30 parcels, the "network" variant."""
    root = tmp_path_factory.mktemp("connectome")
    return generate_connectome_sites(root, "network", n_sites=3, per_site=8, n_parcels=PARCELS, small=True, seed=3,
                                     show_progress=False)


@pytest.fixture(scope="module")
def denoised(sites, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("denoised")
    runs = find_preprocessed_runs(sites / "derivatives" / "fmriprep")
    summary = denoise_runs(runs, load_atlas(atlas_files(sites, PARCELS)[0]), ["none", "simple", "scrubbing.5+gsr"], out,
                           show_progress=False)
    assert not summary.failed and summary.written == 3 * 24
    return out


def cli(*args, ok=True):
    proc = subprocess.run([sys.executable, "-m", "framegram", *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


# ---- the generated dataset ---------------------------------------------------------------------

def test_dataset_layout_and_confounds(sites):
    runs = find_preprocessed_runs(sites / "derivatives" / "fmriprep")
    assert len(runs) == 24 and {r.space for r in runs} == {"MNI152NLin2009cAsym"}
    assert sorted({r.tr for r in runs}) == [1.5, 2.0, 2.5]  # sites differ in TR
    table = pd.read_csv(participant_files(sites, "1001")["confounds"], sep="\t", na_values=["n/a"])
    for column in ("trans_x_derivative1_power2", "rot_z_power2", "csf_derivative1", "white_matter_power2",
                   "global_signal", "std_dvars", "framewise_displacement", "cosine00", "a_comp_cor_00"):
        assert column in table
    # FD is Power's: recomputed here from the motion columns (rotations on a 50 mm sphere)
    params = table[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy()
    d = np.abs(np.diff(params, axis=0))
    np.testing.assert_allclose(table["framewise_displacement"][1:], d[:, :3].sum(1) + 50 * d[:, 3:].sum(1), rtol=1e-6)
    # standardised DVARS is ~1 where the head is still and jumps where it moves
    still = table["framewise_displacement"] < 0.05
    assert 0.7 < table["std_dvars"][still].median() < 1.3
    assert table["std_dvars"][table["framewise_displacement"] > 0.5].median() > table["std_dvars"][still].median()
    meta = json.loads(participant_files(sites, "1001")["confounds_json"].read_text())
    assert meta["a_comp_cor_00"]["Mask"] == "combined"


def test_truth_is_kept_apart_and_names_the_networks(sites):
    truth = json.loads((sites / "truth" / "truth.json").read_text())
    difference = np.load(sites / "truth" / "group_difference.npy")
    networks = np.array(truth["parcel_networks"])
    default, control = networks == "Default", networks == "Cont"
    assert not any((sites / "derivatives").rglob("*truth*"))
    # patients: weaker coupling inside Default, Default-Control coupling added; elsewhere only jitter
    inside = difference[np.ix_(default, default)][np.triu_indices(default.sum(), 1)]
    between = difference[np.ix_(default, control)]
    others = ~(default | control)
    rest = difference[np.ix_(others, others)][np.triu_indices(others.sum(), 1)]
    assert inside.mean() < -0.1 and between.mean() > 0.05 and abs(rest.mean()) < 0.02
    assert set(networks) <= set(NETWORKS)


def test_motion_variant_differs_in_motion_only(tmp_path):
    root = generate_connectome_sites(tmp_path, "motion", n_sites=2, per_site=6, n_parcels=PARCELS, small=True, seed=4,
                                     show_progress=False)
    truth = json.loads((root / "truth" / "truth.json").read_text())["participants"]
    fd = {s: np.nanmean(pd.read_csv(participant_files(root, s[4:])["confounds"], sep="\t", na_values=["n/a"])
                        ["framewise_displacement"]) for s in truth}
    by_group = {g: np.mean([fd[s] for s, v in truth.items() if v["group"] == g]) for g in ("control", "patient")}
    assert by_group["patient"] > 1.5 * by_group["control"]
    assert np.abs(np.load(root / "truth" / "group_difference.npy")).max() < 0.2  # jitter only


def test_generation_resumes_and_refuses_other_settings(sites, tmp_path):
    bold = participant_files(sites, "2003")["bold"]
    before = bold.read_bytes()
    copy = tmp_path / "copy"
    shutil.copytree(sites, copy)
    participant_files(copy, "2003")["bold"].unlink()
    generate_connectome_sites(copy, "network", n_sites=3, per_site=8, n_parcels=PARCELS, small=True, seed=3, show_progress=False)
    assert participant_files(copy, "2003")["bold"].read_bytes() == before  # deterministic per participant
    with pytest.raises(Exception, match="seed"):
        generate_connectome_sites(copy, "network", n_sites=3, per_site=8, n_parcels=PARCELS, small=True, seed=5,
                                  show_progress=False)


# ---- denoising ----------------------------------------------------------------------------------

def test_strategies_read_the_confounds_they_name(sites):
    bold = participant_files(sites, "1002")["bold"]
    n = len(pd.read_csv(participant_files(sites, "1002")["confounds"], sep="\t"))
    simple, mask = strategy_confounds(bold, "simple", n)
    assert mask is None and sum(c.startswith(("trans", "rot")) for c in simple) == 24
    assert {"csf", "white_matter"} <= set(simple) and "global_signal" not in simple
    gsr, _ = strategy_confounds(bold, "simple+gsr", n)
    assert "global_signal" in gsr
    _, kept = strategy_confounds(bold, "scrubbing.5", n)
    fd = framewise_displacement(pd.read_csv(participant_files(sites, "1002")["confounds"], sep="\t",
                                            na_values=["n/a"])[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy())
    assert not set(np.flatnonzero(fd > 0.5)) & set(kept)  # every volume over 0.5 mm is censored
    none, mask = strategy_confounds(bold, "none", n)
    assert none is None and mask is None


def test_missing_columns_are_named(sites, tmp_path):
    func = tmp_path / "derivatives" / "sub-1001" / "func"
    func.mkdir(parents=True)
    files = participant_files(sites, "1001")
    for key in ("bold", "sidecar", "confounds_json"):
        shutil.copy(files[key], func / files[key].name)
    table = pd.read_csv(files["confounds"], sep="\t").drop(columns=["framewise_displacement", "std_dvars"])
    table.to_csv(func / files["confounds"].name, sep="\t", index=False)
    with pytest.raises(ConfoundsError, match="needs the columns framewise_displacement, std_dvars"):
        strategy_confounds(func / files["bold"].name, "scrubbing.5", len(table))
    atlas = atlas_files(sites, PARCELS)[0]
    proc = cli("fmri", "denoise", tmp_path / "derivatives", "--atlas", atlas, "--out", tmp_path / "out", "-s", "scrubbing.5",
               "-q", ok=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "desc-confounds_timeseries.tsv" in lines[0] and "framewise_displacement" in lines[0]


def test_a_run_too_short_after_scrubbing_is_left_out_with_a_reason(sites, tmp_path):
    runs = find_preprocessed_runs(sites / "derivatives" / "fmriprep")[:3]
    with pytest.raises(ScrubbedTooShortError, match="keeps .* volumes, fewer than the 500"):
        strategy_confounds(runs[0].bold, "scrubbing.2", len(pd.read_csv(participant_files(sites, runs[0].subject)["confounds"],
                                                                       sep="\t")), min_volumes=500)
    atlas = load_atlas(atlas_files(sites, PARCELS)[0])
    summary = denoise_runs(runs, atlas, ["scrubbing.2"], tmp_path, min_volumes=500, show_progress=False)
    assert [s for s, _ in summary.excluded["scrubbing.2"]] == [r.subject for r in runs]
    assert "fewer than the 500" in (tmp_path / "scrubbing.2" / "excluded.tsv").read_text()
    with pytest.raises(ParcellationMismatchError, match="excluded every participant"):
        load_series(tmp_path, "scrubbing.2")


def test_series_files_and_resume(sites, denoised):
    series = load_series(denoised, "simple")
    assert len(series.series) == 24 and series.series[0].shape[1] == PARCELS
    np.testing.assert_allclose(series.series[0].mean(0), 0, atol=1e-4)  # z-scored
    assert all(t >= 24 + 2 for t in series.tdof_lost)
    scrubbed = load_series(denoised, "scrubbing.5+gsr")
    assert all(len(s) <= v for s, v in zip(scrubbed.series, scrubbed.volumes))
    runs = find_preprocessed_runs(sites / "derivatives" / "fmriprep")
    again = denoise_runs(runs, load_atlas(atlas_files(sites, PARCELS)[0]), ["simple"], denoised, show_progress=False)
    assert again.written == 0 and again.skipped == 24


def test_different_parcellations_are_refused(sites, denoised, tmp_path):
    out = tmp_path / "mixed"
    shutil.copytree(denoised / "simple", out / "simple")
    other = tmp_path / "atlas-coarse_dseg.nii.gz"
    import nibabel as nib

    img = nib.load(atlas_files(sites, PARCELS)[0])
    labels = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(((labels + 1) // 2).astype(np.int16), img.affine), other)
    runs = find_preprocessed_runs(sites / "derivatives" / "fmriprep")[:1]
    for f in (out / "simple").glob(f"sub-{runs[0].subject}_*"):
        f.unlink()
    denoise_runs(runs, load_atlas(other), ["simple"], out, show_progress=False)
    with pytest.raises(ParcellationMismatchError, match="has 15 parcels of another atlas"):
        load_series(out, "simple")
    proc = cli("fmri", "classify", out, "--out", tmp_path / "cls", "--participants", sites / "participants.tsv",
               "--permutations", 0, ok=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "one parcellation" in proc.stderr


def test_bad_inputs_give_one_line(tmp_path, sites):
    with pytest.raises(NoRunsError, match="fMRIPrep output folder"):
        find_preprocessed_runs(tmp_path)
    four_d = tmp_path / "atlas4d.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((4, 4, 4, 2)).astype(np.float32), np.eye(4)), four_d)
    with pytest.raises(AtlasError, match="must be 3-D"):
        load_atlas(four_d)
    proc = cli("fmri", "denoise", tmp_path, "--atlas", four_d, "--out", tmp_path / "o", "-s", "bogus", ok=False)
    assert proc.returncode == 2 and "unknown strategy 'bogus'" in proc.stderr


# ---- the benchmark's metrics ----------------------------------------------------------------------

def test_qcfc_is_a_partial_correlation():
    from scipy import stats

    rng = np.random.default_rng(0)
    fd = rng.gamma(2, 0.1, 200)
    age = rng.uniform(10, 40, 200)
    edges = np.column_stack([0.5 * fd + rng.normal(0, 0.1, 200), rng.normal(0, 1, 200), 0.02 * age + rng.normal(0, 0.1, 200)])
    r, p = qcfc(edges, fd)
    for k in range(3):
        expected = stats.pearsonr(edges[:, k], fd)
        assert r[k] == pytest.approx(expected.statistic) and p[k] == pytest.approx(expected.pvalue, rel=1e-6)
    # partialling age out removes the third edge's age effect from its relation to motion
    fd_age = fd + 0.01 * age
    r_raw, _ = qcfc(edges, fd_age)
    r_partial, _ = qcfc(edges, fd_age, age[:, None])
    assert abs(r_partial[2]) < abs(r_raw[2])


def test_denoising_lowers_qcfc_and_recovers_the_truth(sites, denoised):
    atlas = load_atlas(atlas_files(sites, PARCELS)[0])
    truth = np.load(sites / "truth" / "group_difference.npy")
    quality = {}
    for name in ("none", "simple", "scrubbing.5+gsr"):
        s = load_series(denoised, name)
        labels = np.array(load_participants(sites / "participants.tsv", s.subjects).labels)
        quality[name] = strategy_quality(s.series, np.array([f[1:].mean() for f in s.fd]), s.tdof_lost, s.volumes,
                                         atlas.distances(), None, labels, truth)
    assert quality["scrubbing.5+gsr"].qcfc_median_abs_r < quality["none"].qcfc_median_abs_r
    assert quality["simple"].truth_recovery_r > quality["none"].truth_recovery_r
    assert quality["none"].tdof_lost == 0 < quality["simple"].tdof_lost < quality["scrubbing.5+gsr"].tdof_lost


# ---- features ------------------------------------------------------------------------------------

def test_topology_of_two_modules():
    """Two modules of 10 parcels each (strongly correlated inside, not between): H0 has 19 finite bars,
    18 of them short (merging inside a module) and one long (joining the modules)."""
    rng = np.random.default_rng(1)
    t = 400
    modules = rng.standard_normal((t, 2))
    series = np.column_stack([modules[:, k // 10] + 0.3 * rng.standard_normal(t) for k in range(20)])
    h0, h1 = persistence_diagrams(series)
    deaths = np.sort(h0[:, 1])
    assert len(h0) == 19 and deaths[-1] > 1.2 and deaths[-2] < 0.6
    grid = np.linspace(0, 2, 41)
    curve = betti_curve(h0, grid)
    assert curve[0] == 19 and np.all(np.diff(curve) <= 0) and curve[-1] == 0
    features = TopologicalFeatures().fit([series, series[::-1]]).transform([series])
    assert features.shape == (1, 2 * 40 + 64 + 5) and np.isfinite(features).all()


def test_tangent_transform_of_one_participant_matches_the_group():
    rng = np.random.default_rng(2)
    group = [rng.standard_normal((120, 8)) + rng.standard_normal((120, 1)) for _ in range(6)]
    f = ConnectivityFeatures("tangent").fit(group)
    np.testing.assert_allclose(f.transform(group[:1]), f.transform(group)[:1], atol=1e-10)
    corr = ConnectivityFeatures("correlation").fit(group).transform(group)
    assert corr.shape == (6, 28)


def test_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (5, 40))
    s = np.round(rng.normal(size=(5, 40)) + y, 1)
    np.testing.assert_allclose(auc_scores(y, s), [roc_auc_score(a, b) for a, b in zip(y, s)])


# ---- classification --------------------------------------------------------------------------------

def test_classifier_finds_a_planted_signal_and_not_noise():
    rng = np.random.default_rng(4)
    n = 90
    y = np.tile([0, 1], n // 2)
    sites = np.repeat(["a", "b", "c"], n // 3)
    noise = rng.standard_normal((n, 50))
    signal = noise.copy()
    signal[:, :5] += 1.2 * y[:, None]
    found = classify(signal, y, sites, "features", permutations=50)
    assert found.auc > 0.85 and found.permutation_p < 0.05
    assert found.auc_ci[0] < found.auc < found.auc_ci[1]
    chance = classify(noise, y, sites, "features", permutations=50)
    assert 0.3 < chance.auc < 0.7 and chance.permutation_p > 0.05


def test_motion_regression_removes_a_motion_confound():
    """Features that follow head motion only, and groups that differ in motion: classified before,
    at chance once motion is regressed out inside the folds."""
    rng = np.random.default_rng(5)
    n = 120
    y = np.tile([0, 1], n // 2)
    sites = np.repeat(["a", "b", "c", "d"], n // 4)
    fd = [np.abs(rng.normal(0, 0.1 * (1 + 1.5 * label), 150)) for label in y]
    motion = motion_features(fd)
    features = motion[:, :1] * rng.normal(1, 0.1, (1, 40)) + 0.02 * rng.standard_normal((n, 40))
    assert classify(features, y, sites, "features", permutations=50).auc > 0.8
    cleaned = classify(features, y, sites, "features", permutations=50, confounds=motion)
    assert cleaned.permutation_p > 0.05


def test_folds_keep_the_site_out(denoised, sites):
    series = load_series(denoised, "simple")
    table = load_participants(sites / "participants.tsv", series.subjects)
    folds = fold_features(series.series, np.array(table.sites), ("connectivity",))["connectivity"]
    for (test, f_train, f_test), site in zip(folds, sorted(set(table.sites))):
        assert {table.sites[i] for i in test} == {site}
        assert len(f_train) + len(f_test) == 24


# ---- the command line, end to end -------------------------------------------------------------

def test_cli_synth_denoise_features_classify(tmp_path):
    data = tmp_path / "data"
    cli("fmri", "synth", data, "--sites", 3, "--per-site", 6, "--small", "--seed", 7, "-q")
    atlas = next((data / "atlas").glob("*_dseg.nii.gz"))
    out = tmp_path / "denoised"
    stdout = cli("fmri", "denoise", data / "derivatives" / "fmriprep", "--atlas", atlas, "--out", out, "-s", "none",
                 "-s", "simple", "--truth", data / "truth" / "group_difference.npy", "--save-bold", "-q").stdout
    assert "QC-FC share" in stdout and "truth r" in stdout
    import nibabel as nib

    image = nib.load(next((out / "simple").glob("sub-1001_*_bold.nii.gz")))
    series = pd.read_csv(next((out / "simple").glob("sub-1001_*_timeseries.tsv")), sep="\t")
    assert image.ndim == 4 and image.shape[3] == len(series)  # the kept volumes, as in the series
    quality = json.loads((out / "quality.json").read_text())
    assert set(quality) == {"none", "simple"} and quality["simple"]["truth_recovery_r"] is not None
    cli("fmri", "features", out, "--out", tmp_path / "features", "-s", "simple")
    edges = pd.read_csv(tmp_path / "features" / "simple" / "connectivity-tangent.tsv", sep="\t")
    assert len(edges) == 18 and edges.shape[1] == 1 + 100 * 99 // 2
    result = tmp_path / "classified"
    cli("fmri", "classify", out, "--out", result, "--permutations", 5)
    data_json = json.loads((result / "classification.json").read_text())
    assert set(data_json["classification"]) == {f"{f}/{s}" for f in ("connectivity", "tda", "both") for s in ("none", "simple")}
    for entry in data_json["classification"].values():
        assert 0 <= entry["auc"] <= 1 and len(entry["auc_ci"]) == 2 and 0 < entry["permutation_p"] <= 1
    assert "auc" in data_json["motion_control"]
    page = (result / "report.html").read_text()
    for title in ("Denoising", "Connectomes", "Persistence", "Classification"):
        assert f">{title}</h2>" in page
    assert page.count("data:image/png;base64") >= 5


# ---- real-world layouts ------------------------------------------------------------------------

def _copy_run(sites: Path, label: str, func: Path, rename=lambda name: name) -> None:
    func.mkdir(parents=True, exist_ok=True)
    for key, path in participant_files(sites, label).items():
        shutil.copy(path, func / rename(path.name))


def test_two_sessions_are_one_participant(sites, tmp_path):
    deriv = tmp_path / "fmriprep"
    for session in ("1", "2"):
        _copy_run(sites, "1001", deriv / "sub-1001" / f"ses-{session}" / "func",
                  lambda n, s=session: n.replace("sub-1001_", f"sub-1001_ses-{s}_"))
    _copy_run(sites, "1002", deriv / "sub-1002" / "func")
    runs = find_preprocessed_runs(deriv)
    assert len(runs) == 3
    denoise_runs(runs, load_atlas(atlas_files(sites, PARCELS)[0]), ["simple"], tmp_path / "out", show_progress=False)
    series = load_series(tmp_path / "out", "simple")
    assert series.subjects == ["1001", "1002"]
    assert len(series.series[0]) == 2 * len(series.series[1]) and len(series.fd[0]) == 2 * len(series.fd[1])


def test_two_resolutions_of_one_run_are_refused(sites, tmp_path):
    func = tmp_path / "sub-1001" / "func"
    _copy_run(sites, "1001", func)
    _copy_run(sites, "1001", func, lambda n: n.replace("_desc-preproc", "_res-2_desc-preproc"))
    with pytest.raises(NoRunsError, match="same run .* in another resolution"):
        find_preprocessed_runs(tmp_path)


def test_a_parcel_without_signal_is_named(sites, tmp_path):
    import nibabel as nib

    func = tmp_path / "sub-1001" / "func"
    _copy_run(sites, "1001", func)
    atlas = load_atlas(atlas_files(sites, PARCELS)[0])
    bold = next(func.glob("*_desc-preproc_bold.nii.gz"))
    img = nib.load(bold)
    data = np.asarray(img.dataobj, dtype=np.float32)
    labels = np.asarray(nib.load(atlas.path).dataobj)
    data[labels == atlas.indices[-1]] = 0  # outside the field of view
    nib.save(nib.Nifti1Image(data, img.affine, img.header), bold)
    summary = denoise_runs(find_preprocessed_runs(tmp_path), atlas, ["simple"], tmp_path / "out", show_progress=False)
    assert len(summary.failed) == 1 and f"no signal in 1 parcel of atlas synth{PARCELS} ({atlas.names[-1]})" in str(summary.failed[0])


def test_feature_columns_name_their_edges(denoised, tmp_path):
    cli("fmri", "features", denoised, "--out", tmp_path, "-s", "simple", "--kind", "correlation")
    table = pd.read_csv(tmp_path / "simple" / "connectivity-correlation.tsv", sep="\t")
    series = load_series(denoised, "simple")
    names = list(series.parcel_names)
    r = np.corrcoef(series.series[0].T)
    for column in table.columns[1:6].tolist() + table.columns[-3:].tolist():
        a, b = column.split("|")
        # Ledoit-Wolf shrinks the correlation a little; the edge must still be its own pair's
        assert np.arctanh(r[names.index(a), names.index(b)]) == pytest.approx(table[column][0], abs=0.08)
