"""The throwaway Prometheus of rule unit tests: the input series imported with promtool and
served by a real Prometheus on a loopback port, read back through ``query_range`` (the
path of expression rules), and compared, step by step, with the in-process reading of
selector rules (``SeriesStore``). Stopped and deleted afterwards, whatever happens."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
from _throwaway import (
    MissingBinaries,
    ThrowawayError,
    lookback_includes_start,
    openmetrics_text,
    throwaway_prometheus,
)

from metric_reader._core._selector import Selector
from metric_reader._replay._ruletest._file import InputSeries
from metric_reader._replay._ruletest._series_desc import parse_series_description
from metric_reader._replay._ruletest._series_store import SeriesStore

pytestmark = pytest.mark.anyio
needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="Prometheus' promtool and prometheus are not installed",
)

INTERVAL = 15.0
_SERIES = [
    # 2.5 hours of steps: promtool writes two 2-hour blocks.
    ("node_load1", "1+0.5x600"),
    ('node_load1{instance="b"}', "3 _x30 4 _ NaN Inf -Inf -0.25 1e21 1.5e-7"),
    ('job:errors:rate5m{job="api",path="/a\\"b\\\\c\\nd"}', "0.1 0.2 _x5 0.3"),
    ('{__name__="up",name="é ✓"}', "1x3 _x19 0"),
]


def _input() -> list[InputSeries]:
    found = []
    for line, (series, values) in enumerate(_SERIES, start=1):
        labels, parsed = parse_series_description(f"{series} {values}")
        found.append(InputSeries(labels, tuple(parsed), line))
    return found


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _our_matrix(series: list[InputSeries], end: float) -> dict[object, float]:
    store = SeriesStore(series, INTERVAL, lookback_includes_start=lookback_includes_start())
    names = sorted({one.labels["__name__"] for one in series})
    found: dict[object, float] = {}
    for step in range(round(end / INTERVAL) + 1):
        at = step * INTERVAL
        for name in names:
            for sample in store.select(Selector(name), at):
                found[(_key({"__name__": name, **dict(sample.labels)}), at)] = sample.value
    return found


async def _their_matrix(url: str, end: float) -> dict[object, float]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(
            f"{url}/api/v1/query_range",
            params={"query": '{__name__=~".+"}', "start": "0", "end": str(end), "step": "15s"},
        )
    answer = response.json()
    assert answer["status"] == "success", answer
    found: dict[object, float] = {}
    for item in answer["data"]["result"]:
        for at, value in item["values"]:
            found[(_key(item["metric"]), float(at))] = float(value)
    return found


def _same_numbers(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@needs_prometheus
@pytest.mark.timeout(60)
async def test_query_range_returns_the_input_values_at_each_step() -> None:
    series = _input()
    end = 600 * INTERVAL
    async with throwaway_prometheus(series, INTERVAL) as url:
        assert url.startswith("http://127.0.0.1:")
        theirs = await _their_matrix(url, end)
    # Every sample given is there, at its step, exactly.
    for one in series:
        for at, value in one.samples(INTERVAL):
            assert isinstance(value, float)
            got = theirs.get((_key(dict(one.labels)), at))
            assert got is not None and _same_numbers(got, value), (one.labels, at, value, got)
    # And between them Prometheus' lookback gives what the in-process reading gives.
    ours = _our_matrix(series, end)
    assert theirs.keys() == ours.keys()
    assert all(_same_numbers(theirs[key], ours[key]) for key in ours)


_WITH_MARKERS = [
    ("node_load1", "1 stale 2 _x3 stale _ 5 stale+1x2 6 stale"),
    ('node_load1{instance="b"}', "stale 1+1x400 stale _x30 2"),  # 1.7 hours: 4 requests
]


def _with_markers() -> list[InputSeries]:
    found = []
    for line, (series, values) in enumerate(_WITH_MARKERS, start=1):
        labels, parsed = parse_series_description(f"{series} {values}")
        found.append(InputSeries(labels, tuple(parsed), line))
    # Enough series for a request of several snappy literals (64 KiB each).
    for number in range(300):
        labels, parsed = parse_series_description(f'many{{n="{number}"}} 1+1x100 stale 7')
        found.append(InputSeries(labels, tuple(parsed), 100 + number))
    return found


@needs_prometheus
@pytest.mark.timeout(60)
async def test_staleness_markers_reach_prometheus_and_end_series_as_in_process() -> None:
    """OpenMetrics cannot carry them: these series go through remote write, and Prometheus
    must then read every step as the in-process reading does, markers included."""
    series = _with_markers()
    end = 440 * INTERVAL
    async with throwaway_prometheus(series, INTERVAL) as url:
        theirs = await _their_matrix(url, end)
    ours = _our_matrix(series, end)
    # A marker hides the series: at 15 s, node_load1 is gone; at 30 s it is back.
    assert ((("__name__", "node_load1"),), 15.0) not in theirs
    assert theirs[((("__name__", "node_load1"),), 30.0)] == 2.0
    assert theirs.keys() == ours.keys()
    assert all(_same_numbers(theirs[key], ours[key]) for key in ours)


@needs_prometheus
@pytest.mark.timeout(60)
async def test_it_is_stopped_and_deleted_even_when_the_test_fails() -> None:
    before = set(Path(tempfile.gettempdir()).glob("metric-reader-test-*"))
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="a failing test"):
        async with throwaway_prometheus(_input()[:1], INTERVAL) as url:
            seen.append(url)
            made = set(Path(tempfile.gettempdir()).glob("metric-reader-test-*")) - before
            assert made, "the work directory is in the temporary directory"
            raise RuntimeError("a failing test")
    assert not any(path.exists() for path in made)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{seen[0]}/-/ready", timeout=2.0)


@needs_prometheus
@pytest.mark.timeout(60)
async def test_no_series_is_an_empty_prometheus() -> None:
    async with (
        throwaway_prometheus([], INTERVAL) as url,
        httpx.AsyncClient(timeout=10.0) as client,
    ):
        answer = (await client.get(f"{url}/api/v1/query", params={"query": "up"})).json()
    assert answer["data"]["result"] == []


def test_openmetrics_cannot_carry_a_staleness_marker() -> None:
    labels, values = parse_series_description('up{job="a"} 1 stale')
    with pytest.raises(ValueError, match="staleness marker"):
        openmetrics_text([InputSeries(labels, tuple(values), 1)], 60.0)


async def test_without_the_binaries_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaries) as caught:
        async with throwaway_prometheus(_input(), INTERVAL):
            pass
    assert str(caught.value) == (
        "expression rules need Prometheus' promtool and prometheus binaries on PATH: "
        "promtool and prometheus not found (Debian: apt-get install prometheus)"
    )


def test_openmetrics_text_is_escaped_and_timed_in_seconds() -> None:
    text = openmetrics_text(_input()[2:3], 0.5)
    assert text == (
        'job:errors:rate5m{job="api",path="/a\\"b\\\\c\\nd"} 0.1 0.000\n'
        'job:errors:rate5m{job="api",path="/a\\"b\\\\c\\nd"} 0.2 0.500\n'
        'job:errors:rate5m{job="api",path="/a\\"b\\\\c\\nd"} 0.3 3.500\n'
        "# EOF\n"
    )


@needs_prometheus
@pytest.mark.timeout(60)
async def test_a_prometheus_that_does_not_start_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    (tmp_path / "promtool").symlink_to(promtool)
    fake = tmp_path / "prometheus"
    fake.write_text(
        '#!/bin/sh\necho "ts=1 level=error msg=\\"cannot open storage\\"" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ThrowawayError) as caught:
        async with throwaway_prometheus(_input()[:1], INTERVAL):
            pass
    assert str(caught.value) == (
        'the throwaway Prometheus did not start: ts=1 level=error msg="cannot open storage"'
    )
