# ruff: noqa: E501  (the scripts are Prometheus' test cases as written there)
"""The in-process PromQL evaluator gives what Prometheus 2.42 gives.

Most cases are Prometheus' own (``promql/testdata/*.test`` at v2.42.0, the file named at
each script), run here in their format (``load``, ``eval instant at``, ``eval_fail``) over
this package's ``Storage`` and ``Query``; the functions are left out, they are tested with
``_functions``. The last test runs a few dozen expressions on a real Prometheus 2.42 and
compares its answers, value for value and label set for label set.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _throwaway import throwaway_prometheus

from metric_reader._promql import (
    EvaluationError,
    Matrix,
    Query,
    Scalar,
    Storage,
    Value,
    labels_from,
)
from metric_reader._promql._functions import FUNCTIONS
from metric_reader._replay._ruletest._model import InputSeries
from metric_reader._replay._ruletest._series_desc import Stale, parse_series_description

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SERIES_AND_VALUES = re.compile(r"(\S*\{[^}]*\}|\S+)\s+(.*)")


def _ms(text: str) -> int:
    return sum(int(n) * _MS[unit] for n, unit in _DURATION.findall(text))


def _load(storage: Storage, interval: int, line: str) -> None:
    labels, values = parse_series_description(" ".join(line.split(None, 1)))
    times, kept = [], []
    for step, value in enumerate(values):
        if value is not None:
            times.append(step * interval)
            kept.append(None if isinstance(value, Stale) else value)
    storage.add(labels_from(labels), times, kept)


def _same(a: float, b: float) -> bool:
    """Prometheus' test framework: equal, both NaN, or within 1e-12 of each other."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def _run(script: str) -> None:
    """A script of Prometheus' test format, each ``eval`` checked."""
    storage = Storage()
    lines = [line.strip() for line in script.strip().splitlines()]
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line or line.startswith("#"):
            continue
        if line == "clear":
            storage = Storage()
            continue
        body = []
        while i < len(lines) and lines[i] and not re.match(r"(load|eval|clear)", lines[i]):
            if not lines[i].startswith("#"):
                body.append(lines[i])
            i += 1
        if line.startswith("load"):
            interval = _ms(line.split()[1])
            for one in body:
                _load(storage, interval, one)
            continue
        found = re.fullmatch(r"(eval|eval_fail|eval_ordered) instant at (\S+) (.*)", line)
        assert found is not None, line
        kind, at, expr = found.groups()
        t = _ms(at)
        if kind == "eval_fail":
            with pytest.raises(EvaluationError):
                Query(expr).evaluate(t, storage)
            continue
        got = Query(expr).evaluate(t, storage)
        _check(expr, at, got, body, ordered=kind == "eval_ordered")


def _check(expr: str, at: str, got: Value, expected: list[str], *, ordered: bool) -> None:
    """As Prometheus' framework compares: the same label sets (the name included), values
    within 1e-12, in the same order for ``eval_ordered``."""
    where = f"{expr} at {at}"
    if isinstance(got, Scalar):
        assert len(expected) == 1 and _same(got.value, float(expected[0])), (where, got)
        return
    assert isinstance(got, list), (where, got)
    want = []
    for line in expected:
        labels, values = parse_series_description(line)
        assert isinstance(values[0], float)
        want.append((labels_from(labels), values[0]))
    if not ordered:
        want.sort(key=lambda pair: pair[0])
        got = sorted(got, key=lambda sample: sample.labels)
    assert [s.labels for s in got] == [labels for labels, _ in want], (where, got)
    assert all(_same(s.value, value) for s, (_, value) in zip(got, want, strict=True)), (where, got)
    assert all(s.t == _ms(at) for s in got), where


def test_staleness_markers_and_the_lookback() -> None:
    # promql/testdata/staleness.test
    _run("""
        load 10s
          metric 0 1 stale 2
        eval instant at 10s metric
          {__name__="metric"} 1
        eval instant at 20s metric
        eval instant at 30s metric
          {__name__="metric"} 2
        eval instant at 40s metric
          {__name__="metric"} 2
        # It goes stale 5 minutes after the last sample (a sample exactly 5m old counts).
        eval instant at 330s metric
          {__name__="metric"} 2
        eval instant at 331s metric
        clear
        load 10s
          metric 0
        eval instant at 300s metric
          {__name__="metric"} 0
        eval instant at 301s metric
    """)


