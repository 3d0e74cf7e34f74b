"""Watching ``PLUGIN_DIR``: what each file was when it was loaded, what changed since, and
the plugins the files make now (see :meth:`._catalog.PluginCatalog.watch`)."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

from .._config import describe_dir_error
from .._core import PluginSettings, logger
from ._callers import LoadedPlugin
from ._entry_points import Hidden
from ._jobs import ThreadJob
from ._loader import LOAD_TIMEOUT, NO_SETTINGS, load_bounded, one_per_name
from ._result import PluginProblem, describe
from ._trust import REMEDY, dir_finding, file_finding

if TYPE_CHECKING:
    import anyio

_T = TypeVar("_T")

LOOK_WAIT = 1.0
"""How long (seconds) one look at ``PLUGIN_DIR`` waits for the files it loads. A load that
takes longer goes on in the background and a later look takes its result: a file whose
import hangs (up to ``PLUGIN_TIMEOUT``) holds up no other file."""

_RACY_NS = 2_000_000_000
"""A file changed less than this before it was read may change again with the same stat
(timestamps are coarse): its content is compared until it is older (git's "racy" files)."""


class _Signature(NamedTuple):
    """What ``stat`` says about a plugin file, following symlinks: any change means reload."""

    real_path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    mode: int
    uid: int

    @classmethod
    def of(cls, real_path: str, st: os.stat_result) -> _Signature:
        return cls(
            real_path,
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_mode,
            st.st_uid,
        )


def _stat_signature(path: Path) -> _Signature | None:
    try:
        st = os.stat(path)
        return _Signature.of(os.path.realpath(path), st)
    except OSError:
        return None


class _DirKey(NamedTuple):
    """``PLUGIN_DIR`` as last seen: a change (chmod, chown, a new target) reloads every file."""

    real_path: str
    dev: int
    ino: int
    mode: int
    uid: int


@dataclass
class _Entry:
    """One ``*.py`` entry of ``PLUGIN_DIR`` and the outcome of its last load."""

    path: Path
    signature: _Signature | None
    digest: bytes | None
    seen_ns: int
    """Wall clock just before the file was last read: the content was current then."""
    result: LoadedPlugin | PluginProblem
    kept: LoadedPlugin | None = None
    """The previous good version, still in service while ``result`` is a problem."""

    @property
    def active(self) -> LoadedPlugin | None:
        return self.result if isinstance(self.result, LoadedPlugin) else self.kept

    def unchanged_since(self, now_ns: int) -> int | None:
        """None when the file must be loaded again; otherwise when it was seen unchanged."""
        signature = _stat_signature(self.path)
        if signature is None or signature != self.signature:
            return None
        newest = max(signature.mtime_ns, signature.ctime_ns)
        if self.digest is None or newest + _RACY_NS <= self.seen_ns:
            return self.seen_ns  # (no digest: refused unread, its content did not matter)
        try:
            digest = hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None
        return now_ns if digest == self.digest else None


@dataclass
class Scan:
    """What one look at ``PLUGIN_DIR`` found (made in a worker thread, applied on the loop)."""

    error: str | None = None
    dir_key: _DirKey | None = None
    dir_problem: PluginProblem | None = None
    loaded: dict[str, _Entry] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)


@dataclass
class _Loading:
    """A file's load that a look started and that had not ended when the look did."""

    job: ThreadJob
    dir_key: _DirKey
    """``PLUGIN_DIR`` as it was when the load started: its trust verdict applies."""


@dataclass
class _Composition:
    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]
    hidden: list[Hidden]


