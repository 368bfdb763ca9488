"""Training the generators of `model.py` on label-map clips, with the run folder every framegram trainer
uses (checkpoint each epoch, bit-identical resume, settings checked, metrics.jsonl).

Losses per generated frame (vid2vid's, with an L1 term that speeds up small CPU runs): LSGAN against
the multi-scale image discriminator on (label map, frame), feature matching on its features, L1 to
the real frame; for the temporal generator also the flow's L1 to the measured (DIS) flow and the
warp loss (the real previous frame warped by the predicted flow against the real frame) and vid2vid's
mask loss (the occlusion mask pulled to 0, "copy the warped frame", wherever the measured flow
explains the real frame: `SceneClips`' confidence, vid2vid's `conf_ref`); and, with
`video_discriminator`, LSGAN + feature matching against the video discriminator on K consecutive
frames and the K-1 flows between them (the measured flow for real clips, the predicted for fake).
Frames are generated in order from the generator's own previous frames (detached).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from framegram.datasets.label_videos import CLASSES
from framegram.errors import InputError
from framegram.training import RunFolder, changed_settings, random_states, seed_everything, set_random_states
from framegram.vid2vid.data import SceneClips
from framegram.vid2vid.model import (
    PREVIOUS, MultiscaleDiscriminator, PatchDiscriminator, SequentialGenerator, feature_matching, lsgan_loss, warp,
)

CHECKPOINT_FORMAT = "framegram-vid2vid"
CHECKPOINT_VERSION = 1
VARIANTS = ("vid2vid", "per-frame", "no-video-discriminator", "no-flow-warp")
#: settings only a generator that warps uses, and only the video discriminator: a variant without
#: either is the same run whatever they are, so they are not compared on resume
WARP_SETTINGS = ("flow", "warp", "mask", "resample")
VIDEO_DISCRIMINATOR_SETTINGS = ("video_frames",)
#: settings added after runs were saved, with the value that keeps those runs' behaviour
EARLIER_DEFAULTS = {"mask": 0.0, "resample": "bilinear"}


class Vid2VidRunError(InputError):
    """A run folder of another model, other settings, or a damaged checkpoint."""


@dataclass(frozen=True)
class Vid2VidConfig:
    variant: str = "vid2vid"
    width: int = 32
    blocks: int = 4
    steps: int = 1500           #: generator updates in all
    steps_per_epoch: int = 100  #: a checkpoint every epoch
    batch: int = 4
    clip: int = 6               #: frames generated in order per clip
    video_frames: int = 3       #: K of the video discriminator
    lr: float = 2e-4
    l1: float = 10.0
    feature_matching: float = 10.0
    flow: float = 1.0
    warp: float = 10.0
    mask: float = 0.5           #: weight of the mask loss (vid2vid's "W")
    resample: str = "bicubic"   #: how the generator warps its previous frame
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if self.clip < self.video_frames or self.steps < 1 or self.batch < 1:
            raise ValueError("clip must be >= video_frames, steps and batch >= 1")

    @property
    def temporal(self) -> bool:
        return self.variant != "per-frame"

    @property
    def uses_warp(self) -> bool:
        return self.variant in ("vid2vid", "no-video-discriminator")

    @property
    def uses_video_discriminator(self) -> bool:
        return self.variant in ("vid2vid", "no-flow-warp")


def make_generator(config: Vid2VidConfig) -> SequentialGenerator:
    return SequentialGenerator(len(CLASSES), config.width, config.blocks, temporal=config.temporal, warp=config.uses_warp,
                               resample=config.resample)


def generate_clip(generator: SequentialGenerator, labels: torch.Tensor, detach: bool = True) -> list[dict]:
    """Frames of one batch of label clips [B, L, C, H, W], in order, each from the previous ones; a list
    of the generator's outputs per frame."""
    b, length, c, h, w = labels.shape
    previous_labels = [torch.zeros(b, c, h, w) for _ in range(PREVIOUS)]
    previous_frames = [torch.zeros(b, 3, h, w) for _ in range(PREVIOUS)]
    outputs = []
    for t in range(length):
        out = generator(labels[:, t], previous_labels, previous_frames, first=(t == 0))
        outputs.append(out)
        frame = out["frame"].detach() if detach else out["frame"]
        previous_frames = previous_frames[1:] + [frame]
        previous_labels = previous_labels[1:] + [labels[:, t]]
    return outputs


