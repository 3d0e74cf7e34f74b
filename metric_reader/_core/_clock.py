"""Moving a time between the monotonic clock and the wall clock.

The service keeps every time on the monotonic clock, which cannot go back but has no
meaning outside the process. People, other programs and the state file need wall-clock
times. Both conversions read the two clocks at one moment (``now_mono``, ``now_wall``) and
carry the distance from it over. ``wall_at`` reads the wall clock for such a moment so
that a time converted twice gives the same stamp. ``loop_time`` is the monotonic clock as
the event loop keeps it.
"""

from __future__ import annotations

import time
from asyncio import get_running_loop

# How far the distance between the clocks must move before ``wall_at`` takes it afresh:
# more than a read of the two clocks a moment apart wavers by on a busy machine, less
# than a step of the wall clock anyone would notice.
_STEP = 0.25
_distance: list[float] = []  # wall minus monotonic, as ``wall_at`` last took it


def to_wall(mono: float, now_mono: float, now_wall: float) -> float:
    """The wall-clock time (seconds since the epoch) of the monotonic time ``mono``."""
    return now_wall - (now_mono - mono)


def to_mono(wall: float, now_mono: float, now_wall: float) -> float:
    """The monotonic time of the wall-clock time ``wall``."""
    return now_mono - (now_wall - wall)


def wall_at(now_mono: float) -> float:
    """The wall-clock time at the monotonic time ``now_mono``, read just now.

    Reading the two clocks one after the other puts a little of the time between the
    reads into their distance, and a stamp to the millisecond of ``to_wall`` would waver
    from one document (or scrape) to the next. So the distance is kept while it moves by
    less than ``_STEP`` and taken afresh beyond, when the wall clock was set.
    """
    distance = time.time() - now_mono
    if not _distance:
        _distance.append(distance)
    elif abs(distance - _distance[0]) >= _STEP:
        _distance[0] = distance
    return now_mono + _distance[0]


def loop_time() -> float:
    """The running event loop's clock: what ``anyio.current_time()`` reads, without its
    look-up of the async library at each call (the service runs on asyncio; a test's
    virtual clock is its loop's ``time``). For code that runs many times a poll."""
    return get_running_loop().time()
