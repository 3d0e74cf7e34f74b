"""The state file on disk: read at start, replaced atomically on every save, set aside when
it cannot be used. What it holds is ``_state_format``'s document; who writes it when is
``_persist.StateWriter``'s business."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from .._core import StateError, logger
from ._state_format import parse


def _utc_stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%SZ")


class StateFile:
    """The state file on disk: read at start, replaced atomically on every save.

    A save writes a temporary file in the same directory, flushes and fsyncs it, renames it
    over the file and fsyncs the directory, so after a crash the file holds either the
    previous or the new document. A file that cannot be read or understood is set aside as
    ``<name>.corrupt-<timestamp>`` with one warning, and the service starts without it. Only
    one service writes a state file: it holds a lock on ``<name>.lock`` (``_state_lock``).

    ``read_only`` (a dry run): ``load`` neither removes temporary files (the real service
    may be writing one) nor sets an unusable file aside, and ``save`` is refused."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only

    def _temporaries(self) -> list[Path]:
        return list(self.path.parent.glob(glob.escape(f".{self.path.name}.") + "*.tmp"))

    def load(self) -> dict[str, Any] | None:
        """The saved document; ``None`` when there is none or it is unusable (then it has
        been reported and set aside). Temporary files left by a crash are removed."""
        for leftover in [] if self.read_only else self._temporaries():
            with contextlib.suppress(OSError):
                leftover.unlink()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.set_aside(f"cannot read it: {exc.strerror or exc}")
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:  # also UnicodeDecodeError
            self.set_aside(f"not valid JSON: {exc}")
            return None
        try:
            parse(data)
        except StateError as exc:
            self.set_aside(str(exc))
            return None
        return cast(dict[str, Any], data)

    def save(self, data: Mapping[str, Any]) -> None:
        """Replace the file with ``data``, atomically and durably. Blocking; raises OSError."""
        if self.read_only:
            raise PermissionError(f"{self.path} is read only here (a dry run)")
        text = json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n"
        directory = self.path.parent
        temporary = directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(text.encode())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def set_aside(self, reason: str) -> Path | None:
        """Rename an unusable file to ``<name>.corrupt-<timestamp>`` with one warning; return
        the new name (None if even that failed: the next save replaces the file)."""
        if self.read_only:
            logger.bind(state_file=str(self.path), reason=reason).warning(
                "state file {} is unusable ({}); the dry run leaves it as it is and starts "
                "without saved state",
                self.path,
                reason,
            )
            return None
        stamp = _utc_stamp(time.time())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        number = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{number}")
            number += 1
        log = logger.bind(state_file=str(self.path), reason=reason)
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning(
                "state file {} is unusable ({}) and could not be set aside ({}); "
                "starting without saved state",
                self.path,
                reason,
                exc.strerror or exc,
            )
            return None
        log.bind(set_aside_as=str(aside)).warning(
            "state file {} is unusable ({}); set aside as {}; starting without saved state",
            self.path,
            reason,
            aside.name,
        )
        return aside
