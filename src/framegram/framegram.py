"""The Framegram: the [T x D] feature time series of a video, the contract between all stages.

On disk a framegram is one `.npz` file (numpy's zip of arrays, no pickle):
  features  float16 [T, D]   pooled encoder features, one row per sampled frame
  times     float64 [T]      seconds from the start of the video stream, increasing
  meta      uint8   [bytes]  UTF-8 JSON, see `FramegramMeta`
Files are written atomically; loading validates every meta field, the arrays' shapes, types and
values and the schema version, and can refuse a framegram made by another encoder than the caller's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from framegram.encoders.base import EncoderSpec
from framegram.errors import EncoderMismatchError, FramegramFileError, SchemaVersionError, VideoNotFoundError
from framegram.io.atomic import atomic_path
from framegram.io.hashing import sha256_file

#: Bump when the file layout or the meaning of a field changes; readers refuse newer files.
SCHEMA_VERSION = 1
FILE_SUFFIX = ".framegram.npz"


@dataclass(frozen=True)
class SourceInfo:
    """The video a framegram was made from."""

    path: str  #: absolute path when extracting (older files: as given); see `find_source_video`
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
    def from_json(cls, text: str, path: str | Path = "framegram meta") -> FramegramMeta:
        """Parse and validate the meta JSON: an object with every field, each of the right type and in
        range (fps positive and finite, sizes not negative, sha256 64 hex digits, ...). Keys this
        version does not know are ignored. Raises FramegramFileError naming `path` and the field."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise FramegramFileError(path, f"meta is not valid JSON ({_one_line(exc)})") from None
        fields = _Fields(path, data)
        source, encoder = fields.object("source"), fields.object("encoder")
        size = encoder.get("input_size", list, "a list of 2 positive integers")
        if len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
            encoder.wrong("input_size", size, "a list of 2 positive integers")
        return cls(
            source=SourceInfo(
                path=source.text("path"),
                sha256=source.sha256("sha256"),
                size_bytes=source.count("size_bytes"),
                duration=source.number("duration", optional=True, positive=False),
                width=source.count("width"),
                height=source.count("height"),
                frame_rate=source.number("frame_rate", optional=True),
                codec=source.get("codec", str, "a string"),
            ),
            encoder=EncoderSpec(
                name=encoder.text("name"),
                version=encoder.get("version", str, "a string"),
                dim=encoder.count("dim", positive=True),
                input_size=(int(size[0]), int(size[1])),
                preprocessing=encoder.get("preprocessing", str, "a string"),
            ),
            fps=fields.number("fps"),
            skip_nonref=fields.get("skip_nonref", bool, "true or false"),
            schema_version=fields.count("schema_version", positive=True),
            framegram_version=fields.get("framegram_version", str, "a string"),
        )


class _Fields:
    """Typed reads of one JSON object of the meta; a missing or wrong field raises FramegramFileError."""

    def __init__(self, path: str | Path, data: object, where: str = ""):
        if not isinstance(data, dict):
            raise FramegramFileError(path, f"meta must be a JSON object, not {_json_type(data)}")
        self.path, self.data, self.where = path, data, where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def wrong(self, key: str, value: object, expected: str):
        raise FramegramFileError(self.path, f"meta field {self.name(key)} must be {expected}, got {_short(value)}")

    def get(self, key: str, kind: type | tuple[type, ...], expected: str):
        if key not in self.data:
            raise FramegramFileError(self.path, f"meta field {self.name(key)} is missing")
        value = self.data[key]
        # bool is an int in Python, but true is no count and 1 is no flag
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.wrong(key, value, expected)
        return value

    def object(self, key: str) -> _Fields:
        return _Fields(self.path, self.get(key, dict, "a JSON object"), self.name(key))

    def text(self, key: str) -> str:
        value = self.get(key, str, "a non-empty string")
        if not value:
            self.wrong(key, value, "a non-empty string")
        return value

    def sha256(self, key: str) -> str:
        value = self.get(key, str, "64 hex digits")
        if not _SHA256.fullmatch(value):
            self.wrong(key, value, "64 hex digits")
        return value

    def count(self, key: str, positive: bool = False) -> int:
        expected = "a positive integer" if positive else "an integer >= 0"
        value = self.get(key, int, expected)
        if value < (1 if positive else 0):
            self.wrong(key, value, expected)
        return value

    def number(self, key: str, optional: bool = False, positive: bool = True) -> float | None:
        expected = ("a positive" if positive else "a non-negative") + " finite number" + (" or null" if optional else "")
        if optional and self.data.get(key, 0) is None:
            return None
        value = self.get(key, (int, float), expected)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            number = math.inf
        # 1 / rate must be finite too: periods are computed from rates
        if not (math.isfinite(number) and (number > 0 if positive else number >= 0)) or (
            positive and not math.isfinite(1.0 / number)
        ):
            self.wrong(key, value, expected)
        return number


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null", dict: "an object"}.get(
        type(value), "a number"
    )