def test_selectors_and_offsets() -> None:
    # promql/testdata/selectors.test (its matchers on rate() here on the selectors)
    _run("""
        load 10s
          http_requests{job="api-server", instance="0", group="production"} 0+10x1000 100+30x1000
          http_requests{job="api-server", instance="1", group="production"} 0+20x1000 200+30x1000
          http_requests{job="api-server", instance="0", group="canary"} 0+30x1000 300+80x1000
          http_requests{job="api-server", instance="1", group="canary"} 0+40x2000
        eval instant at 0s http_requests{foo!~"bar", job="api-server", instance="1", x!="y", z="", group!=""}
          http_requests{job="api-server", instance="1", group="production"} 0
          http_requests{job="api-server", instance="1", group="canary"} 0
        eval instant at 8000s http_requests{group=~"(?i:PRO).*"}
          http_requests{job="api-server", instance="0", group="production"} 8000
          http_requests{job="api-server", instance="1", group="production"} 16000
        eval instant at 8000s http_requests{group=~".*(?i:DUC).*", instance="0"} offset 1000s
          http_requests{job="api-server", instance="0", group="production"} 7000
        eval instant at 4000s http_requests{group=~"c.*", instance="0"} offset -4000s
          http_requests{job="api-server", instance="0", group="canary"} 24000
        eval instant at 100s http_requests{group="canary", instance="1"} @ 50
          http_requests{job="api-server", instance="1", group="canary"} 200
        eval instant at 100s http_requests{group="canary", instance="1"} @ 50 offset 20s
          http_requests{job="api-server", instance="1", group="canary"} 120
        eval instant at 100s http_requests{group="canary", instance="1"} @ start() offset 20s
          http_requests{job="api-server", instance="1", group="canary"} 320
        # Anchored regexes: "prod" matches no "production".
        eval instant at 0s http_requests{group=~"prod"}
    """)


def test_range_vectors_are_closed_windows_without_markers() -> None:
    storage = Storage()
    storage.add(labels_from({"__name__": "m"}), [0, 10_000, 20_000, 30_000], [1, None, 3, 4])
    got = Query("m[20s]").evaluate(30_000, storage)
    assert isinstance(got, Matrix)
    assert [(s.times, s.values) for s in got.series] == [([10_000 + 10_000, 30_000], [3, 4])]
    got = Query("m[20s] @ 20 offset 10s").evaluate(99_000, storage)
    assert isinstance(got, Matrix)
    assert [(s.times, s.values) for s in got.series] == [([0], [1])]  # 10 s: the marker
    # Prometheus takes @ start() before the range too; @ times before 1970, rounded as Go.
    got = Query("m @ start() [10s]").evaluate(30_000, storage)
    assert isinstance(got, Matrix)
    assert [(s.times, s.values) for s in got.series] == [([20_000, 30_000], [3, 4])]
    got = Query("m @ -0.0005 offset -30s").evaluate(0, storage)  # at -1 ms + 30 s
    assert [(s.labels, s.value) for s in got] == [((("__name__", "m"),), 3)]  # type: ignore[union-attr]


def test_subqueries_step_on_absolute_multiples_of_their_step() -> None:
    storage = Storage()
    storage.add(labels_from({"__name__": "m"}), list(range(0, 600_001, 10_000)), range(61))
    got = Query("m[2m:45s]").evaluate(200_000, storage)  # 80 s .. 200 s: 90, 135, 180
    assert isinstance(got, Matrix)
    assert [(s.labels, s.times, s.values) for s in got.series] == [
        ((("__name__", "m"),), [90_000, 135_000, 180_000], [9, 13, 18])
    ]
    # Without a step: the query's default (promtool: the evaluation interval).
    got = Query("(m * 2)[1m:] offset 1m", subquery_step=20_000).evaluate(200_000, storage)
    assert isinstance(got, Matrix)
    assert [(s.labels, s.times, s.values) for s in got.series] == [
        ((), [80_000, 100_000, 120_000, 140_000], [16, 20, 24, 28])
    ]
    # @ on a subquery: its window ends there, whatever the time of the query.
    got = Query("(-m)[30s:10s] @ 100").evaluate(500_000, storage)
    assert isinstance(got, Matrix)
    assert [(s.times, s.values) for s in got.series] == [
        ([70_000, 80_000, 90_000, 100_000], [-7, -8, -9, -10])
    ]


