"""framegram.brain on small in-memory arrays: TR alignment, delays, folds, metrics, cleaning, the
published protocol."""

from __future__ import annotations

import numpy as np
import pytest

from framegram.brain.controls import frame_before, published_protocol
from framegram.brain.model import BrainEncoder, contiguous_folds
from framegram.brain.stimulus import Design, add_delays, build_design, fir_delays
from framegram.fmri.clean import BoldCleaner
from framegram.fmri.errors import StimulusTooShortError
from framegram.fmri.hrf import hrf_peak_s
from framegram.fmri.metrics import fdr_bh, pearson_r, r2_score, shift_null_pvalues
from framegram.fmri.stimulus import frames_to_tr


def test_frames_to_tr_averages_the_frames_inside_each_volume():
    times = np.arange(20) / 5.0  # 5 fps, 4 s
    features = np.arange(20, dtype=np.float32)[:, None]
    out = frames_to_tr(features, times, tr=1.0, n_volumes=4)
    assert out[:, 0].tolist() == [2.0, 7.0, 12.0, 17.0]  # frames 0-4, 5-9, ...


def test_frames_to_tr_offset_and_empty_volumes():
    times = np.arange(10) / 5.0
    features = np.arange(10, dtype=np.float32)[:, None]
    # the film starts 1 s after the first scan: volume 0 sees no frame and takes the first one
    out = frames_to_tr(features, times, tr=1.0, n_volumes=3, offset_s=1.0)
    assert out[:, 0].tolist() == [0.0, 2.0, 7.0]
    # TR shorter than a frame period: every volume still gets the frame on screen
    out = frames_to_tr(features, times, tr=0.1, n_volumes=19)
    assert out[:, 0].tolist() == [float(k // 2) for k in range(19)]


def test_stimulus_shorter_than_the_run_is_refused():
    times = np.arange(50) / 5.0  # 10 s
    with pytest.raises(StimulusTooShortError, match="10.00 s but the run needs 20.00 s"):
        frames_to_tr(np.zeros((50, 2)), times, tr=1.0, n_volumes=20, source="film.mp4")


def test_fir_delays_shift_each_block():
    x = np.arange(1, 6, dtype=np.float32)[:, None]
    out = add_delays(x, np.array([0, 2]))
    assert out[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert out[:, 1].tolist() == [0, 0, 1, 2, 3]
    assert fir_delays(0.608).tolist() == list(range(17))  # 0 .. 9.73 s


def test_build_design_shapes():
    times = np.arange(500) / 5.0
    feats = np.random.default_rng(0).random((500, 6)).astype(np.float32)
    d = build_design(feats, times, 0.608, 150, basis="fir")
    assert d.matrix.shape == (150, 6 * 17) and d.n_blocks == 17 and d.lags_s[-1] == pytest.approx(16 * 0.608)
    h = build_design(feats, times, 0.608, 150, basis="hrf", n_components=3)
    assert h.matrix.shape == (150, 3) and h.n_blocks == 1


def test_delayed_hrf_design_peaks_at_the_kernels_peak_time():
    tr = 0.608
    impulse = np.zeros((120, 1), dtype=np.float32)
    impulse[10] = 1.0
    base = Design(impulse, impulse, np.zeros(0), "hrf", tr)
    for delay in (0.0, 1.5, 3.0):
        response = base.with_hrf_delay(delay).matrix[:, 0]
        assert np.abs(response[:10]).max() < 0.05 * response.max()  # causal: (almost) nothing before the stimulus
        assert abs((np.argmax(response) - 10) * tr - hrf_peak_s(delay)) <= tr / 2
    assert hrf_peak_s(1.5) - hrf_peak_s(0.0) == pytest.approx(1.5)
    assert 4.5 < hrf_peak_s(0.0) < 5.5  # the SPM canonical HRF peaks near 5 s


def test_contiguous_folds_cover_everything_once_with_gaps():
    folds = contiguous_folds(100, 5, gap=3)
    val = np.concatenate([v for _, v in folds])
    assert sorted(val.tolist()) == list(range(100))
    for train, v in folds:
        assert np.all(np.diff(v) == 1)  # one contiguous stretch
        assert np.min(np.abs(train[:, None] - v[None, :])) > 3


def test_metrics():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3))
    assert pearson_r(y, y) == pytest.approx([1, 1, 1])
    assert r2_score(y, y) == pytest.approx([1, 1, 1])
    assert pearson_r(np.ones((200, 3)), y).tolist() == [0, 0, 0]
    p = np.array([0.001, 0.01, 0.031, 0.5, 0.9])
    assert fdr_bh(p, 0.05).tolist() == [True, True, False, False, False]


def test_shift_null_is_calibrated_for_smooth_predictions():
    rng = np.random.default_rng(1)
    n, v = 200, 2000
    kernel = np.hanning(15)
    smooth = lambda a: np.apply_along_axis(lambda c: np.convolve(c, kernel, "same"), 0, a)  # noqa: E731
    pred = smooth(rng.normal(size=(n, v)))
    y = smooth(rng.normal(size=(n, v)))  # unrelated, both autocorrelated
    p = shift_null_pvalues(pred, y)
    assert 0.02 < np.mean(p < 0.05) < 0.09  # a naive r-to-p would flag ~40 %
    y_related = y + 1.0 * pred
    assert np.mean(fdr_bh(shift_null_pvalues(pred, y_related))) > 0.9


def test_cleaner_fits_on_training_rows_only():
    rng = np.random.default_rng(2)
    n = 300
    y = rng.normal(size=(n, 4))
    y[200:] += 100.0  # a change only in the held-out part
    train = np.arange(200)
    a = BoldCleaner(0.608, held_out="train").fit(y, train)
    b = BoldCleaner(0.608, held_out="train").fit(np.r_[y[:200], np.zeros((100, 4))], train)
    # held-out values change neither the training statistics nor the cleaned training rows
    np.testing.assert_allclose(a.mean_, b.mean_)
    np.testing.assert_allclose(a.scale_, b.scale_)
    np.testing.assert_allclose(a.transform(y)[:200], b.transform(y)[:200])
    out = BoldCleaner(0.608).fit_transform(y, train)  # held-out rows cleaned on their own
    assert abs(out[200:].mean()) < 1.0
    assert np.abs(BoldCleaner(0.608).fit(y, train).residualize(np.ones((n, 3)))).max() < 1e-6


def test_encoder_recovers_a_delayed_linear_response():
    rng = np.random.default_rng(3)
    n, d = 400, 5
    x = rng.normal(size=(n, d)).astype(np.float32)
    design = add_delays(x, np.arange(6))
    w = rng.normal(size=(d, 30))
    y = np.zeros((n, 30))
    y[3:] = x[:-3] @ w
    y += 0.5 * rng.normal(size=y.shape)
    model = BrainEncoder(alphas=np.logspace(-2, 4, 7), cv=4).fit(design[:300], y[:300])
    assert model.score(design[300:], y[300:]).mean() > 0.85
    blocks = model.coef_blocks(6)
    assert np.all(blocks.argmax(0) == 3)
    assert model.best_alphas_.shape == (30,)


def test_published_protocol_on_a_toy_array():
    rng = np.random.default_rng(4)
    n, v = 100, 50
    frame_times = np.arange(300) / 5.0
    features = rng.random((300, 8))
    bold = 100 + rng.normal(size=(n, v)).cumsum(0)
    res = published_protocol(bold, features, frame_times, tr=0.5, delta_s=5.0)
    assert res.n_train == 70 and res.n_test == 30
    scaled = (bold - bold.min()) / (bold.max() - bold.min())
    expected = np.mean((scaled[70:] - scaled[69:-1]) ** 2)
    assert res.mse_persistence == pytest.approx(expected)
    assert res.r_volume.shape == (v,) and res.r_change.shape == (v,)
    # the frame 5 s before scan k (k * 0.5 s): frame index 5 * (0.5 k - 5), clipped at 0
    assert frame_before(frame_times, np.array([-1.0, 0.0, 0.1, 2.5])).tolist() == [0, 0, 0, 12]
