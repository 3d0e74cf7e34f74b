"""PromQL functions as Prometheus 2.42 computes them, called directly on hand-built values.

The cases and their expected values are Prometheus' own, from v2.42.0's
promql/testdata/functions.test and histograms.test (cited at each test): the series are
loaded as the test language loads them (``0+10x10``: 11 samples, each the one before plus
10) and the windows cut as Prometheus 2 cuts them (``[t - range, t]``, both ends in).
"""

from __future__ import annotations

import math
import re
from typing import Any

import promql_parser
import pytest

from metric_reader._promql import (
    Context,
    EvaluationError,
    Matrix,
    Sample,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    labels_from,
)
from metric_reader._promql._functions import FUNCTIONS

# --------------------------------------------------------------------------------------------
# The test language, as far as these cases need it

_SELECTOR = re.compile(r"(\w*)(?:\{(.*)\})?")
_PAIR = re.compile(r'(\w+)="([^"]*)"')


def series(selector: str, values: str, step: int) -> Series:
    """``name{a="b"}`` loaded with ``values`` (``0+10x4 1 NaN``) every ``step`` seconds."""
    match = _SELECTOR.fullmatch(selector)
    assert match
    pairs = _PAIR.findall(match.group(2) or "")
    if match.group(1):
        pairs.append(("__name__", match.group(1)))
    loaded = Series(labels_from(pairs))
    for value in _expanded(values):
        loaded.times.append(len(loaded.times) * step * 1000)
        loaded.values.append(value)
    return loaded


def _expanded(values: str) -> list[float]:
    out: list[float] = []
    for token in values.split():
        expansion = re.fullmatch(r"(-?[\d.]+)([+-][\d.]+)x(\d+)", token)
        if expansion is None:
            out.append(float(token))
            continue
        current, step = float(expansion.group(1)), float(expansion.group(2))
        out.append(current)
        for _ in range(int(expansion.group(3))):
            current += step
            out.append(current)
    return out


def window(loaded: list[Series], at: float, range_s: float, offset: float = 0) -> Matrix:
    end = int((at - offset) * 1000)
    start = end - int(range_s * 1000)
    cut = []
    for one in loaded:
        kept = [i for i, t in enumerate(one.times) if start <= t <= end]
        cut.append(Series(one.labels, [one.times[i] for i in kept], [one.values[i] for i in kept]))
    return Matrix(cut, start, end)


def instant(loaded: list[Series], at: float) -> Vector:
    """The instant vector at ``at`` seconds (the latest sample within 5 minutes)."""
    t = int(at * 1000)
    out: Vector = []
    for one in loaded:
        kept = [
            v for time, v in zip(one.times, one.values, strict=True) if t - 300_000 <= time <= t
        ]
        if kept:
            out.append(Sample(one.labels, kept[-1], t))
    return out


def call(name: str, *args: Value, at: float = 0, expr: str | None = None) -> Any:
    exprs = promql_parser.parse(expr).args if expr else []
    return FUNCTIONS[name](list(args), exprs, Context(int(at * 1000)))


def result(vector: Any) -> dict[str, float]:
    """``{a="b"}``-keyed values (``name{...}`` when the name is kept)."""
    out = {}
    for sample in vector:
        name = dict(sample.labels).get("__name__", "")
        inner = ",".join(f'{k}="{v}"' for k, v in sample.labels if k != "__name__")
        out[f"{name}{{{inner}}}"] = sample.value
    return out


def same(got: dict[str, float], expected: dict[str, float]) -> bool:
    """Equal as Prometheus' test language compares (NaN equals NaN, 1e-6 relative)."""
    if got.keys() != expected.keys():
        return False
    for key, want in expected.items():
        have = got[key]
        if math.isnan(want) or math.isnan(have):
            if not (math.isnan(want) and math.isnan(have)):
                return False
        elif not math.isclose(have, want, rel_tol=1e-6, abs_tol=1e-12 if want == 0 else 0):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Range functions


