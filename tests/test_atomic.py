"""Atomic writes: temporary files that killed writers left behind are removed by the next write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from framegram.io.atomic import STALE_AFTER_S, atomic_write_bytes

WRITER = """
import sys, time
from framegram.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    print(tmp, flush=True)
    time.sleep(120)
"""


def start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A real writer process stopped half-way through an atomic write of `target`, and its temporary file."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    partial = Path(proc.stdout.readline().strip())
    assert partial.is_file() and partial.parent == target.parent
    return proc, partial


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no cleanup runs
    proc.wait()
    proc.stdout.close()


def test_next_write_removes_what_killed_writers_left_and_keeps_live_ones(tmp_path):
    live, live_partial = start_writer(tmp_path / "b.framegram.npz")
    killed, leftover = start_writer(tmp_path / "a.framegram.npz")
    kill(killed)
    try:
        assert leftover.exists()  # a killed writer leaves its temporary file ...
        atomic_write_bytes(tmp_path / "c.json", b"{}")
        assert not leftover.exists()  # ... which the next write into the folder removes
        assert live_partial.exists()  # while a writer still at work keeps its own
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".partial")) == ["c.json"]
    finally:
        kill(live)


def test_another_hosts_partial_is_kept_unless_very_old(tmp_path):
    """A folder can be shared between machines: a pid there says nothing about a process here."""
    killed, leftover = start_writer(tmp_path / "a.framegram.npz")
    kill(killed)
    elsewhere = leftover.with_name(re.sub(r"~(\d+)~[0-9a-f]+~", r"~\1~00000000~", leftover.name))
    assert elsewhere != leftover
    leftover.rename(elsewhere)
    atomic_write_bytes(tmp_path / "c.json", b"{}")
    assert elsewhere.exists()
    old = time.time() - STALE_AFTER_S - 60
    os.utime(elsewhere, (old, old))
    atomic_write_bytes(tmp_path / "c.json", b"{}")
    assert not elsewhere.exists()