def test_arithmetic_precedence_and_matching() -> None:
    # promql/testdata/operators.test
    _run("""
        load 5m
          http_requests{job="api-server", instance="0", group="production"} 0+10x10
          http_requests{job="api-server", instance="1", group="production"} 0+20x10
          http_requests{job="api-server", instance="0", group="canary"} 0+30x10
          http_requests{job="api-server", instance="1", group="canary"} 0+40x10
          http_requests{job="app-server", instance="0", group="production"} 0+50x10
          http_requests{job="app-server", instance="1", group="production"} 0+60x10
          http_requests{job="app-server", instance="0", group="canary"} 0+70x10
          http_requests{job="app-server", instance="1", group="canary"} 0+80x10
        load 5m
          vector_matching_a{l="x"} 0+1x100
          vector_matching_a{l="y"} 0+2x50
          vector_matching_b{l="x"} 0+4x25
        eval instant at 50m SUM(http_requests) BY (job) - COUNT(http_requests) BY (job)
          {job="api-server"} 996
          {job="app-server"} 2596
        eval instant at 50m +http_requests{job="api-server",instance="0",group="production"}
          http_requests{job="api-server",instance="0",group="production"} 100
        eval instant at 50m - - - 1
          -1
        eval instant at 50m -2^---1*3
          -1.5
        eval instant at 50m 2/-2^---1*3+2
          -10
        eval instant at 50m -10^3 * - SUM(http_requests) BY (job) ^ -1
          {job="api-server"} 1
          {job="app-server"} 0.38461538461538464
        eval instant at 50m SUM(http_requests) BY (job) % 0.3
          {job="api-server"} 0.1
          {job="app-server"} 0.2
        eval instant at 50m SUM(http_requests) BY (job) % 2 ^ 3 ^ 2
          {job="api-server"} 488
          {job="app-server"} 40
        eval instant at 50m SUM(http_requests) BY (job) / 0
          {job="api-server"} +Inf
          {job="app-server"} +Inf
        eval instant at 50m -1 * http_requests{group="canary", instance="0", job="api-server"} / 0
          {group="canary", instance="0", job="api-server"} -Inf
        eval instant at 50m 0 * http_requests{group="canary", instance="0", job="api-server"} % 0
          {group="canary", instance="0", job="api-server"} NaN
        eval instant at 50m (http_requests{group="canary"} + 1) or http_requests{instance="1"}
          {group="canary", instance="0", job="api-server"} 301
          {group="canary", instance="0", job="app-server"} 701
          {group="canary", instance="1", job="api-server"} 401
          {group="canary", instance="1", job="app-server"} 801
          http_requests{group="production", instance="1", job="api-server"} 200
          http_requests{group="production", instance="1", job="app-server"} 600
        eval instant at 50m (http_requests{group="canary"} + 1) or on(instance) (http_requests or cpu_count or vector_matching_a)
          {group="canary", instance="0", job="api-server"} 301
          {group="canary", instance="0", job="app-server"} 701
          {group="canary", instance="1", job="api-server"} 401
          {group="canary", instance="1", job="app-server"} 801
          vector_matching_a{l="x"} 10
          vector_matching_a{l="y"} 20
        eval instant at 50m http_requests{group="canary"} unless on(job) http_requests{instance="0"}
        eval instant at 50m http_requests{group="canary"} unless ignoring(group) http_requests{instance="0"}
          http_requests{group="canary", instance="1", job="api-server"} 400
          http_requests{group="canary", instance="1", job="app-server"} 800
        eval instant at 50m http_requests{group="canary"} / ignoring(group) http_requests{group="production"}
          {instance="0", job="api-server"} 3
          {instance="0", job="app-server"} 1.4
          {instance="1", job="api-server"} 2
          {instance="1", job="app-server"} 1.3333333333333333
        eval instant at 50m 1000 < SUM(http_requests) BY (job)
          {job="app-server"} 2600
        eval instant at 50m SUM(http_requests) BY (job) == bool 1000
          {job="api-server"} 1
          {job="app-server"} 0
        eval instant at 50m 0 == bool 1
          0
    """)