def test_rate_increase_delta_extrapolate_to_the_window_and_handle_counter_resets() -> None:
    # functions.test: "Tests for increase()", "Test for increase() with counter reset",
    # "Tests for rate()", "Zero cutoff for left-side extrapolation", "Tests for delta()"
    requests = [
        series('http_requests{path="/foo"}', "0+10x10", 300),
        series('http_requests{path="/bar"}', "0+10x5 0+10x5", 300),
    ]
    assert result(call("increase", window(requests, 3000, 3000), at=3000)) == {
        '{path="/foo"}': 100,
        '{path="/bar"}': 90,
    }
    assert result(call("increase", window(requests, 3000, 6000), at=3000)) == {
        '{path="/foo"}': 100,
        '{path="/bar"}': 90,
    }
    reset = [series('http_requests{path="/foo"}', "0 1 2 3 2 3 4", 300)]
    assert result(call("increase", window(reset, 1800, 1800), at=1800)) == {'{path="/foo"}': 7}

    middle = [series("testcounter_reset_middle", "0+10x4 0+10x5", 300)]
    end = [series("testcounter_reset_end", "0+10x9 0 10", 300)]
    assert result(call("rate", window(middle, 3000, 3000), at=3000)) == {"{}": 0.03}
    assert result(call("rate", window(end, 3000, 300), at=3000)) == {"{}": 0}
    rate_window = [series("calculate_rate_window", "0+80x10", 300)]
    assert result(call("rate", window(rate_window, 3000, 3000), at=3000)) == {
        "{}": 0.26666666666666666
    }
    offset = [
        series('calculate_rate_offset{x="a"}', "0+10x10", 300),
        series('calculate_rate_offset{x="b"}', "0+20x10", 300),
    ]
    assert result(call("rate", window(offset, 3000, 600, offset=300), at=3000)) == {
        '{x="a"}': 0.03333333333333333,
        '{x="b"}': 0.06666666666666667,
    }

    cutoff = [
        series(f'testcounter_zero_cutoff{{start="{m}m"}}', f"{m * 60}+240x10", 240)
        for m in range(6)
    ]
    at_10m = {'{start="0m"}': 0.5, '{start="1m"}': 0.55, '{start="2m"}': 0.6}
    at_10m |= {'{start="3m"}': 0.65, '{start="4m"}': 0.7, '{start="5m"}': 0.6}
    assert same(result(call("rate", window(cutoff, 600, 1200), at=600)), at_10m)
    at_50m = {f'{{start="{m}m"}}': 0.6 for m in range(6)}
    assert same(result(call("rate", window(cutoff, 3000, 1200), at=3000)), at_50m)

    falling = [
        series('http_requests{path="/foo"}', "0 50 100 150 200", 300),
        series('http_requests{path="/bar"}', "200 150 100 50 0", 300),
    ]
    assert result(call("delta", window(falling, 1200, 1200), at=1200)) == {
        '{path="/foo"}': 200,
        '{path="/bar"}': -200,
    }
    one_sample = [series("x", "1", 300)]
    assert call("rate", window(one_sample, 0, 300)) == []


def test_irate_and_idelta_take_the_last_two_samples() -> None:
    # functions.test: "Tests for irate()", "Tests for idelta()"
    requests = [
        series('http_requests{path="/foo"}', "0+10x10", 300),
        series('http_requests{path="/bar"}', "0+10x5 0+10x5", 300),
    ]
    assert same(
        result(call("irate", window(requests, 3000, 3000), at=3000)),
        {'{path="/foo"}': 0.03333333333333333, '{path="/bar"}': 0.03333333333333333},
    )
    assert same(
        result(call("irate", window(requests, 1800, 3000), at=1800)),
        {'{path="/foo"}': 0.03333333333333333, '{path="/bar"}': 0},
    )
    deltas = [
        series('http_requests{path="/foo"}', "0 50 100 150", 300),
        series('http_requests{path="/bar"}', "0 50 100 50", 300),
    ]
    assert result(call("idelta", window(deltas, 1200, 1200), at=1200)) == {
        '{path="/foo"}': 50,
        '{path="/bar"}': -50,
    }


def test_deriv_and_predict_linear_regress_from_the_evaluation_time() -> None:
    # functions.test: "Tests for deriv() and predict_linear()"
    middle = [series("testcounter_reset_middle", "0+10x4 0+10x5", 300)]
    canary = [series('http_requests{job="app-server",group="canary"}', "0+80x10", 300)]
    assert result(call("deriv", window(canary, 3000, 3000), at=3000)) == {
        '{group="canary",job="app-server"}': 0.26666666666666666
    }
    assert result(call("deriv", window(middle, 3000, 6000), at=3000)) == {
        "{}": 0.010606060606060607
    }
    got = call("predict_linear", window(middle, 3000, 6000), Scalar(3600), at=3000)
    assert same(result(got), {"{}": 76.81818181818181})
    # @ 3000 evaluated at 10m: the window is at 3000 s, the intercept at the evaluation time
    at_3000 = window(middle, 3000, 6000)
    assert same(
        result(call("predict_linear", at_3000, Scalar(3600), at=600)), {"{}": 51.36363636363637}
    )
    assert same(
        result(call("predict_linear", at_3000, Scalar(3600), at=4200)), {"{}": 89.54545454545455}
    )


