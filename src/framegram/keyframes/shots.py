"""Shot boundaries from a framegram: hard cuts and gradual transitions (fades, dissolves).

At a few samples per second a boundary is a place where the content before and the content
after differ, with at most a couple of seconds of transition between them. The detector:

1. suppresses flash rows: a row unlike both neighbours while they are alike (a camera flash or
   strobe lasts less than one sample period, so it shows in one row at most);
2. proposes change points with kernel change-point detection (`ruptures.KernelCPD`, linear
   kernel, penalised) on the rows centred by the video's mean feature;
3. keeps a candidate only if the content on its two sides really differs: for every transition
   width up to `max_transition` it compares two-row anchors just outside the transition, and
   requires both the centred and the raw cosine similarity of the best pair to be low (a pan or
   a brightness change moves the features, but the two sides still show the same scene);
4. merges candidates whose transitions overlap, and calls a boundary a cut when the two rows
   adjacent to it already show the full contrast, otherwise a gradual transition whose extent is
   the best transition width found; boundaries closer than 3 rows become one gradual transition
   (the sliver between them is the dark middle of a fade, not a shot);
5. widens a boundary that touches black rows (features close to the encoder's own features of a
   black frame) over them: a fade through black, gradual however abrupt its middle looks.

Everything runs on the [T x D] matrix: no decoding, so a cached framegram is enough.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from framegram.align import unit_rows
from framegram.errors import TooShortError
from framegram.framegram import Framegram

#: kinds of boundary reported
CUT, GRADUAL = "cut", "gradual"


@dataclass(frozen=True)
class ShotDetectorConfig:
    """Settings of `detect_shots`; the defaults were chosen on development videos separate from the benchmark's."""

    penalty: float = 3.0  #: KernelCPD penalty on centred unit rows: higher proposes fewer candidates
    max_transition: float = 1.2  #: seconds of transition searched on each side of a candidate
    max_centred_similarity: float = 0.25  #: boundary only if the two sides' centred cosine is below this
    max_raw_similarity: float = 0.65  #: ... and their raw cosine is below this
    cut_margin: float = 0.1  #: a cut if adjacent rows reach the best contrast within this (cosine)
    flash_margin: float = 0.15  #: a row is a flash if both neighbours are this much more alike than it is to them
    dark_similarity: float = 0.8  #: a row is (near) black if its cosine with the encoder's black frame exceeds this


@dataclass(frozen=True)
class Boundary:
    """A shot boundary; times in seconds of the video. For a cut start == end (the new shot's first moment)."""

    kind: str  #: "cut" or "gradual"
    start: float
    end: float
    strength: float  #: 1 - centred cosine of the two sides: larger is surer
    rows: tuple[int, int]  #: framegram rows [first, last) inside the transition (empty for a cut)


@dataclass(frozen=True)
class Shot:
    """A shot: from the end of one boundary to the start of the next, in seconds and framegram rows."""

    start: float
    end: float
    first_row: int
    stop_row: int  #: one past the last row

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class ShotList:
    """Boundaries and the shots between them, for one framegram."""

    boundaries: list[Boundary]
    shots: list[Shot]
    flash_rows: list[int] = field(default_factory=list)  #: rows recognised as flashes and ignored
    dark_rows: list[int] = field(default_factory=list)  #: (near) black rows


def detect_shots(fg: Framegram, config: ShotDetectorConfig | None = None) -> ShotList:
    """Find the shot boundaries in `fg` (see the module docstring); needs at least 2 rows."""
    import ruptures

    config = config or ShotDetectorConfig()
    if len(fg) < 2:
        raise TooShortError(fg.meta.source.path, f"{len(fg)} frame(s) at {fg.meta.fps:g}/s is too short to find shots in (need 2)")
    rows = unit_rows(fg.features.astype(np.float64))
    rows, flashes = _suppress_flashes(rows, config.flash_margin)
    centred = unit_rows(rows - rows.mean(axis=0))
    period = 1.0 / fg.meta.fps
    reach = max(1, round(config.max_transition / period))
    if len(fg) >= 4:
        candidates = ruptures.KernelCPD(kernel="linear", min_size=2).fit(centred).predict(pen=config.penalty)[:-1]
    else:
        candidates = [1 + int(np.argmin(np.sum(rows[1:] * rows[:-1], axis=1)))]

    events = []
    for c in candidates:
        event = _best_transition(rows, centred, c, reach)
        if event and event[0] < config.max_centred_similarity and event[1] < config.max_raw_similarity:
            events.append(event)
    boundaries = _join_close(_merge(events, rows, fg.times, period, config.cut_margin), fg.times, period)
    dark = _dark_rows(rows, fg.meta.encoder, config.dark_similarity)
    # join again: widening over black rows can bring two boundaries together
    boundaries = _join_close(_widen_over_dark(boundaries, dark, fg.times, period, 2 * reach), fg.times, period)
    return ShotList(boundaries, _shots_between(boundaries, fg.times, period), flashes, sorted(np.flatnonzero(dark).tolist()))


def _suppress_flashes(rows: np.ndarray, margin: float) -> tuple[np.ndarray, list[int]]:
    """Replace rows that are unlike both neighbours (while those are alike) by their neighbours' mean."""
    rows = rows.copy()
    flashes = []
    for i in range(1, len(rows) - 1):
        around = rows[i - 1] @ rows[i + 1]
        if rows[i] @ rows[i - 1] < around - margin and rows[i] @ rows[i + 1] < around - margin:
            rows[i] = unit_rows(rows[i - 1] + rows[i + 1])
            flashes.append(i)
    return rows, flashes