def test_group_left_and_group_right() -> None:
    # promql/testdata/operators.test
    _run("""
        load 5m
          node_var{instance="abc",job="node"} 2
          node_role{instance="abc",job="node",role="prometheus"} 1
        load 5m
          node_cpu{instance="abc",job="node",mode="idle"} 3
          node_cpu{instance="abc",job="node",mode="user"} 1
          node_cpu{instance="def",job="node",mode="idle"} 8
          node_cpu{instance="def",job="node",mode="user"} 2
        load 5m
          random{foo="bar"} 1
        load 5m
          threshold{instance="abc",job="node",target="a@b.com"} 0
        eval instant at 5m node_role * on (instance) group_right (role) node_var
          {instance="abc",job="node",role="prometheus"} 2
        eval instant at 5m node_var * ignoring (role) group_left (role) node_role
          {instance="abc",job="node",role="prometheus"} 2
        eval instant at 5m node_cpu * on (instance) group_left (role) node_role
          {instance="abc",job="node",mode="idle",role="prometheus"} 3
          {instance="abc",job="node",mode="user",role="prometheus"} 1
        eval instant at 5m node_cpu / on (instance) group_left sum by (instance,job)(node_cpu)
          {instance="abc",job="node",mode="idle"} .75
          {instance="abc",job="node",mode="user"} .25
          {instance="def",job="node",mode="idle"} .80
          {instance="def",job="node",mode="user"} .20
        eval instant at 5m sum(sum by (mode, job)(node_cpu) / on (job) group_left sum by (job)(node_cpu))
          {} 1.0
        eval instant at 5m node_cpu + on(dummy) group_left(foo) random*0
          {instance="abc",job="node",mode="idle",foo="bar"} 3
          {instance="abc",job="node",mode="user",foo="bar"} 1
          {instance="def",job="node",mode="idle",foo="bar"} 8
          {instance="def",job="node",mode="user",foo="bar"} 2
        eval instant at 5m node_cpu > on(job, instance) group_left(target) (threshold or on (job, instance) (sum by (job, instance)(node_cpu) * 0 + 1))
          node_cpu{instance="abc",job="node",mode="idle",target="a@b.com"} 3
          node_cpu{instance="abc",job="node",mode="user",target="a@b.com"} 1
          node_cpu{instance="def",job="node",mode="idle"} 8
          node_cpu{instance="def",job="node",mode="user"} 2
        clear
        load 5m
          testmetric1{src="a",dst="b"} 0
          testmetric2{src="a",dst="b"} 1
        eval_fail instant at 0m -{__name__=~'testmetric1|testmetric2'}
        clear
        load 5m
          trigy{} 10
          trigx{} 20
          trigNaN{} NaN
        eval instant at 5m trigy atan2 trigx
          trigy{} 0.4636476090008061
        eval instant at 5m trigy atan2 trigNaN
          trigy{} NaN
    """)


def test_matching_errors_say_what_prometheus_says() -> None:
    storage = Storage()
    for labels, value in (
        ({"__name__": "a", "job": "x", "i": "1"}, 1.0),
        ({"__name__": "a", "job": "x", "i": "2"}, 2.0),
        ({"__name__": "b", "job": "x"}, 3.0),
        ({"__name__": "c", "job": "x"}, 4.0),
    ):
        storage.add(labels_from(labels), [0], [value])
    with pytest.raises(EvaluationError) as raised:
        Query("b + on(job) a").evaluate(0, storage)
    assert str(raised.value) == (
        'found duplicate series for the match group {job="x"} on the right hand-side of the '
        'operation: [{__name__="a", i="2", job="x"}, {__name__="a", i="1", job="x"}];'
        "many-to-many matching not allowed: matching labels must be unique on one side"
    )
    with pytest.raises(EvaluationError, match="on the left hand-side"):
        Query("a * on(job) group_right b").evaluate(0, storage)
    with pytest.raises(EvaluationError) as raised:
        Query("a + on(job) b").evaluate(0, storage)
    assert str(raised.value) == (
        "multiple matches for labels: many-to-one matching must be explicit "
        "(group_left/group_right)"
    )
    with pytest.raises(EvaluationError) as raised:
        Query("{__name__=~'b|c'} * 2").evaluate(0, storage)
    assert str(raised.value) == "vector cannot contain metrics with the same labelset"