def test_holt_winters_smooths_with_its_trend_and_refuses_bad_factors() -> None:
    # functions.test: "Tests for holt_winters", positive and negative trends
    loaded = [
        series('http_requests{instance="0",group="production"}', "0+10x1000 100+30x1000", 10),
        series('http_requests{instance="1",group="canary"}', "0+40x2000", 10),
        series('http_requests{instance="1",group="production"}', "0-20x1000", 10),
    ]
    got = call("holt_winters", window(loaded, 8000, 60), Scalar(0.01), Scalar(0.1), at=8000)
    assert same(
        result(got),
        {
            '{group="production",instance="0"}': 8000,
            '{group="canary",instance="1"}': 32000,
            '{group="production",instance="1"}': -16000,
        },
    )
    with pytest.raises(
        EvaluationError, match=r"^invalid smoothing factor\. Expected: 0 < sf < 1, got: 1\.000000$"
    ):
        call("holt_winters", window(loaded, 8000, 60), Scalar(1), Scalar(0.1))
    with pytest.raises(
        EvaluationError, match=r"^invalid trend factor\. Expected: 0 < tf < 1, got: -Inf$"
    ):
        call("holt_winters", window(loaded, 8000, 60), Scalar(0.5), Scalar(-math.inf))


def test_resets_and_changes_count_along_the_window() -> None:
    # functions.test: "Tests for resets()", "Tests for changes()"
    loaded = [
        series('http_requests{path="/foo"}', "1 2 3 0 1 0 0 1 2 0", 300),
        series('http_requests{path="/bar"}', "1 2 3 4 5 1 2 3 4 5", 300),
        series('http_requests{path="/biz"}', "0 0 0 0 0 1 1 1 1 1", 300),
    ]
    for range_s, resets, changes in [
        (300, (0, 0, 0), (0, 0, 0)),
        (1200, (1, 0, 0), (3, 3, 0)),
        (1800, (2, 1, 0), (4, 5, 1)),
        (3000, (3, 1, 0), (8, 9, 1)),
    ]:
        matrix = window(loaded, 3000, range_s)
        keys = ['{path="/foo"}', '{path="/bar"}', '{path="/biz"}']
        assert result(call("resets", matrix, at=3000)) == dict(zip(keys, resets, strict=True))
        assert result(call("changes", matrix, at=3000)) == dict(zip(keys, changes, strict=True))
    nan = [series('x{a="b"}', "NaN NaN NaN", 300), series('x{a="c"}', "0 NaN 0", 300)]
    assert result(call("changes", window(nan, 900, 900), at=900)) == {'{a="b"}': 0, '{a="c"}': 2}


def test_changes_refuses_two_series_that_differ_only_by_name() -> None:
    # functions.test: "Test duplicate labelset in promql output"
    loaded = [
        series('testmetric1{src="a",dst="b"}', "0", 300),
        series('testmetric2{src="a",dst="b"}', "1", 300),
    ]
    with pytest.raises(
        EvaluationError, match=r"^vector cannot contain metrics with the same labelset$"
    ):
        call("changes", window(loaded, 0, 300))


@pytest.mark.parametrize(
    ("values", "avg"),
    [  # functions.test: "Tests for avg_over_time"
        ("1 2 3 4 5", 3),
        ("1 2 3 4 Inf", math.inf),
        ("1 2 3 Inf -Inf", math.nan),
        ("Inf 0 Inf", math.inf),
        ("Inf Inf Inf -Inf", math.nan),
        ("-Inf 0 -Inf", -math.inf),
        ("1 2 -Inf -Inf Inf", math.nan),
        ("9.988465674311579e+307 9.988465674311579e+307", 9.988465674311579e307),
        ("-9.988465674311579e+307 9.988465674311579e+307", 0),
    ],
)
def test_avg_over_time_keeps_infinities_and_does_not_overflow(values: str, avg: float) -> None:
    got = result(call("avg_over_time", window([series("metric", values, 10)], 60, 60), at=60))
    assert same(got, {"{}": avg})


