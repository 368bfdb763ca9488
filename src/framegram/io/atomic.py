"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from framegram.errors import OutputError


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success fsync it and rename it over `target`.

    The temporary name starts with '.' and ends with '.partial' so folder scans skip it; on
    any exception it is removed and `target` is left untouched. Raises OutputError (nothing
    written) when `target` is a folder or its folder cannot be made or written to. `suffix` is appended before
    '.partial' for writers that infer the format from the extension (e.g. '.png').
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(target, "is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f"{suffix}.partial", dir=target.parent)
    except OSError as exc:  # the folder cannot be made or written to: a user error, before anything is written
        raise OutputError(target, f"cannot write here ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform, harmless to skip there.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
