"""A conditional variational model of a signal (fMRI components, a mel spectrogram) given silent video.

After Yadav et al., "Speech prediction in silent videos using variational autoencoders" (arXiv
2011.07340), made generic over the target and conditioned on the participant:

    visual features f [B, T, F] (the framegram on the target's clock)
        -> per-frame encoder (linear + ReLU) -> LSTM -> h_t [B, T, H]
        -> linear -> prior q(z_t | f_<=t) = N(mu_p, diag var_p)            (latent z_t: [B, T, Z])
    target a_t [B, T, A] -> posterior encoder (MLP) -> q(z_t | a_t) = N(mu_q, diag var_q)
    decoder p(a_t | z_t, h_t) = N(read-out(MLP(z_t, h_t), f_t), diag sigma^2), sigma^2 learned per
        target dimension; the linear read-out also sees f_t itself (a skip connection)

trained on the ELBO  sum_t E_q(z|a_t)[lambda log p(a_t | z, h_t)] - beta KL[q(z | a_t) || q(z | f_t)]
(one reparameterised sample per step). At prediction time z_t is drawn from the prior, so each
draw is one plausible signal for the video; `predict` averages draws for the mean prediction.

The skip connection lets the decoder carry the part of the target that is a linear function of the
current features (most of an fMRI response on the HRF basis) without squeezing it through the LSTM and
the latent (docs/ARCHITECTURE.md has what it changed).

Participants: with `n_participants` > 0 each participant has a learned embedding vector that is
fed to the per-frame encoder (so the LSTM can learn participant-specific timing), the posterior
encoder and the decoder, and the decoder ends in a participant's own output layer (a
participant-specific linear read-out, as in multi-subject encoding models: participants map the
same latent onto their own voxels). With `n_participants` = 0 the model is pooled: one model for
everyone, blind to who is watching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VAEShape:
    """The sizes that define a network: feature_dim F and target_dim A (inputs, outputs), latent_dim
    Z, hidden H (per-frame encoder, LSTM and MLPs), n_participants (0: pooled), participant_dim."""

    feature_dim: int
    target_dim: int
    latent_dim: int = 16
    hidden: int = 128
    n_participants: int = 0
    participant_dim: int = 8


@dataclass
class VAEOutput:
    """Everything one forward pass gives, each [B, T, ...]: the prior and posterior Gaussians
    (means, log variances over Z) and the decoder's mean of the target [B, T, A] at the posterior
    sample."""

    prior_mu: torch.Tensor
    prior_logvar: torch.Tensor
    post_mu: torch.Tensor
    post_logvar: torch.Tensor
    recon: torch.Tensor


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL[N(mu_q, var_q) || N(mu_p, var_p)] summed over the last axis (nats)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1).sum(-1)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


class ParticipantReadout(nn.Module):
    """[B, T, H] -> [B, T, A] through participant p's own linear layer (or one shared layer when pooled)."""

    def __init__(self, hidden: int, outputs: int, n_participants: int):
        super().__init__()
        count = max(n_participants, 1)
        self.weight = nn.Parameter(torch.randn(count, hidden, outputs) / math.sqrt(hidden))
        self.bias = nn.Parameter(torch.zeros(count, outputs))

    def forward(self, x: torch.Tensor, participant: torch.Tensor | None) -> torch.Tensor:
        if participant is None:
            return x @ self.weight[0] + self.bias[0]
        return torch.einsum("bth,bha->bta", x, self.weight[participant]) + self.bias[participant][:, None]


class VisualPath(nn.Module):
    """What the VAE and the regression share: the participant embedding (none when pooled), the
    per-frame encoder and the LSTM over the frames; subclasses add their layers and the read-out."""

    def __init__(self, shape: VAEShape):
        super().__init__()
        self.shape = shape
        conditional = shape.n_participants > 0
        self.embed = nn.Embedding(shape.n_participants, shape.participant_dim) if conditional else None
        self.extra = shape.participant_dim if conditional else 0  #: width the embedding adds to a layer's input
        self.frame_encoder = nn.Sequential(nn.Linear(shape.feature_dim + self.extra, shape.hidden), nn.ReLU())
        self.lstm = nn.LSTM(shape.hidden, shape.hidden, batch_first=True)

    def _condition(self, x: torch.Tensor, participant: torch.Tensor | None) -> torch.Tensor:
        """x [B, T, *] with the participant embedding appended to every step (unchanged when pooled)."""
        if self.embed is None:
            return x
        e = self.embed(participant)[:, None].expand(-1, x.shape[1], -1)
        return torch.cat([x, e], dim=-1)

    def visual_state(self, features: torch.Tensor, participant: torch.Tensor | None) -> torch.Tensor:
        """h [B, T, H]: the LSTM's summary of the frames up to each step."""
        h, _ = self.lstm(self.frame_encoder(self._condition(features, participant)))
        return h

    def check_participant(self, participant: torch.Tensor | None) -> None:
        if self.embed is None:
            return
        if participant is None:
            raise ValueError("this model is conditioned on the participant: pass participant indices")
        if participant.min() < 0 or participant.max() >= self.shape.n_participants:
            raise ValueError(f"participant index {int(participant.max())} outside 0..{self.shape.n_participants - 1}")