def test_the_over_time_family() -> None:
    # functions.test: "Tests for stddev_over_time and stdvar_over_time", "Tests for
    # quantile_over_time", "Tests for *_over_time"
    metric = window([series("metric", "0 8 8 2 3", 10)], 60, 60)
    assert same(result(call("stdvar_over_time", metric, at=60)), {"{}": 10.56})
    assert same(result(call("stddev_over_time", metric, at=60)), {"{}": 3.249615})
    constant = window(
        [series("metric", "1.5990505637277868 1.5990505637277868 1.5990505637277868", 10)], 60, 60
    )
    assert result(call("stdvar_over_time", constant)) == {"{}": 0}
    assert result(call("sum_over_time", metric)) == {"{}": 21}
    assert result(call("count_over_time", metric)) == {"{}": 5}

    data = window(
        [
            series('data{test="two samples"}', "0 1", 10),
            series('data{test="three samples"}', "0 1 2", 10),
            series('data{test="uneven samples"}', "0 1 4", 10),
        ],
        60,
        60,
    )
    for q, expected in [
        (0, (0, 0, 0)),
        (0.5, (0.5, 1, 1)),
        (0.75, (0.75, 1.5, 2.5)),
        (0.8, (0.8, 1.6, 2.8)),
        (1, (1, 2, 4)),
        (-1, (-math.inf,) * 3),
        (2, (math.inf,) * 3),
    ]:
        keys = ['{test="two samples"}', '{test="three samples"}', '{test="uneven samples"}']
        got = result(call("quantile_over_time", Scalar(q), data, at=60))
        assert same(got, dict(zip(keys, expected, strict=True))), q

    nans = window(
        [
            series('data{type="numbers"}', "2 0 3", 10),
            series('data{type="some_nan"}', "2 0 NaN", 10),
            series('data{type="some_nan2"}', "2 NaN 1", 10),
            series('data{type="some_nan3"}', "NaN 0 1", 10),
            series('data{type="only_nan"}', "NaN NaN NaN", 10),
        ],
        60,
        60,
    )
    types = ["numbers", "some_nan", "some_nan2", "some_nan3", "only_nan"]
    expected_min = dict(zip(types, [0, 0, 1, 0, math.nan], strict=True))
    expected_max = dict(zip(types, [3, 2, 2, 1, math.nan], strict=True))
    expected_last = dict(zip(types, [3, math.nan, 1, 1, math.nan], strict=True))
    assert same(
        result(call("min_over_time", nans)), {f'{{type="{k}"}}': v for k, v in expected_min.items()}
    )
    assert same(
        result(call("max_over_time", nans)), {f'{{type="{k}"}}': v for k, v in expected_max.items()}
    )
    # last_over_time keeps the metric name, as offset would
    assert same(
        result(call("last_over_time", nans)),
        {f'data{{type="{k}"}}': v for k, v in expected_last.items()},
    )


def test_present_and_absent_over_time() -> None:
    # functions.test: "Testdata for absent_over_time()", "Testdata for present_over_time()"
    loaded = [
        series('http_requests{path="/foo",instance="127.0.0.1",job="httpd"}', "1+1x10", 60),
        series('ssl_certificate_expiry_seconds{job="ingress"}', "NaN NaN NaN NaN NaN", 60),
    ]
    assert result(call("present_over_time", window(loaded[:1], 300, 300), at=300)) == {
        '{instance="127.0.0.1",job="httpd",path="/foo"}': 1
    }
    assert (
        call(
            "absent_over_time",
            window(loaded[:1], 900, 300),
            expr="absent_over_time(http_requests[5m])",
        )
        == []
    )
    expr = (
        'absent_over_time(http_requests{handler="/foo", handler="/bar", instance="127.0.0.1"}[5m])'
    )
    assert result(call("absent_over_time", window(loaded[:1], 960, 300), at=960, expr=expr)) == {
        '{instance="127.0.0.1"}': 1
    }
    ingress = 'absent_over_time({job="ingress"}[4m])'
    assert call("absent_over_time", window(loaded[1:], 300, 240), expr=ingress) == []
    assert result(call("absent_over_time", window(loaded[1:], 600, 240), expr=ingress)) == {
        '{job="ingress"}': 1
    }
    subquery = 'absent_over_time({instance="127.0.0.1"}[5m:5s])'
    assert result(call("absent_over_time", Matrix([], 1500_000, 1800_000), expr=subquery)) == {
        "{}": 1
    }


