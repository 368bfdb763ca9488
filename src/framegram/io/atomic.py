"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.

A writer killed outright (kill -9, power loss) cannot remove its temporary file, so the temporary
name records who wrote it: `.<target name>.<random>~<pid>~<host>~<suffix>.partial`, host being a
short hash of the host name (folders can be shared between machines). Every write removes the
temporary files in its folder whose writer on this host is no longer alive, and any that has not
been written to for STALE_AFTER_S (a writer on another host, a reused pid, an older name).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from framegram.errors import OutputError

#: seconds without a write after which any temporary file counts as left behind
STALE_AFTER_S = 24 * 3600

# a hash, not the name: host names can be long and hold characters a file name should not
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_PARTIAL = re.compile(r"\..+\.[a-z0-9_]+~(?P<pid>\d+)~(?P<host>[0-9a-f]{8})~.*\.partial", re.DOTALL)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success fsync it and rename it over `target`.

    The temporary name starts with '.' and ends with '.partial' so folder scans skip it; on
    any exception it is removed and `target` is left untouched. Temporary files that dead
    writers left in the folder are removed first (`remove_dead_partials`). Raises OutputError
    (nothing written) when `target` is a folder or its folder cannot be made or written to.
    `suffix` is added before '.partial' (e.g. '.png').
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(target, "is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_partials(target.parent)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f"~{os.getpid()}~{_HOST}~{suffix}.partial", dir=target.parent
        )
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


def remove_dead_partials(folder: str | Path) -> list[Path]:
    """Remove the temporary files of atomic writes in `folder` whose writer is gone; returns them.

    Gone: its pid on this host is not a live process, or the file has not been written to for
    STALE_AFTER_S. A live writer's file is kept, and so is a recent one from another host.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".partial")):
            continue
        match = _PARTIAL.fullmatch(entry.name)
        try:
            dead = match is not None and match["host"] == _HOST and not _alive(int(match["pid"]))
            if dead or now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove (a shared folder)
            continue
    return removed


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: the age rule alone applies
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    except (OverflowError, OSError):
        return False  # not a pid this system can have
    return True


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
