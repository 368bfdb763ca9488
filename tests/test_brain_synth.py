"""The generated ds003688-shaped BIDS dataset (framegram.datasets.bids): layout, pybids indexing, the known
answer (signal only in the responsive region, unrelated noise elsewhere), determinism and resumption."""

from __future__ import annotations

import json

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
bids = pytest.importorskip("bids")

from framegram.datasets.bids import (
    N_VOLUMES,
    SMALL_SHAPE,
    TR,
    DatasetTruth,
    SynthBidsError,
    generate_dataset,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> DatasetTruth:
    return generate_dataset(tmp_path_factory.mktemp("bids") / "ds", subjects=3, small=True, show_progress=False)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of [V, T] arrays."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1) + 1e-12)


def test_pybids_indexes_it(dataset):
    layout = bids.BIDSLayout(dataset.root, derivatives=True)
    assert layout.get_subjects() == ["01", "02", "03"]
    files = layout.get(suffix="bold", extension=".nii.gz", subject="01", scope="raw")
    assert [f.path for f in files] == [str(dataset.bold["01"])]
    assert files[0].get_metadata()["RepetitionTime"] == TR
    assert layout.get_tr() == TR
    assert layout.get_tasks() == ["film"]
    confounds = layout.get(subject="02", desc="confounds", extension=".tsv")
    assert [f.path for f in confounds] == [str(dataset.confounds["02"])]


def test_files_and_shapes(dataset):
    root = dataset.root
    assert json.loads((root / "dataset_description.json").read_text())["DatasetType"] == "raw"
    assert json.loads((root / "task-film_bold.json").read_text()) == {"TaskName": "film", "RepetitionTime": TR}
    assert (root / "participants.tsv").read_text().splitlines()[0].split("\t") == ["participant_id", "age", "sex"]
    assert (root / "README").is_file() and (root / "stimuli" / "film.mp4").is_file()
    for sub in dataset.subjects:
        img = nib.load(dataset.bold[sub])
        assert img.shape == (*SMALL_SHAPE, N_VOLUMES)
        assert img.get_data_dtype() == np.int16
        assert np.allclose(img.header.get_zooms(), (3.5, 3.5, 3.5, TR))
        assert img.header["sform_code"] > 0 and img.header["qform_code"] > 0
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        assert nib.load(dataset.signal[sub]).shape == (*SMALL_SHAPE, N_VOLUMES)
        assert nib.load(dataset.t1w[sub]).ndim == 3
        sidecar = json.loads(dataset.bold[sub].with_suffix("").with_suffix(".json").read_text())
        assert sidecar["RepetitionTime"] == TR and sidecar["TaskName"] == "film"

    events = dataset.events["01"].read_text().splitlines()
    assert events[0].split("\t") == ["onset", "duration", "trial_type"]
    rows = [line.split("\t") for line in events[1:]]
    assert len(rows) == 13
    assert [r[2] for r in rows] == ["speech", "music"] * 6 + ["speech"]
    assert float(rows[-1][0]) + float(rows[-1][1]) == 390.0

    lines = dataset.confounds["01"].read_text().splitlines()
    header = lines[0].split("\t")
    names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    assert set(names + [f"{n}_derivative1" for n in names]) <= set(header)
    assert len(lines) == 1 + N_VOLUMES
    first = dict(zip(header, lines[1].split("\t")))
    assert first["trans_x_derivative1"] == "n/a" and first["trans_x"] != "n/a"


def test_truth_files(dataset):
    truth = json.loads(dataset.truth_json.read_text())
    assert truth["tr"] == TR and truth["n_volumes"] == N_VOLUMES and truth["stimulus"] == "stimuli/film.mp4"
    assert truth["fps"] == 5.0 and truth["encoder"] == "efficientnet-lite0" and truth["hrf"] == "spm (nilearn)"
    assert sorted(truth["subjects"]) == ["01", "02", "03"]
    lags = [truth["subjects"][s]["lag_s"] for s in dataset.subjects]
    assert all(5.0 < lag < 8.0 for lag in lags)
    assert len({round(lag, 2) for lag in lags}) == 3  # participants differ
    brain = np.asarray(nib.load(dataset.brain_mask).dataobj) > 0
    resp = np.asarray(nib.load(dataset.responsive_mask).dataobj) > 0
    assert not (resp & ~brain).any()
    assert 0.10 <= resp.sum() / brain.sum() <= 0.15
    weights = np.load(dataset.weights)
    k = truth["n_components"]
    assert weights["weights"].shape == (3, k, resp.sum())
    assert weights["pca_components"].shape == (k, 1280)
    assert (weights["voxels"] == np.argwhere(resp)).all()
    # participants' weight maps differ clearly but share a part
    w = weights["weights"].reshape(3, -1)
    c = np.corrcoef(w)[np.triu_indices(3, 1)]
    assert (c > 0.1).all() and (c < 0.9).all()


def test_known_answer(dataset):
    """The signal lives in the responsive region only; bold correlates with it there and not elsewhere;
    the signal equals the stored regressors times the stored weights."""
    brain = np.asarray(nib.load(dataset.brain_mask).dataobj) > 0
    resp = np.asarray(nib.load(dataset.responsive_mask).dataobj) > 0
    weights = np.load(dataset.weights)
    for i, sub in enumerate(dataset.subjects):
        bold = np.asarray(nib.load(dataset.bold[sub]).dataobj, dtype=np.float32)
        signal = np.asarray(nib.load(dataset.signal[sub]).dataobj, dtype=np.float32)
        assert signal.dtype == np.float32
        assert not signal[~resp].any()
        assert np.allclose(signal[resp].T, weights["regressors"][i] @ weights["weights"][i], atol=1e-2)
        base = bold.mean(axis=-1)
        assert 450 < np.median(base[brain]) < 1050 and np.median(base[~brain]) < 20
        inside = _corr(signal[resp], bold[resp])
        assert inside.mean() > 0.3
        # everything else (bold - signal) does not follow the stimulus: outside the region the bold is
        # unrelated to the mean signal time course, inside the remainder is too
        mean_signal = signal[resp].mean(axis=0)
        outside = _corr(bold[brain & ~resp], mean_signal[None])
        assert abs(outside.mean()) < 0.05
        rest = _corr((bold - signal)[resp], signal[resp])
        assert abs(rest.mean()) < 0.1


def test_deterministic_and_resumable(dataset, tmp_path):
    # same seed -> identical arrays (one subject is enough: subjects do not depend on each other)
    again = generate_dataset(tmp_path / "again", subjects=1, small=True, show_progress=False)
    for path_a, path_b in [(dataset.bold["01"], again.bold["01"]), (dataset.signal["01"], again.signal["01"])]:
        assert np.array_equal(np.asarray(nib.load(path_a).dataobj), np.asarray(nib.load(path_b).dataobj))
    assert dataset.confounds["01"].read_text() == again.confounds["01"].read_text()
    assert again.lag_s["01"] == dataset.lag_s["01"]

    # resuming with more subjects leaves the existing one untouched and adds the new ones
    mtimes = {p: p.stat().st_mtime_ns for p in (again.bold["01"], again.signal["01"], again.t1w["01"])}
    more = generate_dataset(tmp_path / "again", subjects=2, small=True, show_progress=False)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert more.subjects == ["01", "02"] and more.bold["02"].is_file()
    assert DatasetTruth.load(tmp_path / "again").lag_s == more.lag_s

    # a folder made with other settings is refused
    with pytest.raises(SynthBidsError):
        generate_dataset(tmp_path / "again", subjects=2, small=True, seed=1, show_progress=False)