# --------------------------------------------------------------------------------------------
# histogram_quantile


def test_histogram_quantile_of_classic_buckets() -> None:
    # histograms.test: the "testhistogram", "nonmonotonic" and "mixed" histograms
    loaded = [
        series('testhistogram_bucket{le="0.1",start="positive"}', "0+5x10", 300),
        series('testhistogram_bucket{le=".2",start="positive"}', "0+7x10", 300),
        series('testhistogram_bucket{le="1e0",start="positive"}', "0+11x10", 300),
        series('testhistogram_bucket{le="+Inf",start="positive"}', "0+12x10", 300),
        series('testhistogram_bucket{le="-.2",start="negative"}', "0+1x10", 300),
        series('testhistogram_bucket{le="-0.1",start="negative"}', "0+2x10", 300),
        series('testhistogram_bucket{le="0.3",start="negative"}', "0+2x10", 300),
        series('testhistogram_bucket{le="+Inf",start="negative"}', "0+3x10", 300),
    ]
    buckets = instant(loaded, 3000)
    for q, positive, negative in [
        (-0.1, -math.inf, -math.inf),
        (1.01, math.inf, math.inf),
        (math.nan, math.nan, math.nan),
        (1, 1, 0.3),
        (0.2, 0.048, -0.2),
        (0.5, 0.15, -0.15),
        (0.8, 0.72, 0.3),
    ]:
        got = result(
            call("histogram_quantile", Scalar(q), [Sample(s.labels, s.value, s.t) for s in buckets])
        )
        assert same(got, {'{start="positive"}': positive, '{start="negative"}': negative}), q
    negative_only = [s for s in buckets if ("start", "negative") in s.labels]
    assert result(call("histogram_quantile", Scalar(0), negative_only)) == {
        '{start="negative"}': -0.2
    }
    rates = call("rate", window(loaded, 3000, 300), at=3000)
    assert same(
        result(call("histogram_quantile", Scalar(0.8), rates)),
        {'{start="positive"}': 0.72, '{start="negative"}': 0.3},
    )

    nonmonotonic = [
        series(f'nonmonotonic_bucket{{le="{le}"}}', f"0+{step}x10", 300)
        for le, step in [("0.1", 2), ("1", 1), ("10", 5), ("100", 4), ("1000", 9), ("+Inf", 8)]
    ]
    for q, expected in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)]:
        got = result(call("histogram_quantile", Scalar(q), instant(nonmonotonic, 3000)))
        assert same(got, {"{}": expected}), q

    mixed = [
        series(f'mixed_bucket{{instance="ins1",le="{le}"}}', f"0+{step}x10", 300)
        for le, step in [("0.1", 1), ("0.2", 1), ("2e-1", 1), ("2.0e-1", 1), ("+Inf", 4)]
    ] + [
        series(f'mixed_bucket{{instance="ins2",le="{le}"}}', "0+0x10", 300)
        for le in ("+inf", "+Inf")
    ]
    mixed_rates = call("rate", window(mixed, 3000, 300), at=3000)
    for q, expected in [(0.5, 0.15), (0.75, 0.2), (1, 0.2)]:
        got = result(call("histogram_quantile", Scalar(q), mixed_rates))
        assert same(got, {'{instance="ins1"}': expected, '{instance="ins2"}': math.nan}), q


def test_histogram_quantile_reads_le_as_go_and_needs_an_inf_bucket() -> None:
    def buckets(*pairs: tuple[str, float]) -> Vector:
        return [Sample(labels_from({"__name__": "h_bucket", "le": le}), v, 0) for le, v in pairs]

    # Go's ParseFloat: hex floats and digit separators are numbers, spaces are not
    hexadecimal = buckets(("0x1p-2", 1), ("1_0", 2), (" 20", 100), ("+Inf", 2))
    assert result(call("histogram_quantile", Scalar(0.5), hexadecimal)) == {"{}": 0.25}
    assert same(
        result(call("histogram_quantile", Scalar(0.5), buckets(("1", 1), ("2", 2)))),
        {"{}": math.nan},
    )
    # the +Inf bucket is found even among buckets too large for a float (skipped, as Go)
    assert result(
        call("histogram_quantile", Scalar(1), buckets(("1e999", 5), ("1", 1), ("Inf", 2)))
    ) == {"{}": 1}
    # two histograms that differ only by name give the same labels: refused
    twice = [
        *buckets(("1", 1), ("+Inf", 1)),
        Sample(labels_from({"__name__": "g_bucket", "le": "+Inf"}), 1, 0),
    ]
    with pytest.raises(EvaluationError, match="same labelset"):
        call("histogram_quantile", Scalar(0.99), twice)


