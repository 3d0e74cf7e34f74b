"""Bundled plugin ``file_action``: create a file of ``FILE_ACTION_SIZE`` bytes on each breach.

Settings, from the rule file's ``[plugins.file_action]`` table or from the environment (read
at every call, so a change needs no reload); a key given in the table takes precedence over
its environment variable:

- ``dir`` or ``FILE_ACTION_DIR``: where the files go, created if missing (default
  ``/tmp/metric-files``); a relative path is taken from the service's working directory.
- ``size`` or ``FILE_ACTION_SIZE``: size of each file in bytes, a non-negative integer
  (default 1048576); in the table an integer or a string of digits.

An unknown key in the table is refused, with a suggestion.

Files are named ``<metric>_<UTC time with microseconds>.bin``. The metric part keeps only
``A-Za-z0-9_.-`` of the metric name or PromQL text, at most 80 characters, with a short
hash of the original added whenever anything had to be changed, so different queries
never share a name. An existing file is never overwritten. A size that does not fit in
the free space of the target file system is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiofiles
import aiofiles.os
import anyio.to_thread
from loguru import logger

from metric_reader import check_settings

DEFAULT_DIR = "/tmp/metric-files"
DEFAULT_SIZE = 1048576
_CHUNK = 1 << 20  # written piece by piece: memory use stays flat for any size
_MAX_STEM = 80
_TABLE = "[plugins.file_action]"
_KEYS = ("dir", "size")
_VARIABLES = {"FILE_ACTION_DIR": "dir", "FILE_ACTION_SIZE": "size"}  # for the suggestion


class FileAction:
    name = "file_action"

    def __init__(self) -> None:
        self._dir: Path | None = None  # from the rule file's table: beats FILE_ACTION_DIR
        self._size: int | None = None  # beats FILE_ACTION_SIZE

    def configure(self, settings: dict[str, Any]) -> None:
        """Take the ``[plugins.file_action]`` table: ``dir`` and ``size`` (see the module doc)."""
        check_settings(settings, _KEYS, _VARIABLES)
        directory = _table_dir(settings["dir"]) if "dir" in settings else None
        size = _table_size(settings["size"]) if "size" in settings else None
        self._dir, self._size = directory, size

    def validate_config(self) -> None:
        """Refuse to start with a size that is not a byte count or a directory that is a file."""
        settings = self._settings()
        directory = settings.directory
        if directory.exists() and not directory.is_dir():
            raise ValueError(
                f"{settings.dir_source}={str(directory)!r} exists but is not a directory"
            )

    async def execute(
        self, metric_name: str, value: float, threshold: str, duration: timedelta
    ) -> None:
        settings = self._settings()
        directory, size = settings.directory, settings.size
        await aiofiles.os.makedirs(directory, exist_ok=True)
        free = (await anyio.to_thread.run_sync(shutil.disk_usage, directory)).free
        if size > free:
            raise OSError(
                f"{settings.size_source}={size} bytes does not fit in {directory}: "
                f"only {free} bytes are free on its file system"
            )
        path = await _write_new_file(directory, safe_stem(metric_name), size)
        logger.bind(plugin=self.name, file=str(path), size=size).info(
            "file_action: wrote {} bytes to {}", size, path
        )

    def _settings(self) -> _Settings:
        """The effective settings: the table's where given, else the environment's."""
        if self._dir is not None:
            directory, dir_source = self._dir, f"{_TABLE} dir"
        else:
            directory = Path(os.environ.get("FILE_ACTION_DIR") or DEFAULT_DIR)
            dir_source = "FILE_ACTION_DIR"
        if self._size is not None:
            size, size_source = self._size, f"{_TABLE} size"
        else:
            size, size_source = _env_size(), "FILE_ACTION_SIZE"
        return _Settings(directory, size, dir_source, size_source)


class _Settings(NamedTuple):
    directory: Path
    size: int
    dir_source: str  # how messages name where each setting came from
    size_source: str


def _env_size() -> int:
    raw = os.environ.get("FILE_ACTION_SIZE", "").strip()
    if not raw:
        return DEFAULT_SIZE
    if not re.fullmatch(r"[0-9]+", raw):
        raise ValueError(
            f"FILE_ACTION_SIZE={raw!r} is not a size: expected a whole number of bytes "
            f"(0 or more), such as {DEFAULT_SIZE}"
        )
    return int(raw)


def _table_dir(value: object) -> Path:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError(
            f"dir={value!r} is not a directory path: expected a non-empty string such as "
            f'"{DEFAULT_DIR}"'
        )
    return Path(value)


def _table_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        return int(value.strip())
    raise ValueError(
        f"size={value!r} is not a size: expected a whole number of bytes (0 or more), "
        f'such as {DEFAULT_SIZE} or "{DEFAULT_SIZE}"'
    )


def safe_stem(metric_name: str) -> str:
    """A file-name part made from any metric name or query: never empty, never ``..``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", metric_name)
    stem = re.sub(r"\.{2,}", "_", stem).strip("._-")[:_MAX_STEM].strip("._-")
    if not stem or stem != metric_name:
        digest = hashlib.sha256(metric_name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        stem = f"{stem or 'metric'}-{digest}"
    return stem


async def _write_new_file(directory: Path, stem: str, size: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        path = directory / f"{stem}_{stamp}{suffix}.bin"
        created = False
        try:
            async with aiofiles.open(path, "xb") as out:  # exclusive: never overwrite a file
                created = True
                zeros = bytes(min(size, _CHUNK))
                left = size
                while left:
                    piece = zeros if left >= len(zeros) else zeros[:left]
                    await out.write(piece)
                    left -= len(piece)
        except FileExistsError:
            if created:
                raise
            continue
        except BaseException:
            if created:  # no half-written file left behind (sync: a cancelled task cannot await)
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return path
    raise FileExistsError(f"no free file name for {stem}_{stamp} in {directory}")


Plugin = FileAction()
