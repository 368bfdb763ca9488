"""Training and using a signal model (`SignalVAE` or the `SignalRegressor` baseline), resumably.

    run = train_signal_model(VAEConfig(), data, "runs/vae")      # rerun the same line to resume
    draws = run.sample(data.sequences[0], n=8)                   # [8, T, A] in the model's z-scored units

A run folder holds `checkpoint.pt` (written atomically after every epoch: weights, optimizer,
schedule, random states, history, settings, and the data's maps: participants, feature and target
maps, so that `framegram vae predict` needs nothing else), `metrics.jsonl` and `learning_curve.png`.
Training again into the folder resumes after the last finished epoch and ends with the weights an
uninterrupted run reaches; a folder holding another run is refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from framegram.errors import InputError
from framegram.plotting import save_figure
from framegram.progress import extraction_progress
from framegram.training import (
    RunFolder,
    changed_settings,
    decoupled_weight_decay_groups,
    deterministic_algorithms,
    random_states,
    restore_state,
    seed_everything,
    warmup_cosine,
)
from framegram.vae.data import LinearMap, SignalSequence, SignalSet, UnknownParticipantError, sample_windows
from framegram.vae.model import VAEShape, build_model, loss_of

CHECKPOINT_FORMAT = "framegram-signal-model"
CHECKPOINT_VERSION = 1


class SignalRunError(InputError):
    """A run folder holding another run, a damaged checkpoint, or no checkpoint."""


@dataclass(frozen=True)
class VAEConfig:
    """Everything that decides a run (equal configs and data give identical weights).

    kind: "vae" or "regression" (the deterministic baseline, same encoder, mean squared error);
    conditional: a participant embedding and read-out (else one pooled model); latent_dim, hidden,
    participant_dim: network sizes; lam, beta: the ELBO's weights on log p(a|z) and on the KL;
    epochs x steps_per_epoch batches of batch_size windows of `window` steps, the first `burn_in`
    of a window only warming up the LSTM; lr: peak of warm-up + cosine (AdamW), weight_decay on
    weight matrices; seed: initialisation and batch draws."""

    kind: str = "vae"
    conditional: bool = True
    latent_dim: int = 16
    hidden: int = 128
    participant_dim: int = 8
    lam: float = 1.0
    beta: float = 1.0
    epochs: int = 30
    steps_per_epoch: int = 50
    batch_size: int = 16
    window: int = 96
    burn_in: int = 24
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.kind not in ("vae", "regression"):
            raise ValueError(f"kind must be 'vae' or 'regression', got {self.kind!r}")
        for name in ("latent_dim", "hidden", "participant_dim", "epochs", "steps_per_epoch", "batch_size", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.burn_in < self.window:
            raise ValueError(f"burn_in must be in 0..window-1, got {self.burn_in} (window {self.window})")
        if not (self.lr > 0 and self.lam > 0 and self.beta >= 0):
            raise ValueError(f"need lr > 0, lam > 0, beta >= 0; got {self.lr}, {self.lam}, {self.beta}")


#: The settings `bench/vae.py` measured, per target (what `framegram vae train` uses). fMRI: windows of
#: 128 volumes (78 s at TR 0.608 s), the first 24 warming up the LSTM, strong weight decay (~450 training
#: volumes a participant); sound: whole 4-s clips (100 frames), one model for all (no participants).
TARGET_SETTINGS = {
    "fmri": {"epochs": 40, "window": 128, "burn_in": 24, "weight_decay": 0.3},
    "audio": {"conditional": False, "epochs": 40, "window": 100, "burn_in": 0},
}


def default_config(target: str, **overrides) -> VAEConfig:
    """`VAEConfig` with the measured settings of `target` ("fmri" or "audio"), then `overrides`."""
    if target not in TARGET_SETTINGS:
        raise ValueError(f"target must be one of {', '.join(TARGET_SETTINGS)}, got {target!r}")
    return VAEConfig(**{**TARGET_SETTINGS[target], **overrides})


@dataclass
class SignalRun:
    """A trained (or loaded) model with what it needs to read new inputs and write outputs.

    participants: labels (index = id; empty for a pooled model or data without participants);
    features / targets: the data's maps (original units <-> model units); kind: "fmri" or "audio";
    info: the data's facts (e.g. the fMRI mask and affine live in the fmri module's files)."""

    config: VAEConfig
    model: torch.nn.Module
    participants: tuple[str, ...]
    features: LinearMap
    targets: LinearMap
    kind: str
    step_seconds: float
    info: dict
    arrays: dict[str, np.ndarray]
    history: list[dict]
    folder: Path

    def participant_tensor(self, label: str | None, batch: int = 1) -> torch.Tensor | None:
        """The participant index tensor the model takes (None for a pooled model)."""
        if not self.config.conditional:
            return None
        if label is None:
            raise UnknownParticipantError(f"this model is conditioned on the participant; pass one of: {', '.join(self.participants)}")
        if label not in self.participants:
            raise UnknownParticipantError(f"participant {label!r} was not in training; known: {', '.join(self.participants)}")
        return torch.full((batch,), self.participants.index(label), dtype=torch.long)

    def sample(self, features: np.ndarray, participant: str | None = None, n: int = 8, seed: int = 0) -> np.ndarray:
        """n draws of the target for features [T, F] (model units): float32 [n, T, A] (model units).
        The regression baseline gives its one prediction n times."""
        self.model.eval()
        x = torch.from_numpy(np.asarray(features, np.float32))[None]
        generator = torch.Generator().manual_seed(seed)
        if hasattr(self.model, "sample"):
            draws = self.model.sample(x, self.participant_tensor(participant), n, generator)[:, 0]
        else:
            draws = self.model.predict(x, self.participant_tensor(participant))[0].expand(n, -1, -1)
        return draws.numpy().astype(np.float32)

    def predict(self, features: np.ndarray, participant: str | None = None, n: int = 16, seed: int = 0) -> np.ndarray:
        """The mean prediction [T, A] (model units): the average of n draws."""
        return self.sample(features, participant, n, seed).mean(0)

    def sequence_participant(self, seq: SignalSequence, data: SignalSet) -> str | None:
        return data.participants[seq.participant] if self.config.conditional and seq.participant >= 0 else None


def train_signal_model(config: VAEConfig, data: SignalSet, out_dir: str | Path, show_progress: bool = False) -> SignalRun:
    """Train (or resume) `config` on the training steps of `data` into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.conditional and not data.participants:
        raise ValueError(f"a conditional model needs participants; the {data.kind} set has none (use conditional=False)")
    shape = VAEShape(data.feature_dim, data.target_dim, config.latent_dim, config.hidden,
                     len(data.participants) if config.conditional else 0, config.participant_dim)
    run = _run_folder(out_dir)
    previous = run.load() if run.has_checkpoint() else None
    if previous is not None:
        _check_same_run(run, previous, config, shape)
    generator = torch.Generator()
    with deterministic_algorithms():
        seed_everything(config.seed)
        generator.manual_seed(config.seed)
        model = build_model(config.kind, shape)
        optimizer = torch.optim.AdamW(decoupled_weight_decay_groups(model, config.weight_decay), lr=config.lr)
        schedule = warmup_cosine(optimizer, config.warmup_epochs, config.steps_per_epoch, config.epochs)
        history: list[dict] = []
        if previous is not None:
            history = restore_state(previous, model, optimizer, schedule, generator)
        with extraction_progress(show_progress) as bars:
            task = bars.add_task(f"{data.kind} {config.kind}", total=config.epochs, completed=len(history))
            for epoch in range(len(history), config.epochs):
                t0 = time.perf_counter()
                model.train()
                terms: dict[str, list[float]] = {}
                for _ in range(config.steps_per_epoch):
                    x, y, who, weight = sample_windows(data, config.batch_size, config.window, config.burn_in, generator)
                    loss, parts = loss_of(model, x, y, who if config.conditional else None, weight, config.lam, config.beta)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                    optimizer.step()
                    schedule.step()
                    for k, v in {"loss": loss.item(), **parts}.items():
                        terms.setdefault(k, []).append(v)
                history.append({"epoch": epoch + 1, **{k: float(np.mean(v)) for k, v in terms.items()},
                                "seconds": round(time.perf_counter() - t0, 3)})
                _save(run, config, shape, data, model, optimizer, schedule, history, generator)
                _write_run_files(history, run)
                bars.update(task, advance=1, description=f"{data.kind} {config.kind}  loss {history[-1]['loss']:.3f}")
    if previous is not None and len(previous["history"]) == config.epochs:
        _write_run_files(history, run)
    return SignalRun(config, model.eval(), data.participants if config.conditional else (), data.features,
                     data.targets, data.kind, data.step_seconds, data.info, data.arrays, history, out_dir)