def test_aggregations() -> None:
    # promql/testdata/aggregators.test
    _run("""
        load 5m
          http_requests{job="api-server", instance="0", group="production"} 0+10x10
          http_requests{job="api-server", instance="1", group="production"} 0+20x10
          http_requests{job="api-server", instance="0", group="canary"} 0+30x10
          http_requests{job="api-server", instance="1", group="canary"} 0+40x10
          http_requests{job="app-server", instance="0", group="production"} 0+50x10
          http_requests{job="app-server", instance="1", group="production"} 0+60x10
          http_requests{job="app-server", instance="0", group="canary"} 0+70x10
          http_requests{job="app-server", instance="1", group="canary"} 0+80x10
        load 5m
          foo{job="api-server", instance="0", region="europe"} 0+90x10
          foo{job="api-server"} 0+100x10
        eval instant at 50m sum without (instance) (http_requests{job="api-server"} or foo)
          {group="canary",job="api-server"} 700
          {group="production",job="api-server"} 300
          {region="europe",job="api-server"} 900
          {job="api-server"} 1000
        eval instant at 50m sum(http_requests) by (job) + min(http_requests) by (job) + max(http_requests) by (job) + avg(http_requests) by (job)
          {job="app-server"} 4550
          {job="api-server"} 1750
        eval instant at 50m stddev by (instance)(http_requests)
          {instance="0"} 223.60679774998
          {instance="1"} 223.60679774998
        eval instant at 50m stdvar(http_requests)
          {} 52500
        clear
        load 5m
          http_requests{job="api-server", instance="0", group="production"} 1
          http_requests{job="api-server", instance="1", group="production"} 2
          http_requests{job="api-server", instance="0", group="canary"} NaN
          http_requests{job="api-server", instance="1", group="canary"} 3
          http_requests{job="api-server", instance="2", group="canary"} 4
        eval instant at 0m max(http_requests)
          {} 4
        eval instant at 0m min by (group) (http_requests)
          {group="production"} 1
          {group="canary"} 3
        clear
        load 5m
          http_requests{job="api-server", instance="0", group="production"} 0+10x10
          http_requests{job="api-server", instance="1", group="production"} 0+20x10
          http_requests{job="api-server", instance="2", group="production"} NaN NaN NaN NaN NaN NaN NaN NaN NaN NaN
          http_requests{job="api-server", instance="0", group="canary"} 0+30x10
          http_requests{job="api-server", instance="1", group="canary"} 0+40x10
          http_requests{job="app-server", instance="0", group="production"} 0+50x10
          http_requests{job="app-server", instance="1", group="production"} 0+60x10
          http_requests{job="app-server", instance="0", group="canary"} 0+70x10
          http_requests{job="app-server", instance="1", group="canary"} 0+80x10
        eval_ordered instant at 50m topk(3, http_requests)
          http_requests{group="canary", instance="1", job="app-server"} 800
          http_requests{group="canary", instance="0", job="app-server"} 700
          http_requests{group="production", instance="1", job="app-server"} 600
        eval_ordered instant at 50m bottomk(3, http_requests)
          http_requests{group="production", instance="0", job="api-server"} 100
          http_requests{group="production", instance="1", job="api-server"} 200
          http_requests{group="canary", instance="0", job="api-server"} 300
        eval instant at 50m bottomk by (group) (2, http_requests)
          http_requests{group="canary", instance="0", job="api-server"} 300
          http_requests{group="canary", instance="1", job="api-server"} 400
          http_requests{group="production", instance="0", job="api-server"} 100
          http_requests{group="production", instance="1", job="api-server"} 200
        eval_ordered instant at 50m topk(9999999999, http_requests{job="api-server",group="production"})
          http_requests{job="api-server", instance="1", group="production"} 200
          http_requests{job="api-server", instance="0", group="production"} 100
          http_requests{job="api-server", instance="2", group="production"} NaN
        clear
        load 5m
          version{job="api-server", instance="0", group="production"} 6
          version{job="api-server", instance="1", group="production"} 6
          version{job="api-server", instance="2", group="production"} 6
          version{job="api-server", instance="0", group="canary"} 8
          version{job="api-server", instance="1", group="canary"} 8
          version{job="app-server", instance="0", group="production"} 6
          version{job="app-server", instance="1", group="production"} 6
          version{job="app-server", instance="0", group="canary"} 7
          version{job="app-server", instance="1", group="canary"} 7
        eval instant at 5m count_values without (instance)("version", version)
          {job="api-server", group="production", version="6"} 3
          {job="api-server", group="canary", version="8"} 2
          {job="app-server", group="production", version="6"} 2
          {job="app-server", group="canary", version="7"} 2
        eval instant at 5m count_values by (job, group)("job", version)
          {job="6", group="production"} 5
          {job="8", group="canary"} 2
          {job="7", group="canary"} 2
        clear
        load 10s
          data{test="two samples",point="a"} 0
          data{test="two samples",point="b"} 1
          data{test="three samples",point="a"} 0
          data{test="three samples",point="b"} 1
          data{test="three samples",point="c"} 2
          data{test="uneven samples",point="a"} 0
          data{test="uneven samples",point="b"} 1
          data{test="uneven samples",point="c"} 4
        eval instant at 1m quantile without(point)(0.8, data)
          {test="two samples"} 0.8
          {test="three samples"} 1.6
          {test="uneven samples"} 2.8
        eval instant at 1m group without(point)(data)
          {test="two samples"} 1
          {test="three samples"} 1
          {test="uneven samples"} 1
        clear
        load 10s
          data{test="inf",point="a"} 0
          data{test="inf",point="b"} Inf
          data{test="inf",point="d"} Inf
          data{test="inf",point="c"} 0
          data{test="inf3",point="b"} Inf
          data{test="inf3",point="d"} Inf
          data{test="inf3",point="c"} Inf
          data{test="inf3",point="d"} -Inf
          data{test="nan",point="a"} -Inf
          data{test="nan",point="b"} 0
          data{test="nan",point="c"} Inf
          data{test="big",point="a"} 9.988465674311579e+307
          data{test="big",point="b"} 9.988465674311579e+307
          data{test="big",point="c"} 9.988465674311579e+307
          data{test="big",point="d"} 9.988465674311579e+307
          data{test="bigzero",point="a"} -9.988465674311579e+307
          data{test="bigzero",point="b"} -9.988465674311579e+307
          data{test="bigzero",point="c"} 9.988465674311579e+307
          data{test="bigzero",point="d"} 9.988465674311579e+307
        eval instant at 1m avg(data{test="inf"})
          {} Inf
        eval instant at 1m avg(data{test="inf3"})
          {} NaN
        eval instant at 1m avg(data{test="nan"})
          {} NaN
        eval instant at 1m avg(data{test="big"})
          {} 9.988465674311579e+307
        eval instant at 1m avg(data{test="bigzero"})
          {} 0
    """)


