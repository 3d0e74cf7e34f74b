"""Moving a time between the monotonic clock and the wall clock.

The service keeps every time on the monotonic clock, which cannot go back but has no
meaning outside the process. People, other programs and the state file need wall-clock
times. Both conversions read the two clocks at one moment (``now_mono``, ``now_wall``) and
carry the distance from it over. ``loop_time`` is the monotonic clock as the event loop
keeps it.
"""

from __future__ import annotations

from asyncio import get_running_loop


def to_wall(mono: float, now_mono: float, now_wall: float) -> float:
    """The wall-clock time (seconds since the epoch) of the monotonic time ``mono``."""
    return now_wall - (now_mono - mono)


def to_mono(wall: float, now_mono: float, now_wall: float) -> float:
    """The monotonic time of the wall-clock time ``wall``."""
    return now_mono - (now_wall - wall)


def loop_time() -> float:
    """The running event loop's clock: what ``anyio.current_time()`` reads, without its
    look-up of the async library at each call (the service runs on asyncio; a test's
    virtual clock is its loop's ``time``). For code that runs many times a poll."""
    return get_running_loop().time()
