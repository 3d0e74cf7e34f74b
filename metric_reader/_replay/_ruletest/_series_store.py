"""The input series of a rule unit test, in memory, read as a rule reads a Prometheus: the
value of each series a selector matches at an instant, with Prometheus' lookback.

A series has a value at ``t`` when its latest sample at or before ``t`` is less than the
lookback delta (5 minutes) old and is not a staleness marker. Prometheus 3 leaves out a
sample exactly 5 minutes old; Prometheus 2 (and so promtool 2.x) keeps it: see
``lookback_includes_start``. Matching is the service's own (``Selector.matches``: RE2,
anchored), so a rule sees here what it would see live.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ..._core import Sample, Selector, labels_of
from ._model import InputSeries
from ._series_desc import Stale

__all__ = ["LOOKBACK_DELTA", "SeriesStore"]

LOOKBACK_DELTA = 300.0
"""Seconds: Prometheus' default ``--query.lookback-delta``."""


class _Stored(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    labels: Mapping[str, str]
    times: list[int]
    """Milliseconds from 0, rising: Prometheus' timestamps are whole milliseconds."""
    values: list[float | Stale]


class SeriesStore:
    def __init__(
        self,
        series: Iterable[InputSeries],
        interval: float,
        *,
        lookback: float = LOOKBACK_DELTA,
        lookback_includes_start: bool = False,
    ) -> None:
        """``series`` sampled every ``interval`` seconds from time 0."""
        self._lookback_ms = _milliseconds(lookback)
        self._includes_start = lookback_includes_start
        self._by_name: dict[str, list[_Stored]] = {}
        for one in sorted(series, key=lambda s: sorted(s.labels.items())):
            samples = one.samples(interval)
            stored = _Stored(
                one.labels,
                [_milliseconds(time) for time, _ in samples],
                [value for _, value in samples],
            )
            self._by_name.setdefault(one.labels.get("__name__", ""), []).append(stored)

    def select(self, selector: Selector, at: float) -> list[Sample]:
        """The value at ``at`` (seconds from 0) of each series ``selector`` matches, as a
        rule reads them (labels without ``__name__``), in the order of their labels."""
        at_ms = _milliseconds(at)
        found = []
        for stored in self._by_name.get(selector.metric_name, ()):
            if not selector.matches(stored.labels):
                continue
            value = self._value_at(stored, at_ms)
            if value is not None:
                found.append(Sample(labels_of(stored.labels), value))
        return found

    def _value_at(self, stored: _Stored, at_ms: int) -> float | None:
        latest = bisect.bisect_right(stored.times, at_ms) - 1
        if latest < 0:
            return None
        age = at_ms - stored.times[latest]
        if age > self._lookback_ms or (age == self._lookback_ms and not self._includes_start):
            return None
        value = stored.values[latest]
        return None if isinstance(value, Stale) else value


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)
