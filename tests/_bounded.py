"""``python -m metric_reader`` run as a user runs it, but bounded: a wall-clock timeout and
an address-space limit, so that an input which costs unbounded time or memory fails its
test at once instead of hanging the suite or eating the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1024 * 1024 * 1024
"""Bytes of address space the command may map: several times what it needs, far less
than what the inputs tested here took before they were bounded."""


def _limit_memory() -> None:
    # In the child, between fork and exec: only a system call, nothing that could wait on a
    # lock another thread of the parent held.
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(
    *args: str, env: Mapping[str, str], timeout: float = 60.0, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """``python -m metric_reader ARGS`` with ``env`` (PATH and HOME added, HTTP endpoints
    off), at most ``timeout`` seconds (``subprocess.TimeoutExpired`` past it) and
    ``MEMORY_LIMIT`` bytes."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LISTEN_ADDRESS": "off",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
    )
