"""Plugins: find the ``.py`` files, load each one safely, call them with a time limit.

A plugin file exposes a module-level ``Plugin``: an object with a string ``name``, a
callable ``execute`` and optionally ``resolve`` and ``validate_config``. As a convenience
``Plugin`` may also be a class; it is then created with no arguments.

Loading never raises: every file that cannot be used becomes a :class:`PluginProblem`
naming the file and the reason. Calling never lets a plugin take the service down: any
exception it raises (``SystemExit`` included) becomes a :class:`PluginFailure`.

``PLUGIN_DIR`` files are code, so a file or directory others could change is refused, the
way sshd refuses loose key files (``PLUGIN_DIR_INSECURE`` turns this into a warning), and
:meth:`PluginCatalog.watch` picks up files added, changed or removed while running.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.machinery
import importlib.util
import inspect
import os
import pwd
import re
import signal
import stat
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Literal, NamedTuple, TypeVar, cast

import anyio
from anyio.lowlevel import RunVar, checkpoint_if_cancelled
from loguru import logger

from .._config import describe_dir_error
from .._core._durations import format_duration
from .._core._events import Event
from ._plugin_jobs import (
    WEDGED_AFTER,
    Job,
    LoopJob,
    Outcome,
    PluginLoop,
    ThreadJob,
    run_bounded,
)

Method = Literal["execute", "resolve"]
PluginSettings = Mapping[str, Mapping[str, Any]]
_NO_SETTINGS: PluginSettings = {}

_MODULE_PREFIX = "metric_reader._loaded_plugins"
_PLUGIN_THREADS = 32  # plain-``def`` plugin calls running at once; more wait their turn
_MAX_STUCK_THREADS = 4  # a plugin with this many abandoned calls still running gets no more
_PROBE_ARGS = ("metric", 0.0, ">0", timedelta(0))

_T = TypeVar("_T")

_thread_limiter: RunVar[anyio.CapacityLimiter] = RunVar("metric_reader_plugin_threads")


class PluginFailure(Exception):
    """A plugin call did not succeed: the plugin raised, or (subclass) ran out of time."""

    def __init__(self, message: str, *, plugin: str, method: str) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.method = method


class PluginTimeout(PluginFailure):
    """A plugin call took longer than its timeout and was given up."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin file that could not be loaded, and why; ``name`` when it was learnt."""

    path: Path
    reason: str
    name: str | None = None
    unconfigured: bool = False
    """The plugin loaded but its ``validate_config`` refused its settings."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class _Callable:
    """One plugin method and how to call it (worked out once, at load time)."""

    fn: Callable[..., object]
    is_async: bool
    accepts_event: bool


class LoadedPlugin:
    """A plugin that loaded and validated: ``call`` runs its ``execute`` or ``resolve``."""

    def __init__(
        self,
        *,
        name: str,
        path: Path,
        bundled: bool,
        obj: object,
        execute: _Callable,
        resolve: _Callable | None,
    ) -> None:
        self.name = name
        self.path = path
        self.bundled = bundled
        self.obj = obj  # the ``Plugin`` object itself
        self._methods: dict[str, _Callable] = {"execute": execute}
        if resolve is not None:
            self._methods["resolve"] = resolve
        self._lock = threading.Lock()
        self._stuck: set[Job] = set()
        self._loop: PluginLoop | None = None

    @property
    def has_resolve(self) -> bool:
        return "resolve" in self._methods

    @property
    def stuck_threads(self) -> int:
        """Calls given up at their timeout that are still running."""
        with self._lock:
            return len(self._stuck)

    def __repr__(self) -> str:
        origin = "bundled" if self.bundled else "PLUGIN_DIR"
        return f"<LoadedPlugin {self.name!r} from {self.path} ({origin})>"

    async def call(self, method: Method, event: Event, timeout: float) -> None:
        """Run ``method(metric_name, value, threshold, duration[, event=event])``.

        Returns when it succeeded. Raises :class:`PluginTimeout` after ``timeout`` seconds,
        whatever the plugin does (see :mod:`._plugin_jobs`), :class:`PluginFailure` for
        anything the plugin raised. The caller's own cancellation is never turned into a
        failure. ``resolve`` on a plugin without one does nothing.
        """
        target = self._methods.get(method)
        if target is None:
            if method == "resolve":
                return
            raise ValueError(f"unknown plugin method {method!r}")
        args = (event.metric_name, event.value, event.threshold, event.duration)
        kwargs = {"event": event} if target.accepts_event else {}
        self._refuse_if_stuck(method)
        call = functools.partial(target.fn, *args, **kwargs)
        outcome: Outcome | None = None
        with anyio.move_on_after(timeout) as scope:
            if target.is_async:
                outcome = await self._run(method, self._on_loop(method, call))
            else:
                thread_name = f"plugin {self.name} {method}"
                async with _plugin_thread_limiter():
                    outcome = await self._run(method, lambda: ThreadJob(call, thread_name))
                result = outcome.value
                if outcome.error is None and inspect.isawaitable(result):
                    outcome = await self._run(method, self._on_loop(method, lambda: result))
        if scope.cancelled_caught or outcome is None:
            await checkpoint_if_cancelled()  # an enclosing scope is cancelled: raises
            raise self._timeout(method, timeout)
        if outcome.error is not None:
            raise self._failure(method, outcome.error) from outcome.error
        if outcome.value is not None:
            logger.bind(plugin=self.name).debug("{} returned {!r}; ignored", method, outcome.value)

    def _on_loop(self, method: str, make: Callable[[], object]) -> Callable[[], Job]:
        """How to start ``await make()`` on this plugin's event loop (a new one if it is
        blocked)."""

        async def awaited() -> object:
            return await cast(Awaitable[object], make())

        def start() -> Job:
            loop = self._loop
            if loop is None or loop.retired or loop.wedged():
                if loop is not None and not loop.retired:
                    loop.retire()
                    logger.bind(plugin=self.name).warning(
                        "the event loop of plugin {} has been blocked for {} or more (an "
                        "async def that blocks?); its calls get a new one",
                        self.name,
                        format_duration(WEDGED_AFTER),
                    )
                loop = self._loop = PluginLoop(self.name)
                weakref.finalize(self, loop.retire).atexit = False
            return loop.submit(awaited, f"{method} of plugin {self.name}")

        return start

    async def _run(self, method: str, start: Callable[[], Job]) -> Outcome:
        """Start a job and wait for it; if the wait is given up, the job is abandoned."""
        job = start()
        try:
            return await job.wait()
        finally:
            if job.abandon():
                self._note_stuck(job, method)
                if isinstance(job, LoopJob):
                    job.loop.ping()  # is it blocked? the next call finds out

    def _note_stuck(self, job: Job, method: str) -> None:
        with self._lock:
            self._stuck.add(job)
            stuck = len(self._stuck)

        def done(job: Job) -> None:
            with self._lock:
                self._stuck.discard(job)

        job.on_finish(done)
        if isinstance(job, ThreadJob):
            logger.bind(plugin=self.name).warning(
                "{} gave up waiting for {}; its thread keeps running in the background "
                "({} such thread(s) for this plugin)",
                method,
                self.name,
                stuck,
            )

    def _refuse_if_stuck(self, method: str) -> None:
        """Bound the threads a hung plugin can pile up: one per timed-out call otherwise."""
        stuck = self.stuck_threads
        if stuck >= _MAX_STUCK_THREADS:
            raise PluginFailure(
                f"plugin {self.name!r} {method} not started: {stuck} earlier calls are "
                "still running after their timeout",
                plugin=self.name,
                method=method,
            )

    def _failure(self, method: str, exc: BaseException) -> PluginFailure:
        return PluginFailure(
            f"plugin {self.name!r} {method} failed: {_describe(exc)}",
            plugin=self.name,
            method=method,
        )

    def _timeout(self, method: str, timeout: float) -> PluginTimeout:
        return PluginTimeout(
            f"plugin {self.name!r} {method} timed out after {format_duration(timeout)}",
            plugin=self.name,
            method=method,
        )


def _plugin_thread_limiter() -> anyio.CapacityLimiter:
    """The plugin threads' own limiter (one per event loop): they never starve anyio's."""
    try:
        return _thread_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_PLUGIN_THREADS)
        _thread_limiter.set(limiter)
        return limiter


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


LOAD_TIMEOUT = 30.0
"""How long (seconds) loading one plugin file may take by default: ``PLUGIN_TIMEOUT``'s."""

