"""What the signal models train on: sequences of visual features and a target on one clock.

A `SignalSet` holds one `SignalSequence` per participant's run (fMRI) or per clip (audio): features
float32 [T, F] and target float32 [T, A] on the target's time grid (one row per volume or per
spectrogram frame), which steps may be used for training, and which participant it belongs to.
Builders (`framegram.vae.fmri`, `framegram.vae.audio`) z-score both sides with training statistics
and keep the maps back to the original units (`LinearMap`).

Training draws windows of `window` steps; the first `burn_in` steps of a window that does not start
at the sequence's start only warm the LSTM up and carry no loss. Prediction runs over whole sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from framegram.errors import FramegramError, InputError


class SignalDataError(FramegramError):
    """A signal set that cannot be trained on or predicted from."""


class TimeGridMismatchError(InputError):
    """Features and target are not on the same time grid (or a run's TR is not the model's)."""


class UnknownParticipantError(FramegramError):
    """A participant the model was not trained on."""


@dataclass(frozen=True)
class LinearMap:
    """x [T, D] -> ((x - mean) @ components.T - shift) / scale  [T, K], and back (`inverse`).

    components [K, D] (orthonormal rows for a PCA, the identity for a plain z-score)."""

    mean: np.ndarray
    components: np.ndarray
    shift: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (((np.asarray(x, np.float32) - self.mean) @ self.components.T - self.shift) / self.scale).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return ((np.asarray(y, np.float32) * self.scale + self.shift) @ self.components + self.mean).astype(np.float32)

    @property
    def dims(self) -> int:
        return len(self.components)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_{k}": np.asarray(getattr(self, k), np.float32) for k in ("mean", "components", "shift", "scale")}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> LinearMap:
        return cls(*(np.asarray(arrays[f"{prefix}_{k}"], np.float32) for k in ("mean", "components", "shift", "scale")))


def fit_pca_map(rows: np.ndarray, n_components: int | None, seed: int = 0, centred: bool = False) -> LinearMap:
    """Principal components of rows [N, D] (None: no reduction), each z-scored over `rows`.

    centred: the columns of `rows` are already centred (e.g. BOLD z-scored per voxel); the mean is
    taken as zero and the randomized SVD runs on `rows` itself, so a large stack (GBs of voxels)
    is never copied to centre it."""
    from sklearn.decomposition import PCA
    from sklearn.utils.extmath import randomized_svd

    rows = np.asarray(rows, np.float32)
    mean = np.zeros(rows.shape[1], np.float32) if centred else rows.mean(0)
    if n_components is None:
        components = np.eye(rows.shape[1], dtype=np.float32)
    else:
        k = min(n_components, *rows.shape)
        if centred:
            components = randomized_svd(rows, k, n_iter=4, random_state=seed)[2].astype(np.float32)
        else:
            pca = PCA(k, svd_solver="randomized" if k < min(rows.shape) // 2 else "full", random_state=seed)
            components = pca.fit(rows - mean).components_.astype(np.float32)
    projected = (rows if centred else rows - mean) @ components.T
    std = projected.std(0)
    return LinearMap(mean, components, projected.mean(0), np.where(std > 1e-8, std, 1.0).astype(np.float32))


@dataclass
class SignalSequence:
    """One run or clip: features float32 [T, F], target float32 [T, A], train bool [T] (steps whose
    target may be used for training), participant (index into the set's participants; -1: none)."""

    name: str
    features: np.ndarray
    target: np.ndarray
    train: np.ndarray
    participant: int = -1

    def __post_init__(self):
        if len(self.features) != len(self.target):
            raise TimeGridMismatchError(
                self.name, f"{len(self.features)} feature rows but {len(self.target)} target rows: "
                "features and target must be on the same time grid (resample the features to the target's clock)")
        if len(self.train) != len(self.target):
            raise SignalDataError(f"{self.name}: train mask of {len(self.train)} steps for {len(self.target)}")


@dataclass
class SignalSet:
    """kind ("fmri" or "audio"); sequences; participants (labels, index = participant id; empty:
    no participants); step_seconds (the time grid); features / targets: the maps from the original
    units (framegram rows, voxels or mel bands) to the model's z-scored inputs and outputs; info:
    plain facts for the run's settings; arrays: what else a prediction needs to be written in the
    original space (e.g. the fMRI mask and affine), saved with the model."""

    kind: str
    sequences: list[SignalSequence]
    participants: tuple[str, ...]
    step_seconds: float
    features: LinearMap
    targets: LinearMap
    info: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if not self.sequences:
            raise SignalDataError(f"no sequences in the {self.kind} set")
        dims = {(s.features.shape[1], s.target.shape[1]) for s in self.sequences}
        if len(dims) != 1:
            raise SignalDataError(f"sequences of the {self.kind} set differ in feature or target size: {sorted(dims)}")

    @property
    def feature_dim(self) -> int:
        return self.sequences[0].features.shape[1]

    @property
    def target_dim(self) -> int:
        return self.sequences[0].target.shape[1]

    def participant_index(self, label: str) -> int:
        if label not in self.participants:
            raise UnknownParticipantError(f"participant {label!r} was not in training; known: {', '.join(self.participants) or 'none'}")
        return self.participants.index(label)


def sample_windows(data: SignalSet, batch_size: int, window: int, burn_in: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch: features [B, W, F], target [B, W, A], participant long [B], loss weight [B, W].

    Each window lies inside one sequence and covers at least one training step after its burn-in;
    the weight is 1 on training steps past the burn-in (from the start when the window starts the
    sequence). Sequences shorter than `window` give a window of their whole length, padded with
    zero weight."""
    candidates = [i for i, s in enumerate(data.sequences) if s.train.any()]
    if not candidates:
        raise SignalDataError(f"the {data.kind} set has no training steps")
    feats, targets, people, weights = [], [], [], []
    for _ in range(batch_size):
        seq = data.sequences[candidates[int(torch.randint(len(candidates), (1,), generator=generator))]]
        n = len(seq.target)
        last_train = int(np.flatnonzero(seq.train)[-1])
        high = max(min(n - window, last_train), 0)
        start = int(torch.randint(high + 1, (1,), generator=generator))
        stop = min(start + window, n)
        weight = seq.train[start:stop].astype(np.float32)
        if start > 0:
            weight[:burn_in] = 0.0
        pad = window - (stop - start)
        feats.append(np.pad(seq.features[start:stop], ((0, pad), (0, 0))))
        targets.append(np.pad(seq.target[start:stop], ((0, pad), (0, 0))))
        weights.append(np.pad(weight, (0, pad)))
        people.append(max(seq.participant, 0))
    return (torch.from_numpy(np.stack(feats)), torch.from_numpy(np.stack(targets)),
            torch.tensor(people, dtype=torch.long), torch.from_numpy(np.stack(weights)))