def _best_transition(rows: np.ndarray, centred: np.ndarray, c: int, reach: int):
    """Around change point c (between rows c-1 and c): the transition [lo, hi) whose 2-row anchors
    outside it differ most. Returns (centred cos, raw cos, lo, hi, centred cos with no transition)."""
    best = None
    adjacent = None
    for left in range(reach + 1):
        lo = c - left
        if lo - 2 < 0:
            break
        a_c, a_r = unit_rows(centred[lo - 2 : lo].mean(0)), unit_rows(rows[lo - 2 : lo].mean(0))
        for right in range(reach + 1):
            hi = c + right
            if hi + 2 > len(rows):
                break
            b_c, b_r = unit_rows(centred[hi : hi + 2].mean(0)), unit_rows(rows[hi : hi + 2].mean(0))
            sim = float(a_c @ b_c)
            if left == right == 0:
                adjacent = sim
            # prefer the narrowest transition among near-equal contrasts
            key = sim + 0.01 * (left + right)
            if best is None or key < best[0]:
                best = (key, sim, float(a_r @ b_r), lo, hi)
    if best is None or adjacent is None:
        return None
    _, sim, raw, lo, hi = best
    return sim, raw, int(lo), int(hi), adjacent


def _merge(events, rows: np.ndarray, times: np.ndarray, period: float, cut_margin: float) -> list[Boundary]:
    """Overlapping transitions become one boundary; classify cut / gradual."""
    events = sorted(events, key=lambda e: e[2])
    merged: list[list] = []
    for sim, raw, lo, hi, adjacent in events:
        if merged and lo <= merged[-1][3]:
            last = merged[-1]
            last[3] = max(last[3], hi)
            if sim < last[0]:
                last[0], last[4] = sim, adjacent
        else:
            merged.append([sim, raw, lo, hi, adjacent])
    boundaries = []
    for sim, _raw, lo, hi, adjacent in merged:
        start = float(times[lo] - period / 2)
        if adjacent <= sim + cut_margin:  # the contrast is already there between neighbouring rows
            # the cut lies where consecutive rows differ most inside the searched span
            span = np.arange(max(lo, 1), min(hi, len(rows) - 1) + 1)
            cut = int(span[np.argmin(np.sum(rows[span] * rows[span - 1], axis=1))])
            t = float(times[cut] - period / 2)
            boundaries.append(Boundary(CUT, t, t, 1.0 - sim, (cut, cut)))
        else:
            end = float(times[hi - 1] + period / 2)
            boundaries.append(Boundary(GRADUAL, start, end, 1.0 - sim, (lo, hi)))
    return boundaries


def _dark_rows(rows: np.ndarray, spec, threshold: float) -> np.ndarray:
    """bool [T]: rows whose features are close to the encoder's features of a black frame."""
    black = _black_features(spec.name, spec.version)
    if black is None or black.shape[0] != rows.shape[1]:
        return np.zeros(len(rows), dtype=bool)
    return rows @ black > threshold


@functools.lru_cache(maxsize=4)
def _black_features(name: str, version: str) -> np.ndarray | None:
    """Unit features of an all-black frame for the encoder that made the framegram (None if unavailable here)."""
    from framegram.encoders import get_encoder
    from framegram.errors import UnknownEncoderError

    try:
        encoder = get_encoder(name)
    except UnknownEncoderError:
        return None
    if encoder.spec.version != version:
        return None
    height, width = encoder.spec.input_size
    return unit_rows(encoder.encode(np.zeros((1, height, width, 3), np.uint8)).astype(np.float64))[0]


def _widen_over_dark(
    boundaries: list[Boundary], dark: np.ndarray, times: np.ndarray, period: float, max_rows: int
) -> list[Boundary]:
    """A boundary touching a short run of black rows (at most `max_rows`) is a fade: gradual,
    spanning the black rows and one row beyond. A longer run is a dark scene, left alone."""
    widened = []
    for b in boundaries:
        lo, hi = b.rows[0], max(b.rows[1], b.rows[0])
        if not dark[max(lo - 1, 0) : min(hi + 1, len(dark))].any():
            widened.append(b)
            continue
        while lo > 0 and dark[lo - 1]:
            lo -= 1
        while hi < len(dark) and dark[hi]:
            hi += 1
        if int(dark[lo:hi].sum()) > max_rows:
            widened.append(b)
            continue
        lo, hi = max(lo - 1, 0), min(hi + 1, len(dark))
        widened.append(Boundary(GRADUAL, float(times[lo] - period / 2), float(times[hi - 1] + period / 2), b.strength, (lo, hi)))
    return widened


def _join_close(boundaries: list[Boundary], times: np.ndarray, period: float, min_shot_rows: int = 3) -> list[Boundary]:
    """Boundaries less than `min_shot_rows` apart become one gradual transition: at a few samples
    per second such a sliver is the dark middle of a fade or a dissolve's turning point, not a shot."""
    joined: list[Boundary] = []
    for b in boundaries:
        if joined and b.rows[0] - joined[-1].rows[1] < min_shot_rows:
            a = joined.pop()
            lo, hi = a.rows[0], max(b.rows[1], a.rows[0] + 1)
            b = Boundary(GRADUAL, float(times[lo] - period / 2), float(times[hi - 1] + period / 2), max(a.strength, b.strength), (lo, hi))
        joined.append(b)
    return joined


def _shots_between(boundaries: list[Boundary], times: np.ndarray, period: float) -> list[Shot]:
    shots = []
    start, first = float(times[0]), 0
    for b in boundaries:
        shots.append(Shot(start, b.start, first, b.rows[0]))
        start, first = b.end, b.rows[1]
    shots.append(Shot(start, float(times[-1] + period), first, len(times)))
    return [s for s in shots if s.stop_row > s.first_row]
