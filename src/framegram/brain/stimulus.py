"""From the stimulus to a design matrix on the scan clock: each feature space's rows averaged per TR
(`framegram.fmri.stimulus`, its clock convention), reduced to principal components, side by side,
then FIR delays or the delayed SPM HRF (`framegram.fmri.hrf`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framegram.fmri.hrf import convolve_kernel, hrf_kernel
from framegram.fmri.stimulus import frames_to_tr

#: FIR delays from 0 to 10 s.
DEFAULT_MAX_DELAY_S = 10.0

#: Candidate late starts of the SPM HRF (s): peaks from about 4 s to 9 s.
HRF_DELAYS_S = tuple(float(d) for d in np.arange(-1.0, 4.001, 0.25))


def fir_delays(tr: float, max_delay_s: float = DEFAULT_MAX_DELAY_S) -> np.ndarray:
    """Delays in volumes 0, 1, ..., floor(max_delay_s / tr): int [n_delays] (0..16 at TR 0.608 s)."""
    return np.arange(int(np.floor(max_delay_s / tr + 1e-9)) + 1)


def add_delays(x: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """Stack delayed copies: x float [n, D] → [n, D * len(delays)], block j = x shifted down by delays[j].

    Row t of block j holds x[t - delays[j]] (zeros before the start): the response at t to what was
    shown delays[j] volumes earlier.
    """
    n, d = x.shape
    out = np.zeros((n, d * len(delays)), dtype=x.dtype)
    for j, lag in enumerate(delays):
        lag = int(lag)
        if lag >= n:
            continue
        out[lag:, j * d : (j + 1) * d] = x[: n - lag] if lag > 0 else x
    return out


@dataclass(frozen=True)
class Design:
    """The stimulus on the scan clock.

    `per_tr`: float32 [n_volumes, D] (frames averaged per TR, centred; principal components when
    asked; the spaces side by side); `matrix`: float32 [n_volumes, D * K], K = FIR delays (basis
    "fir", delays the outer index) or 1 (basis "hrf": per_tr convolved with the HRF started
    `hrf_delay_s` late); `lags_s`: seconds of each FIR delay (empty for "hrf"); `spaces`: (name,
    width) of each feature space in per_tr's column order.
    """

    per_tr: np.ndarray
    matrix: np.ndarray
    lags_s: np.ndarray
    basis: str
    tr: float
    hrf_delay_s: float = 0.0
    spaces: tuple[tuple[str, int], ...] = ()

    @property
    def n_blocks(self) -> int:
        return self.matrix.shape[1] // self.per_tr.shape[1]

    @property
    def space_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.spaces)

    def band_columns(self) -> list[np.ndarray]:
        """The columns of `matrix` that belong to each space (every delay block): int arrays."""
        d = self.per_tr.shape[1]
        edges = np.cumsum([0] + [width for _, width in self.spaces])
        return [np.concatenate([np.arange(a, b) + block * d for block in range(self.n_blocks)])
                for a, b in zip(edges[:-1], edges[1:])]

    def only(self, name: str) -> Design:
        """This design restricted to one space."""
        cols = self.band_columns()[self.space_names.index(name)]
        edges = np.cumsum([0] + [width for _, width in self.spaces])
        i = self.space_names.index(name)
        per_tr = self.per_tr[:, edges[i]:edges[i + 1]]
        return Design(per_tr, self.matrix[:, cols], self.lags_s, self.basis, self.tr, self.hrf_delay_s,
                      ((name, per_tr.shape[1]),))

    def with_per_tr(self, per_tr: np.ndarray) -> Design:
        """The same basis and delays applied to other per-TR rows [n_volumes, D] (e.g. shifted)."""
        centred = (per_tr - per_tr.mean(0)).astype(np.float32)
        if self.basis == "fir":
            matrix = add_delays(centred, np.round(self.lags_s / self.tr).astype(int))
        else:
            matrix = convolve_kernel(centred, hrf_kernel(self.tr, self.hrf_delay_s))
        return Design(centred, matrix, self.lags_s, self.basis, self.tr, self.hrf_delay_s, self.spaces)

    def with_hrf_delay(self, delay_s: float) -> Design:
        """This design's stimulus through the HRF started `delay_s` late (basis "hrf")."""
        return Design(self.per_tr, self.matrix, np.zeros(0), "hrf", self.tr, float(delay_s), self.spaces).with_per_tr(self.per_tr)