WATCH_INTERVAL = 2.0
"""How often (seconds) :meth:`PluginCatalog.watch` looks at ``PLUGIN_DIR`` by default."""


@dataclass
class PluginCatalog:
    """Every plugin that loaded, by name, and every file that did not.

    A catalog that :func:`discover_plugins` built with a ``PLUGIN_DIR`` keeps itself current
    while :meth:`watch` runs: plugin files added, changed or removed are picked up without a
    restart. ``plugins`` stays the very same dict throughout. Every plugin put into it is
    fully imported, checked and validated first, and the entries of one round of changes are
    swapped in on the event loop with no ``await`` in between, so a caller on the loop sees
    either the old set or the new one, never a half-loaded plugin.
    """

    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]
    plugin_dir: Path | None = None
    insecure: bool = False
    """``PLUGIN_DIR_INSECURE``: load PLUGIN_DIR files others can change (with a warning)."""
    overrides: list[str] = field(default_factory=list)
    """Bundled plugins replaced by a ``PLUGIN_DIR`` file of the same name."""
    hidden: list[str] = field(default_factory=list)
    """Bundled plugins not used because their ``PLUGIN_DIR`` replacement failed to load."""
    _watcher: _DirWatcher | None = field(default=None, init=False, repr=False, compare=False)

    def log_overrides(self) -> None:
        """Say which bundled plugins PLUGIN_DIR replaced: once the configuration is valid,
        so that an invalid one stays a single line on stderr."""
        for name in self.overrides:
            plugin = self.plugins.get(name)
            logger.bind(plugin=name, file=str(plugin.path if plugin else "")).info(
                "plugin {} from PLUGIN_DIR replaces the bundled one", name
            )
        for name in self.hidden:
            logger.bind(plugin=name).warning(
                "bundled plugin {} not used: its replacement in PLUGIN_DIR failed to load", name
            )

    @property
    def dir_error(self) -> str | None:
        """Why ``PLUGIN_DIR`` itself cannot be used (cannot be listed, or refused as a
        whole by the trust rules); None when it can."""
        if self.plugin_dir is None:
            return None
        for problem in self.problems:
            if problem.path == self.plugin_dir:
                return problem.reason
        return None

    def explain_missing(self, name: str) -> str:
        """Why no plugin ``name`` is loaded and how to fix it, to follow ``X='name' ``.

        A name ending in ``.py`` is refused with a hint, wherever a plugin is named
        (``ACTION_PLUGIN``, a rule file, ``fire``): plugins are named by their ``name``,
        which usually is the file name without ``.py``.
        """
        stem = name.removesuffix(".py")
        suffix = f"it takes the plugin's name, without .py: {stem!r}" if stem != name else ""
        if suffix and stem in self.plugins:
            return f"is invalid: {suffix}"
        problem = self.problem_for(name) or (self.problem_for(stem) if suffix else None)
        if problem is not None:
            return f"cannot be loaded: {problem}" + (f" ({suffix})" if suffix else "")
        available = ", ".join(sorted(self.plugins)) or "none"
        where = (
            f"add {stem}.py to PLUGIN_DIR ({self.plugin_dir})"
            if self.plugin_dir is not None
            else f"put {stem}.py in a directory and set PLUGIN_DIR to it"
        )
        return (
            f"is invalid: {suffix + '; ' if suffix else ''}no plugin of that name "
            f"(available: {available}; {where})"
        )

    def problem_for(self, name: str) -> PluginProblem | None:
        """The problem of a file whose plugin name, or failing that file stem, is ``name``."""
        for problem in self.problems:
            if problem.name == name:
                return problem
        for problem in self.problems:
            if problem.path.stem == name:
                return problem
        return None

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Keep ``plugins`` in step with the files in ``PLUGIN_DIR``; runs until cancelled.

        Every ``interval`` seconds each ``*.py`` entry is looked at with ``stat`` (following
        symlinks: its real path, inode, size, mtime and ctime, mode and owner) and the
        directory is listed again; only what changed is loaded again, in a worker thread.

        This polls rather than using inotify on purpose: inotify only reports changes made
        through this kernel (not those made on another host: NFS, CIFS, many FUSE file
        systems); a watch stays on the inode it was set on, so a re-pointed symlink (the
        Kubernetes ConfigMap update: a new timestamped directory, then ``..data_tmp``
        renamed over ``..data``) needs watching several directories and re-arming; and the
        per-user watch limit is shared by every container on the node. A few ``stat`` calls
        every couple of seconds cost next to nothing and behave the same on every file
        system, in every container, with every kind of update.

        - A new file is loaded and its plugin added; a changed one is loaded again and the
          new version replaces the old for the next call (calls already running finish with
          the version they started with).
        - A file that fails to load (syntax error, failing ``validate_config``, refused by
          the trust check...) leaves its previous version in service, with a warning naming
          the file and the reason.
        - A removed file removes its plugin (a bundled plugin it replaced is used again).
        - If ``PLUGIN_DIR`` cannot be read, everything stays as it is until it can.

        Does nothing when the catalog has no ``PLUGIN_DIR`` (bundled plugins never change).
        """
        watcher = self._watcher
        if watcher is None:
            return
        if not interval > 0:
            raise ValueError(f"watch interval must be more than 0, got {interval!r}")
        logger.bind(dir=str(watcher.directory)).info(
            "watching PLUGIN_DIR for plugin changes every {}", format_duration(interval)
        )
        while True:
            await anyio.sleep(interval)
            try:
                await self.reload_changed()
            except Exception:  # the watcher must never take the service down
                logger.opt(exception=True).error(
                    "checking PLUGIN_DIR for plugin changes failed; trying again in {}",
                    format_duration(interval),
                )

    async def reload_changed(self) -> bool:
        """Look at ``PLUGIN_DIR`` once, swap in what changed; True when ``plugins`` changed.

        What :meth:`watch` does at each interval.
        """
        watcher = self._watcher
        if watcher is None:
            return False
        if watcher.lock is None:
            watcher.lock = anyio.Lock()
        async with watcher.lock:
            scan = await _off_the_loop(watcher.scan, "plugin reload")
            return self._apply(scan)

    def _apply(self, scan: _Scan) -> bool:
        """Take a scan's results into the catalog: no ``await`` in here (see the class doc)."""
        watcher = self._watcher
        assert watcher is not None
        if scan.error is not None:
            if scan.error != watcher.listing_error:
                logger.bind(dir=str(watcher.directory)).warning(
                    "cannot read PLUGIN_DIR ({}); the plugins loaded from it stay in service",
                    scan.error,
                )
            watcher.listing_error = scan.error
            return False
        if watcher.listing_error is not None:
            logger.bind(dir=str(watcher.directory)).info("PLUGIN_DIR can be read again")
            watcher.listing_error = None
        if not (scan.loaded or scan.gone or scan.dir_problem != watcher.dir_problem):
            watcher.absorb(scan)
            return False
        failed = watcher.absorb(scan)
        for entry in failed:
            assert isinstance(entry.result, PluginProblem)
            log = logger.bind(file=str(entry.path))
            if entry.kept is not None:
                log.bind(plugin=entry.kept.name).warning(
                    "{} failed to load: {}; the previous version of plugin {} stays in service",
                    entry.path,
                    entry.result.reason,
                    entry.kept.name,
                )
            else:
                log.warning("plugin file {} not loaded: {}", entry.path, entry.result.reason)
        composed = watcher.compose(self.plugins)
        reported = {entry.result for entry in failed} | set(self.problems)
        for problem in composed.problems:  # e.g. a name given twice: the files loaded fine
            if problem not in reported:
                logger.bind(file=str(problem.path)).warning(
                    "plugin file {} not used: {}", problem.path, problem.reason
                )
        before = dict(self.plugins)
        _log_changes(before, composed.plugins, set(scan.gone))
        # The swap: plain dict operations, no await, on the event loop.
        for name in [name for name in self.plugins if name not in composed.plugins]:
            del self.plugins[name]
        self.plugins.update(composed.plugins)
        self.problems[:] = composed.problems
        return before != self.plugins


