"""The parcellation a connectome is measured on: a labels image (dseg) in the runs' space and,
optionally, its labels table (index, name[, network]). Parcel centres in mm give edge distances
(QC-FC distance dependence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framegram.connectome.errors import AtlasError


@dataclass(frozen=True)
class Atlas:
    path: Path
    name: str                     #: the atlas- entity of its file name, else the file's stem
    indices: np.ndarray           #: int [P] label values present in the image, ascending
    names: tuple[str, ...]        #: [P]
    networks: tuple[str, ...]     #: [P] ("" when the table has no network column)
    centres_mm: np.ndarray        #: float [P, 3] each parcel's centre of mass in world mm
    digest: str                   #: sha256 of the image file: series from other atlases are never mixed

    def distances(self) -> np.ndarray:
        """Euclidean distance between parcel centres, mm: float [P, P]."""
        d = self.centres_mm[:, None, :] - self.centres_mm[None, :, :]
        return np.sqrt((d**2).sum(-1))


def load_atlas(path: str | Path, labels: str | Path | None = None) -> Atlas:
    """Read a labels image (integer values, 0 = background) and its table (`labels`, else a .tsv beside
    it with the same stem). AtlasError for an unreadable, non-integer, 4-D or empty image, or a table
    that does not name the image's labels."""
    import nibabel as nib
    import pandas as pd

    from framegram.io.hashing import sha256_file

    path = Path(path)
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises many kinds for a damaged or foreign file
        raise AtlasError(path, f"not a readable NIfTI labels image ({exc.__class__.__name__})") from None
    if data.ndim != 3:
        raise AtlasError(path, f"a labels image must be 3-D, this one has shape {data.shape}")
    if not np.allclose(data, np.round(data)):
        raise AtlasError(path, "holds non-integer values: a labels (dseg) image is needed, not a probabilistic atlas")
    values = np.round(data).astype(int)
    indices = np.unique(values[values > 0])
    if len(indices) < 3:
        raise AtlasError(path, f"has {len(indices)} labels; a connectome needs at least 3 parcels")
    names = tuple(f"parcel_{i}" for i in indices)
    networks = ("",) * len(indices)
    table = Path(labels) if labels else path.with_name(path.name.split(".nii")[0] + ".tsv")
    if labels and not table.is_file():
        raise AtlasError(table, "no such labels table")
    if table.is_file():
        try:
            frame = pd.read_csv(table, sep="\t")
        except (OSError, ValueError) as exc:
            raise AtlasError(table, f"unreadable labels table ({exc})") from None
        if "index" not in frame or "name" not in frame:
            raise AtlasError(table, f"a labels table needs columns index and name (it has {', '.join(frame.columns)})")
        by_index = frame.set_index("index")
        absent = [int(i) for i in indices if i not in by_index.index]
        if absent:
            raise AtlasError(table, f"does not name label {absent[0]} of {path.name}")
        names = tuple(str(by_index.loc[i, "name"]) for i in indices)
        if "network" in frame:
            networks = tuple(str(by_index.loc[i, "network"]) for i in indices)
    ijk = [np.argwhere(values == i).mean(0) for i in indices]
    centres = nib.affines.apply_affine(img.affine, np.array(ijk))
    stem = path.name.split(".nii")[0]
    entity = [p.split("-", 1)[1] for p in stem.split("_") if p.startswith("atlas-")]
    return Atlas(path, entity[0] if entity else stem, indices, names, networks, centres, sha256_file(path))
