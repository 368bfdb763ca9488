"""The Framegram: the [T x D] feature time series of a video, the contract between all stages.

On disk a framegram is one `.npz` file (numpy's zip of arrays, no pickle):
  features  float16 [T, D]   pooled encoder features, one row per sampled frame
  times     float64 [T]      seconds from the start of the video stream, increasing
  meta      uint8   [bytes]  UTF-8 JSON, see `FramegramMeta`
Files are written atomically; loading validates shapes, values and the schema version, and can
refuse a framegram made by another encoder than the caller's.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from framegram.encoders.base import EncoderSpec
from framegram.errors import EncoderMismatchError, FramegramFileError, SchemaVersionError
from framegram.io.atomic import atomic_path

#: Bump when the file layout or the meaning of a field changes; readers refuse newer files.
SCHEMA_VERSION = 1
FILE_SUFFIX = ".framegram.npz"


@dataclass(frozen=True)
class SourceInfo:
    """The video a framegram was made from."""

    path: str  #: as given when extracting
    sha256: str  #: of the file's bytes: identifies the content whatever its path
    size_bytes: int
    duration: float | None  #: seconds, as declared by the file
    width: int
    height: int
    frame_rate: float | None  #: frames per second, as declared
    codec: str


@dataclass(frozen=True)
class FramegramMeta:
    """Everything needed to interpret and reproduce a framegram."""

    source: SourceInfo
    encoder: EncoderSpec
    fps: float  #: sampling rate, samples per second
    skip_nonref: bool  #: whether non-reference frames were skipped while decoding
    schema_version: int = SCHEMA_VERSION
    framegram_version: str = field(default_factory=lambda: _package_version())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FramegramMeta:
        data = json.loads(text)
        return cls(
            source=SourceInfo(**data["source"]),
            encoder=EncoderSpec.from_dict(data["encoder"]),
            fps=float(data["fps"]),
            skip_nonref=bool(data["skip_nonref"]),
            schema_version=int(data["schema_version"]),
            framegram_version=str(data["framegram_version"]),
        )


@dataclass(frozen=True, eq=False)
class Framegram:
    """features: float32 [T, D]; times: float64 [T] seconds; meta: where it came from."""

    features: np.ndarray
    times: np.ndarray
    meta: FramegramMeta

    def __post_init__(self):
        if self.features.ndim != 2 or self.times.shape != (self.features.shape[0],):
            raise ValueError(f"features must be [T, D] and times [T], got {self.features.shape} and {self.times.shape}")

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def duration(self) -> float:
        """Seconds covered: from the first sample to one sample period past the last."""
        return float(self.times[-1] - self.times[0] + 1.0 / self.meta.fps) if len(self) else 0.0

    def slice_time(self, start: float, end: float) -> Framegram:
        """The rows whose times lie in [start, end) seconds."""
        keep = (self.times >= start) & (self.times < end)
        return replace(self, features=self.features[keep], times=self.times[keep])

    def to_picture(self) -> np.ndarray:
        """The framegram as an image: float32 [D, T] in [0, 1], features min-max scaled over the whole matrix.

        Rows are features, columns are samples (time runs left to right).
        """
        lo, hi = float(self.features.min()), float(self.features.max())
        scaled = (self.features - lo) / (hi - lo) if hi > lo else np.zeros_like(self.features)
        return np.ascontiguousarray(scaled.T, dtype=np.float32)

    def render(self, path: str | Path | None = None, title: str | None = None, height_in: float = 4.0):
        """Draw the framegram picture (gray: 0 black, 1 white) with time in seconds along x.

        Returns the matplotlib Figure; with `path`, also writes it there atomically (PNG, SVG, PDF
        by extension) and closes it.
        """
        from framegram.plotting import render_framegram

        return render_framegram(self, path=path, title=title, height_in=height_in)

    def save(self, path: str | Path) -> Path:
        """Write atomically to `path` (features stored as float16); returns the path."""
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    features=self.features.astype(np.float16),
                    times=self.times.astype(np.float64),
                    meta=np.frombuffer(self.meta.to_json().encode("utf-8"), dtype=np.uint8),
                )
        return path

    @classmethod
    def load(cls, path: str | Path, expect_encoder: EncoderSpec | str | None = None) -> Framegram:
        """Read and validate a framegram file.

        expect_encoder: refuse (EncoderMismatchError) a file made by another encoder; a spec
            compares name and version, a string compares the name only.
        Raises FramegramFileError for a missing, foreign or damaged file and SchemaVersionError
        for a file written by a newer framegram.
        """
        path = Path(path)
        if not path.is_file():
            raise FramegramFileError(path, "no such framegram file")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = {"features", "times", "meta"} - set(npz.files)
                if missing:
                    raise FramegramFileError(path, f"not a framegram file (missing {', '.join(sorted(missing))})")
                meta_text = npz["meta"].tobytes().decode("utf-8")
                schema = int(json.loads(meta_text).get("schema_version", -1))
                if schema > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        path,
                        f"written with framegram schema {schema}; this framegram reads schema "
                        f"{SCHEMA_VERSION} or older: upgrade framegram",
                    )
                meta = FramegramMeta.from_json(meta_text)
                features = npz["features"].astype(np.float32)
                times = npz["times"].astype(np.float64)
        except (FramegramFileError, SchemaVersionError):
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise FramegramFileError(path, f"not a readable framegram file ({type(exc).__name__}: {exc})") from exc
        _validate(path, features, times, meta)
        if expect_encoder is not None:
            _check_encoder(path, meta.encoder, expect_encoder)
        return cls(features, times, meta)


def _validate(path: Path, features: np.ndarray, times: np.ndarray, meta: FramegramMeta) -> None:
    if features.ndim != 2 or features.shape[1] != meta.encoder.dim:
        raise FramegramFileError(path, f"features have shape {features.shape}, expected [T, {meta.encoder.dim}]")
    if times.shape != (features.shape[0],):
        raise FramegramFileError(path, f"{times.size} times for {features.shape[0]} feature rows")
    if not (np.isfinite(features).all() and np.isfinite(times).all()):
        raise FramegramFileError(path, "features or times contain NaN or infinity")
    if times.size > 1 and not (np.diff(times) > 0).all():
        raise FramegramFileError(path, "times are not strictly increasing")


def _check_encoder(path: Path, found: EncoderSpec, expected: EncoderSpec | str) -> None:
    if isinstance(expected, str):
        ok, wanted = found.name == expected, expected
    else:
        ok, wanted = found.same_model(expected), f"{expected.name} ({expected.version})"
    if not ok:
        raise EncoderMismatchError(path, f"made with encoder {found.name} ({found.version}), expected {wanted}")


def _package_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("framegram")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
