"""``query_range``: what a rule's read would have returned at each step of a past window.

A backtest reads a rule's query (a selector rule's selector, a ``QUERY`` rule's or an
alert's expression) over the window in one or more ``/api/v1/query_range`` requests: at
most ``MAX_POINTS`` steps each, as Prometheus refuses more (``exceeded maximum resolution
of 11,000 points per timeseries``). Prometheus evaluates the query at each step as an
instant query at that time, so each step is what the service would have read then.

What one read holds in memory is bounded: at most ``MAX_HELD_POINTS`` points over all its
requests, or the read fails saying so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx

from .._config import MAX_RESPONSE_BYTES
from .._core import FetchError, Sample, labels_of
from .._http import Attempt, Source, deadline, read_body
from ._prometheus import _decode, _loads, _metric, _value, prometheus_source

MAX_POINTS = 11_000
"""Steps per request and series Prometheus answers at most."""
MAX_HELD_POINTS = 4_000_000
"""Points (one a series and step) one read may hold, over all its requests: each takes about
100 bytes here, and the replay as much again."""


@dataclass(frozen=True, slots=True)
class RangeSeries:
    labels: Mapping[str, str]
    """Every label, ``__name__`` included."""
    points: dict[int, float]
    """Value by time in milliseconds."""


def evaluation_times(start: float, end: float, step: float) -> list[float]:
    """The steps of a window: multiples of ``step`` from the first at or after ``start``
    to the last at or before ``end`` (aligned, so every backtest of a rule evaluates at
    the same times, like Prometheus' rule groups)."""
    first = math.ceil(start / step)
    last = math.floor(end / step)
    return [k * step for k in range(first, last + 1)]


def evaluation_count(start: float, end: float, step: float) -> int:
    """How many ``evaluation_times`` the window has, without making them."""
    return max(0, math.floor(end / step) - math.ceil(start / step) + 1)


def windows(times: list[float], points: int = MAX_POINTS) -> Iterator[tuple[float, float]]:
    """``(start, end)`` of requests covering ``times``, ``points`` steps each at most."""
    for index in range(0, len(times), points):
        part = times[index : index + points]
        yield part[0], part[-1]


async def query_range(
    client: httpx.AsyncClient,
    endpoint: str,
    promql: str,
    times: list[float],
    step: float,
    timeout: float,
    limit: int = MAX_RESPONSE_BYTES,
    max_points: int = MAX_HELD_POINTS,
    *,
    endpoint_defaulted: bool = False,
) -> list[RangeSeries]:
    """Every series ``promql`` returned at ``times`` (evenly ``step`` apart), read in
    requests of at most ``MAX_POINTS`` steps; ``FetchError`` on any failure, and when
    the answers hold more than ``max_points`` points in all. ``endpoint_defaulted``: nothing
    set ``PROMETHEUS_ENDPOINT`` (an error that no connection can be made says to)."""
    merged: dict[tuple[tuple[str, str], ...], RangeSeries] = {}
    points = 0
    source = prometheus_source(endpoint, endpoint_defaulted)
    for start, end in windows(times):
        answer = await _request(client, source, promql, start, end, step, timeout, limit)
        points += sum(len(series.points) for series in answer)
        if points > max_points:
            raise FetchError(
                f"the answers hold more than {max_points:,} points (one a series and step), "
                "the most one read may hold: a larger step or a shorter window reads fewer"
            )
        for series in answer:
            key = tuple(sorted(series.labels.items()))
            held = merged.get(key)
            if held is None:
                merged[key] = series
            else:
                held.points.update(series.points)
    return list(merged.values())


async def _request(
    client: httpx.AsyncClient,
    source: Source,
    promql: str,
    start: float,
    end: float,
    step: float,
    timeout: float,
    limit: int,
) -> list[RangeSeries]:
    url = f"{source.value}/api/v1/query_range"
    attempt = Attempt(url, source)
    form = {
        "query": promql,
        "start": f"{start:.3f}",
        "end": f"{end:.3f}",
        "step": f"{step:.3f}",
        "timeout": f"{timeout:.3f}",
    }
    async with (
        deadline(timeout, attempt),
        client.stream("POST", url, data=form, timeout=timeout) as response,
    ):
        attempt.status = response.status_code
        body = await read_body(response, limit, "the answer")
    result_type, result, _ = _decode(response.status_code, body)
    if result_type == "scalar":
        raise FetchError("unexpected answer: a scalar from query_range")  # Prometheus says matrix
    if result_type != "matrix" or not isinstance(result, list):
        raise FetchError(f"unexpected answer: resultType {result_type!r} from query_range")
    return [_range_series(item) for item in result]


def _range_series(item: object) -> RangeSeries:
    metric = _metric(item)
    assert isinstance(item, Mapping)
    values = item.get("values")
    if not isinstance(values, list):
        raise FetchError("unexpected answer: a matrix element without values")
    points = {}
    for pair in values:
        value = _value(pair)
        try:
            at = round(float(pair[0]) * 1000)
        except (TypeError, ValueError):
            raise FetchError(f"unexpected answer: {pair[0]!r} is not a time") from None
        points[at] = value
    return RangeSeries(metric, points)


def samples_at(series: list[RangeSeries], times: list[float]) -> Iterator[list[Sample]]:
    """What the read returned at each of ``times``: the series with a value at that step
    (made one step at a time, so that a replay never holds them all)."""
    keyed = [(labels_of(one.labels), one.points) for one in series]
    for at in times:
        ms = round(at * 1000)
        yield [Sample(labels, points[ms]) for labels, points in keyed if ms in points]


async def scrape_target_labels(
    client: httpx.AsyncClient, prometheus: str, scrape_url: str, timeout: float
) -> dict[str, str] | None:
    """The target labels (``job``, ``instance``...) Prometheus gives what it scrapes from
    ``scrape_url``, from its ``/api/v1/targets``; None when it does not scrape that URL."""
    url = f"{prometheus}/api/v1/targets"
    attempt = Attempt(url, Source("--prometheus", prometheus, "a Prometheus"))
    async with (
        deadline(timeout, attempt),
        client.stream("GET", url, params={"state": "active"}, timeout=timeout) as response,
    ):
        attempt.status = response.status_code
        body = await read_body(response, MAX_RESPONSE_BYTES, "the answer")
    try:
        document = _loads(body)
        targets = document["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        raise FetchError(f"HTTP {response.status_code}: not a list of targets ({url})") from None
    wanted = httpx.URL(scrape_url)
    for target in targets if isinstance(targets, list) else ():
        if isinstance(target, Mapping) and httpx.URL(str(target.get("scrapeUrl"))) == wanted:
            labels = target.get("labels")
            if isinstance(labels, Mapping):
                return {str(k): str(v) for k, v in labels.items()}
    return None
