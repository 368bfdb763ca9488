"""Generated background collections for bench/search_scale.py: per-second descriptors of videos that
look, to the index, like real footage it holds, at any number of hours, from a seed.

The model is measured on real framegrams (the search benchmark's 200 references, described by the
index's fingerprint), never on the queries:
  - shots: the reference seconds are cut where consecutive seconds' cosine falls below CUT_COSINE;
    shot lengths are drawn from the measured ones;
  - a shot's centre is a measured shot centre moved 25-50 % of the way toward another one (of any
    video), plus a Gaussian residual (0.3 of the measured centres' covariance): it lies where real
    footage lies without being a real shot (`python bench/scale_background.py` measures it: a
    reference second's best similarity to as many background seconds as the references hold is
    0.68 at the median, to the other references' seconds 0.63, to a Gaussian of the same mean and
    covariance 0.29: that puts its seconds far from every real one);
  - within a shot the seconds drift around the centre: AR(1) in time with the measured lag-1
    correlation, deviations from the measured within-shot covariance (its leading WITHIN_RANK
    directions, which hold most of it: a full 256 x 256 product per generated second would cost more
    than the index);
  - shared material: a pool of intros and one of credits (8-30 s), each used by many videos
    (INTRO_SHARE of the videos open with one, CREDITS_SHARE end with one), so that a query's seconds
    can meet the same sequence in hundreds of videos;
  - near-duplicates: DUPLICATE_SHARE of the videos are re-encodes of an earlier background video
    (its sequence, trimmed at random, with per-second noise of cosine about 0.95 to the original).
The vPDQ rows of bench/search_scale.py use `PDQBackgroundModel`, the same construction for 256-bit
PDQ hashes (`python bench/scale_background.py --vpdq` measures it the same way).
Video lengths are log-normal (median 20 min, 1 min to 3 h). Video k of a seed is generated from
`np.random.default_rng([seed, k])` alone, so any part of a collection can be made again, in any order.

Why this is hard for the index: its seconds are drawn from the distribution the real references
come from (same centre, same spread, same temporal persistence), so they crowd the neighbourhoods
real queries search; shared intros and duplicates put many near-identical sequences in the index,
where a flat nearest-neighbour vote and a coarse tier's short lists are most easily fooled. What it
lacks: the semantic structure of real collections (series of episodes, one scene filmed many
times); a generated second is also never exactly a real reference's, so a query cannot match the
background perfectly by chance the way a repost of the same film would (that case is the benchmark's
near-duplicate negatives' job, not the background's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

CUT_COSINE = 0.75
CENTRE_MIX = (0.25, 0.5)  #: how far a shot centre is moved toward another measured one
RESIDUAL = 0.3  #: Gaussian residual, relative to the measured centres' spread
LONG_SHOT = 8  #: seconds: shots from which the drift's correlation is measured
WITHIN_RANK = 32
INTRO_SHARE = 0.3
CREDITS_SHARE = 0.3
DUPLICATE_SHARE = 0.1
POOL = 64  #: intros and credits each
DUPLICATE_COSINE_NOISE = 0.3  #: noise scale relative to a second's norm: cosine about 0.95
PDQ_CUT_BITS = 64  #: consecutive vPDQ hashes further apart than this begin a new shot
PDQ_RESIDUAL_BITS = 16  #: random bits flipped in a generated shot's hash
PDQ_REENCODE_BITS = 12  #: bits a re-encode changes per hash


@dataclass(frozen=True)
class BackgroundModel:
    """What the generator draws from, measured on real per-second descriptors."""

    centres: np.ndarray  #: float64 [S, K] measured shot centres
    chol: np.ndarray  #: float64 [K, K]: Cholesky factor of the shot centres' covariance
    within: np.ndarray  #: float64 [R, K]: within-shot deviation directions, scaled by their std
    rho: float  #: lag-1 correlation of the within-shot deviations
    shot_lengths: np.ndarray  #: int [S] measured shot lengths, seconds

    @classmethod
    def fit(cls, videos: list[np.ndarray]) -> BackgroundModel:
        """videos: per-second descriptors [n, K] of real videos."""
        centres, deviations, pairs, lengths = [], [], [], []
        for x in videos:
            cos = (x[1:] * x[:-1]).sum(axis=1) / np.maximum(
                np.linalg.norm(x[1:], axis=1) * np.linalg.norm(x[:-1], axis=1), 1e-12)
            cuts = np.concatenate([[0], np.flatnonzero(cos < CUT_COSINE) + 1, [len(x)]])
            for a, b in zip(cuts[:-1], cuts[1:]):
                shot = x[a:b].astype(np.float64)
                lengths.append(b - a)
                centres.append(shot.mean(axis=0))
                dev = shot - shot.mean(axis=0)
                deviations.append(dev)
                if len(dev) >= LONG_SHOT:
                    pairs.append((dev[1:], dev[:-1]))
        centres = np.array(centres)
        deviations = np.concatenate(deviations)
        cov = np.cov(centres.T) + 1e-6 * np.eye(centres.shape[1])
        values, vectors = np.linalg.eigh(np.cov(deviations.T))
        top = np.argsort(values)[::-1][:WITHIN_RANK]
        within = (vectors[:, top] * np.sqrt(np.maximum(values[top], 0))).T
        now = np.concatenate([p[0] for p in pairs])
        before = np.concatenate([p[1] for p in pairs])
        # a shot's own mean takes out part of its drift: the measured correlation is a lower bound
        rho = float((now * before).sum() / max((before * before).sum(), 1e-12))
        return cls(centres, np.linalg.cholesky(cov), within, float(np.clip(rho, 0.0, 0.99)),
                   np.array(lengths))

    def sequence(self, rng: np.random.Generator, seconds: int) -> np.ndarray:
        """Shots of drifting seconds, float32 [seconds, K], unit rows."""
        draws = rng.choice(self.shot_lengths, size=2 * int(seconds / self.shot_lengths.mean()) + 8)
        ends = np.cumsum(draws)
        count = int(np.searchsorted(ends, seconds)) + 1  # shots until `seconds` is reached
        lengths = draws[:count].copy()
        lengths[-1] -= ends[count - 1] - seconds
        # a shot's centre: a measured one moved part of the way to another, plus a Gaussian residual
        # (never a measured shot itself, but on the manifold real footage occupies)
        a, b = (self.centres[rng.integers(len(self.centres), size=count)] for _ in range(2))
        mix = rng.uniform(*CENTRE_MIX, size=(count, 1))
        centres = (1 - mix) * a + mix * b + RESIDUAL * rng.standard_normal((count, a.shape[1])) @ self.chol.T
        shot_of = np.repeat(np.arange(count), lengths)
        # AR(1) in time (it runs on across cuts: the centres jump, the small drift need not restart)
        noise = rng.standard_normal((seconds, len(self.within)))
        drift = lfilter([np.sqrt(1 - self.rho**2)], [1.0, -self.rho], noise, axis=0)
        # float32 from here: the draws are the same, and the per-second work is half as slow
        x = drift.astype(np.float32) @ self.within.astype(np.float32)
        x += centres.astype(np.float32)[shot_of]
        return _unit(x)

    def reencode(self, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        """A near-duplicate of the seconds `x`: per-second noise of cosine about 0.95."""
        return _unit(x + DUPLICATE_COSINE_NOISE * rng.standard_normal(x.shape) / np.sqrt(x.shape[1]))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class PDQBackgroundModel:
    """The same kind of background for vPDQ: 256-bit PDQ hashes a second, measured on the references'
    own vPDQ hashes (bench/search.py's cache), never on the queries.

    - shots: cut where consecutive hashes differ in more than PDQ_CUT_BITS bits; lengths as measured;
    - a shot's hash: a measured shot's (its bitwise majority) with 25-50 % of the bits in which it
      differs from another measured shot taken from that one (the CENTRE_MIX of the descriptor model),
      then PDQ_RESIDUAL_BITS random bits flipped;
    - within a shot each bit leaves the shot's value with the measured share and stays changed with
      the measured lag-1 persistence (a two-state Markov chain per bit), so consecutive seconds are
      as alike as real ones;
    - a re-encode flips PDQ_REENCODE_BITS random bits a second (within HMA's tolerance of 31).
    """

    def __init__(self, centres: np.ndarray, shot_lengths: np.ndarray, off_share: float, stay: float):
        self.centres = centres  #: uint8 [S, 256] measured shots' majority bits
        self.shot_lengths = shot_lengths
        self.off_share = off_share  #: share of a second's bits that differ from its shot's
        self.stay = stay  #: probability that a differing bit still differs a second later

    @classmethod
    def fit(cls, videos: list[np.ndarray]) -> PDQBackgroundModel:
        """videos: vPDQ bits uint8 [n, 32] per real video, one row a second."""
        centres, lengths, off, stayed, was_off = [], [], [], 0, 0
        for packed in videos:
            bits = np.unpackbits(packed, axis=1)
            distance = (bits[1:] != bits[:-1]).sum(axis=1)
            cuts = np.concatenate([[0], np.flatnonzero(distance > PDQ_CUT_BITS) + 1, [len(bits)]])
            for a, b in zip(cuts[:-1], cuts[1:]):
                shot = bits[a:b]
                centre = (shot.mean(axis=0) > 0.5).astype(np.uint8)
                deviates = shot != centre
                centres.append(centre)
                lengths.append(b - a)
                off.append(deviates.mean())
                stayed += int((deviates[1:] & deviates[:-1]).sum())
                was_off += int(deviates[:-1].sum())
        return cls(np.array(centres), np.array(lengths), float(np.mean(off)), stayed / max(was_off, 1))

    def sequence(self, rng: np.random.Generator, seconds: int) -> np.ndarray:
        """Shots of drifting hashes, uint8 [seconds, 32] (packed bits)."""
        draws = rng.choice(self.shot_lengths, size=2 * int(seconds / self.shot_lengths.mean()) + 8)
        ends = np.cumsum(draws)
        count = int(np.searchsorted(ends, seconds)) + 1
        lengths = draws[:count].copy()
        lengths[-1] -= ends[count - 1] - seconds
        a, b = (self.centres[rng.integers(len(self.centres), size=count)] for _ in range(2))
        take = (a != b) & (rng.random(a.shape) < rng.uniform(*CENTRE_MIX, size=(count, 1)))
        centres = np.where(take, b, a)
        for row in centres:
            row[rng.choice(256, PDQ_RESIDUAL_BITS, replace=False)] ^= 1
        # per bit a two-state chain: off with stationary share `off_share`, staying off with `stay`
        enter = self.off_share * (1 - self.stay) / max(1 - self.off_share, 1e-9)
        u = rng.random((seconds, 256))
        off = np.empty((seconds, 256), bool)
        off[0] = u[0] < self.off_share
        for t in range(1, seconds):
            off[t] = np.where(off[t - 1], u[t] < self.stay, u[t] < enter)
        return np.packbits(centres[np.repeat(np.arange(count), lengths)] ^ off, axis=1)

    def reencode(self, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        bits = np.unpackbits(x, axis=1)
        flips = np.argsort(rng.random(bits.shape), axis=1)[:, :PDQ_REENCODE_BITS]
        np.put_along_axis(bits, flips, 1 - np.take_along_axis(bits, flips, axis=1), axis=1)
        return np.packbits(bits, axis=1)


class BackgroundCollection:
    """Video k of the collection of `seed`: `video(k)` -> its seconds ([n, K] descriptors, or [n, 32]
    packed PDQ bits with a `PDQBackgroundModel`)."""

    def __init__(self, model: BackgroundModel | PDQBackgroundModel, seed: int):
        self.model, self.seed = model, seed
        pool_rng = np.random.default_rng([seed, 1 << 30])
        self.intros = [model.sequence(pool_rng, int(pool_rng.integers(8, 31))) for _ in range(POOL)]
        self.credits = [model.sequence(pool_rng, int(pool_rng.integers(8, 31))) for _ in range(POOL)]

    def _plan(self, k: int) -> tuple[np.random.Generator, int, int | None, int | None]:
        """Video k's own generator after its plan is drawn: (rng, body seconds, intro, credits)."""
        rng = np.random.default_rng([self.seed, k])
        seconds = int(np.clip(rng.lognormal(np.log(1200), 0.8), 60, 3 * 3600))
        intro = int(rng.integers(POOL)) if rng.random() < INTRO_SHARE else None
        credits = int(rng.integers(POOL)) if rng.random() < CREDITS_SHARE else None
        return rng, seconds, intro, credits

    def _base_length(self, k: int) -> int:
        _, seconds, intro, credits = self._plan(k)
        return seconds + (len(self.intros[intro]) if intro is not None else 0) + (len(self.credits[credits]) if credits is not None else 0)

    def _base(self, k: int) -> np.ndarray:
        rng, seconds, intro, credits = self._plan(k)
        body = self.model.sequence(rng, seconds)
        return np.concatenate(([self.intros[intro]] if intro is not None else []) + [body]
                              + ([self.credits[credits]] if credits is not None else []))

    def _duplicate(self, k: int) -> tuple[np.random.Generator, int, int, int] | None:
        """(rng, source video, first, end) when video k re-encodes an earlier one, else None."""
        rng = np.random.default_rng([self.seed, k, 1])
        if k == 0 or rng.random() >= DUPLICATE_SHARE:
            return None
        source = int(rng.integers(max(0, k - 1000), k))
        n = self._base_length(source)
        return rng, source, int(rng.integers(0, max(1, n // 10))), n - int(rng.integers(0, max(1, n // 10)))

    def length(self, k: int) -> int:
        """Seconds of video k, without generating it."""
        duplicate = self._duplicate(k)
        return self._base_length(k) if duplicate is None else duplicate[3] - duplicate[2]

    def video(self, k: int) -> np.ndarray:
        """Video k's descriptors, float32 [length(k), K] unit rows."""
        duplicate = self._duplicate(k)
        if duplicate is None:
            return self._base(k)
        rng, source, a, b = duplicate
        return self.model.reencode(rng, self._base(source)[a:b])

    def count(self, seconds: float) -> int:
        """How many videos (0, 1, ...) make at least `seconds` seconds."""
        total, k = 0, 0
        while total < seconds:
            total += self.length(k)
            k += 1
        return k


def hardness(seed: int = 0) -> dict:
    """How close the background comes to real footage, measured at equal size: for every 50th second
    of the references, its best cosine similarity to (a) the other references' seconds, (b) as many
    background seconds, (c) as many seconds of a Gaussian with the shot centres' mean and covariance
    (the previous scale run's kind of background). Percentiles 10 / 50 / 90."""
    from search_corpus import build_search_corpus, default_corpus_folder

    from framegram.cache import framegram_for
    from framegram.search.basis import default_basis
    from framegram.search.fingerprint import reference_descriptors

    corpus = build_search_corpus(default_corpus_folder(), workers=2)
    basis = default_basis()
    real = [reference_descriptors(framegram_for(r.path)[0], basis).vectors for r in corpus.references]
    model = BackgroundModel.fit(real)
    everything = np.concatenate(real)
    owner = np.repeat(np.arange(len(real)), [len(x) for x in real])
    picked = np.arange(0, len(everything), 50)
    queries = everything[picked]
    to_real = queries @ everything.T
    to_real[owner[picked][:, None] == owner[None, :]] = -1  # other videos only
    collection = BackgroundCollection(model, seed)
    background = np.concatenate([collection.video(k) for k in range(collection.count(len(everything)))])[: len(everything)]
    rng = np.random.default_rng(seed)
    gaussian = _unit(model.centres.mean(axis=0) + rng.standard_normal((len(everything), everything.shape[1])) @ model.chol.T)
    return {name: np.percentile((queries @ other.T).max(axis=1) if name != "other references" else to_real.max(axis=1),
                                [10, 50, 90]).round(3).tolist()
            for name, other in (("other references", None), ("background", background), ("gaussian", gaussian))}


def pdq_hardness(seed: int = 0) -> dict:
    """The same check for the vPDQ background: for every 10th reference hash, the Hamming distance to
    its nearest (a) hash of another reference, (b) background hash, (c) uniformly random hash, among
    as many as the references hold; percentiles 10 / 50 / 90 (HMA calls <= 31 a match)."""
    import faiss
    import search as search_bench
    from search_corpus import build_search_corpus, default_corpus_folder

    corpus = build_search_corpus(default_corpus_folder(), workers=2)
    hashes = search_bench.vpdq_hashes(corpus, [r.path for r in corpus.references], workers=2)
    real = [hashes[str(r.path)].bits for r in corpus.references]
    everything = np.concatenate(real)
    owner = np.repeat(np.arange(len(real)), [len(x) for x in real])
    picked = np.arange(0, len(everything), 10)
    collection = BackgroundCollection(PDQBackgroundModel.fit(real), seed)
    background = np.concatenate([collection.video(k) for k in range(collection.count(len(everything)))])[: len(everything)]
    uniform = np.random.default_rng(seed).integers(0, 256, everything.shape, dtype=np.uint8)

    def nearest(base: np.ndarray, own: bool = False) -> np.ndarray:
        index = faiss.IndexBinaryFlat(256)
        index.add(base)
        distance, found = index.search(everything[picked], 64)
        if own:  # other videos only
            distance = np.where(owner[found] == owner[picked][:, None], 256, distance)
        return distance.min(axis=1)

    return {name: np.percentile(nearest(base, name == "other references"), [10, 50, 90]).tolist()
            for name, base in (("other references", everything), ("background", background), ("uniform", uniform))}


if __name__ == "__main__":
    import sys

    if "--vpdq" in sys.argv:
        for name, (p10, p50, p90) in pdq_hardness().items():
            print(f"Hamming distance of a reference vPDQ hash to the nearest {name} hash, equal size: "
                  f"{p10:.0f} / {p50:.0f} / {p90:.0f} bits (10th / 50th / 90th percentile)")
    else:
        for name, (p10, p50, p90) in hardness().items():
            print(f"best similarity of a reference second to {name}, equal size: {p10} / {p50} / {p90} (10th / 50th / 90th percentile)")