def _log_changes(
    before: dict[str, LoadedPlugin], after: dict[str, LoadedPlugin], gone: set[str]
) -> None:
    for name, plugin in after.items():
        old = before.get(name)
        if old is plugin:
            continue
        log = logger.bind(plugin=name, file=str(plugin.path))
        if old is None:
            log.info("plugin {} added from {}", name, plugin.path)
        elif plugin.bundled:
            log.info("plugin {}: the bundled one is used again", name)
        elif old.path == plugin.path:
            log.info("plugin {} reloaded from {}", name, plugin.path)
        else:
            log.info("plugin {} now comes from {} (was {})", name, plugin.path, old.path)
    for name, old in before.items():
        if name in after:
            continue
        why = (
            f"{old.path} is gone"
            if old.path.name in gone
            else "see the problem reported for its file"
        )
        logger.bind(plugin=name, file=str(old.path)).warning(
            "plugin {} removed ({}); calls to it fail until it is back", name, why
        )


def bundled_plugin_dir() -> Path:
    """Where the bundled plugins are: inside an installed package, or the source tree's."""
    package_dir = Path(__file__).resolve().parent.parent  # metric_reader/
    installed = package_dir / "_bundled_plugins"
    return installed if installed.is_dir() else package_dir.parent / "plugin_dir"


