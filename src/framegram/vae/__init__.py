"""Signals from silent video: a conditional variational model (after arXiv 2011.07340) that turns a
film's framegram into a target signal on its own clock, fMRI volumes per participant or a sound's
mel spectrogram, with the deterministic regression baseline beside it.

    from framegram.vae import VAEConfig, train_signal_model
    from framegram.vae.fmri import build_fmri_set
    data, held = build_fmri_set("ds003688/", "film.mp4")
    run = train_signal_model(VAEConfig(), data, "runs/vae")        # resumable
    prediction = run.predict(data.sequences[0].features, participant="01")   # [n_volumes, components]
"""

from framegram.vae.data import SignalSequence, SignalSet, TimeGridMismatchError, UnknownParticipantError
from framegram.vae.model import SignalRegressor, SignalVAE, VAEShape
from framegram.vae.train import SignalRun, SignalRunError, VAEConfig, load_signal_run, train_signal_model

__all__ = [
    "SignalRegressor", "SignalRun", "SignalRunError", "SignalSequence", "SignalSet", "SignalVAE",
    "TimeGridMismatchError", "UnknownParticipantError", "VAEConfig", "VAEShape", "load_signal_run",
    "train_signal_model",
]  # fmt: skip
