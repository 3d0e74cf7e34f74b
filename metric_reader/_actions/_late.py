"""A call given up at its timeout while its code runs on: how it ends.

A plain ``def`` cannot be stopped, nor can an ``async def`` that ignores its cancellation or
waits for a thread: given up at ``PLUGIN_TIMEOUT``, such a call may still do its action.
Were it retried at once, the action could run twice, at the same time. So the caller does
not settle the call at its timeout: it waits (:meth:`LateCall.ended`) until the code has
returned, and settles the call as it went (an action done late is done, not retried), or
until the call is *declared lost*: still running ``PLUGIN_TIMEOUT`` after its timeout
(twice ``PLUGIN_TIMEOUT`` after it started). Only then may a retry run while it does.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import anyio

from .._core import format_duration
from ._jobs import Job
from ._result import Outcome, describe

if TYPE_CHECKING:
    from loguru import Logger


class LateCall:
    """A timed-out call whose code may still be running; ``log`` carries the call's fields."""

    def __init__(self, job: Job, method: str, timeout: float, log: Logger) -> None:
        self.job = job
        self.method = method
        self.timed_out_at = time.monotonic()
        self.lost_at = self.timed_out_at + timeout
        """When it is declared lost if it still runs: one more ``timeout``."""
        self._timeout = timeout
        self._log = log

    async def ended(self) -> bool:
        """Wait until the code returns or the call is declared lost; True when it returned
        without an error: the action was done after all, late."""
        with anyio.move_on_after(max(0.0, self.lost_at - time.monotonic())):
            return self._settled(await self.job.wait())
        self._declare_lost()
        return False

    def _late(self) -> str:
        return format_duration(round(time.monotonic() - self.timed_out_at, 3))

    def _settled(self, outcome: Outcome) -> bool:
        error = outcome.error
        if error is None:
            self._log.warning(
                "{} returned {} after its timeout: done, not run again", self.method, self._late()
            )
            return True
        if isinstance(error, asyncio.CancelledError) and self.job.cancel_requested:
            self._log.debug("{} ended at its cancellation", self.method)
        else:
            self._log.warning(
                "{} failed {} after its timeout: {}", self.method, self._late(), describe(error)
            )
        return False

    def _declare_lost(self) -> None:
        self._log.warning(
            "{} declared lost: still running {} after its timeout; a retry may run while it does",
            self.method,
            format_duration(self._timeout),
        )

        def ended(job: Job) -> None:
            outcome = "returned" if job.outcome is None or job.outcome.error is None else "failed"
            self._log.warning(
                "{} (declared lost) {} {} after its timeout", self.method, outcome, self._late()
            )

        self.job.on_finish(ended)