def discover_plugins(
    plugin_dir: Path | None,
    *,
    insecure: bool = False,
    settings: PluginSettings = _NO_SETTINGS,
    load_timeout: float = LOAD_TIMEOUT,
) -> PluginCatalog:
    """Load the bundled plugins and those in ``plugin_dir``; a ``plugin_dir`` one wins.

    A ``plugin_dir`` file that fails to load also hides the bundled plugin of its name (or
    file stem): a broken override must be reported, not silently replaced by the default.

    ``plugin_dir`` files are code run by the service, so they must not be changeable by
    anyone but root and the user running the service (see :func:`_file_finding`); with
    ``insecure`` they are loaded anyway, with a warning. The bundled plugins, part of the
    installed package, are not checked.

    ``settings`` holds the rule file's ``[plugins.NAME]`` tables: each is given to that
    plugin's ``configure(settings)`` before ``validate_config()``.

    Loading a file (its import, ``configure``, ``validate_config``) may take at most
    ``load_timeout`` seconds (``PLUGIN_TIMEOUT``); one that takes longer is a problem of
    that file, its loading left to finish in the background (see :func:`_load_bounded`).
    """
    bundled_dir = bundled_plugin_dir()
    plugins, problems = _load_directory(
        bundled_dir, bundled=True, settings=settings, load_timeout=load_timeout
    )
    if plugin_dir is None or _same_dir(plugin_dir, bundled_dir):
        return PluginCatalog(plugins, problems)
    if insecure:
        logger.bind(dir=str(plugin_dir)).warning(
            "PLUGIN_DIR_INSECURE is on: plugins in {} are loaded without checking who can "
            "change them; use this for development only",
            plugin_dir,
        )
    watcher = _DirWatcher(
        plugin_dir,
        insecure=insecure,
        bundled=plugins,
        bundled_problems=problems,
        settings=settings,
        load_timeout=load_timeout,
    )
    scan = watcher.scan()
    if scan.error is not None:
        watcher.listing_error = scan.error
        watcher.dir_problem = PluginProblem(plugin_dir, scan.error)
    for entry in watcher.absorb(scan):
        assert isinstance(entry.result, PluginProblem)
        logger.bind(file=str(entry.path)).debug("plugin not loaded: {}", entry.result.reason)
    composed = watcher.compose({})
    catalog = PluginCatalog(
        composed.plugins,
        composed.problems,
        plugin_dir=plugin_dir,
        insecure=insecure,
        overrides=[plugin.name for plugin in composed.overrides],
        hidden=[name for name, _ in composed.hidden],
    )
    catalog._watcher = watcher
    return catalog


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _load_directory(
    directory: Path,
    *,
    bundled: bool,
    settings: PluginSettings = _NO_SETTINGS,
    load_timeout: float = 0.0,
) -> tuple[dict[str, LoadedPlugin], list[PluginProblem]]:
    """Load every plugin file directly in ``directory``; refuse names given twice."""
    try:
        files = sorted(
            p
            for p in directory.iterdir()
            if p.suffix == ".py" and not p.name.startswith(("_", ".")) and p.is_file()
        )
    except OSError as exc:
        return {}, [PluginProblem(directory, describe_dir_error(directory, exc))]
    by_name: dict[str, list[LoadedPlugin]] = {}
    problems: list[PluginProblem] = []
    for path in files:
        loaded = load_plugin_file(
            path, bundled=bundled, settings=settings, load_timeout=load_timeout or LOAD_TIMEOUT
        )
        if isinstance(loaded, PluginProblem):
            logger.bind(file=str(path)).debug("plugin not loaded: {}", loaded.reason)
            problems.append(loaded)
        else:
            by_name.setdefault(loaded.name, []).append(loaded)
    plugins: dict[str, LoadedPlugin] = {}
    for name, same in by_name.items():
        if len(same) == 1:
            plugins[name] = same[0]
            continue
        for plugin in same:
            others = ", ".join(str(o.path) for o in same if o is not plugin)
            reason = f"plugin name {name!r} is also given by {others}; both are refused"
            problems.append(PluginProblem(plugin.path, reason, name))
    return plugins, problems


