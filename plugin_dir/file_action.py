"""Bundled plugin ``file_action``: create a file of ``FILE_ACTION_SIZE`` bytes on each breach.

Settings (read at every call, so a change needs no reload):

- ``FILE_ACTION_DIR``: where the files go, created if missing (default ``/tmp/metric-files``)
- ``FILE_ACTION_SIZE``: size of each file in bytes, a non-negative integer (default 1048576)

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

import aiofiles
import aiofiles.os
import anyio.to_thread
from loguru import logger

DEFAULT_DIR = "/tmp/metric-files"
DEFAULT_SIZE = 1048576
_CHUNK = 1 << 20  # written piece by piece: memory use stays flat for any size
_MAX_STEM = 80


class FileAction:
    name = "file_action"

    def validate_config(self) -> None:
        """Refuse to start with a size that is not a byte count or a directory that is a file."""
        directory, _ = _settings()
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"FILE_ACTION_DIR={str(directory)!r} exists but is not a directory")

    async def execute(
        self, metric_name: str, value: float, threshold: str, duration: timedelta
    ) -> None:
        directory, size = _settings()
        await aiofiles.os.makedirs(directory, exist_ok=True)
        free = (await anyio.to_thread.run_sync(shutil.disk_usage, directory)).free
        if size > free:
            raise OSError(
                f"FILE_ACTION_SIZE={size} bytes does not fit in {directory}: "
                f"only {free} bytes are free on its file system"
            )
        path = await _write_new_file(directory, safe_stem(metric_name), size)
        logger.bind(plugin=self.name, file=str(path), size=size).info(
            "file_action: wrote {} bytes to {}", size, path
        )


def _settings() -> tuple[Path, int]:
    directory = Path(os.environ.get("FILE_ACTION_DIR") or DEFAULT_DIR)
    raw = os.environ.get("FILE_ACTION_SIZE", "").strip()
    if not raw:
        return directory, DEFAULT_SIZE
    if not re.fullmatch(r"[0-9]+", raw):
        raise ValueError(
            f"FILE_ACTION_SIZE={raw!r} is not a size: expected a whole number of bytes "
            f"(0 or more), such as {DEFAULT_SIZE}"
        )
    return directory, int(raw)


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
