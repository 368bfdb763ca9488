"""The signal models on generated sequences with a known answer: a conditional model learns each
participant's own delayed mapping (a pooled one cannot), samples spread where the target is
ambiguous and nowhere else, training resumes bit-identically, and bad input is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framegram.fmri.metrics import pearson_r
from framegram.vae import (
    SignalRunError,
    SignalSequence,
    SignalSet,
    TimeGridMismatchError,
    UnknownParticipantError,
    VAEConfig,
    load_signal_run,
    train_signal_model,
)
from framegram.vae.data import LinearMap, sample_windows
from framegram.vae.model import SignalVAE, VAEShape, gaussian_kl

LAGS = (2, 5, 9)  #: steps between a feature and the response it drives, per participant


def identity(d: int) -> LinearMap:
    return LinearMap(np.zeros(d, np.float32), np.eye(d, dtype=np.float32), np.zeros(d, np.float32), np.ones(d, np.float32))


def smooth_features(rng: np.random.Generator, steps: int, dims: int) -> np.ndarray:
    """Slowly varying random features [steps, dims], unit variance."""
    x = rng.standard_normal((steps + 20, dims))
    kernel = np.hanning(9)
    x = np.stack([np.convolve(x[:, j], kernel / kernel.sum(), mode="same") for j in range(dims)], axis=1)[10:-10]
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def participants_set(steps: int = 1000, dims: int = 4, targets: int = 6, noise: float = 0.2, seed: int = 0) -> SignalSet:
    """Three participants watch the same features; participant p's target is its own linear map of
    the features LAGS[p] steps earlier, plus noise; the first 70 % of each run trains."""
    rng = np.random.default_rng(seed)
    x = smooth_features(rng, steps, dims)
    sequences = []
    for p, lag in enumerate(LAGS):
        weights = rng.standard_normal((dims, targets)) / np.sqrt(dims)
        delayed = np.concatenate([np.zeros((lag, dims), np.float32), x[:-lag]])
        y = delayed @ weights + noise * rng.standard_normal((steps, targets))
        train = np.arange(steps) < int(0.7 * steps)
        sequences.append(SignalSequence(f"sub-{p + 1:02d}", x, y.astype(np.float32), train, participant=p))
    return SignalSet("toy", sequences, ("01", "02", "03"), 1.0, identity(dims), identity(targets))


def ambiguous_set(steps: int = 400, seed: int = 0) -> tuple[SignalSet, np.ndarray]:
    """Features (s_t, flag_t); target s_t where flag is 0, a fair coin of -2 or +2 where it is 1.
    Returns the set (one sequence trains, one is held out) and the held-out flags."""
    rng = np.random.default_rng(seed)
    sequences, flags = [], None
    for i, train in enumerate((True, False)):
        s = smooth_features(rng, steps, 1)[:, 0]
        flag = (np.sin(np.arange(steps) / 15 + i) > 0.6).astype(np.float32)
        y = np.where(flag > 0, rng.choice([-2.0, 2.0], steps), s)[:, None].astype(np.float32)
        sequences.append(SignalSequence(f"clip-{i}", np.stack([s, flag], 1), y, np.full(steps, train)))
        flags = flag
    return SignalSet("toy", sequences, (), 1.0, identity(2), identity(1)), flags.astype(bool)


FAST = {"epochs": 25, "steps_per_epoch": 20, "batch_size": 16, "window": 48, "burn_in": 12, "hidden": 48,
        "latent_dim": 4, "lr": 5e-3}


def held_out_r(run, data: SignalSet) -> float:
    rs = []
    for seq in data.sequences:
        pred = run.predict(seq.features, run.sequence_participant(seq, data), n=8)
        rs.append(pearson_r(pred[~seq.train], seq.target[~seq.train]).mean())
    return float(np.mean(rs))


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    data = participants_set()
    folder = tmp_path_factory.mktemp("vae")
    runs = {name: train_signal_model(VAEConfig(conditional=conditional, kind=kind, **FAST), data, folder / name)
            for name, conditional, kind in [("conditional", True, "vae"), ("pooled", False, "vae"),
                                            ("regression", True, "regression")]}
    return data, runs


def test_kl_of_identical_gaussians_is_zero_and_grows_with_the_gap():
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(gaussian_kl(mu, logvar, mu, logvar), torch.zeros(3), atol=1e-6)
    assert (gaussian_kl(mu + 1, logvar, mu, logvar) > gaussian_kl(mu + 0.5, logvar, mu, logvar)).all()
    # N(0, 1) against N(1, 1): 1/2 nat per dimension
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4), torch.ones(1, 4), torch.zeros(1, 4)).item() == pytest.approx(2.0)


def test_conditional_model_learns_each_participants_delayed_mapping(toy_runs):
    data, runs = toy_runs
    conditional, pooled = held_out_r(runs["conditional"], data), held_out_r(runs["pooled"], data)
    assert conditional > 0.8
    assert conditional > pooled + 0.3  # the pooled model cannot know whose map or lag applies
    assert held_out_r(runs["regression"], data) > 0.8
    losses = [h["loss"] for h in runs["conditional"].history]
    assert losses[-1] < losses[0]


def test_samples_spread_where_the_target_is_ambiguous_and_not_elsewhere(tmp_path):
    data, flags = ambiguous_set()
    run = train_signal_model(VAEConfig(conditional=False, **{**FAST, "epochs": 30}), data, tmp_path / "run")
    held = data.sequences[1]
    draws = run.sample(held.features, n=16)[..., 0]  # [16, T]
    spread = draws.std(0)
    assert spread[flags].mean() > 3 * spread[~flags].mean()
    clear = ~flags
    assert np.corrcoef(draws.mean(0)[clear], held.target[clear, 0])[0, 1] > 0.9


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    data = participants_set(steps=120)
    settings = VAEConfig(**{**FAST, "epochs": 3, "steps_per_epoch": 5})
    straight = train_signal_model(settings, data, tmp_path / "straight")

    class Crash(RuntimeError):
        pass

    calls = {"n": 0}
    real_sequences = data.sequences

    class CrashingSequences(list):
        def __getitem__(self, i):  # batches index the sequences: fail in the middle of epoch 2
            calls["n"] += 1
            if calls["n"] > settings.steps_per_epoch * settings.batch_size * 1.5:
                raise Crash("simulated crash")
            return list.__getitem__(self, i)

    data.sequences = CrashingSequences(real_sequences)
    with pytest.raises(Crash):
        train_signal_model(settings, data, tmp_path / "resumed")
    data.sequences = real_sequences
    assert len(load_signal_run(tmp_path / "resumed").history) == 1
    resumed = train_signal_model(settings, data, tmp_path / "resumed")
    weights, expected = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == \
           [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]


def test_a_run_folder_refuses_other_settings_and_a_loaded_run_predicts_the_same(toy_runs, tmp_path):
    data, runs = toy_runs
    folder = runs["conditional"].folder
    with pytest.raises(SignalRunError, match=r"beta=1\.0 there, 2\.0 now"):
        train_signal_model(VAEConfig(conditional=True, **{**FAST, "beta": 2.0}), data, folder)
    loaded = load_signal_run(folder)
    seq = data.sequences[1]
    assert np.array_equal(loaded.predict(seq.features, "02", n=4, seed=3), runs["conditional"].predict(seq.features, "02", n=4, seed=3))
    with pytest.raises(SignalRunError, match="no checkpoint"):
        load_signal_run(tmp_path / "empty")


def test_unknown_participant_and_mismatched_time_grids_are_refused(toy_runs):
    data, runs = toy_runs
    with pytest.raises(UnknownParticipantError, match=r"participant '07' was not in training; known: 01, 02, 03"):
        runs["conditional"].predict(data.sequences[0].features, "07")
    with pytest.raises(UnknownParticipantError, match="conditioned on the participant"):
        runs["conditional"].predict(data.sequences[0].features, None)
    with pytest.raises(TimeGridMismatchError, match=r"sub-09: 100 feature rows but 120 target rows"):
        SignalSequence("sub-09", np.zeros((100, 4), np.float32), np.zeros((120, 6), np.float32), np.ones(120, bool))


def test_training_windows_weigh_only_training_steps_after_the_burn_in():
    data = participants_set(steps=200)
    generator = torch.Generator().manual_seed(0)
    x, y, who, weight = sample_windows(data, 64, 48, 12, generator)
    assert x.shape == (64, 48, 4) and y.shape == (64, 48, 6) and weight.shape == (64, 48)
    assert set(who.tolist()) == {0, 1, 2}
    train_steps = int(0.7 * 200)
    for b in range(64):  # find each window's start by its features, then check its weights
        seq = data.sequences[int(who[b])]
        start = next(s for s in range(200 - 47) if np.array_equal(seq.features[s : s + 48], x[b].numpy()))
        expected = (np.arange(start, start + 48) < train_steps).astype(np.float32)
        if start > 0:
            expected[:12] = 0
        assert np.array_equal(weight[b].numpy(), expected)


def test_vae_loss_is_the_weighted_negative_elbo():
    torch.manual_seed(0)
    model = SignalVAE(VAEShape(feature_dim=3, target_dim=2, latent_dim=2, hidden=8))
    x, y = torch.randn(2, 5, 3), torch.randn(2, 5, 2)
    weight = torch.zeros(2, 5)
    weight[0, 2:] = 1
    with torch.no_grad():
        out = model(x, y)
        nll = -model.log_likelihood(out.recon, y)
        kl = gaussian_kl(out.post_mu, out.post_logvar, out.prior_mu, out.prior_logvar)
        loss, parts = model.loss(out, y, lam=2.0, beta=0.5, weight=weight)
    assert loss.item() == pytest.approx(float((2.0 * nll + 0.5 * kl)[0, 2:].mean()), rel=1e-5)
    assert parts["kl"] == pytest.approx(float(kl[0, 2:].mean()), rel=1e-5)
