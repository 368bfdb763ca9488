"""Training material for learned fingerprints: whole-video distorted copies of source videos.

Each source video gets `copies_per_source` copies, each a different distortion of the search
benchmark's set (`framegram.datasets.distort.distortions`, those in COPY_DISTORTIONS) applied in pixel space by
FFmpeg to the whole video. A copy's frame at time t shows the source at `t x speed` (speed 1.25 for
"speed-1.25", else 1), so any window of the copy's framegram pairs with a known window of the
source's: the positives of contrastive training (`framegram.search.contrastive`).

The folder records its settings (a folder built with others is refused), renders in worker
processes, writes every file atomically and `manifest.json` last: an interrupted build resumes.

    copies = build_copy_pairs(sources, folder)       # rerun to resume
    copies.pairs[0].copy, copies.pairs[0].speed
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from framegram.errors import InputError
from framegram.io.atomic import atomic_write_bytes
from framegram.io.settings import claim_folder
from framegram.progress import extraction_progress
from framegram.datasets.distort import distortions
from framegram.datasets.jobs import declared_duration, render_pool, render_query_job, run_jobs

COPY_PAIRS_VERSION = 1
#: the distortions copies are drawn from: the search benchmark's first 15 ("none" left out), named so
#: that distortions added to the benchmark later (blend-40, crop-half) do not change what a version-1
#: folder holds, nor which copies a learned fingerprint trains on
COPY_DISTORTIONS = (
    "low-bitrate", "downscale-320", "crop-70", "letterbox", "brightness-contrast", "grayscale", "blur", "noise",
    "logo", "text", "hflip", "fps-15", "speed-1.25", "picture-in-picture", "combo-3",
)
MANIFEST = "manifest.json"
#: seconds left off a source's end, so FFmpeg never cuts past its last frame
END_MARGIN = 0.1


class CopyPairsError(InputError):
    """A copy-pairs folder that cannot be used: built with other settings, or damaged."""


@dataclass(frozen=True)
class CopyPair:
    """A distorted copy of a whole source video: copy time t shows source time t x speed."""

    source: Path
    copy: Path
    distortion: str
    speed: float


@dataclass(frozen=True)
class CopyPairs:
    folder: Path
    pairs: list[CopyPair]
    settings: dict

    @property
    def sources(self) -> list[Path]:
        return list(dict.fromkeys(p.source for p in self.pairs))


def build_copy_pairs(
    sources: list[Path], folder: Path, copies_per_source: int = 6, seed: int = 0, workers: int = 2,
    show_progress: bool = True,
) -> CopyPairs:
    """Render `copies_per_source` distorted copies of each source into `folder` (or resume).

    The distortions of each source are drawn without replacement from a generator seeded with
    (seed, source index); each distortion is used about equally often over many sources.
    """
    folder = Path(folder)
    menu = {name: d for name, d in distortions().items() if name in COPY_DISTORTIONS}
    if not 1 <= copies_per_source <= len(menu):
        raise ValueError(f"copies_per_source must be 1..{len(menu)}, got {copies_per_source}")
    sources = [Path(s) for s in sources]
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"version": COPY_PAIRS_VERSION, "sources": [s.name for s in sources],
                "copies_per_source": copies_per_source, "seed": seed}
    differing = claim_folder(folder, settings)
    if differing:
        raise CopyPairsError(folder, f"holds copies built with other settings ({', '.join(differing)}); use another folder")
    if (folder / MANIFEST).is_file():
        return load_copy_pairs(folder)

    jobs = []
    for index, source in enumerate(sources):
        if not source.is_file():
            raise InputError(source, "source video not found")
        rng = np.random.default_rng([seed, index])
        chosen = rng.choice(sorted(menu), size=copies_per_source, replace=False)
        span = declared_duration(source) - END_MARGIN
        for name in sorted(chosen):
            jobs.append({"source": source, "start": 0.0, "span": span, "distortion": name,
                         "out": folder / "copies" / f"{source.stem}--{name}.mp4"})
    (folder / "copies").mkdir(exist_ok=True)
    with render_pool(workers) as pool, extraction_progress(show_progress) as bar:
        run_jobs(pool, bar, "distorted copies", render_query_job, jobs)
    pairs = [CopyPair(j["source"], j["out"], j["distortion"], menu[j["distortion"]].speed) for j in jobs]
    manifest = {"settings": settings, "pairs": [{**asdict(p), "source": str(p.source),
                                                 "copy": str(p.copy.relative_to(folder))} for p in pairs]}
    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return CopyPairs(folder, pairs, settings)


def load_copy_pairs(folder: Path) -> CopyPairs:
    """The copies a finished `build_copy_pairs` wrote into `folder`."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        pairs = [CopyPair(Path(p["source"]), folder / p["copy"], p["distortion"], float(p["speed"]))
                 for p in manifest["pairs"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CopyPairsError(folder, f"no readable {MANIFEST} ({e}); build the copies again") from None
    missing = [p.copy for p in pairs if not p.copy.is_file()] + [p.source for p in pairs if not p.source.is_file()]
    if missing:
        raise CopyPairsError(folder, f"{len(missing)} video(s) of the manifest are missing, e.g. {missing[0]}")
    return CopyPairs(folder, pairs, manifest["settings"])