class _Refused(Exception):
    """Internal: why a plugin file cannot be used."""

    def __init__(self, reason: str, name: str | None = None, unconfigured: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name
        self.unconfigured = unconfigured


def load_plugin_file(
    path: Path,
    *,
    bundled: bool = False,
    settings: PluginSettings = _NO_SETTINGS,
    load_timeout: float = LOAD_TIMEOUT,
) -> LoadedPlugin | PluginProblem:
    """Import one plugin file under a private module name, check it, configure it with its
    ``settings[name]`` table (if any), validate it; all within ``load_timeout`` seconds."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        return PluginProblem(path, f"cannot be read: {_describe(exc)}")
    return _load_bounded(path, source, bundled=bundled, settings=settings, timeout=load_timeout)


def _load_bounded(
    path: Path, source: bytes, *, bundled: bool, settings: PluginSettings, timeout: float
) -> LoadedPlugin | PluginProblem:
    """:func:`_load_source` in a daemon thread of its own, given up after ``timeout``.

    A plugin file whose import hangs (a ``sleep``, a busy loop, a blocking read at module
    level) must hold up neither the other files nor the service: its thread is abandoned
    like a hung call, and runs on until it ends or the process exits; what it ends with is
    ignored. The file is not tried again until it changes.
    """
    stage = ["import"]
    outcome = run_bounded(
        functools.partial(
            _load_source, path, source, bundled=bundled, settings=settings, stage=stage
        ),
        timeout,
        f"plugin load {path.name}",
    )
    if outcome is None:
        reason = (
            f"{stage[-1]} did not finish within {format_duration(timeout)}; skipped "
            "(PLUGIN_TIMEOUT bounds loading a plugin file too; its loading is left running "
            "in the background and the file is tried again when it changes)"
        )
        return PluginProblem(path, reason)
    if outcome.error is not None:
        raise outcome.error
    return cast("LoadedPlugin | PluginProblem", outcome.value)


def _load_source(
    path: Path,
    source: bytes,
    *,
    bundled: bool,
    settings: PluginSettings = _NO_SETTINGS,
    stage: list[str] | None = None,
) -> LoadedPlugin | PluginProblem:
    """Load ``source``, the content of ``path`` as read: no second read can differ."""
    name: str | None = None
    try:
        module = _import_file(path, source)
        obj = _plugin_object(module)
        name = _plugin_name(obj)
        execute = _method(obj, "execute", name)
        if execute is None:
            hint = (
                " (found `Execute`: Python plugins use `execute`)"
                if hasattr(obj, "Execute")
                else ""
            )
            raise _Refused(f"`Plugin` has no `execute` method{hint}", name)
        resolve = _method(obj, "resolve", name)
        if stage is not None:
            stage.append("configure()")
        _configure(obj, name, settings.get(name))
        if stage is not None:
            stage.append("validate_config()")
        _validate(obj, name)
    except _Refused as refused:
        return PluginProblem(path, refused.reason, refused.name or name, refused.unconfigured)
    except Exception as exc:  # a plugin object misbehaving in a way not foreseen above
        return PluginProblem(path, f"cannot be loaded: {_describe(exc)}", name)
    logger.bind(plugin=name, file=str(path)).debug("plugin loaded")
    return LoadedPlugin(
        name=name, path=path, bundled=bundled, obj=obj, execute=execute, resolve=resolve
    )


def _module_name(path: Path) -> str:
    """``metric_reader._loaded_plugins.<stem>_<hash>``: private, one per file."""
    stem = re.sub(r"\W", "_", path.stem, flags=re.ASCII)
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return f"{_MODULE_PREFIX}.{stem}_{digest}"


class _NoBytecodeLoader(importlib.machinery.SourceFileLoader):
    """Runs the source it is given: reads no ``__pycache__`` (whose validity check, by
    mtime in seconds and size, could hand back a stale version after a quick edit) and
    writes none into the plugin directory."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_code(self, fullname: str) -> CodeType:
        return self.source_to_code(self._source, self.path)

    def set_data(self, path: str, data: bytes, *, _mode: int = 0o666) -> None:
        pass


def _import_file(path: Path, source: bytes) -> ModuleType:
    name = _module_name(path)
    loader = _NoBytecodeLoader(name, str(path), source)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise _Refused("cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs (dataclasses and pickle look the module up), under the
    # private name only, so that a json.py never stands in for the standard library.
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        raise _Refused(_syntax_reason(exc, path)) from None
    except ImportError as exc:
        raise _Refused(f"import failed{_where(exc, path)}: {_describe(exc)}") from None
    except _ctrl_c():
        raise  # Ctrl-C during start-up stops the program, as it should
    except BaseException as exc:  # SystemExit too: a plugin must not stop the service
        raise _Refused(f"raised {_describe(exc)} while being imported{_where(exc, path)}") from None
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _ctrl_c() -> tuple[type[BaseException], ...]:
    """What to let through while loading plugin code: ``KeyboardInterrupt`` where it can be
    a real Ctrl-C (the main thread, with Python's own SIGINT handler). Elsewhere (a reload in
    a worker thread, or the service's start-up, where SIGINT is a clean stop and raises
    nothing) a plugin raised it, and it is that plugin file's problem like any other."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        return (KeyboardInterrupt,)
    return ()


def _syntax_reason(exc: SyntaxError, path: Path) -> str:
    where = ""
    if exc.filename and Path(exc.filename) != path:
        where += f" in {exc.filename}"
    if exc.lineno:
        where += f" at line {exc.lineno}"
    return f"syntax error{where}: {exc.msg}"


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N)``: the last line of the plugin file in the traceback, if any."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _plugin_object(module: ModuleType) -> object:
    if not hasattr(module, "Plugin"):
        raise _Refused("no module-level `Plugin` (expected e.g. `Plugin = MyPlugin()`)")
    obj: object = module.Plugin
    if isinstance(obj, type):
        try:
            obj = obj()
        except _ctrl_c():
            raise
        except BaseException as exc:
            raise _Refused(
                f"`Plugin` is a class and creating it with no arguments failed: {_describe(exc)}"
            ) from None
    return obj


def _plugin_name(obj: object) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name.strip():
        return name
    if name is None:
        raise _Refused('`Plugin` has no `name` (add e.g. `name = "my_plugin"`)')
    hint = '; write `name = "..."`, not a method' if callable(name) else ""
    raise _Refused(f"`Plugin.name` must be a non-empty string, got {name!r}{hint}")


def _method(obj: object, method: str, name: str) -> _Callable | None:
    """How to call ``Plugin.<method>``; None when there is none."""
    fn = getattr(obj, method, None)
    if fn is None:
        return None
    if not callable(fn):
        raise _Refused(f"`Plugin.{method}` is not callable (got {type(fn).__name__})", name)
    # an object with an ``async def __call__`` counts as async too
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    return _Callable(fn, is_async, _accepts_event(fn, method, name))


def _accepts_event(fn: Callable[..., object], method: str, name: str) -> bool:
    """True when ``fn`` can take ``event=`` (a parameter of that name, or ``**kwargs``)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to inspect: call it the classic way
        return False
    try:
        signature.bind(*_PROBE_ARGS, event=None)
        return True
    except TypeError:
        pass
    try:
        signature.bind(*_PROBE_ARGS)
    except TypeError as exc:
        raise _Refused(
            f"`Plugin.{method}{signature}` cannot be called as "
            f"{method}(metric_name, value, threshold, duration): {exc}",
            name,
        ) from None
    return False


def _configure(obj: object, name: str, table: Mapping[str, Any] | None) -> None:
    """Hand a ``[plugins.NAME]`` table of the rule file to ``configure(settings)``."""
    if table is None:
        return
    configure = getattr(obj, "configure", None)
    if not callable(configure):
        raise _Refused(
            f"the rule file has a [plugins.{name}] table but the plugin has no "
            "configure(settings) method to take it",
            name,
        )
    try:
        configure(dict(table))
    except _ctrl_c():
        raise
    except BaseException as exc:
        raise _Refused(
            f"configure() refused its [plugins.{name}] settings: {_describe(exc)}",
            name,
            unconfigured=True,
        ) from None


def _validate(obj: object, name: str) -> None:
    validate = getattr(obj, "validate_config", None)
    if validate is None:
        return
    if not callable(validate):
        raise _Refused("`Plugin.validate_config` is not callable", name)
    try:
        result = validate()
    except _ctrl_c():
        raise
    except BaseException as exc:
        raise _Refused(
            f"validate_config() refused: {_describe(exc)}", name, unconfigured=True
        ) from None
    if inspect.iscoroutine(result):
        result.close()
        raise _Refused("validate_config() must be a plain `def`, not `async def`", name)


# --- trust: who may change a plugin file --------------------------------------------------

_REMEDY = (
    "plugins are code: like sshd's key files, they and their directories must belong to "
    "root or the service's user and be writable only by their owner (chown, chmod go-w), "
    "or set PLUGIN_DIR_INSECURE=true for development"
)


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _read_only_mount(path: str) -> bool:
    """Whether ``path`` is on a file system mounted read-only: then no one can write it.

    Kubernetes mounts ConfigMap, Secret and projected volumes read-only into containers;
    the volume's own root directory is mode 0777 (1777 on tmpfs), harmless there.
    """
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _finding(path: str, st: os.stat_result, what: str) -> str | None:
    """Why someone other than root or us could change ``path``; None when no one can."""
    me = os.geteuid()
    if st.st_uid not in (0, me):
        owners = "root" if me == 0 else f"root or {_user(me)}, which runs the service"
        return f"{what} is owned by {_user(st.st_uid)}, not by {owners}"
    loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if loose and not _read_only_mount(path):
        who = {stat.S_IWGRP: "group-writable", stat.S_IWOTH: "world-writable"}.get(
            loose, "group- and world-writable"
        )
        return f"{what} is {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _dir_finding(directory: Path, real: str, st: os.stat_result) -> str | None:
    shown = str(directory) if real == str(directory) else f"{directory} (really {real})"
    found = _finding(real, st, f"PLUGIN_DIR {shown}")
    return None if found is None else f"{found}, so others could add or replace plugins"


def _file_finding(entry: Path, real: str, st: os.stat_result, real_dir: str) -> str | None:
    """Why the file behind ``entry`` (``st``: its stat) could be changed by others.

    Symlinks are followed: the real file is checked, and so is every directory a symlink on
    the way lives in and every directory from the real file up to ``PLUGIN_DIR`` (outside
    ``PLUGIN_DIR``: the real file's own directory), since whoever can write a directory can
    replace what is in it. ``PLUGIN_DIR`` itself is checked on its own (:func:`_dir_finding`).

    In a Kubernetes ConfigMap volume ``name.py -> ..data/name.py``, ``..data ->
    ..2024_01_01_...`` (mode 0755, made by kubelet's atomic writer) and the real file is
    mode 0644 (``defaultMode``), all owned by root: accepted. The volume root is 0777 but
    mounted read-only, which :func:`_finding` takes into account.
    """
    # A relative PLUGIN_DIR is no symlink: compare with the absolute path of the entry.
    followed = real != os.path.abspath(entry)
    what = f"the file {real} (where {entry.name} leads)" if followed else "the file"
    found = _finding(real, st, what)
    if found is not None:
        return found
    for directory in _directories_around(entry, real, real_dir):
        try:
            dir_st = os.stat(directory)
        except OSError as exc:
            return f"cannot check the directory {directory}: {_describe(exc)}"
        found = _finding(directory, dir_st, f"the directory {directory} holding {entry.name}")
        if found is not None:
            return found
    return None


def _directories_around(entry: Path, real: str, real_dir: str) -> list[str]:
    """The directories whose writers could change what ``entry`` leads to."""
    found: list[str] = []
    hop = str(entry)
    for _ in range(40):  # the kernel's own limit on symlinks followed
        if not os.path.islink(hop):
            break
        where = os.path.realpath(os.path.dirname(hop))
        found.append(where)
        try:
            hop = os.path.join(where, os.readlink(hop))
        except OSError:
            break
    parent = os.path.dirname(real)
    if os.path.commonpath([parent, real_dir]) == real_dir:
        while parent != real_dir:
            found.append(parent)
            parent = os.path.dirname(parent)
    else:
        found.append(parent)
    return [d for d in dict.fromkeys(found) if d != real_dir]


# --- watching PLUGIN_DIR ------------------------------------------------------------------

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
class _Scan:
    """What one look at ``PLUGIN_DIR`` found (made in a worker thread, applied on the loop)."""

    error: str | None = None
    dir_key: _DirKey | None = None
    dir_problem: PluginProblem | None = None
    loaded: dict[str, _Entry] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)


@dataclass
class _Composition:
    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]
    overrides: list[LoadedPlugin]
    hidden: list[tuple[str, PluginProblem]]


