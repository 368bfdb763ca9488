"""The fMRI signal model on several stimulus feature spaces: each space reduced to its own components,
side by side on the HRF basis; a prediction rebuilds the same inputs from the film and refuses other
spaces than the checkpoint's. On the small generated dataset (its silent film: the cheap spaces
"framegram" and "image-stats")."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from framegram.cli import app
from framegram.errors import InputError
from framegram.fmri.bids import find_runs
from framegram.fmri.spaces import UnknownSpaceError
from framegram.vae import VAEConfig, load_signal_run, train_signal_model
from framegram.vae.data import fit_pca_map
from framegram.vae.fmri import build_fmri_set
from framegram.cache import framegram_for
from framegram.fmri.stimulus import frames_to_tr
from framegram.vae.fmri_stimulus import EARLY_HRF_DELAYS_S, SpacesMismatchError
from framegram.vae.predict import fmri_inputs, predict_fmri

TINY = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "window": 64, "burn_in": 16, "hidden": 16, "latent_dim": 4}
SPACES = ("framegram", "image-stats")


@pytest.fixture(scope="module")
def spaced(synth):
    return build_fmri_set(synth, synth / "stimuli" / "film.mp4", n_components=8, spaces=SPACES,
                          hrf_delays_s=EARLY_HRF_DELAYS_S)


def test_each_space_gets_its_own_components_and_predict_rebuilds_the_inputs(spaced, synth, tmp_path):
    data, _ = spaced
    for seq in data.sequences:  # (20 framegram + 20 image-stats components) x 5 HRF delays
        assert seq.features.shape == (641, 200) and seq.target.shape == (641, 8)
    assert data.info["spaces"] == list(SPACES) and data.info["space_columns"] == [1280, 85]
    assert data.info["hrf_delays_s"] == list(EARLY_HRF_DELAYS_S) and data.info["n_features"] == 40
    components = data.features.components  # block-diagonal: no component mixes the spaces
    assert components.shape == (40, 1365)
    assert not components[:20, 1280:].any() and not components[20:, :1280].any()
    # the framegram block is the one-space model's map (its PCA on the film's TR rows, z-scored)
    (run01,) = find_runs(synth, ["01"])
    gram, _ = framegram_for(synth / "stimuli" / "film.mp4")
    alone = fit_pca_map(frames_to_tr(gram.features, gram.times, run01.tr, run01.n_volumes), 20)
    assert np.array_equal(components[:20, :1280], alone.components) and np.array_equal(data.features.scale[:20], alone.scale)

    train_signal_model(VAEConfig(**TINY), data, tmp_path / "run")
    run = load_signal_run(tmp_path / "run")
    for seq in data.sequences:
        _, _, inputs = fmri_inputs(run, synth, seq.name.removeprefix("sub-"), synth / "stimuli" / "film.mp4")
        np.testing.assert_allclose(inputs, seq.features, rtol=0, atol=1e-5)
    with pytest.raises(SpacesMismatchError, match=r"trained on the feature spaces framegram,image-stats, not framegram"):
        predict_fmri(run, synth, "01", synth / "stimuli" / "film.mp4", tmp_path / "pred", spaces=("framegram",))
    assert not (tmp_path / "pred").exists()


def test_spaces_are_checked_before_any_file_is_read(synth, tmp_path):
    with pytest.raises(InputError, match=r"holds only the \"framegram\" space"):
        build_fmri_set(synth, tmp_path / "film.framegram.npz", spaces=SPACES)
    with pytest.raises(UnknownSpaceError, match="known spaces: framegram, lite0-blocks"):
        build_fmri_set(synth, synth / "stimuli" / "film.mp4", spaces=("framegram", "colour"))


def test_cli_records_the_spaces_and_predict_reads_them_from_the_checkpoint(synth, tmp_path, monkeypatch):
    from framegram.vae.train import TARGET_SETTINGS

    monkeypatch.setitem(TARGET_SETTINGS, "fmri", {**TARGET_SETTINGS["fmri"], **TINY})  # a tiny network, two steps
    film = str(synth / "stimuli" / "film.mp4")
    cli = CliRunner()
    result = cli.invoke(app, ["vae", "train", "--target", "fmri", "--bids", str(synth), "--stimulus", film,
                              "--spaces", "framegram,colour", "--out", str(tmp_path / "bad"), "-q"])
    assert result.exit_code == 2 and "unknown feature space 'colour'; known: framegram, lite0-blocks, image-stats" in result.output
    assert not (tmp_path / "bad").exists()
    result = cli.invoke(app, ["vae", "train", "--target", "fmri", "--bids", str(synth), "--stimulus", film, "-q",
                              "--spaces", "framegram,image-stats", "--components", "8", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = load_signal_run(tmp_path / "run")
    assert run.info["spaces"] == list(SPACES) and run.features.components.shape == (40, 1365)
    out = tmp_path / "pred"
    result = cli.invoke(app, ["vae", "predict", "-c", str(tmp_path / "run"), "--bids", str(synth), "--subject", "01",
                              "--stimulus", film, "--out", str(out), "--samples", "0"])
    assert result.exit_code == 0, result.output
    assert nib.load(out / "sub-01_pred_bold.nii.gz").shape == (20, 20, 12, 641)
    result = cli.invoke(app, ["vae", "predict", "-c", str(tmp_path / "run"), "--bids", str(synth), "--subject", "01",
                              "--stimulus", film, "--out", str(out), "--spaces", "framegram"])
    assert isinstance(result.exception, SpacesMismatchError)
