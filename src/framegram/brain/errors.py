"""Typed errors of the brain pipeline's own files; the errors about the data it reads are in
`framegram.fmri.errors`."""

from __future__ import annotations

from framegram.errors import InputError
from framegram.fmri.errors import BrainError


class FitFolderError(BrainError, InputError):
    """A file of a fit folder (`framegram brain fit --out`) is missing or damaged."""