def test_parse_errors_and_what_is_not_evaluated_here() -> None:
    with pytest.raises(EvaluationError, match=r"parse error: unclosed left parenthesis"):
        Query("sum(x")
    with pytest.raises(EvaluationError, match=r"error parsing regexp"):
        Query('x{a=~"("}')
    with pytest.raises(EvaluationError, match=r"not evaluated here"):
        Query("x @ start() [5m:1m]")


def test_subqueries_past_a_million_steps_fail_in_one_line_instead_of_running_for_hours() -> None:
    """promtool 2.42 runs out of memory on ``[1000d:1ms]``; a nested pair of day-long
    subqueries at 1s would take 7.5 billion evaluations. Each is one error, at once."""
    storage = Storage()
    storage.add((("__name__", "x"),), [0, 60_000], [1.0, 1.0])
    too_many = "query processing would load too many samples into memory in query execution"
    for expr in (
        "count_over_time(x[1000d:1ms])",
        "max_over_time(count_over_time(x[1d:1s])[1d:1s])",
    ):
        with pytest.raises(EvaluationError, match=re.escape(too_many)):
            Query(expr).evaluate(600_000, storage)
    [sample] = Query("count_over_time(x[10m:1m])").evaluate(600_000, storage)
    assert sample.value == 7  # 0 to 6m: the sample at 1m is read for 5 minutes after it


