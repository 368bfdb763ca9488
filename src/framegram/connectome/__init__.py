"""Noise-aware fMRI: denoising fMRIPrep outputs by named strategies, the denoising benchmark's
metrics, and classifying participants from connectivity and topological features.

    from framegram.connectome import find_preprocessed_runs, load_atlas, denoise_runs, load_series, classify
    runs = find_preprocessed_runs("derivatives/fmriprep")
    denoise_runs(runs, load_atlas("atlas_dseg.nii.gz"), ["none", "scrubbing.5+gsr"], "denoised/")
    series = load_series("denoised/", "scrubbing.5+gsr")      # [T, P] per participant

Pieces (one job each): `runs` (the fMRIPrep runs and participants.tsv), `atlas` (the parcellation),
`strategies` (nilearn's confound presets by name), `denoise` (parcel series per strategy, TSV +
JSON), `quality` (QC-FC, distance dependence, tDOF, truth recovery), `features` (connectivity and
persistent-homology transformers), `classify` (leave-site-out nested classification, permutation
p, the motion-only control), `pipeline` (the CLI's steps), `report` (the HTML report), `errors`.
"""

from framegram.connectome.atlas import Atlas, load_atlas
from framegram.connectome.classify import ClassificationResult, classify, motion_features
from framegram.connectome.denoise import SeriesSet, denoise_runs, load_series
from framegram.connectome.runs import PreprocRun, find_preprocessed_runs, load_participants
from framegram.connectome.strategies import STRATEGIES

__all__ = ["Atlas", "ClassificationResult", "PreprocRun", "STRATEGIES", "SeriesSet", "classify", "denoise_runs",
           "find_preprocessed_runs", "load_atlas", "load_participants", "load_series", "motion_features"]
