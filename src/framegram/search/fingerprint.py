"""Fingerprints: compact per-second descriptors of a framegram, the vectors the search index stores.

A framegram row (1280 floats from EfficientNet-Lite0) is L2-normalised, centred on a fitted mean,
projected onto the leading principal components and whitened (with shrinkage, so that weak
components are not blown up into noise), then L2-normalised again. A descriptor is the mean of the
whitened rows inside a one-second window, normalised: its temporal context. References keep one
descriptor per second (256 dims, stored as 8-bit scalars by the index: 256 bytes per second);
queries are described densely, one window starting at every frame, so alignment can resolve
offsets finer than a second.

The fitted part (mean, projection and the 8-bit quantiser's ranges) is a `FingerprintBasis`. It is
fitted once on footage chosen for it (see `framegram.search.basis`) and stored inside every index,
so adding videos never changes how earlier ones were described.

An index stores either kind of fingerprint: this hand-designed one or a learned one
(`framegram.search.learned.LearnedFingerprint`, a network over framegram windows). Both give
reference descriptors on the same one-per-second grid and dense query descriptors, through
`describe(framegram, hop)`, so the index and matcher treat them alike (what both provide:
`framegram.search.fingerprint_protocol.Fingerprint`); `load_fingerprint` reads either from a file.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framegram.align import unit_rows
from framegram.errors import NPZ_READ_ERRORS, FramegramError
from framegram.framegram import Framegram
from framegram.io.atomic import atomic_write_bytes
from framegram.search.background import BackgroundBank

if TYPE_CHECKING:
    from framegram.search.fingerprint_protocol import Fingerprint

FINGERPRINT_DIMS = 256
#: the reference grid: one stored descriptor per second (the hand-designed windows are this long too)
WINDOW_SECONDS = 1.0
#: the hand-designed fingerprint's score threshold, calibrated by bench/search.py over indexes of 1 to
#: 200 references on the calibration split's queries whose video is not indexed: about 1 % match
BASIS_THRESHOLD = 0.226
#: whitening divides by sqrt(eigenvalue + SHRINKAGE * mean eigenvalue of the kept components)
SHRINKAGE = 0.1


@dataclass(frozen=True, eq=False)
class FingerprintBasis:
    """How framegram rows of one encoder at one frame rate become fingerprint space.

    mean: float32 [D] (mean of unit-normalised rows); projection: float32 [D, K];
    quant_min, quant_range: float32 [K], the 8-bit quantiser's per-dimension range.
    """

    kind = "basis"
    threshold = BASIS_THRESHOLD

    encoder: str  #: "name;version" of the encoder whose rows this basis accepts
    fps: float  #: frame rate of the framegrams it was fitted on (windows count frames)
    mean: np.ndarray
    projection: np.ndarray
    quant_min: np.ndarray
    quant_range: np.ndarray
    fitted_on: str = ""  #: what it was fitted on, in words
    #: unrelated footage the matcher's background draws on (not part of the digest: it changes
    #: scores, not stored vectors)
    background: BackgroundBank | None = None

    @property
    def encoder_name(self) -> str:
        return self.encoder.split(";")[0]

    @property
    def dims(self) -> int:
        return self.projection.shape[1]

    @property
    def frames_per_window(self) -> int:
        return frames_per_second(self.fps)

    @property
    def summary(self) -> str:
        return f"hand-designed: PCA-whitened {WINDOW_SECONDS:g}-s means, {self.dims} dims (fitted on {self.fitted_on})"

    @property
    def digest(self) -> str:
        """Identity of the fitted numbers: indexes refuse queries described with another basis."""
        h = hashlib.sha256()
        for a in (self.mean, self.projection, self.quant_min, self.quant_range):
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def differences(self, other: Fingerprint) -> list[str]:
        """Why vectors of `other` (any fingerprint) cannot share an index with this one ([] if they can)."""
        out = input_differences(self, other, "hand-designed")
        if not out and other.digest != self.digest:
            out.append(f"another fitted basis ({other.fitted_on or 'unnamed'})")
        return out

    def whiten(self, features: np.ndarray) -> np.ndarray:
        """float32 [T, D] framegram rows -> float32 [T, K] unit rows in fingerprint space."""
        if features.shape[1] != self.mean.shape[0]:
            raise FramegramError(f"features have {features.shape[1]} dims; this fingerprint basis expects {self.mean.shape[0]}")
        return unit_rows((unit_rows(features) - self.mean) @ self.projection)

    def check(self, framegram: Framegram, what: str = "framegram", path: str | Path | None = None) -> None:
        """Refuse a framegram from another encoder or frame rate than the basis was fitted for
        (the error names `path`, default the framegram's source video)."""
        check_framegram(self.encoder, self.fps, framegram, what, path)

    def describe(self, framegram: Framegram, hop: int) -> Descriptors:
        """Descriptors of one-second windows starting every `hop` rows (see `window_starts`)."""
        if len(framegram) == 0:
            raise FramegramError(f"{framegram.meta.source.path}: empty framegram, nothing to describe")
        rows = self.whiten(framegram.features)
        first, end = window_starts(len(rows), self.frames_per_window, hop)
        csum = np.vstack([np.zeros((1, rows.shape[1]), np.float64), np.cumsum(rows, axis=0, dtype=np.float64)])
        sums = csum[end] - csum[first]
        return Descriptors(unit_rows(sums.astype(np.float32)), framegram.times[first] - framegram.times[0])

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        np.savez(
            buf, kind=np.array(self.kind), mean=self.mean, projection=self.projection, quant_min=self.quant_min, quant_range=self.quant_range,
            encoder=np.array(self.encoder), fps=np.array(self.fps), fitted_on=np.array(self.fitted_on),
            **(self.background.arrays() if self.background is not None else {}),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> FingerprintBasis:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    encoder=str(z["encoder"]), fps=float(z["fps"]), mean=z["mean"].astype(np.float32),
                    projection=z["projection"].astype(np.float32), quant_min=z["quant_min"].astype(np.float32),
                    quant_range=z["quant_range"].astype(np.float32), fitted_on=str(z["fitted_on"]),
                    background=BackgroundBank.from_arrays(z),
                )
        except NPZ_READ_ERRORS as e:
            raise FramegramError(f"{path}: not a readable fingerprint basis ({e})") from None


@dataclass(frozen=True)
class Descriptors:
    """vectors: float32 [N, K] unit rows; starts: float64 [N] window starts in seconds (each window
    lasts WINDOW_SECONDS)."""

    vectors: np.ndarray
    starts: np.ndarray


def input_differences(mine: Fingerprint, other: Fingerprint, label: str) -> list[str]:
    """What of kind, encoder and frame rate `other` (any fingerprint) has that `mine` has not; a
    fingerprint of another kind gives that alone ([] if all three agree)."""
    if getattr(other, "kind", None) != mine.kind:
        return [f"a {other.kind} fingerprint, not a {label} one"]
    out = []
    if other.encoder != mine.encoder:
        out.append(f"encoder {other.encoder_name} instead of {mine.encoder_name}")
    if other.fps != mine.fps:
        out.append(f"{other.fps:g} fps instead of {mine.fps:g}")
    return out


def frames_per_second(fps: float) -> int:
    """Rows of a framegram at `fps` per step of the reference grid (WINDOW_SECONDS)."""
    return max(1, round(WINDOW_SECONDS * fps))


def window_starts(rows: int, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row, end row) [N] of windows of `window` rows starting every `hop` rows.

    hop 1 (queries): full windows only, or one window of all rows when there are fewer than
    `window`. Larger hops (references): a last partial window is kept when it holds at least half
    a window, so the end of a video is described too."""
    w = min(window, rows)
    last_start = rows - w if hop == 1 else rows - (w + 1) // 2
    first = np.arange(0, last_start + 1, hop)
    return first, np.minimum(first + w, rows)


def check_framegram(encoder: str, fps: float, framegram: Framegram, what: str = "framegram",
                    path: str | Path | None = None) -> None:
    """Refuse a framegram whose encoder ("name;version") or frame rate is not the fingerprint's; the
    error names `path` (default: the framegram's source video)."""
    spec = framegram.meta.encoder
    where = path if path is not None else framegram.meta.source.path
    if f"{spec.name};{spec.version}" != encoder:
        raise FramegramError(
            f"{where}: {what} made with encoder {spec.name} ({spec.version}); "
            f"the fingerprint describes {encoder.split(';')[0]} framegrams"
        )
    if abs(framegram.meta.fps - fps) > 1e-6:
        raise FramegramError(f"{where}: {what} sampled at {framegram.meta.fps:g} fps; the fingerprint needs {fps:g} fps")


def reference_descriptors(framegram: Framegram, fingerprint: Fingerprint) -> Descriptors:
    """One descriptor per second (`fingerprint`: a FingerprintBasis, a LearnedFingerprint or any `Fingerprint`)."""
    return fingerprint.describe(framegram, hop=frames_per_second(fingerprint.fps))


def query_descriptors(framegram: Framegram, fingerprint: Fingerprint) -> Descriptors:
    """One descriptor per frame: a window starting at every row."""
    return fingerprint.describe(framegram, hop=1)


def load_fingerprint(path: str | Path) -> Fingerprint:
    """The fingerprint stored in `path`: a FingerprintBasis, or a LearnedFingerprint (torch needed)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            kind = str(z["kind"]) if "kind" in z.files else "basis"
    except NPZ_READ_ERRORS as e:
        raise FramegramError(f"{path}: not a readable fingerprint ({e})") from None
    if kind == "learned":
        from framegram.search.learned import LearnedFingerprint

        return LearnedFingerprint.load(path)
    return FingerprintBasis.load(path)


def fit_basis(
    framegrams: list[Framegram], dims: int = FINGERPRINT_DIMS, fitted_on: str = "", max_rows: int = 200_000
) -> FingerprintBasis:
    """PCA-whitening of unit-normalised rows of `framegrams` (same encoder and fps), kept to `dims`
    components, plus the per-dimension 8-bit range of the resulting per-second descriptors."""
    if not framegrams:
        raise ValueError("fit_basis needs framegrams")
    first = framegrams[0].meta
    for f in framegrams:
        if not f.meta.encoder.same_model(first.encoder) or f.meta.fps != first.fps:
            raise FramegramError(f"{f.meta.source.path}: fit_basis needs framegrams of one encoder and frame rate")
    rows = unit_rows(np.concatenate([f.features for f in framegrams]).astype(np.float32))
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(0).choice(len(rows), max_rows, replace=False)]
    if len(rows) < 2 * dims:
        raise FramegramError(f"fit_basis needs at least {2 * dims} rows for {dims} dims, got {len(rows)}")
    mean = rows.mean(axis=0)
    cov = np.cov((rows - mean).T.astype(np.float64))
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1][:dims]
    eigval, eigvec = eigval[order], eigvec[:, order]
    # deterministic signs: the largest-magnitude loading of each component is positive
    eigvec *= np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(dims)])
    projection = (eigvec / np.sqrt(eigval + SHRINKAGE * eigval.mean())).astype(np.float32)
    spec = first.encoder
    draft = FingerprintBasis(
        f"{spec.name};{spec.version}", first.fps, mean.astype(np.float32), projection,
        np.zeros(dims, np.float32), np.ones(dims, np.float32), fitted_on,
    )
    described = np.concatenate([reference_descriptors(f, draft).vectors for f in framegrams])
    lo, hi = np.percentile(described, [0.05, 99.95], axis=0).astype(np.float32)
    return FingerprintBasis(draft.encoder, draft.fps, draft.mean, projection, lo, np.maximum(hi - lo, 1e-6), fitted_on)