class _CountedTimes(list[int]):
    """A series' times that count the elements read: a bisection reads about 20 of a
    million, a pass over the series all of them."""

    read = 0

    def __getitem__(self, index: Any) -> Any:
        got = super().__getitem__(index)
        _CountedTimes.read += len(got) if isinstance(index, slice) else 1
        return got

    def __iter__(self) -> Iterator[int]:
        _CountedTimes.read += len(self)
        return super().__iter__()


def test_a_long_series_is_read_by_bisection() -> None:
    """A rule evaluated at every minute of a series of 1,000,000 samples (issue 24, point
    6): each evaluation costs a bisection, not a pass over the series."""
    storage = Storage()
    times = list(range(0, 1_000_000 * 15_000, 15_000))
    storage.add(
        labels_from({"__name__": "m", "job": "a"}), times, [float(i) for i in range(len(times))]
    )
    [series] = storage.named("m")
    series.times = _CountedTimes(series.times)
    query = Query('sum by (job) (m{job=~"a|b"} offset 1m) > bool 10')
    subquery = Query("(-m)[5m:1m]")
    _CountedTimes.read = 0
    for done, t in enumerate(range(0, 2_000 * 7_200_000, 7_200_000), 1):  # every 2 h
        query.evaluate(t, storage)
        subquery.evaluate(t, storage)
        # 7 bisections of ~20 reads each an evaluation pair; a pass would read 1,000,000
        assert _CountedTimes.read < 400 * done
    got = subquery.evaluate(600_000, storage)
    assert isinstance(got, Matrix)
    assert got.series[0].values == [-20.0, -24.0, -28.0, -32.0, -36.0, -40.0]


_INTERVAL = 15.0
_DIFF_SERIES = [
    ('m{job="a", instance="1"}', "1+0.1x80"),
    ('m{job="a", instance="2"}', "5-2.5x10 _x5 3 stale 4+0.3x60"),
    ('m{job="b", instance="1"}', "0.3+0.7x40 NaN Inf -Inf 2x30"),
    ('n{job="a"}', "10+1x80"),
    ('n{job="b", team="t"}', "3+0.25x80"),
    ('o{job="a", instance="1"}', "1x20 _x30 2x20"),  # a gap longer than the lookback
]
_DIFF_TIMES = [0, 45_000, 300_000, 487_500, 622_500, 645_000, 900_000, 1_200_000]
_DIFF_EXPRESSIONS = [
    # Selectors, offsets, @.
    "m",
    'm{job="a"}',
    'm{instance=~"1|3"}',
    'm{job!~"a.*"}',
    '{__name__=~"m|n"}',
    'n{team=""}',
    'n{team!=""}',
    "o",
    "m offset 1m",
    "m offset -2m",
    "m @ 100",
    "m @ 100.0005 offset 30s",
    "m @ start()",
    "m @ end() offset 90s",
    "o offset 5m",
    "m[1m]",
    "m[2m] offset 30s",
    "m[5m] @ 300",
    "m @ start() [1m]",
    "m @ -0.0005 offset -2m",
    "o[10m]",
    # Subqueries.
    "m[5m:1m]",
    "m[3m:]",
    "m[4m:45s] offset 1m",
    "(m * 2)[3m:30s] @ 200",
    "sum(m)[10m:2m]",
    "(-n)[2m:20s] offset -1m",
    "(m @ 100)[2m:30s]",
    "(m @ end() offset 1m)[2m:30s] offset 30s",
    "(n offset 1m + 1)[2m:45s] @ 400",
    # Binary operators.
    "m + n",
    "m + on(job) group_left n",
    "m / ignoring(instance) group_left(team) n",
    "n * on(job) group_right m",
    "n - on(job) group_right(team) m",
    "m > 2",
    "m > bool 2",
    "2 < m",
    "2 >= bool m",
    "m == m",
    "m != bool on(job, instance) m",
    "m and n",
    "m and on(job) n",
    "m or n",
    'm unless on(job) n{team="t"}',
    "m % 3",
    "m ^ 2",
    "n % -0.7",
    "m atan2 on(job) group_left n",
    "1 / (m - m)",
    "-m",
    "- - m",
    "1 + 2 * 3 ^ 2 ^ 0.5",
    "(1 > bool 2) + 3",
    "m - ignoring(instance) group_left n",
    '{__name__=~"m|o"} * 2',
    "n + on(job) m",
    "m + on(job) n",
    # Aggregations.
    "sum(m)",
    "sum by (job) (m)",
    "sum without (instance) (m)",
    "avg by (job) (m)",
    "avg(n * 0.1)",
    "count(m)",
    "min(m)",
    "max by (job) (m)",
    "group by (job) (m)",
    "stddev(m)",
    "stdvar by (job) (m * 1.1)",
    "topk(2, m)",
    "topk by (job) (1, m)",
    "bottomk by (job) (1, m)",
    "quantile(0.3, m)",
    "quantile by (job) (0.9, m)",
    'count_values("value", m)',
    'count_values without (instance) ("v", m)',
    'sum by (__name__) ({__name__=~"m|n"})',
    # Literals.
    '"text"',
    "0x1f",
    "-Inf",
]
_DIFF_FUNCTION_EXPRESSIONS = [
    # What the engine does around functions: timestamp()'s own times, matrix windows,
    # subqueries as function arguments, the metric name kept by last_over_time.
    "timestamp(m)",
    "timestamp(m @ 100 offset 1m)",
    "timestamp((o offset 1m))",
    "timestamp(-m)",
    "rate(m[2m])",
    "irate(m[1m] offset 30s)",
    "last_over_time(m[1m])",
    "max_over_time(m[5m:1m])",
    "avg_over_time((m * 2)[3m:45s] @ 300)",
    'absent(nope{job="x", a=~"b"})',
    "absent_over_time(o[1m])",
    'scalar(n{job="a"}) * time()',
    'label_replace(m, "x", "$1", "job", "(.*)")',
    "sum(rate(m[1m])) by (job)",
]