def train_vid2vid(config: Vid2VidConfig, scenes: list[Path], out: str | Path, show_progress: bool = True) -> dict:
    """Train (or resume) one model into `out`; returns {"train_s", "params", "history"}."""
    from framegram.progress import extraction_progress

    run = RunFolder(Path(out), CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Vid2VidRunError, "vid2vid run")
    seed_everything(config.seed)
    generator = make_generator(config)
    image_d = MultiscaleDiscriminator(len(CLASSES) + 3)
    video_d = PatchDiscriminator(3 * config.video_frames + 2 * (config.video_frames - 1)) if config.uses_video_discriminator else None
    d_params = list(image_d.parameters()) + (list(video_d.parameters()) if video_d else [])
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(config.seed)
    torch_rng = torch.Generator().manual_seed(config.seed)
    history, step, train_s = [], 0, 0.0
    if run.has_checkpoint():
        state = run.load()
        # more steps continue a run (a stopped one, or one asked to train longer); any other change is refused
        run.refuse_other_run(changed_settings({**state["config"], "steps": config.steps}, compared_settings(config),
                                              EARLIER_DEFAULTS))
        generator.load_state_dict(state["generator"])
        image_d.load_state_dict(state["image_d"])
        if video_d is not None:
            video_d.load_state_dict(state["video_d"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        rng.bit_generator.state = state["numpy_rng"]
        set_random_states(state["random_states"], torch_rng)
        history, step, train_s = state["history"], state["step"], state["train_s"]
    if step >= config.steps:
        return {"train_s": train_s, "params": sum(p.numel() for p in generator.parameters()), "history": history}
    data = SceneClips(scenes)
    with extraction_progress(show_progress) as bar:
        task = bar.add_task(f"training {config.variant}", total=config.steps, completed=step)
        while step < config.steps:
            started = time.perf_counter()
            sums: dict[str, float] = {}
            count = min(config.steps_per_epoch, config.steps - step)
            for _ in range(count):
                losses = _train_step(config, generator, image_d, video_d, opt_g, opt_d, data.batch(rng, config.batch, config.clip))
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                step += 1
                bar.advance(task)
            train_s += time.perf_counter() - started
            history.append({"step": step, "train_s": round(train_s, 1), **{k: v / count for k, v in sums.items()}})
            run.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(config),
                      "generator": generator.state_dict(), "image_d": image_d.state_dict(),
                      "video_d": video_d.state_dict() if video_d is not None else None,
                      "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "numpy_rng": rng.bit_generator.state,
                      "random_states": random_states(torch_rng), "history": history, "step": step, "train_s": train_s})
            run.write_metrics(history)
    return {"train_s": train_s, "params": sum(p.numel() for p in generator.parameters()), "history": history}


def compared_settings(config: Vid2VidConfig) -> dict:
    """The settings that make two runs of `config.variant` the same run."""
    unused = (() if config.uses_warp else WARP_SETTINGS) + (() if config.uses_video_discriminator else VIDEO_DISCRIMINATOR_SETTINGS)
    return {k: v for k, v in asdict(config).items() if k not in unused}


