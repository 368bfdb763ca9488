"""Typed errors of the denoising and classification pipeline; each names the file and the problem,
and the CLI prints it as one line."""

from __future__ import annotations

from framegram.errors import FramegramError, InputError


class ConnectomeError(FramegramError):
    """Base class of the pipeline's user-facing errors."""


class NoRunsError(ConnectomeError, InputError):
    """The derivatives folder holds no preprocessed BOLD run of the task and space asked for."""


class ConfoundsError(ConnectomeError, InputError):
    """A run's confounds file is missing, unreadable, or lacks columns the strategy needs."""


class ScrubbedTooShortError(ConnectomeError, InputError):
    """Too few volumes are left after scrubbing for a connectivity estimate."""


class AtlasError(ConnectomeError, InputError):
    """The parcellation image or its labels table cannot be used (unreadable, empty, another grid)."""


class ParcellationMismatchError(ConnectomeError, InputError):
    """Participants' time series come from different parcellations (or strategies) and cannot be compared."""


class ParticipantsError(ConnectomeError, InputError):
    """The participants table lacks a column, a participant, or enough of each group or site."""
