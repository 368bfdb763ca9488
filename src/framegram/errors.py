"""Typed exceptions for user-facing failures.

Every error a user can cause (bad path, unreadable video, wrong framegram file) is a
`FramegramError`; the CLI prints its message as one line, the API lets it propagate.
Each message names the file and the problem.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

#: what numpy raises for an .npz file that is garbled, truncated, or lacks or mistypes an array
NPZ_READ_ERRORS = (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error)


class FramegramError(Exception):
    """Base class of all user-facing framegram errors."""


class InputError(FramegramError):
    """A problem with one input file. `path` names it; `reason` says what is wrong."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoNotFoundError(InputError):
    """The path does not exist."""


class NotAVideoError(InputError):
    """FFmpeg cannot read the file as a media container (text, empty file, unknown format)."""


class NoVideoStreamError(InputError):
    """The container has no video stream (an audio-only file, for example)."""


class CorruptVideoError(InputError):
    """The container opens but its video stream is truncated or cannot be decoded."""


class EmptyVideoError(InputError):
    """The video stream decodes to zero frames."""


class FramegramFileError(InputError):
    """A framegram file is missing, not a framegram, or damaged."""


class EncoderMismatchError(InputError):
    """A framegram was made with another encoder than the one the caller requires."""


class SchemaVersionError(InputError):
    """A framegram file was written by a newer framegram with a schema this version cannot read."""


class OutputError(InputError):
    """A file cannot be written where the user asked: a folder is in the way, the folder above is a
    file or cannot be written to, or the format the name asks for is not supported."""


class TooShortError(InputError):
    """The video or framegram has too few frames for what was asked."""


class UnknownEncoderError(FramegramError):
    """No encoder is registered under the requested name."""
