"""Learned fingerprints: a trained `WindowEncoder` as the index's describer.

A `LearnedFingerprint` is the index-facing side of a training run (`framegram.search.contrastive`):
the network's weights as numpy arrays, the encoder and frame rate of the framegrams it was trained
on, its window length, the 8-bit quantiser's ranges and its calibrated score threshold. It offers
what `FingerprintBasis` offers (`describe`, `check`, `save`, `digest`, ...), so an index built with
it stores one `dims`-byte vector per second and searches with the same matcher and CLI:

    framegram index add videos/ --index IDX --fingerprint learned:RUN
    framegram search clip.mp4 --index IDX

Reference descriptors: a window of `window_frames` rows starting at every second; query
descriptors: one starting at every row (`framegram.search.fingerprint.window_starts`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framegram.errors import NPZ_READ_ERRORS, FramegramError
from framegram.framegram import Framegram
from framegram.io.atomic import atomic_write_bytes
from framegram.search.background import BackgroundBank
from framegram.search.fingerprint import Descriptors, check_framegram, input_differences, window_starts

if TYPE_CHECKING:
    from framegram.search.fingerprint_protocol import Fingerprint

#: file of a training run's exported fingerprint (what `learned:RUN` reads)
FINGERPRINT_FILE = "fingerprint.npz"
_WEIGHT_PREFIX = "weight/"
_BATCH_WINDOWS = 4096


@dataclass(frozen=True, eq=False)
class LearnedFingerprint:
    """network: WindowEncoder keyword arguments (in_dim, hidden, dims); weights: its state dict as
    float32 arrays; quant_min, quant_range: float32 [dims]; threshold: calibrated match score."""

    kind = "learned"

    encoder: str  #: "name;version" of the encoder whose rows it was trained on
    fps: float
    window_frames: int  #: rows per window
    network: dict
    weights: dict
    quant_min: np.ndarray
    quant_range: np.ndarray
    threshold: float
    fitted_on: str = ""
    #: unrelated footage the matcher's background draws on (`framegram.search.background`)
    background: BackgroundBank | None = None

    @property
    def encoder_name(self) -> str:
        return self.encoder.split(";")[0]

    @property
    def dims(self) -> int:
        return int(self.network["dims"])

    @property
    def window_seconds(self) -> float:
        return self.window_frames / self.fps

    @property
    def summary(self) -> str:
        return f"learned: {self.window_seconds:g}-s windows, {self.dims} dims ({self.fitted_on})"

    @property
    def digest(self) -> str:
        """Identity of what makes the vectors (not the threshold): indexes refuse any other."""
        h = hashlib.sha256(json.dumps([self.encoder, self.fps, self.window_frames, self.network], sort_keys=True).encode())
        for name in sorted(self.weights):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.weights[name], dtype=np.float32).tobytes())
        for a in (self.quant_min, self.quant_range):
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def check(self, framegram: Framegram, what: str = "framegram", path: str | Path | None = None) -> None:
        check_framegram(self.encoder, self.fps, framegram, what, path)

    def describe(self, framegram: Framegram, hop: int) -> Descriptors:
        """Embeddings [N, dims] of windows of `window_frames` rows starting every `hop` rows."""
        if len(framegram) == 0:
            raise FramegramError(f"{framegram.meta.source.path}: empty framegram, nothing to describe")
        first, end = window_starts(len(framegram), self.window_frames, hop)
        vectors = self.embed_windows(framegram.features, first, end)
        return Descriptors(vectors, framegram.times[first] - framegram.times[0])

    def embed_windows(self, features: np.ndarray, first: np.ndarray, end: np.ndarray) -> np.ndarray:
        """float32 [N, dims]: the embedding of rows first[i]:end[i] of `features` [T, D] for each i."""
        import torch

        out = np.empty((len(first), self.dims), np.float32)
        rows = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        lengths = end - first
        with torch.no_grad():
            for length in np.unique(lengths):  # windows of one length go through as one batch
                which = np.flatnonzero(lengths == length)
                sliding = rows.unfold(0, int(length), 1).transpose(1, 2)  # [T - L + 1, L, D], a view
                for chunk in np.array_split(which, max(1, len(which) // _BATCH_WINDOWS)):
                    out[chunk] = self.network_module(sliding[torch.from_numpy(first[chunk])]).numpy()
        return out

    @functools.cached_property
    def network_module(self):
        """The WindowEncoder with these weights, in eval mode (built on first use)."""
        import torch

        from framegram.search.window_encoder import WindowEncoder

        module = WindowEncoder(**self.network)
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.weights.items()})
        return module.eval()

    def with_threshold(self, threshold: float) -> LearnedFingerprint:
        return replace(self, threshold=float(threshold))

    def differences(self, other: Fingerprint) -> list[str]:
        """Why vectors of `other` (any fingerprint) cannot share an index with this one ([] if they can)."""
        out = input_differences(self, other, "learned")
        if getattr(other, "kind", None) != self.kind:
            return out
        if other.window_frames != self.window_frames:
            out.append(f"{other.window_seconds:g}-s windows instead of {self.window_seconds:g}-s")
        if other.dims != self.dims:
            out.append(f"{other.dims} dims instead of {self.dims}")
        if not out and other.digest != self.digest:
            out.append("other weights (another training run)")
        return out

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        np.savez(
            buf, kind=np.array(self.kind), encoder=np.array(self.encoder), fps=np.array(self.fps),
            window_frames=np.array(self.window_frames), network=np.array(json.dumps(self.network)),
            quant_min=self.quant_min, quant_range=self.quant_range, threshold=np.array(self.threshold),
            fitted_on=np.array(self.fitted_on), **{_WEIGHT_PREFIX + k: np.asarray(v) for k, v in self.weights.items()},
            **(self.background.arrays() if self.background is not None else {}),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LearnedFingerprint:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    encoder=str(z["encoder"]), fps=float(z["fps"]), window_frames=int(z["window_frames"]),
                    network=json.loads(str(z["network"])),
                    weights={k[len(_WEIGHT_PREFIX):]: z[k] for k in z.files if k.startswith(_WEIGHT_PREFIX)},
                    quant_min=z["quant_min"].astype(np.float32), quant_range=z["quant_range"].astype(np.float32),
                    threshold=float(z["threshold"]), fitted_on=str(z["fitted_on"]),
                    background=BackgroundBank.from_arrays(z),
                )
        except NPZ_READ_ERRORS as e:
            raise FramegramError(f"{path}: not a readable learned fingerprint ({e})") from None


def quantiser_ranges(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8-bit quantiser's (min, range) per dimension of descriptors [N, dims]: the 0.05 and
    99.95 percentiles, as for the hand-designed fingerprint."""
    lo, hi = np.percentile(vectors, [0.05, 99.95], axis=0).astype(np.float32)
    return lo, np.maximum(hi - lo, 1e-6).astype(np.float32)


def fingerprint_from_spec(spec: str):
    """A fingerprint named on the command line: "hand" (the packaged basis, None here: the index
    default) or "learned:RUN" (RUN: a training run folder or its fingerprint.npz)."""
    if spec == "hand":
        return None
    if not spec.startswith("learned:"):
        raise FramegramError(f"--fingerprint must be 'hand' or 'learned:RUN', got {spec!r}")
    path = Path(spec.removeprefix("learned:"))
    if path.is_dir():
        path = path / FINGERPRINT_FILE
    if not path.is_file():
        raise FramegramError(f"{path}: no learned fingerprint here (train one with `framegram fingerprint train`)")
    return LearnedFingerprint.load(path)
