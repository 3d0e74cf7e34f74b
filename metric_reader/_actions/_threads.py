"""The worker threads of plain-``def`` plugin calls, and the queue of calls waiting for one.

At most :data:`PLUGIN_THREADS` such calls run at once; more wait their turn, first come
first served, however long that takes: a call's ``PLUGIN_TIMEOUT`` starts once it has a
thread, so an alert storm does not time out the calls it queued. A slot is held for at
most ``PLUGIN_TIMEOUT`` (a call given up at its timeout frees it, its thread left to run
on), so the queue always moves. It is bounded: a call that finds :data:`QUEUE_LIMIT` calls
waiting is refused, not started, and retried like any failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from anyio.lowlevel import RunVar

from .._core import PluginFailure

PLUGIN_THREADS = 32
"""Plain-``def`` plugin calls running at once."""

QUEUE_LIMIT = 10_000
"""Plain-``def`` plugin calls that may wait for a thread at once (Prometheus' notifier
queue holds as many alerts)."""

_limiter: RunVar[anyio.CapacityLimiter] = RunVar("metric_reader_plugin_threads")


class _Queue:
    """The calls waiting for a thread now, in every event loop: ``/metrics`` and the status
    read it from wherever they run."""

    waiting = 0


def queued_calls() -> int:
    """Plain-``def`` plugin calls waiting for a thread now."""
    return _Queue.waiting


@contextlib.asynccontextmanager
async def thread_slot(plugin: str, method: str) -> AsyncIterator[None]:
    """Hold one of the plugin threads, waiting in the queue for it if none is free; raise
    :class:`PluginFailure` (the call is not started) when the queue is full."""
    limiter = _thread_limiter()
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        if _Queue.waiting >= QUEUE_LIMIT:
            raise PluginFailure(
                f"plugin {plugin!r} {method} not started: the queue for a plugin thread is "
                f"full ({_Queue.waiting} calls wait)",
                plugin=plugin,
                method=method,
            ) from None
        _Queue.waiting += 1
        try:
            await limiter.acquire()
        finally:
            _Queue.waiting -= 1
    try:
        yield
    finally:
        limiter.release()


def _thread_limiter() -> anyio.CapacityLimiter:
    """The plugin threads' own limiter (one per event loop): they never starve anyio's."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(PLUGIN_THREADS)
        _limiter.set(limiter)
        return limiter