class DirWatcher:
    """What each ``PLUGIN_DIR`` file was when it was loaded, and what came of it."""

    def __init__(
        self,
        directory: Path,
        *,
        insecure: bool,
        base: dict[str, LoadedPlugin],
        base_problems: list[PluginProblem],
        settings: PluginSettings = NO_SETTINGS,
        load_timeout: float = 0.0,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.load_timeout = load_timeout or LOAD_TIMEOUT
        self.insecure = insecure
        self.base = dict(base)
        """The plugins a file can replace: bundled, and installed packages' entry points."""
        self.base_problems = list(base_problems)
        self.entries: dict[str, _Entry] = {}
        self.dir_key: _DirKey | None = None
        self.dir_problem: PluginProblem | None = None
        self.listing_error: str | None = None
        self.lock: anyio.Lock | None = None
        self.loading: dict[str, _Loading] = {}
        """Loads still running when the look that started them ended, by file name."""

    def scan(self, wait: float | None = None) -> Scan:
        """List ``PLUGIN_DIR``, load what is new or changed. Blocking: not on the loop.

        The files load at once, each in a thread of its own; the look waits for them at
        most ``wait`` seconds (None: until every load ended, each bounded by the load
        timeout). A load still running then is taken by the first look after it ends."""
        now_ns = time.time_ns()
        deadline = None if wait is None else time.monotonic() + wait
        try:
            real_dir = os.path.realpath(self.directory)
            dir_st = os.stat(real_dir)
            if not stat.S_ISDIR(dir_st.st_mode):
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.directory)
                )
            with os.scandir(self.directory) as listing:
                names = sorted(
                    e.name
                    for e in listing
                    if e.name.endswith(".py") and not e.name.startswith(("_", ".")) and e.is_file()
                )
        except OSError as exc:
            return Scan(error=describe_dir_error(self.directory, exc))
        dir_key = _DirKey(real_dir, dir_st.st_dev, dir_st.st_ino, dir_st.st_mode, dir_st.st_uid)
        everything = dir_key != self.dir_key
        dir_reason = None
        finding = dir_finding(self.directory, real_dir, dir_st)
        if finding is not None and self.insecure:
            if everything:
                logger.bind(dir=str(self.directory)).warning(
                    "PLUGIN_DIR_INSECURE: using PLUGIN_DIR although {}", finding
                )
        elif finding is not None:
            dir_reason = f"refused: {finding}; {REMEDY}"
        scan = Scan(
            dir_key=dir_key,
            dir_problem=None if dir_reason is None else PluginProblem(self.directory, dir_reason),
        )
        started: set[str] = set()
        for name in names:
            pending = self.loading.get(name)
            if pending is not None and pending.dir_key == dir_key:
                continue  # still loading, or to be taken below
            entry = self.entries.get(name)
            if pending is None and entry is not None and not everything:
                seen = entry.unchanged_since(now_ns)
                if seen is not None:
                    if seen != entry.seen_ns:
                        scan.confirmed[name] = seen
                    continue
            # All at once: a file whose loading hangs delays no other by more than nothing.
            load = functools.partial(self._load, self.directory / name, real_dir, dir_reason)
            self.loading[name] = _Loading(ThreadJob(load, f"plugin load {name}"), dir_key)
            started.add(name)
        for name, pending in list(self.loading.items()):
            left = None  # each load is bounded (load_bounded): this wait too
            if deadline is not None:  # the loads of earlier looks are taken if they ended
                left = max(deadline - time.monotonic(), 0.0) if name in started else 0.0
            outcome = pending.job.wait_blocking(left)
            if outcome is None:
                continue  # a later look takes it
            del self.loading[name]
            if outcome.error is not None:
                raise outcome.error
            if name in names:  # (a file removed while it loaded is gone, not loaded)
                scan.loaded[name] = cast(_Entry, outcome.value)
        scan.gone = [name for name in self.entries if name not in names]
        return scan

    def _load(self, path: Path, real_dir: str, dir_reason: str | None) -> _Entry:
        """Read, check and load one file; the signature describes exactly what was read."""
        seen_ns = time.time_ns()
        if dir_reason is not None:
            return _Entry(
                path, _stat_signature(path), None, seen_ns, PluginProblem(path, dir_reason)
            )
        try:
            with open(path, "rb") as file:
                st = os.fstat(file.fileno())
                source = file.read()
            real = os.path.realpath(path)
        except OSError as exc:
            problem = PluginProblem(path, f"cannot be read: {describe(exc)}")
            return _Entry(path, _stat_signature(path), None, seen_ns, problem)
        signature = _Signature.of(real, st)
        digest = hashlib.sha256(source).digest()
        finding = file_finding(path, real, st, real_dir)
        if finding is not None:
            if not self.insecure:
                problem = PluginProblem(path, f"refused: {finding}; {REMEDY}")
                return _Entry(path, signature, digest, seen_ns, problem)
            logger.bind(file=str(path)).warning(
                "PLUGIN_DIR_INSECURE: loading {} although {}", path, finding
            )
        result = load_bounded(
            path, source, bundled=False, settings=self.settings, timeout=self.load_timeout
        )
        return _Entry(path, signature, digest, seen_ns, result)

    def absorb(self, scan: Scan) -> list[_Entry]:
        """Record a scan; return the entries that were loaded and failed."""
        if scan.error is not None:
            return []
        self.dir_key = scan.dir_key
        self.dir_problem = scan.dir_problem
        for name, seen_ns in scan.confirmed.items():
            self.entries[name].seen_ns = seen_ns
        for name in scan.gone:
            del self.entries[name]
        failed = []
        for name, entry in scan.loaded.items():
            if isinstance(entry.result, PluginProblem):
                previous = self.entries.get(name)
                entry.kept = previous.active if previous is not None else None
                failed.append(entry)
            self.entries[name] = entry
        return failed

    def compose(self, current: dict[str, LoadedPlugin]) -> _Composition:
        """The plugins and problems the entries make, given the plugins ``current``ly in use.

        As at start-up, a name given by two files refuses both, and a file that fails to
        load hides the bundled or entry point plugin of its name; but what is in use wins: a
        file giving the name of a plugin in use from another file is refused alone, and a
        bundled or entry point plugin in use stays when a broken replacement appears.
        """
        problems: list[PluginProblem] = []
        by_name: dict[str, list[LoadedPlugin]] = {}
        for name in sorted(self.entries):
            entry = self.entries[name]
            if isinstance(entry.result, PluginProblem):
                problems.append(entry.result)
            active = entry.active
            if active is not None:
                by_name.setdefault(active.name, []).append(active)

        def in_service(name: str) -> Path | None:
            incumbent = current.get(name)
            if incumbent is None or not incumbent.from_plugin_dir:
                return None
            return incumbent.path

        user, duplicates = one_per_name(by_name, in_service)
        problems += duplicates
        plugins = dict(self.base)
        plugins.update(user)
        kept_problems = [p for p in self.base_problems if p.key not in user]
        hidden: list[Hidden] = []
        for problem in problems:
            shadowed = plugins.get(problem.key)
            if (
                shadowed is not None
                and not shadowed.from_plugin_dir
                and current.get(problem.key) is not shadowed
            ):
                del plugins[problem.key]
                hidden.append(Hidden(problem.key, shadowed, problem))
        if self.dir_problem is not None:
            problems.append(self.dir_problem)
        return _Composition(plugins, kept_problems + problems, hidden)


async def off_the_loop(func: Callable[[], _T], name: str) -> _T:
    """Run ``func`` in a daemon thread (plugin code may hang): cancelling stops the wait."""
    job = ThreadJob(func, name)
    try:
        outcome = await job.wait()
    finally:
        job.abandon()
    if outcome.error is not None:
        raise outcome.error
    return cast(_T, outcome.value)
