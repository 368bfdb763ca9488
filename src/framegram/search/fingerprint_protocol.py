"""`Fingerprint`: what the index and the matcher need of a fingerprint, whatever makes its vectors.

Two kinds implement it: the hand-designed `framegram.search.fingerprint.FingerprintBasis` and the
trained `framegram.search.learned.LearnedFingerprint`. The protocol lists exactly the members that
`framegram.search` (`index`, `matcher`, `background`, the `search`/`add_videos` API) uses, so a third
kind is known to fit when it provides these; what only one kind has (`fitted_on`, `window_frames`,
`with_threshold`, ...) stays with that kind. `VideoIndex` refuses an object that lacks one of them
(`require_fingerprint`) with an error naming what is missing.

Kept apart from `fingerprint.py` (the hand-designed kind and the window helpers both kinds share)
so the interface belongs to neither implementation; it imports them for type hints only.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from framegram.errors import FramegramError

if TYPE_CHECKING:
    import numpy as np

    from framegram.framegram import Framegram
    from framegram.search.background import BackgroundBank
    from framegram.search.fingerprint import Descriptors


@runtime_checkable
class Fingerprint(Protocol):
    """How framegrams of one encoder at one frame rate become the vectors an index stores."""

    kind: str  #: which kind of fingerprint ("basis", "learned"): the first thing `differences` compares
    encoder: str  #: "name;version" of the encoder whose framegram rows it accepts
    encoder_name: str  #: the encoder's name alone (what extraction is asked for)
    fps: float  #: frame rate of the framegrams it accepts
    dims: int  #: length of one stored vector
    digest: str  #: identity of what makes the vectors: an index refuses any other
    summary: str  #: what it is, in words (index info, refusals)
    threshold: float  #: calibrated match score (`search(threshold="calibrated")`)
    quant_min: np.ndarray  #: float32 [dims]: the 8-bit quantiser's per-dimension minimum
    quant_range: np.ndarray  #: float32 [dims]: and range
    background: BackgroundBank | None  #: unrelated footage for the matcher's background, if stored

    def check(self, framegram: Framegram, what: str = "framegram", path: str | Path | None = None) -> None:
        """Raise FramegramError for a framegram of another encoder or frame rate."""
        ...

    def describe(self, framegram: Framegram, hop: int) -> Descriptors:
        """Descriptors of windows starting every `hop` rows (references: one per second, queries: 1)."""
        ...

    def differences(self, other: Fingerprint) -> list[str]:
        """Why vectors of `other` cannot share an index with this one ([] if they can)."""
        ...

    def save(self, path: str | Path) -> None:
        """Write it to `path` (an .npz that `framegram.search.fingerprint.load_fingerprint` reads)."""
        ...


#: the members of `Fingerprint`, attributes first, then methods, in the order declared
FINGERPRINT_MEMBERS: tuple[str, ...] = tuple(Fingerprint.__annotations__) + tuple(
    name for name, value in vars(Fingerprint).items() if inspect.isfunction(value) and not name.startswith("_")
)
_METHODS = frozenset(name for name in FINGERPRINT_MEMBERS if name not in Fingerprint.__annotations__)
_ABSENT = object()


def missing_members(obj: object) -> list[str]:
    """The members of `Fingerprint` that `obj` lacks (a method that is not callable counts as
    missing), [] for a fingerprint. Looked up statically: no property of `obj` is evaluated."""
    missing = []
    for name in FINGERPRINT_MEMBERS:
        found = inspect.getattr_static(obj, name, _ABSENT)
        if found is _ABSENT or name in _METHODS and not callable(getattr(obj, name)):
            missing.append(name)
    return missing


def require_fingerprint(obj: object, where: str | Path) -> Fingerprint:
    """`obj` itself when it provides every member of `Fingerprint`; otherwise a FramegramError that
    names what it lacks (`where`: what the message starts with, e.g. the index folder)."""
    missing = missing_members(obj)
    if missing:
        raise FramegramError(
            f"{where}: {type(obj).__name__} is not a fingerprint (framegram.search.fingerprint_protocol."
            f"Fingerprint): it lacks {', '.join(missing)}")
    return obj  # type: ignore[return-value]
