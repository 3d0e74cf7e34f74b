"""Moving a time between the monotonic clock and the wall clock.

The service keeps every time on the monotonic clock, which cannot go back but has no
meaning outside the process. People, other programs and the state file need wall-clock
times. Both conversions read the two clocks at one moment (``now_mono``, ``now_wall``) and
carry the distance from it over.
"""

from __future__ import annotations


def to_wall(mono: float, now_mono: float, now_wall: float) -> float:
    """The wall-clock time (seconds since the epoch) of the monotonic time ``mono``."""
    return now_wall - (now_mono - mono)


def to_mono(wall: float, now_mono: float, now_wall: float) -> float:
    """The monotonic time of the wall-clock time ``wall``."""
    return now_mono - (now_wall - wall)