def _diff_input() -> list[InputSeries]:
    found = []
    for line, (series, values) in enumerate(_DIFF_SERIES, start=1):
        labels, parsed = parse_series_description(f"{series} {values}")
        found.append(InputSeries(labels, tuple(parsed), line))
    return found


def _comparable(value: Value | str) -> object:
    """A result as labels → values, or an error's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, Matrix):
        return {
            s.labels: list(zip(s.times, s.values, strict=True)) for s in value.series if s.times
        }
    if isinstance(value, list):
        return {s.labels: s.value for s in value}
    return value.value


def _their_result(answer: dict[str, object]) -> object:
    if answer["status"] != "success":
        return answer["error"]
    data = answer["data"]
    assert isinstance(data, dict)
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return float(result[1])
    if kind == "string":
        return result[1]
    if kind == "vector":
        return {labels_from(item["metric"]): float(item["value"][1]) for item in result}
    return {
        labels_from(item["metric"]): [(round(at * 1000), float(v)) for at, v in item["values"]]
        for item in result
    }


def _equal(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return _same(ours, theirs)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_equal(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(
            a[0] == b[0] and _same(a[1], b[1]) for a, b in zip(ours, theirs, strict=True)
        )
    return ours == theirs


@pytest.mark.anyio
@pytest.mark.timeout(60)
@pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="Prometheus' promtool and prometheus are not installed",
)
async def test_the_answers_of_prometheus_2_42() -> None:
    series = _diff_input()
    storage = Storage()
    for one in series:
        samples = one.samples(_INTERVAL)
        storage.add(
            labels_from(dict(one.labels)),
            [round(at * 1000) for at, _ in samples],
            [None if isinstance(value, Stale) else value for _, value in samples],
        )
    differences = []
    async with (
        throwaway_prometheus(series, _INTERVAL) as url,
        httpx.AsyncClient(base_url=url, timeout=10.0) as client,
    ):
        # The functions are written apart (_functions): once they are there, these too.
        functions = _DIFF_FUNCTION_EXPRESSIONS if FUNCTIONS else []
        for expr in _DIFF_EXPRESSIONS + functions:
            query = Query(expr)
            for t in _DIFF_TIMES:
                response = await client.get(
                    "/api/v1/query", params={"query": expr, "time": f"{t / 1000:.3f}"}
                )
                theirs = _their_result(response.json())
                try:
                    ours = _comparable(query.evaluate(t, storage))
                except EvaluationError as exc:
                    ours = str(exc)
                if not _equal(ours, theirs):
                    differences.append(f"{expr} at {t} ms:\n  ours   {ours}\n  theirs {theirs}")
    assert not differences, "\n".join(differences)