class SignalVAE(VisualPath):
    """See the module docstring. `forward(features, target, participant)` for training;
    `sample` / `predict` for generation. participant: long [B] or None (pooled model)."""

    def __init__(self, shape: VAEShape):
        super().__init__(shape)
        s, e = shape, self.extra
        self.prior = nn.Linear(s.hidden, 2 * s.latent_dim)
        self.posterior = mlp(s.target_dim + e, s.hidden, 2 * s.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(s.latent_dim + s.hidden + e, s.hidden), nn.ReLU(),
                                     nn.Linear(s.hidden, s.hidden), nn.ReLU())
        self.readout = ParticipantReadout(s.hidden + s.feature_dim, s.target_dim, s.n_participants)
        self.log_sigma2 = nn.Parameter(torch.zeros(s.target_dim))

    # --- pieces -----------------------------------------------------------------------------

    def prior_of(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.prior(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def posterior_of(self, target: torch.Tensor, participant: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.posterior(self._condition(target, participant)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor, h: torch.Tensor, features: torch.Tensor, participant: torch.Tensor | None) -> torch.Tensor:
        """The decoder's mean of the target [B, T, A] for latents z [B, T, Z]."""
        hidden = self.decoder(self._condition(torch.cat([z, h], dim=-1), participant))
        return self.readout(torch.cat([hidden, features], dim=-1), participant)

    # --- training ---------------------------------------------------------------------------

    def forward(self, features: torch.Tensor, target: torch.Tensor, participant: torch.Tensor | None = None) -> VAEOutput:
        self.check_participant(participant)
        h = self.visual_state(features, participant)
        prior_mu, prior_logvar = self.prior_of(h)
        post_mu, post_logvar = self.posterior_of(target, participant)
        z = post_mu + torch.randn_like(post_mu) * (0.5 * post_logvar).exp()
        return VAEOutput(prior_mu, prior_logvar, post_mu, post_logvar, self.decode(z, h, features, participant))

    def log_likelihood(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target | z, h) per step [B, T] (nats), Gaussian with the learned per-dimension variance."""
        log_sigma2 = self.log_sigma2.clamp(-10, 10)
        return -0.5 * (((target - recon) ** 2) / log_sigma2.exp() + log_sigma2 + LOG_2PI).sum(-1)

    def loss(self, out: VAEOutput, target: torch.Tensor, lam: float, beta: float,
             weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """The negative ELBO per step (lambda-weighted reconstruction, beta-weighted KL), averaged
        over the steps where `weight` [B, T] is 1 (all when None); also its two terms as floats."""
        nll = -self.log_likelihood(out.recon, target)
        kl = gaussian_kl(out.post_mu, out.post_logvar, out.prior_mu, out.prior_logvar)
        w = torch.ones_like(nll) if weight is None else weight
        total = w.sum().clamp_min(1.0)
        loss = ((lam * nll + beta * kl) * w).sum() / total
        with torch.no_grad():
            return loss, {"nll": float((nll * w).sum() / total), "kl": float((kl * w).sum() / total)}

    # --- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, features: torch.Tensor, participant: torch.Tensor | None = None, n: int = 1,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of the target for each clip: [n, B, T, A] (z_t from the prior, decoder means)."""
        self.check_participant(participant)
        h = self.visual_state(features, participant)
        mu, logvar = self.prior_of(h)
        draws = []
        for _ in range(n):
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
            draws.append(self.decode(mu + noise * (0.5 * logvar).exp(), h, features, participant))
        return torch.stack(draws)

    @torch.no_grad()
    def predict(self, features: torch.Tensor, participant: torch.Tensor | None = None, n: int = 16,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The mean prediction [B, T, A]: the average of n draws."""
        return self.sample(features, participant, n, generator).mean(0)


class SignalRegressor(VisualPath):
    """The deterministic baseline with the same visual encoder: features -> per-frame encoder ->
    LSTM -> MLP -> (participant) read-out with the same skip connection, trained on mean squared
    error. `predict` has the VAE's face."""

    def __init__(self, shape: VAEShape):
        super().__init__(shape)
        s = shape
        self.head = nn.Sequential(nn.Linear(s.hidden + self.extra, s.hidden), nn.ReLU(), nn.Linear(s.hidden, s.hidden), nn.ReLU())
        self.readout = ParticipantReadout(s.hidden + s.feature_dim, s.target_dim, s.n_participants)

    def forward(self, features: torch.Tensor, participant: torch.Tensor | None = None) -> torch.Tensor:
        self.check_participant(participant)
        h = self.visual_state(features, participant)
        return self.readout(torch.cat([self.head(self._condition(h, participant)), features], dim=-1), participant)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        err = ((pred - target) ** 2).mean(-1)
        w = torch.ones_like(err) if weight is None else weight
        loss = (err * w).sum() / w.sum().clamp_min(1.0)
        return loss, {"mse": loss.item()}

    @torch.no_grad()
    def predict(self, features: torch.Tensor, participant: torch.Tensor | None = None, n: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self(features, participant)


def build_model(kind: str, shape: VAEShape) -> nn.Module:
    """kind "vae" (SignalVAE) or "regression" (SignalRegressor)."""
    if kind == "vae":
        return SignalVAE(shape)
    if kind == "regression":
        return SignalRegressor(shape)
    raise ValueError(f"model kind must be 'vae' or 'regression', got {kind!r}")


def loss_of(model: nn.Module, features: torch.Tensor, target: torch.Tensor, participant: torch.Tensor | None,
            weight: torch.Tensor, lam: float, beta: float) -> tuple[torch.Tensor, dict]:
    """The training loss of either kind on one batch."""
    if isinstance(model, SignalVAE):
        return model.loss(model(features, target, participant), target, lam, beta, weight)
    return model.loss(model(features, participant), target, weight)


__all__ = ["SignalRegressor", "SignalVAE", "VAEOutput", "VAEShape", "build_model", "gaussian_kl", "loss_of"]