# --------------------------------------------------------------------------------------------
# Labels


def test_label_replace() -> None:
    # functions.test: "Tests for label_replace"
    loaded = [
        series('testmetric{src="source-value-10",dst="original-destination-value"}', "0", 300),
        series('testmetric{src="source-value-20",dst="original-destination-value"}', "1", 300),
    ]

    def replace(dst: str, replacement: str, src: str, regex: str) -> dict[str, float]:
        vector = instant(loaded, 0)
        return result(
            call(
                "label_replace",
                vector,
                String(dst),
                String(replacement),
                String(src),
                String(regex),
            )
        )

    original = {
        'testmetric{dst="original-destination-value",src="source-value-10"}': 0,
        'testmetric{dst="original-destination-value",src="source-value-20"}': 1,
    }
    assert replace("dst", "destination-value-$1", "src", "source-value-(.*)") == {
        'testmetric{dst="destination-value-10",src="source-value-10"}': 0,
        'testmetric{dst="destination-value-20",src="source-value-20"}': 1,
    }
    assert replace("dst", "destination-value-$1", "src", "value-(.*)") == original  # anchored
    assert replace("dst", "$1-value-$2", "src", "(.*)-value-(.*)") == {
        'testmetric{dst="source-value-10",src="source-value-10"}': 0,
        'testmetric{dst="source-value-20",src="source-value-20"}': 1,
    }
    assert replace("dst", "value-$1", "nonexistent-src", "source-value-(.*)") == original
    assert replace("dst", "value-$1", "nonexistent-src", "(.*)") == {
        'testmetric{dst="value-",src="source-value-10"}': 0,
        'testmetric{dst="value-",src="source-value-20"}': 1,
    }
    assert replace("dst", "value-$1", "src", "non-matching-regex") == original
    assert replace("dst", "", "dst", ".*") == {
        'testmetric{src="source-value-10"}': 0,
        'testmetric{src="source-value-20"}': 1,
    }
    # Go's Regexp.Expand: $$, ${1}, $name, $1x (the group named "1x": none), a lone $
    assert replace("dst", "$$-${1}x-$num-$1x-$-${2", "src", "source-(?P<num>value)-(.*)") == {
        'testmetric{dst="$-valuex-value--$-${2",src="source-value-10"}': 0,
        'testmetric{dst="$-valuex-value--$-${2",src="source-value-20"}': 1,
    }
    with pytest.raises(
        EvaluationError, match=r"^invalid regular expression in label_replace\(\): \(\.\*$"
    ):
        replace("dst", "value-$1", "src", "(.*")
    with pytest.raises(
        EvaluationError,
        match=r"^invalid destination label name in label_replace\(\): invalid-label-name$",
    ):
        replace("invalid-label-name", "", "src", "(.*)")
    with pytest.raises(EvaluationError, match="same labelset"):
        replace("src", "", "", "")
    with pytest.raises(EvaluationError, match="invalid regular expression"):
        replace("dst", "", "src", "(?=x)")  # RE2 syntax, as Go's: no lookahead
    # where Go 1.19's regexp (promtool 2.42's) and the C++ RE2 part, promtool's answers:
    # (?<name>) and non-ASCII group names refused, a group name given twice accepted
    for refused in ("(?<x>.*)", "(?P<é>.*)"):
        with pytest.raises(EvaluationError, match="invalid regular expression"):
            replace("dst", "", "src", refused)
    assert replace("dst", "[$x]", "src", "(?P<x>z)?(?P<x>source)-.*") == {
        'testmetric{dst="[source]",src="source-value-10"}': 0,
        'testmetric{dst="[source]",src="source-value-20"}': 1,
    }
    # no (?s) here, unlike a label matcher: . does not match a newline
    newline = [Sample(labels_from({"__name__": "m", "src": "a\nb"}), 1, 0)]
    got = call("label_replace", newline, String("dst"), String("x"), String("src"), String(".*"))
    assert got[0].labels == newline[0].labels


