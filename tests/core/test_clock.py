"""The wall-clock time of a monotonic moment stays the same stamp from one reading to the
next (``since`` on /api/status, ``ALERTS_FOR_STATE``), and follows the wall clock when it
is set."""

from __future__ import annotations

import pytest

from metric_reader._core import _clock, to_wall, wall_at


class _WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> _WallClock:
    clock = _WallClock(1_800_000_000.0)
    monkeypatch.setattr(_clock, "time", clock)
    monkeypatch.setattr(_clock, "_distance", [])
    return clock


def test_a_moment_converts_to_the_same_stamp_though_the_reads_waver(wall: _WallClock) -> None:
    first = to_wall(90.0, 100.0, wall_at(100.0))
    wall.now += 5.004  # read 4 ms after the monotonic clock this time
    second = to_wall(90.0, 105.0, wall_at(105.0))
    assert first == second == 1_800_000_000.0 - 10.0


def test_a_wall_clock_set_forward_is_taken_at_once(wall: _WallClock) -> None:
    assert wall_at(100.0) == 1_800_000_000.0
    wall.now += 3600.0 + 1.0  # one second passed, and the clock was set an hour forward
    assert wall_at(101.0) == 1_800_000_000.0 + 3601.0
