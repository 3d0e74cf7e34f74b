"""An asyncio event loop on a virtual clock, for tests of the live service's timing."""

from __future__ import annotations

import asyncio
from typing import Any


class JumpingSelector:
    """A selector that, when nothing is ready, moves the loop's virtual clock to the next
    timer instead of waiting for it. Sockets and threads still wake it (a short real wait
    first), but no real time passes on the loop's clock."""

    def __init__(self, real: Any, loop: VirtualClockLoop) -> None:
        self.real, self.loop = real, loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def select(self, timeout: float | None = None) -> Any:
        wait = self.loop.real_wait
        events = self.real.select(wait if timeout is None or timeout > 0 else 0)
        if not events and timeout is not None:
            self.loop.virtual += timeout
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock: a minute of polling runs in a moment, every time
    exact."""

    real_wait = 0.02
    """Seconds of real time the loop waits for a socket or a thread before it moves the
    virtual clock on: 0 for a test whose service uses neither (a fetch the test answers,
    no plugin), which then runs as fast as the code."""

    def __init__(self) -> None:
        super().__init__()
        self.virtual = 0.0
        self._selector = JumpingSelector(self._selector, self)  # type: ignore[assignment]

    def time(self) -> float:
        return self.virtual
