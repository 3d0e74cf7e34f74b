"""One service per ``STATE_FILE``: an OS lock on ``<STATE_FILE>.lock`` for the life of the process.

Two services writing one state file would both act and overwrite each other's state, so the
second refuses to start. ``check`` and a dry run never take the lock: they write nothing.
``holder`` tells whether it is held without taking it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import struct
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .._config import ConfigError


def lock_path(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".lock")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the lock, as far as is known."""

    pid: int | None
    host: str | None = None
    since: str | None = None

    def __str__(self) -> str:
        text = "another process" if self.pid is None else f"pid {self.pid}"
        if self.host:
            text += f" on host {self.host}"
        if self.since:
            text += f", since {self.since}"
        return text


def _recorded(path: Path) -> Holder:
    """What the holder wrote into the lock file (it may not have written it yet)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Holder(None)
    if not isinstance(doc, dict):
        return Holder(None)
    pid, host, since = doc.get("pid"), doc.get("host"), doc.get("since")
    return Holder(
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host if isinstance(host, str) else None,
        since if isinstance(since, str) else None,
    )


class StateFileInUse(ConfigError):
    def __init__(self, state_file: Path, holder: Holder) -> None:
        super().__init__(
            f"STATE_FILE={str(state_file)!r} is in use by another metric-reader ({holder}): "
            "stop that one first, or give each instance its own STATE_FILE"
        )
        self.holder = holder


class StateFileLock:
    """The lock held by the service that writes ``state_file``; ``release`` (or the end of
    the process) lets it go.

    A POSIX record lock (``lockf``) on a sidecar file, not on the state file itself: that
    one is replaced by a rename at every save, and a lock on the old file would not protect
    the new one. The kernel drops the lock when its holder ends, however it ends (SIGKILL,
    OOM kill, power cut on a local disk), so a crash never leaves a stale lock to clean up;
    and unlike ``flock`` it is not inherited by a plugin's child processes, which could
    otherwise keep it after the service died. It also works on NFS (through the NFS lock
    manager). The sidecar file is never deleted: deleting a lock file while others may open
    it is a race; its content (pid, host, start time of the holder) only serves the messages.
    """

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.path = lock_path(state_file)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``StateFileInUse`` (exit 2), or ``ConfigError`` when the
        lock file cannot be opened."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"STATE_FILE={str(self.state_file)!r}: cannot open its lock file {self.path}: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise StateFileInUse(self.state_file, _recorded(self.path)) from None
            raise ConfigError(
                f"STATE_FILE={str(self.state_file)!r}: cannot lock {self.path}: "
                f"{exc.strerror or exc}"
            ) from None
        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> StateFileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# struct flock on 64-bit Linux: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid.
_FLOCK = "hhqqi4x"


def holder(state_file: Path) -> Holder | None:
    """Who holds the lock of ``state_file`` (None: nobody), found without taking it (with
    ``F_GETLK``) and without creating or changing anything. Only on 64-bit Linux; elsewhere
    None. Never call it in the process that holds the lock: closing any descriptor of the
    lock file drops a POSIX lock (it is for ``check``, a process of its own)."""
    path = lock_path(state_file)
    if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        with contextlib.suppress(OSError):
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
            l_type, _, _, _, pid = struct.unpack(_FLOCK, answer)
            if l_type != fcntl.F_UNLCK:
                recorded = _recorded(path)
                # pid 0: the holder is in another pid namespace; its own record says more.
                return Holder(pid or recorded.pid, recorded.host, recorded.since)
        return None
    finally:
        os.close(fd)
