"""Opening the files a configuration names (``CONFIG_FILE``, rule files, rule-test files,
TLS and credential files): regular files only, and those read whole are bounded in size.

A glob can match a named pipe, whose open waits for a writer forever, and a symlink can
point at ``/dev/zero``, whose read never ends: either would hang ``check`` or the service,
or read until ``MemoryError``. What a path names is looked at before anything is read, and
again once it is open (it may have been swapped in between): the open itself never waits.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The most a configuration, rule or rule-test file may hold: far more than any real one
(a large rule file is a few hundred KiB), far less than what would exhaust memory once
parsed (a YAML node costs a few hundred bytes)."""

_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class RefusedFile(OSError):
    """A path refused before reading: not a regular file, or too large. Its text is the
    reason alone, as ``strerror`` is for the errors of the system."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EINVAL, reason)

    def __str__(self) -> str:
        return str(self.strerror)


def _check(status: os.stat_result) -> None:
    if stat.S_ISREG(status.st_mode):
        return
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    kind = _KINDS.get(stat.S_IFMT(status.st_mode))
    raise RefusedFile(f"{kind}, not a regular file" if kind else "not a regular file")


def open_regular_file(path: Path | str) -> BinaryIO:
    """``path`` opened for reading in binary; ``OSError`` (``RefusedFile`` when it names
    anything but a regular file, or a symlink to one)."""
    _check(os.stat(path))
    # O_NONBLOCK: a pipe put there since the look above is opened at once, then refused.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    file = os.fdopen(fd, "rb")
    try:
        _check(os.fstat(fd))
    except OSError:
        file.close()
        raise
    return file


def read_regular_file(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``; ``OSError`` (``RefusedFile`` when it is
    not a regular file or holds more than ``limit`` bytes)."""
    with open_regular_file(path) as file:
        if os.fstat(file.fileno()).st_size <= limit:
            data = file.read(limit + 1)  # it may have grown since
            if len(data) <= limit:
                return data
    raise RefusedFile(f"larger than {_size(limit)}, the most a configuration or rule file holds")


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"