def test_label_join() -> None:
    # functions.test: "Tests for label_join"
    loaded = [
        series('testmetric{src="a",src1="b",src2="c",dst="original-destination-value"}', "0", 300),
        series('testmetric{src="d",src1="e",src2="f",dst="original-destination-value"}', "1", 300),
    ]

    def join(*strings: str) -> dict[str, float]:
        return result(call("label_join", instant(loaded, 0), *(String(s) for s in strings)))

    assert join("dst", "-", "src", "src1", "src2") == {
        'testmetric{dst="a-b-c",src="a",src1="b",src2="c"}': 0,
        'testmetric{dst="d-e-f",src="d",src1="e",src2="f"}': 1,
    }
    assert join("dst", "-", "src", "src3", "src1") == {
        'testmetric{dst="a--b",src="a",src1="b",src2="c"}': 0,
        'testmetric{dst="d--e",src="d",src1="e",src2="f"}': 1,
    }
    assert join("dst", ", ") == {
        'testmetric{src="a",src1="b",src2="c"}': 0,
        'testmetric{src="d",src1="e",src2="f"}': 1,
    }
    with pytest.raises(
        EvaluationError, match=r"^invalid source label name in label_join\(\): 1src$"
    ):
        join("dst", "-", "src", "1src")
    with pytest.raises(
        EvaluationError, match=r"^invalid destination label name in label_join\(\): d-st$"
    ):
        join("d-st", "-", "src")


@pytest.mark.parametrize(
    ("expr", "labels"),
    [  # functions.test: "Test for absent()"
        ("absent(nonexistent)", "{}"),
        (
            'absent(nonexistent{job="testjob", instance="testinstance", method=~".x"})',
            '{instance="testinstance",job="testjob"}',
        ),
        ('absent(nonexistent{job="testjob",job="testjob2",foo="bar"})', '{foo="bar"}'),
        ('absent(nonexistent{job="testjob",job="testjob2",job="three",foo="bar"})', '{foo="bar"}'),
        ('absent(nonexistent{job="testjob",job=~"testjob2",foo="bar"})', '{foo="bar"}'),
        ('absent(sum(nonexistent{job="testjob", instance="testinstance"}))', "{}"),
        ('absent((nonexistent{job="testjob"}))', '{job="testjob"}'),
    ],
)
def test_absent_labels_come_from_the_equality_matchers(expr: str, labels: str) -> None:
    assert result(call("absent", [], expr=expr, at=3000)) == {labels: 1}


def test_absent_of_something_is_nothing() -> None:
    present = [Sample(labels_from({"__name__": "x"}), 1, 0)]
    assert call("absent", present, expr="absent(x)") == []


# --------------------------------------------------------------------------------------------
# Instant-vector and scalar functions


def test_time_vector_scalar_timestamp_and_the_calendar() -> None:
    # functions.test: "Tests for vector, time and timestamp", "Test time-related functions"
    assert call("time", at=3000) == Scalar(3000)
    assert call("time", at=0.001) == Scalar(0.001)
    assert result(call("vector", Scalar(1))) == {"{}": 1}
    assert call("scalar", [Sample((), 4, 0)]) == Scalar(4)
    assert math.isnan(call("scalar", []).value)
    metric = [Sample(labels_from({"__name__": "metric"}), 1, 10_000)]
    assert result(call("timestamp", metric, at=15)) == {"{}": 10}

    at_zero = {
        "year": 1970,
        "month": 1,
        "day_of_month": 1,
        "day_of_year": 1,
        "day_of_week": 4,
        "hour": 0,
        "minute": 0,
    }
    for name, expected in at_zero.items():
        assert result(call(name)) == {"{}": expected}, name
    at_2006 = {
        "year": 2006,
        "month": 1,
        "day_of_month": 2,
        "day_of_year": 2,
        "day_of_week": 1,
        "hour": 22,
        "minute": 4,
    }
    for name, expected in at_2006.items():
        assert result(call(name, [Sample(labels_from({"__name__": "n"}), 1136239445, 0)])) == {
            "{}": expected
        }, name
    for seconds, name, expected in [
        (1230767999, "year", 2008),
        (1230768000, "year", 2009),
        (1456790399, "day_of_month", 29),
        (1456790400, "month", 3),
        (1483191420, "day_of_year", 366),
        (1672493820, "day_of_year", 365),
        (1454284800, "days_in_month", 29),
        (1485907200, "days_in_month", 28),
        (1e15, "year", 31690708),  # beyond Python's datetime, as Go's time counts
        (-1.5, "minute", 59),  # int64(-1.5) is -1: 23:59:59 the day before
    ]:
        assert result(call(name, [Sample((), seconds, 0)])) == {"{}": expected}, (seconds, name)