def _video_input(frames: list[torch.Tensor], flows: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(frames + flows, dim=1)


def _train_step(config, generator, image_d, video_d, opt_g, opt_d, batch) -> dict[str, float]:
    labels, real, real_flow, confident = batch
    outputs = generate_clip(generator, labels)
    fake = [o["frame"] for o in outputs]
    length = labels.shape[1]
    # generator
    g_loss = torch.zeros(())
    parts = {"gan": 0.0, "fm": 0.0, "l1": 0.0, "flow": 0.0, "warp": 0.0, "mask": 0.0, "video": 0.0}
    for t in range(length):
        pair_fake = torch.cat([labels[:, t], fake[t]], 1)
        pair_real = torch.cat([labels[:, t], real[:, t]], 1)
        d_fake, d_real = image_d(pair_fake), image_d(pair_real)
        gan, fm, l1 = lsgan_loss(d_fake, True), feature_matching(d_fake, d_real), F.l1_loss(fake[t], real[:, t])
        g_loss = g_loss + gan + config.feature_matching * fm + config.l1 * l1
        parts["gan"] += gan.item() / length
        parts["fm"] += fm.item() / length
        parts["l1"] += l1.item() / length
        if "flow" in outputs[t] and t > 0:
            flow, target = outputs[t]["flow"], real_flow[:, t - 1]
            flow_loss = F.l1_loss(flow, target) / (labels.shape[-1] / 16.0)
            warp_loss = F.l1_loss(warp(real[:, t - 1], flow), real[:, t])
            mask_loss = (outputs[t]["mask"] * confident[:, t - 1]).mean()
            g_loss = g_loss + config.flow * flow_loss + config.warp * warp_loss + config.mask * mask_loss
            parts["flow"] += flow_loss.item() / (length - 1)
            parts["warp"] += warp_loss.item() / (length - 1)
            parts["mask"] += mask_loss.item() / (length - 1)
    k = config.video_frames
    windows = range(k - 1, length)
    if video_d is not None:
        for t in windows:
            fake_flows = [outputs[s]["flow"] if "flow" in outputs[s] else real_flow[:, s - 1] for s in range(t - k + 2, t + 1)]
            real_flows = [real_flow[:, s - 1] for s in range(t - k + 2, t + 1)]
            v_fake = [video_d(_video_input(fake[t - k + 1: t + 1], fake_flows))]
            v_real = [video_d(_video_input([real[:, s] for s in range(t - k + 1, t + 1)], real_flows))]
            vg = lsgan_loss(v_fake, True) + config.feature_matching * feature_matching(v_fake, v_real)
            g_loss = g_loss + vg / len(windows)
            parts["video"] += vg.item() / len(windows)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    # discriminators
    d_loss = torch.zeros(())
    for t in range(length):
        d_loss = d_loss + 0.5 * (lsgan_loss(image_d(torch.cat([labels[:, t], fake[t].detach()], 1)), False)
                                 + lsgan_loss(image_d(torch.cat([labels[:, t], real[:, t]], 1)), True))
    if video_d is not None:
        for t in windows:
            fake_flows = [(outputs[s]["flow"] if "flow" in outputs[s] else real_flow[:, s - 1]).detach()
                          for s in range(t - k + 2, t + 1)]
            real_flows = [real_flow[:, s - 1] for s in range(t - k + 2, t + 1)]
            d_loss = d_loss + 0.5 * (
                lsgan_loss([video_d(_video_input([f.detach() for f in fake[t - k + 1: t + 1]], fake_flows))], False)
                + lsgan_loss([video_d(_video_input([real[:, s] for s in range(t - k + 1, t + 1)], real_flows))], True)
            ) / len(windows)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    parts["d"] = d_loss.item()
    return parts


def load_generator(run: str | Path) -> SequentialGenerator:
    """The generator of a run folder (or its checkpoint file), in eval mode."""
    folder = RunFolder.at(run, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Vid2VidRunError, "vid2vid run")
    state = folder.load()
    config = Vid2VidConfig(**{**EARLIER_DEFAULTS, **state["config"]})
    generator = make_generator(config)
    generator.load_state_dict(state["generator"])
    return generator.eval()
