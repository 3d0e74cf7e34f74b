"""The last few evaluations of a series, for the status page's sparklines.

A fixed-size ring per series, kept only for a few series of each rule
(``RECENT_SERIES_PER_RULE``: the first seen, and those that go pending or firing take the
place of calm ones), so memory stays bounded whatever a rule reads: 24 bytes an
evaluation (two floats and a reference to the state), ``recent_length`` evaluations a
series.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from typing import Generic, TypeVar

S = TypeVar("S")

RECENT_EVALUATIONS = 120
RECENT_SECONDS = 600.0
RECENT_SERIES_PER_RULE = 50
"""Series of one rule that keep their recent evaluations (the status page draws them)."""
RECENT_SERIES_OVERALL = 2000
"""Series of all rules together that keep them: about 6 MB at most, however many rules."""


def recent_shares(rules: int) -> list[int]:
    """How many series each of ``rules`` rules keeps recent evaluations of: an equal share
    of ``RECENT_SERIES_OVERALL``, at most ``RECENT_SERIES_PER_RULE``; with more rules than
    that, one each for the first ones, none for the rest."""
    share = min(RECENT_SERIES_PER_RULE, RECENT_SERIES_OVERALL // max(rules, 1))
    if share:
        return [share] * rules
    return [1] * RECENT_SERIES_OVERALL + [0] * (rules - RECENT_SERIES_OVERALL)


def recent_length(polling_interval: float) -> int:
    """Evaluations kept a series: the last ``RECENT_SECONDS``, at most ``RECENT_EVALUATIONS``."""
    if not polling_interval > 0:
        return RECENT_EVALUATIONS
    return max(2, min(RECENT_EVALUATIONS, math.ceil(RECENT_SECONDS / polling_interval)))


def recent_window(polling_interval: float) -> float:
    """The seconds those evaluations span: about ``RECENT_SECONDS``, less when polling is
    faster than every 5 s, more when it is slower than every 5 minutes (two polls)."""
    return recent_length(polling_interval) * max(polling_interval, 0.0) or RECENT_SECONDS


class Recent(Generic[S]):
    """A ring of ``(time, value, state)``: the newest ``length`` evaluations of a series.

    ``value`` is what was read (NaN: nothing was, this evaluation); ``state`` the series'
    state after the evaluation (``SeriesMachine`` records the worse of its levels)."""

    __slots__ = ("_next", "_size", "_states", "_times", "_values")

    def __init__(self, length: int, initial: S) -> None:
        self._times = array("d", bytes(8 * length))
        self._values = array("d", bytes(8 * length))
        self._states: list[S] = [initial] * length
        self._next = 0
        self._size = 0

    def add(self, now: float, value: float | None, state: S) -> None:
        at = self._next
        self._times[at] = now
        self._values[at] = math.nan if value is None else value
        self._states[at] = state
        self._next = (at + 1) % len(self._states)
        self._size = min(self._size + 1, len(self._states))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[tuple[float, float, S]]:
        """Oldest first."""
        length = len(self._states)
        first = (self._next - self._size) % length
        for k in range(self._size):
            at = (first + k) % length
            yield self._times[at], self._values[at], self._states[at]
