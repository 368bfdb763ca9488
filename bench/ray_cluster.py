"""A two-node Ray cluster on this machine, for bench/scale_out.py and the Ray engine's tests.

`ray start --head` and `ray start --address` with one CPU each and a private temp folder; on exit
only the processes of that cluster are killed (`ray stop` would stop every cluster of the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TwoNodeCluster:
    address: str  #: host:port for `--address`
    env: dict[str, str]  #: the environment its drivers need (Ray's token authentication)
    startup_s: float  #: seconds the two `ray start` took


def processes(marker: str, open_files: bool = False) -> list[int]:
    """Processes of this machine whose command line (Ray sets an actor's to its class), or with
    `open_files` one of whose open files, holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            hit = marker in (proc / "cmdline").read_bytes().decode(errors="replace")
            hit = hit or open_files and any(marker in os.readlink(fd) for fd in (proc / "fd").iterdir())
        except OSError:
            continue
        if hit:
            found.append(int(proc.name))
    return found


@contextlib.contextmanager
def two_node_cluster(timeout_s: float = 60.0) -> Iterator[TwoNodeCluster]:
    """Start the two nodes, wait until Ray reports both (RuntimeError after `timeout_s`), yield."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp = Path(tempfile.mkdtemp(prefix="fgr-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = 20000 + os.getpid() % 20000
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # the head makes a token (~/.ray/auth_token); joiners must use it
    node = ["--num-cpus", "1", "--disable-usage-stats", "--temp-dir", str(temp), "--object-store-memory", str(100 * 2**20)]
    try:
        started = time.perf_counter()
        subprocess.run([ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false", *node],
                       check=True, capture_output=True, timeout=120, env=env)
        subprocess.run([ray_bin, "start", "--address", address, *node], check=True, capture_output=True, timeout=120, env=env)
        startup_s = time.perf_counter() - started
        status = ""
        while status.count(" node_") < 2:  # the autoscaler's view comes a little after `ray start`
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"Ray does not report two nodes:\n{status}")
            status = subprocess.run([ray_bin, "status", "--address", address], capture_output=True, text=True,
                                    timeout=60, env=env).stdout
            time.sleep(0.5)
        yield TwoNodeCluster(address, env, startup_s)
    finally:
        for pid in processes(str(temp), open_files=True):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
