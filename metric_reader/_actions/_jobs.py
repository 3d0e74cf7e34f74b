"""Running plugin code off the service's event loop, so that a deadline can always give up.

Plugin code may hang in ways nothing can interrupt: a plain ``def`` blocked in a system
call, an ``async def`` awaiting ``anyio.to_thread.run_sync`` (not cancellable unless asked)
or ``loop.run_in_executor``, an ``async def`` that blocks its own event loop, an import that
never finishes. Had the service awaited such code on its own loop, a timeout would have to
wait for it to notice the cancellation, which it never does.

So plugin code never runs on the service's loop. A plain ``def`` (and the import of a plugin
file) runs in a daemon thread of its own (:class:`ThreadJob`); an ``async def`` runs as a
task on an event loop that belongs to its plugin, in a daemon thread (:class:`PluginLoop`).
Either way the caller only waits for a :class:`Job` to report, and can stop waiting at any
moment: the job is then *abandoned*. An abandoned ``async def`` is cancelled; a thread cannot
be, and runs on until it returns or the process exits. Its outcome is ignored.

Threads that the plugin code starts itself (an executor's, anyio's worker threads) are not
daemon threads, and Python waits for them at exit without limit: :func:`threads_holding_exit`
says when the process must end with ``os._exit`` instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._core import logger
from ._result import Outcome

if TYPE_CHECKING:
    import asyncio  # imported where a loop is used: loading plugins (``check``) needs none

WEDGED_AFTER = 1.0
"""A plugin's event loop that has not run a callback for this long (seconds) while a new
call is due is taken to be blocked: the call gets a new event loop."""

CANCEL_NOTICE = 1.0
"""An ``async def`` that is still running this long after its cancellation is logged."""

_live: set[Job] = set()
_live_lock = threading.Lock()


class Job:
    """One run of plugin code elsewhere; :meth:`wait` from the event loop of the caller."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.finished = threading.Event()
        self.outcome: Outcome | None = None
        self.cancel_requested = False
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Job], None]] = []
        with _live_lock:
            _live.add(self)

    def on_finish(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` when the job ends (at once if it has), in any thread."""
        with self._lock:
            if not self.finished.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    async def wait(self) -> Outcome:
        """Wait for the outcome; cancelling the wait leaves the job running (see
        :meth:`abandon`)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def report(job: Job) -> None:
            assert job.outcome is not None
            with contextlib.suppress(RuntimeError):  # that loop is closed: no one waits
                loop.call_soon_threadsafe(_resolve, future, job.outcome)

        self.on_finish(report)
        return await future

    def wait_blocking(self, timeout: float | None) -> Outcome | None:
        """For a caller without an event loop: the outcome, or None after ``timeout``."""
        if not self.finished.wait(timeout):
            return None
        return self.outcome

    def abandon(self) -> bool:
        """Stop caring about the job: cancel it if it can be. True when it still runs."""
        self.cancel_requested = True
        self._cancel()
        return not self.finished.is_set()

    def _cancel(self) -> None:
        """Deliver a cancellation; a thread cannot take one."""

    def _finish(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcome = outcome
            self.finished.set()
            callbacks, self._callbacks = self._callbacks, []
        with _live_lock:
            _live.discard(self)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # a report must never kill the thread reporting it
                logger.opt(exception=True).debug("reporting the end of {} failed", self.name)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


class ThreadJob(Job):
    """``func()`` in a daemon thread of its own, with the context (log fields) of the
    caller; started at once."""

    def __init__(self, func: Callable[[], object], name: str) -> None:
        super().__init__(name)
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(self._run, func), name=name)
        thread.daemon = True
        thread.start()

    def _run(self, func: Callable[[], object]) -> None:
        try:
            outcome = Outcome(value=func())
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: the caller decides
            outcome = Outcome(error=exc)
        self._finish(outcome)


def run_bounded(func: Callable[[], object], timeout: float, name: str) -> Outcome | None:
    """``func()`` in a daemon thread; its outcome, or None when it did not end in time
    (the thread is then left to finish on its own). For callers without an event loop."""
    return ThreadJob(func, name).wait_blocking(timeout)


class LoopJob(Job):
    """One ``async def`` call as a task on a :class:`PluginLoop`."""

    def __init__(self, owner: PluginLoop, make: Callable[[], Awaitable[object]], name: str) -> None:
        super().__init__(name)
        self.loop = owner  # the PluginLoop it runs on
        self._make = make
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """In the plugin's loop: create the task (the callback carries the caller's context)."""
        import asyncio

        if self.cancel_requested:
            self._finish(Outcome(error=asyncio.CancelledError()))
            return
        self._task = self.loop.loop.create_task(self._run())
        self.loop.track(self._task)

    async def _run(self) -> None:
        import asyncio

        try:
            outcome = Outcome(value=await self._make())
        except asyncio.CancelledError as exc:
            # Ours (the caller gave up): let the task end cancelled. The plugin's own (it
            # raised one, or awaited something cancelled elsewhere): a failure like any other.
            outcome = Outcome(error=exc)
            if self.cancel_requested:
                self._finish(outcome)
                raise
        except BaseException as exc:  # SystemExit too: it must not stop the plugin's loop
            outcome = Outcome(error=exc)
        self._finish(outcome)

    def _cancel(self) -> None:
        self.loop.call_soon(self._cancel_in_loop)

    def _cancel_in_loop(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        self.loop.loop.call_later(CANCEL_NOTICE, self._notice_still_running)

    def _notice_still_running(self) -> None:
        if not self.finished.is_set():
            logger.bind(plugin=self.loop.plugin).warning(
                "{} is still running {}s after it was cancelled (it ignores cancellation, "
                "or waits for a thread, which cannot be cancelled); it is left to finish in "
                "the background",
                self.name,
                CANCEL_NOTICE,
            )


class PluginLoop:
    """An event loop in a daemon thread of its own, for one plugin's ``async def`` calls.

    Calls of one plugin share its loop (an ``httpx.AsyncClient`` kept between calls works),
    and no plugin can block another's loop or the service's. A loop seen blocked
    (:meth:`wedged`) is retired: it finishes the tasks it has, then its thread ends.
    """

    def __init__(self, plugin: str) -> None:
        import asyncio

        self.plugin = plugin
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._log_loop_error)
        self.retired = False
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()  # only touched in the loop's thread
        self._ping: threading.Event | None = None
        self._ping_sent = 0.0
        thread = threading.Thread(target=self._main, name=f"plugin {plugin} event loop")
        thread.daemon = True
        thread.start()

    def submit(self, make: Callable[[], Awaitable[object]], name: str) -> LoopJob:
        """Run ``await make()`` as a task of this loop, in the caller's context."""
        job = LoopJob(self, make, name)
        if not self.call_soon(job.start):
            job._finish(
                Outcome(error=RuntimeError(f"the event loop of plugin {self.plugin} is closed"))
            )
        return job

    def call_soon(self, callback: Callable[[], object]) -> bool:
        try:
            self.loop.call_soon_threadsafe(callback, context=contextvars.copy_context())
        except RuntimeError:  # closed: it was retired and has stopped
            return False
        return True

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def wedged(self) -> bool:
        """Whether a no-op callback sent to the loop has waited :data:`WEDGED_AFTER` seconds.

        One is sent at each look (when the last one has run) and whenever a call is given
        up, so a loop that blocks is found at the first call due a second after that.
        """
        ping = self._ping
        if ping is not None and not ping.is_set():
            return time.monotonic() - self._ping_sent >= WEDGED_AFTER
        self.ping()
        return False

    def ping(self) -> None:
        """Send the loop a no-op callback, unless one is still waiting."""
        if self._ping is None or self._ping.is_set():
            self._ping, self._ping_sent = threading.Event(), time.monotonic()
            self.call_soon(self._ping.set)

    def retire(self) -> None:
        """Take no more calls; stop once the running ones are done. Any thread may call."""
        self.retired = True
        self.call_soon(self._stop_if_idle)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        if self.retired and not self._tasks:
            self._stopping = True
            self.loop.stop()

    def _main(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)
        while True:
            try:
                self.loop.run_forever()
            except BaseException as exc:  # a plugin's callback raised SystemExit: go on
                logger.bind(plugin=self.plugin).warning(
                    "plugin {} event loop: a callback raised {}; ignored",
                    self.plugin,
                    type(exc).__name__,
                )
            if self._stopping:
                break
        self.loop.close()  # its default executor, if any, is shut down without waiting

    def _log_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        error = context.get("exception")
        detail = f": {type(error).__name__}: {error}" if isinstance(error, BaseException) else ""
        logger.bind(plugin=self.plugin).warning(
            "plugin {} event loop: {}{}", self.plugin, context.get("message"), detail
        )


def settle(timeout: float) -> None:
    """Give jobs that were cancelled up to ``timeout`` seconds to finish their clean-up
    (an ``async def`` in its ``finally``); jobs that cannot be cancelled are not waited for."""
    deadline = time.monotonic() + timeout
    with _live_lock:
        cancelled = [job for job in _live if job.cancel_requested and isinstance(job, LoopJob)]
    for job in cancelled:
        job.finished.wait(max(0.0, deadline - time.monotonic()))


def threads_holding_exit() -> list[str]:
    """What Python's exit would wait for without limit: plugin code still running (and the
    threads it may have started), live non-daemon threads, executor threads (joined at exit
    even when they are daemon threads, as those a plugin's event loop starts are)."""
    me = threading.current_thread()
    with _live_lock:
        held = [job.name for job in _live]
    held += [
        thread.name
        for thread in threading.enumerate()
        if thread is not me and thread.is_alive() and not thread.daemon
    ]
    executors = sys.modules.get("concurrent.futures.thread")  # not imported: none ran
    held += [
        thread.name
        for thread in list(getattr(executors, "_threads_queues", {}))
        if thread.is_alive() and thread.daemon
    ]
    return held
