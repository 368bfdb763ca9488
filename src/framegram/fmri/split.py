"""Train/test split of a run: contiguous in time, training first."""

from __future__ import annotations

import numpy as np


def split(n: int, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """First `train_fraction` of the volumes to train, the rest held out (contiguous)."""
    n_train = int(round(train_fraction * n))
    if not 10 <= n_train <= n - 10:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} volumes to train")
    return np.arange(n_train), np.arange(n_train, n)
