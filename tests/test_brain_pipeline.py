"""framegram.brain end to end: a toy BIDS dataset written here, the generated ds003688-shaped
dataset (2 participants, small grid), typed errors, the CLI and the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the toy dataset writer beside this file
from test_brain_toydata import (  # noqa: E402
    BOLD_01, QUICK_FIT, copy_run, damage_fit_file, detrended_copy, quick_fit, synth_brain_mask, write_toy_bids,
)

from framegram.brain import fit_subject  # noqa: E402
from framegram.fmri import (  # noqa: E402
    BadBoldError, BadMetadataError, BrainConfig, MissingMetadataError, NoBoldError, RunTooShortError, StimulusTooShortError,
    TRMismatchError, UnknownSubjectError, find_runs,
)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy-bids")
    # 10x10x4: 80 responsive voxels and 320 others, enough for "<= 5 % of the others significant"
    # to measure the test rather than a few voxels' luck
    return root, write_toy_bids(root, shape=(10, 10, 4))


def test_find_runs_reads_tr_confounds_and_subjects(toy):
    root, _ = toy
    runs = find_runs(root)
    assert [r.subject for r in runs] == ["01", "02"]
    run = runs[0]
    assert run.tr == pytest.approx(0.608) and run.n_volumes == 641 and run.shape == (10, 10, 4)
    conf = run.load_confounds()
    assert conf.shape == (641, 12) and np.all(conf[0, 6:] == 0)  # n/a derivative row → 0
    with pytest.raises(UnknownSubjectError, match="'07'.*01, 02"):
        find_runs(root, ["07"])


def test_bad_datasets_get_typed_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    with pytest.raises(NoBoldError, match="no BOLD runs"):
        find_runs(tmp_path / "empty")
    with pytest.raises(NoBoldError, match="no such folder"):
        find_runs(tmp_path / "missing")
    write_toy_bids(tmp_path / "badtr", subjects=("01",), n_volumes=40, tr_header=2.0)
    with pytest.raises(TRMismatchError, match="0.608 s in the sidecar but 2 s in the NIfTI header"):
        find_runs(tmp_path / "badtr")
    write_toy_bids(tmp_path / "notr", subjects=("01",), n_volumes=40, with_tr=False)
    with pytest.raises(MissingMetadataError, match=r"sub-01_ses-mri3t_task-film_run-1_bold.nii.gz: no RepetitionTime.*0.608 s"):
        find_runs(tmp_path / "notr")


@pytest.mark.parametrize("value", ['"fast"', "null", "-0.608", "0", "NaN", "[0.608]", "true"])
def test_a_repetition_time_that_is_not_a_positive_number_is_refused_naming_the_sidecar(value, tmp_path):
    write_toy_bids(tmp_path, subjects=("01",), n_volumes=40)
    sidecar = tmp_path / "sub-01" / "ses-mri3t" / "func" / "sub-01_ses-mri3t_task-film_run-1_bold.json"
    sidecar.write_text('{"TaskName": "film", "RepetitionTime": %s}' % value)
    with pytest.raises(BadMetadataError) as info:
        find_runs(tmp_path)
    assert info.value.path == sidecar
    assert f"RepetitionTime is {value}, not a positive number of seconds" in str(info.value)
    assert "the NIfTI header says 0.608 s" in str(info.value)


def test_the_inherited_sidecar_is_named_when_it_holds_the_bad_repetition_time(tmp_path):
    write_toy_bids(tmp_path, subjects=("01",), n_volumes=40)
    (tmp_path / "sub-01" / "ses-mri3t" / "func" / "sub-01_ses-mri3t_task-film_run-1_bold.json").write_text('{"TaskName": "film"}')
    (tmp_path / "task-film_bold.json").write_text('{"TaskName": "film", "RepetitionTime": "0.6 s"}')
    with pytest.raises(BadMetadataError, match=r'task-film_bold.json: RepetitionTime is "0.6 s"') as info:
        find_runs(tmp_path)
    assert info.value.path == tmp_path / "task-film_bold.json"


def test_bad_runs_are_refused_naming_the_file(tmp_path):
    info = write_toy_bids(tmp_path / "nan", subjects=("01",), nan_voxel=(2, 3, 1))
    run = find_runs(tmp_path / "nan")[0]
    with pytest.raises(BadBoldError, match=r"_bold.nii.gz: 1 voxels hold NaN.*voxel \(2, 3, 1\), volume 10"):
        fit_subject(run, info["features"], info["times"])
    info = write_toy_bids(tmp_path / "short", subjects=("01",), n_volumes=400)
    run = find_runs(tmp_path / "short")[0]
    film = write_toy_bids(tmp_path / "full", subjects=("01",))  # its film lasts 641 volumes
    with pytest.raises(RunTooShortError, match=r"_bold.nii.gz: 400 volumes x 0.608 s = 243.20 s of scanning, but the stimulus lasts 389.60 s"):
        fit_subject(run, film["features"], film["times"])


@pytest.mark.parametrize("basis", ["hrf", "fir"])
def test_toy_fit_finds_the_region_and_the_lag(toy, basis):
    root, info = toy
    run = find_runs(root, ["01"])[0]
    mask = np.ones(run.shape, dtype=bool)
    fit = fit_subject(run, info["features"], info["times"], BrainConfig(basis=basis), mask=mask)
    resp = info["responsive"][mask]
    assert fit.r[resp].mean() > 0.5
    assert fit.significant[resp].mean() > 0.8 and fit.significant[~resp].mean() < 0.05
    assert abs(fit.profile_peak_s - info["lag_s"]) <= run.tr
    assert all(fit.r[resp].mean() > v[resp].mean() + 0.1 for v in fit.controls.values())
    assert (fit.peak_delay_s is None) == (basis == "hrf")
    pub = fit.published
    assert pub.n_test == 641 - 449 and pub.mse_model > 0
    with pytest.raises(StimulusTooShortError):
        fit_subject(run, info["features"][:500], info["times"][:500], BrainConfig(basis=basis), mask=mask)


def test_cli_fit_and_report_on_the_generated_dataset(synth, tmp_path):
    import nibabel as nib
    from typer.testing import CliRunner

    from framegram.cli import app

    out = tmp_path / "fit"
    result = CliRunner().invoke(app, ["brain", "fit", "--bids", str(synth), "--stimulus", str(synth / "stimuli" / "film.mp4"),
                                      "--subjects", "02", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "sub-02:" in result.output
    results = json.loads((out / "results.json").read_text())
    [summary] = results["subjects"]
    assert summary["subject"] == "02" and summary["n_test"] == 192
    assert set(summary["published"]) >= {"mse_model", "mse_persistence", "mse_constant"}
    r = nib.load(out / "sub-02" / "r.nii.gz")
    assert r.shape == (20, 20, 12)
    pred = nib.load(out / "sub-02" / "pred_test_bold.nii.gz")
    assert pred.shape == (20, 20, 12, 192) and pred.header.get_zooms()[3] == pytest.approx(0.608)
    # the fit is scored against the responsive region of the ground truth
    truth = synth / "derivatives" / "framegram-synth"
    resp = nib.load(truth / "desc-responsive_mask.nii.gz").get_fdata() > 0
    mask = nib.load(out / "sub-02" / "mask.nii.gz").get_fdata() > 0
    rmap = r.get_fdata()
    assert rmap[resp & mask].mean() > rmap[~resp & mask].mean() + 0.05
    result = CliRunner().invoke(app, ["brain", "report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "Brain encoding" in html and "sub-02" in html and html.count("<img") >= 2


def test_cli_user_errors_are_one_line(tmp_path):
    import subprocess

    exe = Path(sys.executable).parent / "framegram"
    proc = subprocess.run([str(exe), "brain", "fit", "--bids", str(tmp_path), "--stimulus", "x.mp4", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no BOLD runs" in proc.stderr
    proc = subprocess.run([str(exe), "brain", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "results.json: no such file" in proc.stderr


def test_fit_dataset_resumes_and_refuses_other_settings(synth, tmp_path):
    from framegram.brain import fit_dataset
    from framegram.fmri.errors import BrainError

    stimulus = synth / "stimuli" / "film.mp4"
    out = tmp_path / "fit"
    fitted = []
    config = BrainConfig(controls=False, published=False)
    fit_dataset(synth, stimulus, out, config=config, on_fit=lambda f: fitted.append(f.run.subject))
    assert fitted == ["01", "02"]
    first = json.loads((out / "results.json").read_text())
    (out / "sub-02" / "summary.json").unlink()  # as if interrupted while writing sub-02
    fit_dataset(synth, stimulus, out, config=config, on_fit=lambda f: fitted.append(f.run.subject))
    assert fitted == ["01", "02", "02"]  # sub-01 kept, sub-02 fitted again, identically
    assert json.loads((out / "results.json").read_text()) == first
    with pytest.raises(BrainError, match="other settings"):
        fit_dataset(synth, stimulus, out, config=BrainConfig(basis="fir", controls=False, published=False))


@pytest.fixture(scope="module")
def small_fit(synth, tmp_path_factory) -> Path:
    return quick_fit(synth, tmp_path_factory)


@pytest.mark.parametrize("name, damage, problem", [
    ("sub-01/scores.npz", "missing", "no such file"),
    ("sub-01/scores.npz", "garbage", "damaged"),
    ("sub-01/scores.npz", "truncated", "damaged"),
    ("sub-01/scores.npz", "no r", "no 'r' array"),
    ("sub-01/r.nii.gz", "missing", "no such file"),
    ("sub-01/r.nii.gz", "truncated", "damaged"),
    ("sub-01/r.nii.gz", "other shape", "shape (4, 4, 4), but mask.nii.gz has (20, 20, 12)"),
    ("sub-01/mask.nii.gz", "garbage", "damaged"),
    ("sub-01/mask.nii.gz", "4-D", "a 3-D image"),
    ("results.json", "no subjects", "no list of participants"),
    ("results.json", "entry lacks voxels", "sub-01 lacks 'voxels'"),
])
def test_report_of_a_damaged_fit_folder_names_the_file_and_the_command_that_remakes_it(small_fit, tmp_path, name, damage, problem):
    import shutil

    from framegram.brain.report import write_brain_report
    from framegram.fmri.errors import BrainError

    out = tmp_path / "fit"
    shutil.copytree(small_fit, out)
    path = damage_fit_file(out, name, damage)
    with pytest.raises(BrainError) as info:
        write_brain_report(out)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message, message
    assert f"framegram brain fit" in message and str(out) in message, message
    assert not (out / "report.html").exists()


def test_confounds_in_a_derivatives_folder_without_dataset_description_are_found_and_used(synth, tmp_path_factory, tmp_path):
    import nibabel as nib

    from framegram.brain import fit_dataset
    from framegram.fmri.errors import DerivativesWarning

    root = copy_run(synth, tmp_path / "bids")  # raw sub-01 and derivatives/fmriprep: nothing pybids indexes
    (root / "derivatives" / "fmriprep" / "dataset_description.json").unlink()
    confounds = root / "derivatives" / "fmriprep" / "sub-01" / "ses-mri3t" / "func" / "sub-01_ses-mri3t_task-film_run-1_desc-confounds_timeseries.tsv"
    with pytest.warns(DerivativesWarning, match=r"derivatives/fmriprep has no dataset_description.json.*sub-01_ses-mri3t_task-film_run-1_desc-confounds"):
        [run] = find_runs(root)
    assert run.confounds == confounds
    np.testing.assert_array_equal(run.load_confounds(), find_runs(synth, ["01"])[0].load_confounds())
    # the fit uses them: the same maps as the fit of the intact dataset
    with pytest.warns(DerivativesWarning):
        fit_dataset(root, synth / "stimuli" / "film.mp4", tmp_path / "fit", config=BrainConfig(**QUICK_FIT))
    normal = quick_fit(synth, tmp_path_factory)
    for name in ("r.nii.gz", "mask.nii.gz"):
        np.testing.assert_array_equal(nib.load(tmp_path / "fit" / "sub-01" / name).get_fdata(),
                                      nib.load(normal / "sub-01" / name).get_fdata())

    # another derivatives folder that pybids does index: the one without a description is still searched
    other = root / "derivatives" / "other"
    other.mkdir()
    (other / "dataset_description.json").write_text(json.dumps(
        {"Name": "other", "BIDSVersion": "1.8.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "x"}]}))
    with pytest.warns(DerivativesWarning, match="fmriprep has no dataset_description.json"):
        assert find_runs(root)[0].confounds == confounds
    # with its description back, pybids indexes it and nothing is said
    (root / "derivatives" / "fmriprep" / "dataset_description.json").write_bytes(
        (synth / "derivatives" / "fmriprep" / "dataset_description.json").read_bytes())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DerivativesWarning)
        assert find_runs(root)[0].confounds == confounds


def test_the_cli_shows_a_derivatives_warning_as_one_line(synth, tmp_path, capsys):
    from framegram.cli.brain import brain_warnings

    root = copy_run(synth, tmp_path / "bids")
    (root / "derivatives" / "fmriprep" / "dataset_description.json").unlink()
    with brain_warnings():
        find_runs(root)
    err = capsys.readouterr().err
    assert err.startswith(f"framegram: warning: {root / 'derivatives' / 'fmriprep'} has no dataset_description.json")
    assert err.count("\n") == 1


def test_an_empty_epi_mask_is_refused_and_the_fit_runs_with_a_given_mask(synth, tmp_path_factory, tmp_path):
    import nibabel as nib

    from framegram.brain import fit_dataset
    from framegram.fmri import MaskError

    root = detrended_copy(synth, tmp_path_factory)  # skull-stripped and detrended: nilearn's EPI mask is empty
    film = synth / "stimuli" / "film.mp4"
    with pytest.raises(MaskError, match=r"_bold.nii.gz: nilearn's EPI mask of this run holds 0 voxels .*--mask FILE") as info:
        fit_dataset(root, film, tmp_path / "fit", config=BrainConfig(**QUICK_FIT))
    assert info.value.path == root / BOLD_01
    brain = synth_brain_mask(synth)  # as the message says: --mask, into the same folder (nothing was fitted there)
    results = fit_dataset(root, film, tmp_path / "fit", config=BrainConfig(**QUICK_FIT, mask=str(brain)))
    [summary] = json.loads(results.read_text())["subjects"]
    inside = nib.load(brain).get_fdata() > 0
    assert summary["mask"] == str(brain) and summary["voxels"] == inside.sum()
    assert json.loads((tmp_path / "fit" / "settings.json").read_text())["config"]["mask"] == str(brain)
    r = nib.load(tmp_path / "fit" / "sub-01" / "r.nii.gz").get_fdata()
    responsive = nib.load(synth / "derivatives" / "framegram-synth" / "desc-responsive_mask.nii.gz").get_fdata() > 0
    assert r[responsive].mean() > r[inside & ~responsive].mean() + 0.1  # the film still drives the detrended BOLD


def test_fmriprep_brain_mask_on_the_bolds_grid_is_used_and_unusable_masks_are_refused(synth, tmp_path_factory, tmp_path):
    import shutil

    import nibabel as nib

    from framegram.fmri import MaskError
    from framegram.fmri.masks import MIN_MASK_VOXELS, load_mask, run_mask

    root = tmp_path / "bids"
    shutil.copytree(detrended_copy(synth, tmp_path_factory), root)
    func = root / "derivatives" / "fmriprep" / "sub-01" / "ses-mri3t" / "func"
    stem = "sub-01_ses-mri3t_task-film_run-1"
    brain = nib.load(synth_brain_mask(synth))
    other = func / f"{stem}_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"  # another space: another grid
    nib.save(nib.Nifti1Image(np.ones((9, 9, 9), np.uint8), np.eye(4)), other)
    [run] = find_runs(root)
    assert run.brain_masks == (other,)
    img, data = run.read_bold()
    with pytest.raises(MaskError, match=r"holds 0 voxels.*fMRIPrep brain masks found \(.*MNI152NLin2009cAsym_desc-brain_mask.nii.gz\) are on another grid.*--mask FILE"):
        run_mask(run, img, data)
    native = func / f"{stem}_space-T1w_desc-brain_mask.nii.gz"  # on the BOLD's grid
    shutil.copy(synth_brain_mask(synth), native)
    [run] = find_runs(root)
    assert set(run.brain_masks) == {other, native}
    mask, source = run_mask(run, img, data)
    assert source == str(native) and mask.sum() == (brain.get_fdata() > 0).sum()
    tiny = np.zeros(brain.shape, np.uint8)
    tiny[10, 10, 5:10] = 1
    nib.save(nib.Nifti1Image(tiny, brain.affine), native)
    with pytest.raises(MaskError, match=rf"space-T1w_desc-brain_mask.nii.gz: fMRIPrep's brain mask .* holds 5 voxels \(fewer than {MIN_MASK_VOXELS}\).*--mask FILE"):
        run_mask(run, img, data)
    # a mask file given on purpose: any size but empty, on the BOLD's grid only
    assert run_mask(run, img, data, native)[0].sum() == 5
    affine = brain.affine.copy()
    affine[0, 3] += 2.0
    nib.save(nib.Nifti1Image(tiny, affine), tmp_path / "shifted.nii.gz")
    with pytest.raises(MaskError, match=r"shifted.nii.gz: its affine differs from that of the BOLD .*\(by up to 2 mm\)"):
        load_mask(tmp_path / "shifted.nii.gz", img, run.bold)
    nib.save(nib.Nifti1Image(np.ones((*brain.shape, 2), np.uint8), brain.affine), tmp_path / "4d.nii.gz")
    with pytest.raises(MaskError, match=r"4d.nii.gz: a mask must be a 3-D image, this one has shape \(20, 20, 12, 2\)"):
        load_mask(tmp_path / "4d.nii.gz", img, run.bold)
    with pytest.raises(MaskError, match=r"nothing.nii.gz: no such mask file"):
        load_mask(tmp_path / "nothing.nii.gz", img, run.bold)


def test_cli_fit_with_feature_spaces_names_the_space_the_signal_follows(synth, tmp_path):
    """The generated signal here follows the framegram's own components: with a second space beside
    it, banded ridge must give the responsive region to the framegram, write each space's maps, and
    the report must show the spaces' table and the winning-space map."""
    import nibabel as nib
    from typer.testing import CliRunner

    from framegram.cli import app

    out = tmp_path / "fit"
    result = CliRunner().invoke(app, [
        "brain", "fit", "--bids", str(synth), "--stimulus", str(synth / "stimuli" / "film.mp4"), "--subjects", "01",
        "--out", str(out), "--spaces", "framegram,image-stats", "--no-controls", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "framegram: alone r" in result.output
    [summary] = json.loads((out / "results.json").read_text())["subjects"]
    spaces = summary["spaces"]
    assert set(spaces) == {"framegram", "image-stats"}
    assert spaces["framegram"]["voxels_best"] > 3 * spaces["image-stats"]["voxels_best"]
    assert spaces["framegram"]["mean_unique_r2_significant"] > spaces["image-stats"]["mean_unique_r2_significant"]
    truth = synth / "derivatives" / "framegram-synth"
    resp = nib.load(truth / "desc-responsive_mask.nii.gz").get_fdata() > 0
    mask = nib.load(out / "sub-01" / "mask.nii.gz").get_fdata() > 0
    weight = nib.load(out / "sub-01" / "space-framegram_weight.nii.gz").get_fdata()
    assert weight[resp & mask].mean() > 0.7
    for name in ("split_r2", "r_alone", "unique_r2", "shared_r2", "weight"):
        assert (out / "sub-01" / f"space-image-stats_{name}.nii.gz").is_file()
    result = CliRunner().invoke(app, ["brain", "report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "Feature spaces (banded ridge)" in html and "winning feature space" in html


def test_cli_lists_the_feature_spaces_and_refuses_unknown_ones(tmp_path):
    from typer.testing import CliRunner

    from framegram.cli import app

    result = CliRunner().invoke(app, ["brain", "spaces"])
    assert result.exit_code == 0
    assert all(name in result.output for name in ("framegram", "lite0-blocks", "image-stats", "motion-energy", "sound"))
    result = CliRunner().invoke(app, ["brain", "fit", "--bids", str(tmp_path), "--stimulus", str(tmp_path / "f.mp4"),
                                      "--out", str(tmp_path / "o"), "--spaces", "framegram,colour"])
    assert result.exit_code == 2 and "colour" in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_fit_without_the_partition_skips_unique_and_shared_r2(synth, tmp_path):
    from typer.testing import CliRunner

    from framegram.cli import app

    out = tmp_path / "fit"
    result = CliRunner().invoke(app, [
        "brain", "fit", "--bids", str(synth), "--stimulus", str(synth / "stimuli" / "film.mp4"), "--subjects", "01",
        "--out", str(out), "--spaces", "framegram,image-stats", "--no-partition", "--no-controls", "--quiet"])
    assert result.exit_code == 0, result.output
    [summary] = json.loads((out / "results.json").read_text())["subjects"]
    assert summary["spaces"]["framegram"]["mean_unique_r2_significant"] is None
    assert summary["spaces"]["framegram"]["voxels_best"] > summary["spaces"]["image-stats"]["voxels_best"]
    assert (out / "sub-01" / "space-framegram_split_r2.nii.gz").is_file()
    assert not (out / "sub-01" / "space-framegram_unique_r2.nii.gz").exists()
    assert CliRunner().invoke(app, ["brain", "report", str(out)]).exit_code == 0