def _short(value: object) -> str:
    """The value as JSON, cut to 40 characters."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = _json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


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
        Raises FramegramFileError for a missing, foreign or damaged file (one that is no npz
        archive, or whose meta is not an object with every field of the right type, or whose
        arrays break the contract: no rows, features not finite floats [T, D] with D the encoder's
        dim, times not finite and strictly increasing) and SchemaVersionError for a file written
        by a newer framegram. Whatever the file's bytes, nothing else is raised.
        """
        path = Path(path)
        if not path.is_file():
            raise FramegramFileError(path, "no such framegram file")
        features, times, meta_bytes = _read_arrays(path)
        try:
            meta_text = meta_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise FramegramFileError(path, "meta is not UTF-8 text") from None
        _check_schema(path, meta_text)
        meta = FramegramMeta.from_json(meta_text, path)
        features, times = _validate(path, features, times, meta)
        if expect_encoder is not None:
            _check_encoder(path, meta.encoder, expect_encoder)
        return cls(features, times, meta)


def find_source_video(framegram: Framegram, framegram_file: str | Path | None = None) -> Path:
    """The video `framegram` was made from: a file with its content (size and sha256).

    Tries the stored path (relative ones, from older files, also against the framegram file's
    folder), then the stored file name beside `framegram_file` and in the stored path's folder,
    then any file of the right size in those folders, so a video that was moved beside its
    framegram or renamed is still found. Raises VideoNotFoundError saying what was tried.
    """
    source = framegram.meta.source
    stored = Path(source.path)
    folders = [Path(framegram_file).parent] if framegram_file is not None else []
    named = [stored]
    if not stored.is_absolute() and folders:
        named.append(folders[0] / stored)
        folders.append(folders[0] / stored.parent)
    folders.append(stored.parent)
    folders = [f for f in dict.fromkeys(folders) if f.is_dir()]
    named += [folder / stored.name for folder in folders]
    for candidate in dict.fromkeys(named):
        if _has_content(candidate, source):
            return candidate
    for folder in folders:
        for candidate in sorted(folder.iterdir()):
            if not candidate.name.startswith(".") and _has_content(candidate, source):
                return candidate
    raise VideoNotFoundError(
        stored,
        f"the source video of {framegram_file or 'the framegram'} is needed and was not found: tried "
        f"{', '.join(map(str, dict.fromkeys(named)))}, and every file of {source.size_bytes} bytes in "
        f"{', '.join(map(str, folders)) or 'no existing folder'} for sha256 {source.sha256[:16]}...",
    )


def _has_content(path: Path, source: SourceInfo) -> bool:
    try:
        # the size first: hashing is reached only by a file that is likely the one
        return path.is_file() and path.stat().st_size == source.size_bytes and sha256_file(path) == source.sha256
    except OSError:
        return False


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, bytes]:
    """The raw features, times and meta bytes of an npz file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):  # a plain .npy file
                raise FramegramFileError(path, "not a framegram file (one array, not an npz archive)")
            missing = {"features", "times", "meta"} - set(npz.files)
            if missing:
                raise FramegramFileError(path, f"not a framegram file (missing {', '.join(sorted(missing))})")
            features, times, meta = npz["features"], npz["times"], npz["meta"]
    except FramegramFileError:
        raise
    except Exception as exc:  # damaged bytes fail in many ways: BadZipFile, ValueError, EOFError, NotImplementedError, ...
        raise FramegramFileError(path, f"not a readable framegram file ({_one_line(exc)})") from exc
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise FramegramFileError(path, f"meta must be uint8 [bytes], got {meta.dtype} {list(meta.shape)}")
    return features, times, meta.tobytes()


def _check_schema(path: Path, meta_text: str) -> None:
    # Before the fields are checked: a newer schema may have other fields, and deserves its own message.
    try:
        schema = json.loads(meta_text).get("schema_version")
    except (ValueError, RecursionError, AttributeError):
        return  # not an object: from_json says what is wrong
    if _is_int(schema) and schema > SCHEMA_VERSION:
        raise SchemaVersionError(
            path,
            f"written with framegram schema {schema}; this framegram reads schema "
            f"{SCHEMA_VERSION} or older: upgrade framegram",
        )


def _validate(path: Path, features: np.ndarray, times: np.ndarray, meta: FramegramMeta) -> tuple[np.ndarray, np.ndarray]:
    """features float32 [T, D] and times float64 [T], or FramegramFileError saying what breaks the contract."""
    if features.dtype.kind != "f" or features.ndim != 2 or features.shape[1] != meta.encoder.dim:
        raise FramegramFileError(
            path, f"features are {features.dtype} {list(features.shape)}, expected floats [T, {meta.encoder.dim}]"
        )
    if times.dtype.kind != "f" or times.shape != (features.shape[0],):
        raise FramegramFileError(path, f"times are {times.dtype} {list(times.shape)} for {features.shape[0]} feature rows")
    if features.shape[0] == 0:
        raise FramegramFileError(path, "the framegram has no rows")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes infinity, refused below
        features, times = features.astype(np.float32), times.astype(np.float64)
    if not np.isfinite(features).all():
        raise FramegramFileError(path, "features contain NaN or infinity")
    # the span must be finite too: durations are computed from it
    if not (np.isfinite(times).all() and np.isfinite(times[-1] - times[0])):
        raise FramegramFileError(path, "times contain NaN or infinity")
    if not (np.diff(times) > 0).all():
        raise FramegramFileError(path, "times are not strictly increasing")
    return features, times


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