def load_signal_run(folder: str | Path) -> SignalRun:
    """The model and maps of a finished or interrupted run folder (SignalRunError when there is none)."""
    run = _run_folder(folder)
    checkpoint = run.load()
    config = VAEConfig(**checkpoint["settings"])
    shape = VAEShape(**checkpoint["shape"])
    model = build_model(config.kind, shape)
    model.load_state_dict(checkpoint["model_state"])
    maps = checkpoint["maps"]
    return SignalRun(config, model.eval(), tuple(checkpoint["participants"]) if config.conditional else (),
                     LinearMap.from_arrays(maps, "features"), LinearMap.from_arrays(maps, "targets"),
                     checkpoint["kind"], checkpoint["step_seconds"], json.loads(checkpoint["info"]),
                     {k: v.numpy() for k, v in checkpoint["arrays"].items()}, checkpoint["history"], run.folder)


def _save(run: RunFolder, config, shape, data: SignalSet, model, optimizer, schedule, history, generator) -> None:
    maps = {k: torch.from_numpy(v) for k, v in {**data.features.arrays("features"), **data.targets.arrays("targets")}.items()}
    run.save({
        "settings": asdict(config), "shape": asdict(shape),
        "kind": data.kind, "participants": list(data.participants), "step_seconds": data.step_seconds,
        "info": json.dumps(data.info), "maps": maps, "arrays": {k: torch.from_numpy(np.asarray(v)) for k, v in data.arrays.items()}, "history": history, "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(), "scheduler_state": schedule.state_dict(), "rng": random_states(generator),
    })  # fmt: skip


def _run_folder(path: str | Path) -> RunFolder:
    """The run of a folder or of a checkpoint file inside one."""
    return RunFolder.at(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, SignalRunError, "framegram signal-model checkpoint")


def _check_same_run(run: RunFolder, checkpoint: dict, config: VAEConfig, shape: VAEShape) -> None:
    now = {**asdict(config), **{f"shape.{k}": v for k, v in asdict(shape).items()}}
    before = {**checkpoint["settings"], **{f"shape.{k}": v for k, v in checkpoint["shape"].items()}}
    run.refuse_other_run(changed_settings(before, now))


def _write_run_files(history: list[dict], run: RunFolder) -> None:
    import matplotlib.pyplot as plt

    run.write_metrics(history)
    keys = [k for k in ("nll", "kl", "mse") if k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), dpi=100, squeeze=False)
    epochs = [r["epoch"] for r in history]
    labels = {"nll": "-log p(a | z) per step (nats)", "kl": "KL[q(z|a) || q(z|f)] per step (nats)", "mse": "mean squared error"}
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, [r[key] for r in history], "o-")
        ax.set(xlabel="epoch", ylabel=labels[key])
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, run.curve)
