"""A rule unit test's input series read in-process as a selector rule reads a Prometheus:
the latest sample within the 5-minute lookback, none after a staleness marker, and the
service's own matchers (RE2, anchored). Compared with a real Prometheus in
tests/integration/test_throwaway_prometheus.py and with promtool in
tests/config/test_rule_tests.py."""

from __future__ import annotations

import math

import pytest

from metric_reader._core._samples import Sample
from metric_reader._core._selector import Selector, parse_label_filters
from metric_reader._replay._ruletest._file import InputSeries
from metric_reader._replay._ruletest._series_desc import parse_series_description
from metric_reader._replay._ruletest._series_store import SeriesStore


def store(*lines: str, interval: float = 60.0, includes_start: bool = False) -> SeriesStore:
    series = []
    for number, line in enumerate(lines, start=1):
        labels, values = parse_series_description(line)
        series.append(InputSeries(labels, tuple(values), number))
    return SeriesStore(series, interval, lookback_includes_start=includes_start)


def selector(text: str) -> Selector:
    name, _, rest = text.partition("{")
    return Selector(name, parse_label_filters(rest.removesuffix("}")))


def values_over(found: SeriesStore, text: str, times: list[float]) -> list[float | None]:
    out: list[float | None] = []
    for at in times:
        samples = found.select(selector(text), at)
        assert len(samples) <= 1
        out.append(samples[0].value if samples else None)
    return out


def test_the_latest_sample_is_read_and_a_missing_one_is_bridged_by_the_lookback() -> None:
    found = store("load 1 2 _ _ 5")
    assert values_over(found, "load", [0, 30, 60, 120, 180, 240, 299.999]) == [
        1.0,
        1.0,
        2.0,
        2.0,
        2.0,
        5.0,
        5.0,
    ]


def test_nothing_before_the_first_sample_nor_after_the_lookback() -> None:
    found = store("load _x2 7")
    assert values_over(found, "load", [0, 60, 119.999, 120, 419.999, 420, 480]) == [
        None,
        None,
        None,
        7.0,
        7.0,
        None,
        None,
    ]


def test_prometheus_2_keeps_a_sample_exactly_five_minutes_old() -> None:
    found = store("load 7", includes_start=True)
    assert values_over(found, "load", [300, 300.001]) == [7.0, None]


def test_a_staleness_marker_ends_the_series_until_its_next_sample() -> None:
    found = store("load 1 stale _ 4 stale+1x1")
    assert values_over(found, "load", [0, 60, 120, 180, 240]) == [1.0, None, None, 4.0, None]
    # A marker plus an increment is a plain NaN: a value, not a marker.
    (after,) = values_over(found, "load", [300])
    assert after is not None and math.isnan(after)


def test_each_matching_series_in_label_order_without_its_name() -> None:
    found = store(
        'http_requests{path="/b",code="500"} 2',
        'http_requests{path="/a",code="200"} 1',
        'http_requests{path="/a",code="500"} NaN',
        'other{path="/a"} 9',
    )
    samples = found.select(selector('http_requests{path=~"/.*"}'), 0)
    assert [s.labels for s in samples] == [
        (("code", "200"), ("path", "/a")),
        (("code", "500"), ("path", "/a")),
        (("code", "500"), ("path", "/b")),
    ]
    assert math.isnan(samples[1].value)
    assert found.select(selector("missing"), 0) == []


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ('path="/a"', ["/a"]),
        ('path=~"/a"', ["/a"]),  # anchored: not /ab
        ('path=~"/a.*"', ["/a", "/ab", "/a\nb"]),  # RE2's . takes a newline here
        ('path!~"/a.*"', [""]),
        ('path=""', [""]),  # a label the series lacks is the empty string
        ('path!=""', ["/a", "/ab", "/a\nb"]),
        ('__name__="up",path="/ab"', ["/ab"]),
    ],
)
def test_matchers_are_the_services(matchers: str, expected: list[str]) -> None:
    found = store('up{path="/a"} 1', 'up{path="/ab"} 1', 'up{path="/a\\nb"} 1', "up 1")
    samples = found.select(selector(f"up{{{matchers}}}"), 0)
    assert sorted(dict(s.labels).get("path", "") for s in samples) == sorted(expected)


def test_times_are_whole_milliseconds_as_prometheus_rounds_them() -> None:
    found = store("load 1 2 3 4", interval=0.1)  # 3 * 0.1 is 0.30000000000000004
    assert found.select(selector("load"), 0.3) == [Sample((), 4.0)]
    assert found.select(selector("load"), 0.2996) == [Sample((), 4.0)]
    assert found.select(selector("load"), 0.2994) == [Sample((), 3.0)]
