"""Watching the configuration's files (``WATCH_CONFIG``): ``CONFIG_FILE`` and the rule
files its globs match, so that a change on disk reloads as SIGHUP does.

In Kubernetes the files come from a ConfigMap that changes under the pod: each file is a
symlink into ``..data``, itself a symlink to a timestamped directory, and an update swaps
``..data`` at once. So a file is looked at through its symlinks (``stat`` and read follow
them), and what counts is its content: a new inode with the same content (a ConfigMap
written again unchanged) is no change, an edit in place that keeps the size and the
timestamp's tick is one. Like ``PLUGIN_DIR``, this polls rather than using inotify (see
``_actions.PluginCatalog.watch`` for why).

A look is the content digest of every file (or why it cannot be read), by path; the glob
is matched again at each look, so a new file it matches is a change. A reload is due when
a look differs from what the running configuration was read from and from what a reload
last refused, and is the same as the look before it: a file being written is left one
more look to settle, and a broken edit is refused once, not at every look.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._config import Settings, configuration_files, read_regular_file

WATCH_INTERVAL = 2.0
"""Seconds between two looks at the configuration's files (as at ``PLUGIN_DIR``)."""
_RACY_NS = 2_000_000_000
"""A file changed less than this before it was read may change again with the same stat
(timestamps are coarse): it is read again until it is older (git's "racy" files)."""

Look = Mapping[str, str]
"""The files of a configuration: by path, the digest of its content, or why it cannot be
read."""


@dataclass(frozen=True, slots=True)
class _Read:
    stat: tuple[int, int, int, int, int]
    digest: str
    at_ns: int
    """Wall clock just before it was read."""


class ConfigFiles:
    """What the configuration's files hold, looked at again and again: a file is read only
    when its ``stat`` (through its symlinks) changed, or it was too new to trust it."""

    def __init__(self) -> None:
        self._reads: dict[str, _Read] = {}
        self._lock = threading.Lock()

    def look(self, settings: Settings) -> Look:
        """The files ``settings`` were read from, as they are now. Blocking: not on the loop."""
        paths = configuration_files(settings.config_file, settings.rule_file_globs)
        with self._lock:
            reads: dict[str, _Read] = {}
            seen: dict[str, str] = {}
            for path in paths:
                key = str(path)
                outcome = self._read(path, self._reads.get(key))
                if isinstance(outcome, str):
                    seen[key] = outcome
                else:
                    reads[key], seen[key] = outcome, outcome.digest
            self._reads = reads
            return seen

    @staticmethod
    def _read(path: Path, before: _Read | None) -> _Read | str:
        try:
            st = os.stat(path)
            stat = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            newest = max(st.st_mtime_ns, st.st_ctime_ns)
            if before is not None and before.stat == stat and newest + _RACY_NS <= before.at_ns:
                return before
            at_ns = time.time_ns()
            digest = hashlib.sha256(read_regular_file(path)).hexdigest()
        except OSError as exc:
            return f"cannot be read: {exc.strerror or exc}"
        return _Read(stat, digest, at_ns)


class ConfigWatch:
    """When the configuration's files call for a reload: what the running configuration
    was read from, what a reload last refused, and the look before."""

    def __init__(self) -> None:
        self.files = ConfigFiles()
        self.loaded: Look | None = None
        """The files the running configuration was read from."""
        self.refused: Look | None = None
        """The files as they were when a reload was last refused (since the last one that
        worked)."""
        self._previous: Look | None = None

    def due(self, now: Look) -> bool:
        """Whether the files as they are ``now`` call for a reload: changed since the
        running configuration was read, not what was refused, and settled (the same at the
        look before)."""
        previous, self._previous = self._previous, now
        if now in (self.loaded, self.refused):
            return False
        return now == previous

    def changed(self, now: Look) -> list[str]:
        """The files of ``now`` that differ from what the running configuration was read
        from (new ones and removed ones too)."""
        loaded = self.loaded or {}
        return sorted(path for path in {*now, *loaded} if now.get(path) != loaded.get(path))

    def reloaded(self, before: Look, after: Look) -> None:
        """A reload worked: it read the files as they were at ``before`` or later (looked
        at just before it read them), and the new configuration names those of ``after``
        (looked at just after). A file that changed while it was read differs from
        ``before``: it makes one more reload, never a change unseen."""
        self.loaded = {path: before.get(path, digest) for path, digest in after.items()}
        self.refused = None

    def refused_at(self, before: Look) -> None:
        """A reload was refused: the files as they were just before it read them."""
        self.refused = before
