"""Calling a loaded plugin: each call bounded in time, whatever the plugin blocks on.

The plugin code runs elsewhere (see :mod:`._jobs`); the caller waits at most the timeout,
counted from when the code starts (a plain ``def`` may first wait its turn for a thread,
see :mod:`._threads`), then gives the call up. A plugin that keeps piling up calls still
running after their timeout is refused more, so a hung plugin cannot take every thread.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from .._core import (
    ActionPlugin,
    Event,
    Method,
    PluginFailure,
    PluginTimeout,
    format_duration,
    logger,
)
from ._jobs import WEDGED_AFTER, Job, LoopJob, PluginLoop, ThreadJob
from ._result import EntryPointOrigin, Outcome, describe

_MAX_STUCK_THREADS = 4  # a plugin with this many abandoned calls still running gets no more


@dataclass(frozen=True)
class PluginMethod:
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
        obj: ActionPlugin,
        execute: PluginMethod,
        resolve: PluginMethod | None,
        entry_point: EntryPointOrigin | None = None,
        code: bytes | None = None,
        made_of: str | None = None,
    ) -> None:
        self.name = name
        self.path = path
        """The plugin's file; for an entry point's, the file of the module it names."""
        self.bundled = bundled
        self.entry_point = entry_point
        self.code = code
        """A file's content as it was loaded (None for an entry point's): what a plugin
        made of this one runs, whatever the file holds by then."""
        self.made_of = made_of
        """The plugin this one is made of (``[plugins.NAME]`` with ``plugin = "BASE"``)."""
        self.obj = obj  # the ``Plugin`` object itself
        self._methods: dict[str, PluginMethod] = {"execute": execute}
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

    @property
    def from_plugin_dir(self) -> bool:
        """A ``PLUGIN_DIR`` file's: it can change while the service runs (a plugin made of
        one is made again only when the configuration is loaded)."""
        return not self.bundled and self.entry_point is None and self.made_of is None

    @property
    def origin(self) -> str:
        """``bundled``, ``PLUGIN_DIR`` or ``entry point mr-slack 1.2.0``; for a plugin made
        of another, ``exec_action (bundled)``."""
        if self.entry_point is not None:
            origin = f"entry point {self.entry_point.package}"
        else:
            origin = "bundled" if self.bundled else "PLUGIN_DIR"
        return origin if self.made_of is None else f"{self.made_of} ({origin})"

    @property
    def source(self) -> str:
        """Where its code is, for people: the file, and the entry point if it has one (and
        the plugin it is made of)."""
        where = str(self.path) if self.entry_point is None else f"{self.entry_point}, {self.path}"
        return where if self.made_of is None else f"{where} (made of {self.made_of})"

    def __repr__(self) -> str:
        return f"<LoadedPlugin {self.name!r} from {self.source} ({self.origin})>"

    async def call(
        self,
        method: Method,
        event: Event,
        timeout: float,
        *,
        abandoned: Callable[[Job], object] | None = None,
    ) -> None:
        """Run ``method(metric_name, value, threshold, duration[, event=event])``.

        Returns when it succeeded. Raises :class:`PluginTimeout` once the plugin's code has
        run ``timeout`` seconds, whatever it does (see :mod:`._jobs`); the wait for a thread
        before that does not count. Raises :class:`PluginFailure` for anything the plugin
        raised. The caller's own cancellation is never turned into a failure. ``resolve`` on
        a plugin without one does nothing. ``abandoned``: told of the job given up at the
        timeout (or at the caller's cancellation), which may still be running.
        """
        import anyio  # here: loading a plugin (``check``) needs no event loop
        from anyio.lowlevel import checkpoint_if_cancelled

        from ._threads import thread_slot

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
        with anyio.CancelScope() as scope:  # its deadline is set once the code starts
            if target.is_async:
                scope.deadline = anyio.current_time() + timeout
                outcome = await self._run(method, self._on_loop(method, call), abandoned)
            else:
                thread_name = f"plugin {self.name} {method}"
                async with thread_slot(self.name, method):
                    scope.deadline = anyio.current_time() + timeout
                    outcome = await self._run(
                        method, lambda: ThreadJob(call, thread_name), abandoned
                    )
                result = outcome.value
                if outcome.error is None and inspect.isawaitable(result):
                    outcome = await self._run(
                        method, self._on_loop(method, lambda: result), abandoned
                    )
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

    async def _run(
        self, method: str, start: Callable[[], Job], abandoned: Callable[[Job], object] | None
    ) -> Outcome:
        """Start a job and wait for it; if the wait is given up, the job is abandoned."""
        job = start()
        try:
            return await job.wait()
        except BaseException:  # the timeout, or the caller's cancellation
            if abandoned is not None:
                abandoned(job)
            raise
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
            f"plugin {self.name!r} {method} failed: {describe(exc)}",
            plugin=self.name,
            method=method,
        )

    def _timeout(self, method: str, timeout: float) -> PluginTimeout:
        return PluginTimeout(
            f"plugin {self.name!r} {method} timed out after {format_duration(timeout)}",
            plugin=self.name,
            method=method,
        )
