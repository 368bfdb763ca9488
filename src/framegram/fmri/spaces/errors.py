"""Errors of the stimulus feature spaces; each names the space or the file."""

from __future__ import annotations

from framegram.errors import FramegramError, InputError


class UnknownSpaceError(FramegramError):
    """A feature space name that is not one of `SPACE_NAMES`; the message lists the known ones."""

    def __init__(self, name: str, known: tuple[str, ...]):
        self.name = name
        self.known = known
        super().__init__(f"unknown feature space {name!r}; known spaces: {', '.join(known)}")


class NoAudioError(InputError):
    """The sound space was asked of a file without an audio stream (`path` names it)."""
