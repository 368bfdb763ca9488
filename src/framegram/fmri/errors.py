"""Typed errors of reading and preparing fMRI data (BIDS runs, masks, stimulus timing); each names the
file or subject and the problem. `BrainError` is also the base of the brain pipeline's own errors."""

from __future__ import annotations

from framegram.errors import FramegramError, InputError


class BrainError(FramegramError):
    """Base class of the user-facing errors about fMRI data and the fits made from them."""


class NoBoldError(BrainError, InputError):
    """The BIDS root holds no BOLD run of the requested task."""


class TRMismatchError(BrainError, InputError):
    """The sidecar's RepetitionTime and the NIfTI header's time step disagree."""


class StimulusTooShortError(BrainError, InputError):
    """The stimulus framegram ends before the last volume of the run (after the start offset)."""


class RunTooShortError(BrainError, InputError):
    """The BOLD run ends before the stimulus does."""


class BadBoldError(BrainError, InputError):
    """The BOLD data hold values no fit can use (NaN or infinite)."""


class MissingMetadataError(BrainError, InputError):
    """A sidecar lacks a field BIDS requires (e.g. RepetitionTime)."""


class BadMetadataError(BrainError, InputError):
    """A sidecar field holds a value no fit can use (e.g. a RepetitionTime that is not a positive number)."""


class MaskError(BrainError, InputError):
    """A brain mask that no fit can use: empty or too small, unreadable, or on another grid than the BOLD."""


class DerivativesWarning(UserWarning):
    """A derivatives folder pybids does not index (no dataset_description.json): its files were
    matched to the runs by their BIDS names."""


class UnknownSubjectError(BrainError):
    """A requested participant has no BOLD run in the dataset."""

    def __init__(self, subject: str, available: list[str]):
        self.subject = subject
        self.available = available
        shown = ", ".join(available[:10]) + (" ..." if len(available) > 10 else "")
        super().__init__(f"unknown subject {subject!r}; the dataset has: {shown or 'none'}")