class _DirWatcher:
    """What each ``PLUGIN_DIR`` file was when it was loaded, and what came of it."""

    def __init__(
        self,
        directory: Path,
        *,
        insecure: bool,
        bundled: dict[str, LoadedPlugin],
        bundled_problems: list[PluginProblem],
        settings: PluginSettings = _NO_SETTINGS,
        load_timeout: float = 0.0,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.load_timeout = load_timeout or LOAD_TIMEOUT
        self.insecure = insecure
        self.bundled = dict(bundled)
        self.bundled_problems = list(bundled_problems)
        self.entries: dict[str, _Entry] = {}
        self.dir_key: _DirKey | None = None
        self.dir_problem: PluginProblem | None = None
        self.listing_error: str | None = None
        self.lock: anyio.Lock | None = None

    def scan(self) -> _Scan:
        """List ``PLUGIN_DIR``, load what is new or changed. Blocking: not on the loop."""
        now_ns = time.time_ns()
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
            return _Scan(error=describe_dir_error(self.directory, exc))
        dir_key = _DirKey(real_dir, dir_st.st_dev, dir_st.st_ino, dir_st.st_mode, dir_st.st_uid)
        everything = dir_key != self.dir_key
        dir_reason = None
        finding = _dir_finding(self.directory, real_dir, dir_st)
        if finding is not None and self.insecure:
            if everything:
                logger.bind(dir=str(self.directory)).warning(
                    "PLUGIN_DIR_INSECURE: using PLUGIN_DIR although {}", finding
                )
        elif finding is not None:
            dir_reason = f"refused: {finding}; {_REMEDY}"
        scan = _Scan(
            dir_key=dir_key,
            dir_problem=None if dir_reason is None else PluginProblem(self.directory, dir_reason),
        )
        loading: dict[str, ThreadJob] = {}
        for name in names:
            entry = self.entries.get(name)
            if entry is not None and not everything:
                seen = entry.unchanged_since(now_ns)
                if seen is not None:
                    if seen != entry.seen_ns:
                        scan.confirmed[name] = seen
                    continue
            # All at once: a file whose loading hangs delays no other by more than nothing.
            load = functools.partial(self._load, self.directory / name, real_dir, dir_reason)
            loading[name] = ThreadJob(load, f"plugin load {name}")
        for name, job in loading.items():
            outcome = job.wait_blocking(None)  # each load is bounded: see _load_bounded
            assert outcome is not None
            if outcome.error is not None:
                raise outcome.error
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
            problem = PluginProblem(path, f"cannot be read: {_describe(exc)}")
            return _Entry(path, _stat_signature(path), None, seen_ns, problem)
        signature = _Signature.of(real, st)
        digest = hashlib.sha256(source).digest()
        finding = _file_finding(path, real, st, real_dir)
        if finding is not None:
            if not self.insecure:
                problem = PluginProblem(path, f"refused: {finding}; {_REMEDY}")
                return _Entry(path, signature, digest, seen_ns, problem)
            logger.bind(file=str(path)).warning(
                "PLUGIN_DIR_INSECURE: loading {} although {}", path, finding
            )
        result = _load_bounded(
            path, source, bundled=False, settings=self.settings, timeout=self.load_timeout
        )
        return _Entry(path, signature, digest, seen_ns, result)

    def absorb(self, scan: _Scan) -> list[_Entry]:
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
        load hides the bundled plugin of its name; but what is in use wins: a file giving
        the name of a plugin in use from another file is refused alone, and a bundled plugin
        in use stays when a broken replacement appears.
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
        user: dict[str, LoadedPlugin] = {}
        for name, same in by_name.items():
            if len(same) == 1:
                user[name] = same[0]
                continue
            incumbent = current.get(name)
            keep = next(
                (
                    p
                    for p in same
                    if incumbent is not None and not incumbent.bundled and p.path == incumbent.path
                ),
                None,
            )
            for plugin in same:
                if plugin is keep:
                    continue
                if keep is not None:
                    reason = (
                        f"plugin name {name!r} is already given by {keep.path}, which stays "
                        "in service; this file is refused"
                    )
                else:
                    others = ", ".join(str(o.path) for o in same if o is not plugin)
                    reason = f"plugin name {name!r} is also given by {others}; both are refused"
                problems.append(PluginProblem(plugin.path, reason, name))
            if keep is not None:
                user[name] = keep
        plugins = dict(self.bundled)
        overrides = [plugin for name, plugin in user.items() if name in plugins]
        plugins.update(user)
        kept_problems = [p for p in self.bundled_problems if (p.name or p.path.stem) not in user]
        hidden: list[tuple[str, PluginProblem]] = []
        for problem in problems:
            name = problem.name or problem.path.stem
            plugin = plugins.get(name)
            if plugin is not None and plugin.bundled and current.get(name) is not plugin:
                del plugins[name]
                hidden.append((name, problem))
        if self.dir_problem is not None:
            problems.append(self.dir_problem)
        return _Composition(plugins, kept_problems + problems, overrides, hidden)


async def _off_the_loop(func: Callable[[], _T], name: str) -> _T:
    """Run ``func`` in a daemon thread (plugin code may hang): cancelling stops the wait."""
    job = ThreadJob(func, name)
    try:
        outcome = await job.wait()
    finally:
        job.abandon()
    if outcome.error is not None:
        raise outcome.error
    return cast(_T, outcome.value)