def build_design(
    features: np.ndarray,
    times: np.ndarray,
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    basis: str = "hrf",
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    n_components: int | None = None,
    source: str = "stimulus",
    hrf_delay_s: float = 0.0,
) -> Design:
    """Frames → TR averages → (optionally) the top `n_components` principal components → delays.

    basis: "fir" (delays 0..max_delay_s, one block per TR) or "hrf" (the SPM HRF started
    `hrf_delay_s` late; `framegram.brain.pipeline` chooses that delay per participant).
    The PCA here uses the stimulus only (no BOLD), so fitting it on the whole film leaks nothing.
    """
    return build_space_design({source: (features, times)}, tr, n_volumes, offset_s, basis, max_delay_s,
                              n_components, hrf_delay_s)


def reduce_spaces(
    spaces: dict[str, tuple[np.ndarray, np.ndarray]], tr: float, n_volumes: int, offset_s: float = 0.0,
    n_components: int | None = None, standardise: bool | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each space averaged per TR and reduced to its top `n_components` principal components (all
    columns when it has no more): name -> (float32 [n_volumes, K_s], film times of the volumes [n_volumes]).
    The result is a set of spaces on the scan clock that `build_space_design` takes again to the same
    design (columns rescaled only, which the encoders' z-scoring undoes): participants scanned on one
    clock share it (`fit_dataset` reduces once, not per participant).
    standardise (default: when there are several spaces): z-score each column over the film before
    the PCA, so that columns in other units (the sound space's dB beside its octaves) count alike;
    a lone framegram keeps the PCA of its raw rows, as fits before there were spaces did."""
    standardise = len(spaces) > 1 if standardise is None else standardise
    out = {}
    film_times = np.arange(n_volumes) * tr - offset_s
    for name, (values, times) in spaces.items():
        per_tr = frames_to_tr(values, times, tr, n_volumes, offset_s, source=name)
        if standardise:
            std = per_tr.std(0)
            per_tr = (per_tr - per_tr.mean(0)) / np.where(std > 0, std, 1.0)
        if n_components and n_components < per_tr.shape[1]:
            centred = per_tr - per_tr.mean(0)
            u, s, _ = np.linalg.svd(centred, full_matrices=False)
            per_tr = u[:, :n_components] * s[:n_components]
        out[name] = (per_tr.astype(np.float32), film_times)
    return out


def build_space_design(
    spaces: dict[str, tuple[np.ndarray, np.ndarray]],
    tr: float,
    n_volumes: int,
    offset_s: float = 0.0,
    basis: str = "hrf",
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    n_components: int | None = None,
    hrf_delay_s: float = 0.0,
) -> Design:
    """Several feature spaces, name -> (values float [T_s, D_s], film times s [T_s]), each on its
    own clock: each averaged per TR and reduced to its top `n_components` principal components
    (`reduce_spaces`), then side by side in the order given."""
    reduced = reduce_spaces(spaces, tr, n_volumes, offset_s, n_components)
    blocks = [values for values, _ in reduced.values()]
    widths = [(name, values.shape[1]) for name, (values, _) in reduced.items()]
    per_tr = np.concatenate(blocks, axis=1)
    names = tuple(widths)
    if basis == "fir":
        lags = fir_delays(tr, max_delay_s) * tr
        return Design(per_tr, per_tr, lags, "fir", tr, 0.0, names).with_per_tr(per_tr)
    if basis == "hrf":
        return Design(per_tr, per_tr, np.zeros(0), "hrf", tr, float(hrf_delay_s), names).with_per_tr(per_tr)
    raise ValueError(f"basis must be 'fir' or 'hrf', got {basis!r}")
