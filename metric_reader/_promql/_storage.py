"""Series held in memory, as the evaluator reads them: by metric name, each series' times in
a sorted list with its values beside them (None: a staleness marker), read by bisection.

A query holds on to the series its selectors chose and chooses again only when the storage
gained series since (``generation``): evaluating a rule at every step of a long test costs
a bisection per series, not a scan of the storage.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._values import NAME, Labels


class StoredSeries:
    """One series: ``times`` (ms) rising, ``values`` beside them."""

    __slots__ = ("labels", "markers", "name", "times", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.name = dict(labels).get(NAME, "")
        self.times: list[int] = []
        self.values: list[float | None] = []
        self.markers = 0
        """How many of ``values`` are staleness markers: windows of a series without any
        are plain slices."""


class Storage:
    """Series in memory."""

    def __init__(self) -> None:
        self._series: dict[Labels, StoredSeries] = {}
        self._by_name: dict[str, list[StoredSeries]] = {}
        self.generation = 0
        """Grows with each series added: what a query's remembered selections are valid
        for."""

    def add(self, labels: Labels, times: Sequence[int], values: Sequence[float | None]) -> None:
        """A whole series; times (ms) rising; None is a staleness marker. Given again, its
        samples are merged with those held (the later given wins at the same time)."""
        if len(times) != len(values):
            raise ValueError("times and values differ in length")
        series = self._get(labels)
        if series.times and times and times[0] <= series.times[-1]:
            merged = dict(zip(series.times, series.values, strict=True))
            merged.update(zip(times, values, strict=True))
            series.times = sorted(merged)
            series.values = [merged[t] for t in series.times]
        else:
            series.times.extend(times)
            series.values.extend(values)
        series.markers = series.values.count(None)

    def append(self, labels: Labels, t: int, value: float | None) -> None:
        """One sample (None: a staleness marker) at t >= the series' latest; creates the
        series if new."""
        series = self._get(labels)
        if series.times and t <= series.times[-1]:
            if t < series.times[-1]:
                raise ValueError(f"sample at {t} older than the series' latest")
            if series.values[-1] is None:
                series.markers -= 1
            series.values[-1] = value
        else:
            series.times.append(t)
            series.values.append(value)
        if value is None:
            series.markers += 1

    def _get(self, labels: Labels) -> StoredSeries:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = StoredSeries(labels)
            self._by_name.setdefault(series.name, []).append(series)
            self.generation += 1
        return series

    def named(self, name: str) -> list[StoredSeries]:
        """The series of metric ``name``."""
        return self._by_name.get(name, [])

    def all(self) -> list[StoredSeries]:
        return list(self._series.values())