def test_arithmetic_as_go_computes_it() -> None:
    # functions.test: "Testing exp() sqrt() log2() log10() ln()", "Test cases for sgn",
    # "Tests for clamp_max, clamp_min(), and clamp()"
    def values(name: str, *args: Value) -> list[float]:
        return [sample.value for sample in call(name, *args)]

    def vector(*numbers: float) -> Vector:
        return [
            Sample(labels_from({"__name__": "m", "i": str(i)}), v, 0) for i, v in enumerate(numbers)
        ]

    assert values("exp", vector(10, 20, 1000)) == [22026.465794806718, 485165195.4097903, math.inf]
    assert values("ln", vector(10, 0))[:2] == [2.302585092994046, -math.inf]
    assert math.isnan(values("ln", vector(-10))[0])
    assert values("log10", vector(10, 20, 0)) == [
        1,
        1.301029995663981,
        -math.inf,
    ]  # Log(x) * (1/Ln10)
    assert values("log2", vector(8, 0)) == [3, -math.inf]
    assert math.isnan(values("sqrt", vector(-1))[0]) and values("sqrt", vector(20)) == [
        4.47213595499958
    ]
    assert [math.isnan(v) for v in values("sin", vector(math.inf, 0))] == [True, False]
    assert values("atanh", vector(1, -1)) == [math.inf, -math.inf]
    assert values("cosh", vector(1000)) == [math.inf] and values("sinh", vector(-1000)) == [
        -math.inf
    ]
    assert values("floor", vector(-0.5, math.inf))[1] == math.inf
    assert math.copysign(1, values("ceil", vector(-0.5))[0]) == -1  # Go's Ceil gives -0
    sgn = values("sgn", vector(-math.inf, math.inf, math.nan, -50, 0, 100))
    assert sgn[:2] == [-1, 1] and math.isnan(sgn[2]) and sgn[3:] == [-1, 0, 1]
    assert values("round", vector(2.5, -2.5, 0.125)) == [3, -2, 0]  # ties up
    assert values("round", vector(2.25, 7), Scalar(0.5)) == [2.5, 7]
    assert values("deg", vector(math.pi)) == [180] and values("rad", vector(180)) == [math.pi]
    assert call("pi") == Scalar(math.pi)

    clamp = vector(-50, 0, 100)
    assert values("clamp_max", clamp, Scalar(75)) == [-50, 0, 75]
    assert values("clamp_min", clamp, Scalar(-25)) == [-25, 0, 100]
    assert values("clamp", clamp, Scalar(-25), Scalar(75)) == [-25, 0, 75]
    assert all(math.isnan(v) for v in values("clamp", clamp, Scalar(0), Scalar(math.nan)))
    assert all(math.isnan(v) for v in values("clamp", clamp, Scalar(math.nan), Scalar(0)))
    assert values("clamp", clamp, Scalar(5), Scalar(-5)) == []
    # all of these drop the metric name
    assert result(call("abs", vector(-1))) == {'{i="0"}': 1}


def test_sort_puts_nan_last_and_keeps_the_name() -> None:
    # functions.test: "Tests for sort/sort_desc"
    vector = [
        Sample(labels_from({"__name__": "r", "i": str(v)}), v, 0) for v in (300, math.nan, 100, 800)
    ]
    ascending = call("sort", vector)
    descending = call("sort_desc", vector)
    assert [s.value for s in ascending][:3] == [100, 300, 800] and math.isnan(ascending[3].value)
    assert [s.value for s in descending][:3] == [800, 300, 100] and math.isnan(descending[3].value)
    assert dict(ascending[0].labels)["__name__"] == "r"


def test_every_function_of_prometheus_2_42_is_there() -> None:
    names = {  # promql/functions.go: FunctionCalls
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
        "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
        "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
        "irate", "label_replace", "label_join", "ln", "log10", "log2", "last_over_time",
        "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
        "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
        "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
    }  # fmt: skip
    assert set(FUNCTIONS) == names
