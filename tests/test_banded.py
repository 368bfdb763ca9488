"""Banded ridge over feature spaces (framegram.brain.banded) on generated data with a known answer:
voxels driven by one space or another, and spaces that carry nothing."""

import numpy as np
import pytest

from framegram.brain.banded import BandedEncoder, candidate_weights, split_r2
from framegram.fmri.metrics import pearson_r, r2_score


def _smooth(rng, n, d, width=3.0):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(rng.standard_normal((n, d)), width, axis=0)


@pytest.fixture(scope="module")
def two_spaces():
    """600 volumes; space A (8 columns) drives the first 60 voxels, space B (6 columns) the next 60,
    space C (10 columns) drives nothing; the last 40 voxels are noise only."""
    rng = np.random.default_rng(0)
    n = 600
    a, b, c = _smooth(rng, n, 8), _smooth(rng, n, 6), _smooth(rng, n, 10)
    signal = np.hstack([a @ rng.standard_normal((8, 60)), b @ rng.standard_normal((6, 60)), np.zeros((n, 40))])
    signal /= np.maximum(signal.std(0), 1e-9)
    y = (signal + 0.8 * rng.standard_normal((n, 160))).astype(np.float32)
    x = np.hstack([a, b, c]).astype(np.float32)
    bands = [np.arange(0, 8), np.arange(8, 14), np.arange(14, 24)]
    return x, y, bands, signal


def test_each_voxel_weights_the_space_that_drives_it(two_spaces):
    x, y, bands, signal = two_spaces
    train, test = slice(0, 420), slice(420, None)
    model = BandedEncoder(bands).fit(x[train], y[train])
    weights = model.space_weights_
    assert weights.shape == (3, 160)
    np.testing.assert_allclose(weights.sum(0), 1.0, atol=1e-5)
    assert (weights[:, :60].argmax(0) == 0).mean() > 0.9
    assert (weights[:, 60:120].argmax(0) == 1).mean() > 0.9
    r = pearson_r(model.predict(x[test]), y[test])
    ceiling = pearson_r(signal[test], y[test])
    assert r[:120].mean() > 0.85 * ceiling[:120].mean()
    assert abs(r[120:].mean()) < 0.1  # noise voxels: no signal found


def test_the_spaces_shares_of_held_out_r2_add_up_and_name_the_driver(two_spaces):
    x, y, bands, _ = two_spaces
    train, test = slice(0, 420), slice(420, None)
    model = BandedEncoder(bands, n_mixtures=4).fit(x[train], y[train])
    parts = model.predict(x[test], split=True)
    assert parts.shape == (3, 180, 160)
    shares = split_r2(parts, y[test])
    pred = model.predict(x[test])
    total = r2_score(pred - pred.mean(0), y[test] - y[test].mean(0))
    np.testing.assert_allclose(shares.sum(0), total, atol=1e-3)
    assert shares[0, :60].mean() > 0.3 > shares[1, :60].mean()
    assert shares[1, 60:120].mean() > 0.3 > shares[0, 60:120].mean()
    assert abs(shares[2, :120].mean()) < 0.02  # the space that drives nothing explains nothing


def test_candidates_start_with_each_space_alone_then_mixtures():
    w = candidate_weights(3, 0)
    assert w.shape == (3, 3)
    np.testing.assert_allclose(w, np.eye(3), atol=1e-5)
    w = candidate_weights(3, 10, seed=1)
    assert w.shape == (13, 3)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(w[3], [0.5, 0.5, 0.0], atol=1e-5)  # the first pair
    np.testing.assert_allclose(w[6], [1 / 3] * 3, atol=1e-5)  # all equal
    assert np.all(w > 0)


def test_one_band_is_refused():
    with pytest.raises(ValueError, match="at least 2 bands"):
        BandedEncoder([np.arange(4)]).fit(np.zeros((50, 4), np.float32), np.zeros((50, 2), np.float32))
