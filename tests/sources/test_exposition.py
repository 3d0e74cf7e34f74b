"""The selective exposition reader: explicit cases, and prometheus_client as the reference."""

from __future__ import annotations

import math
from collections.abc import Collection

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from metric_reader._sources._exposition import (
    _FIND_MAX_NAMES,
    ExpositionError,
    decode_value,
    read_series,
)

Found = dict[str, list[tuple[dict[str, str], float]]]
STRATEGIES = ["find", "lines"]


def read(page: bytes, names: Collection[str], strategy: str) -> Found:
    """``read_series``, forcing one of its two ways of finding lines."""
    if strategy == "find":
        assert len(names) <= _FIND_MAX_NAMES
        return read_series(page, names)
    padding = [f"zz_padding_{i}" for i in range(_FIND_MAX_NAMES + 1)]
    found = read_series(page, [*names, *padding])
    return {name: found[name] for name in dict.fromkeys(names)}


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def comparable(found: Found) -> dict[str, list[tuple[dict[str, str], object]]]:
    """NaN compares equal to NaN here (and only here)."""
    return {
        name: [(labels, "NaN" if math.isnan(value) else value) for labels, value in series]
        for name, series in found.items()
    }


PAGE = b"""\
# HELP queue_depth Jobs waiting in the queue.
# TYPE queue_depth gauge
queue_depth{queue="a"} 5
queue_depth{queue="b"} 7
# HELP queue_depth_max Most jobs seen.
# TYPE queue_depth_max gauge
queue_depth_max{queue="a"} 50
queue_depth_maximum 1
queue_depth:rate5m 2
# TYPE http_requests_total counter
http_requests_total{code="200"} 1027
http_requests_total{code="500"} 3
http_requests 99
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.1"} 1
rpc_seconds_bucket{le="+Inf"} 2
rpc_seconds_sum 0.35
rpc_seconds_count 2
# TYPE lat summary
lat{quantile="0.5"} 0.2
lat{quantile="0.99"} NaN
lat_sum 1.5
lat_count 7
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("queue_depth", [({"queue": "a"}, 5.0), ({"queue": "b"}, 7.0)]),
        ("queue_depth_max", [({"queue": "a"}, 50.0)]),
        ("queue_depth_maximum", [({}, 1.0)]),
        ("queue_depth:rate5m", [({}, 2.0)]),
        ("queue", []),
        ("queue_dept", []),
        ("http_requests_total", [({"code": "200"}, 1027.0), ({"code": "500"}, 3.0)]),
        ("http_requests", [({}, 99.0)]),
        ("rpc_seconds", []),
        ("rpc_seconds_bucket", [({"le": "0.1"}, 1.0), ({"le": "+Inf"}, 2.0)]),
        ("rpc_seconds_sum", [({}, 0.35)]),
        ("rpc_seconds_count", [({}, 2.0)]),
        ("lat_sum", [({}, 1.5)]),
        ("lat_count", [({}, 7.0)]),
        ("absent", []),
        ("TYPE", []),
        ("HELP", []),
    ],
)
def test_exact_names(name: str, expected: list[object], strategy: str) -> None:
    assert read(PAGE, [name], strategy) == {name: expected}


def test_names_sharing_prefixes_read_together_as_alone(strategy: str) -> None:
    names = [
        "queue",
        "queue_depth",
        "queue_depth_max",
        "rpc_seconds_bucket",
        "rpc_seconds_sum",
        "rpc_seconds",
        "lat",
        "lat_sum",
        "http_requests",
        "http_requests_total",
    ]
    alone = {name: read(PAGE, [name], "find")[name] for name in names}
    assert comparable(read(PAGE, names, strategy)) == comparable(alone)
    assert alone["queue_depth_max"] and alone["rpc_seconds_sum"] and alone["http_requests"]


def test_summary_quantiles(strategy: str) -> None:
    (first, second) = read(PAGE, ["lat"], strategy)["lat"]
    assert first == ({"quantile": "0.5"}, 0.2)
    assert second[0] == {"quantile": "0.99"} and math.isnan(second[1])


def test_every_requested_name_is_a_key(strategy: str) -> None:
    found = read(PAGE, ["absent", "queue_depth", "also_absent"], strategy)
    assert list(found) == ["absent", "queue_depth", "also_absent"]
    assert found["absent"] == found["also_absent"] == []


def test_no_names_and_empty_pages() -> None:
    assert read_series(PAGE, []) == {}
    assert read_series(b"", ["x"]) == {"x": []}
    assert read_series(b"\n\n", ["x"]) == {"x": []}


LINE_CASES: list[tuple[bytes, list[tuple[dict[str, str], float]]]] = [
    # escapes in label values: \\, \", \n; any other pair stays as it is (as in Prometheus)
    (rb'x{a="back\\slash"} 1', [({"a": "back\\slash"}, 1.0)]),
    (rb'x{a="say \"hi\""} 1', [({"a": 'say "hi"'}, 1.0)]),
    (rb'x{a="two\nlines"} 1', [({"a": "two\nlines"}, 1.0)]),
    (rb'x{a="\\n is not a newline"} 1', [({"a": "\\n is not a newline"}, 1.0)]),
    (rb'x{a="\t\q\\\""} 1', [({"a": '\\t\\q\\"'}, 1.0)]),
    (rb'x{a="} 2 # {b=\"c\"} 3"} 1', [({"a": '} 2 # {b="c"} 3'}, 1.0)]),
    (rb'x{a="",b=""} 1', [({"a": "", "b": ""}, 1.0)]),
    ('x{a="ünï€😀"} 1'.encode(), [({"a": "ünï€😀"}, 1.0)]),
    # values
    (b"x 1", [({}, 1.0)]),
    (b"x -0.5", [({}, -0.5)]),
    (b"x 1e3", [({}, 1000.0)]),
    (b"x 1.5E-3", [({}, 0.0015)]),
    (b"x .5", [({}, 0.5)]),
    (b"x 5.", [({}, 5.0)]),
    (b"x +7", [({}, 7.0)]),
    (b"x 1e400", [({}, math.inf)]),
    (b"x 12345678901234567890123", [({}, 1.2345678901234568e22)]),
    (b"x 4.9e-324", [({}, 5e-324)]),
    (b"x +Inf", [({}, math.inf)]),
    (b"x -Inf", [({}, -math.inf)]),
    (b"x inf", [({}, math.inf)]),
    (b"x Infinity", [({}, math.inf)]),
    (b"x -infinity", [({}, -math.inf)]),
    # timestamps (ignored): integer milliseconds in 0.0.4, float seconds in OpenMetrics
    (b"x 1 1700000000000", [({}, 1.0)]),
    (b"x 1 -1", [({}, 1.0)]),
    (b"x 1 1700000000.123", [({}, 1.0)]),
    (b'x{a="b"} 2 1700000000000', [({"a": "b"}, 2.0)]),
    # OpenMetrics exemplars (ignored)
    (b'x{le="1"} 3 # {trace_id="abc"} 0.5', [({"le": "1"}, 3.0)]),
    (b'x{le="1"} 3 # {trace_id="abc",s="a b # {}"} 0.5 1700000000.5', [({"le": "1"}, 3.0)]),
    (b"x 3 1700000000 # {} 1", [({}, 3.0)]),
    # spacing: spaces and tabs between tokens, indentation, CRLF, trailing commas
    (b"x \t 1 \t 2 \t", [({}, 1.0)]),
    (b"x\t1", [({}, 1.0)]),
    (b"  \tx 1", [({}, 1.0)]),
    (b'x {a="b"} 1', [({"a": "b"}, 1.0)]),
    (b'x{ a = "b" , c="d" , } 1', [({"a": "b", "c": "d"}, 1.0)]),
    (b'x{a="b",} 1', [({"a": "b"}, 1.0)]),
    (b"x{} 1", [({}, 1.0)]),
    (b"x{ } 1", [({}, 1.0)]),
    (b'x{a="b"}1', [({"a": "b"}, 1.0)]),
    (b"x 1\r", [({}, 1.0)]),
    # Prometheus 3 quoted names
    (b'{"x"} 1', [({}, 1.0)]),
    (b'{"x",a="b"} 1', [({"a": "b"}, 1.0)]),
    (b'{ "x" , "a.b"="c", } 1', [({"a.b": "c"}, 1.0)]),
    (b'x{"a\\"q"="c"} 1', [({'a"q': "c"}, 1.0)]),
]


@pytest.mark.parametrize(("line", "expected"), LINE_CASES)
def test_lines(line: bytes, expected: list[tuple[dict[str, str], float]], strategy: str) -> None:
    page = b"# TYPE x gauge\nother 1\n" + line + b"\nx_other 1\n"
    assert read(page, ["x"], strategy) == {"x": expected}
    assert read(line, ["x"], strategy) == {"x": expected}  # first line, no newline after it


@pytest.mark.parametrize(
    "spelling", [b"NaN", b"nan", b"NAN", b"+nan", b"-NaN"], ids=lambda s: s.decode()
)
def test_nan(spelling: bytes, strategy: str) -> None:
    ((labels, value),) = read(b"x " + spelling, ["x"], strategy)["x"]
    assert labels == {} and math.isnan(value)


def test_comments_blank_lines_and_crlf(strategy: str) -> None:
    page = (
        b"# HELP x The x.\r\n# TYPE x gauge\r\n# UNIT x seconds\r\n\r\n"
        b"# x 99\r\n#x 98\r\n# just a comment about x 97\r\n  # indented comment\r\n"
        b'x{a="1"} 1\r\n\r\n\r\nx{a="2"} 2 123\r\n\t\r\nx 3\r\n'
    )
    assert read(page, ["x"], strategy) == {"x": [({"a": "1"}, 1.0), ({"a": "2"}, 2.0), ({}, 3.0)]}


def test_nothing_is_read_after_openmetrics_eof(strategy: str) -> None:
    page = b'x 1\n  x 2\n{"x"} 3\n# EOF\nx 4\n  x 5\n{"x"} 6\nx garbage\n'
    assert read(page, ["x"], strategy)["x"] == [({}, 1.0), ({}, 2.0), ({}, 3.0)]
    assert read(page.replace(b"\n", b"\r\n"), ["x"], strategy)["x"] == [
        ({}, 1.0),
        ({}, 2.0),
        ({}, 3.0),
    ]
    assert read(b"# EOF\nx 1\n", ["x"], strategy) == {"x": []}
    assert read(b"x 1\n# EOF", ["x"], strategy) == {"x": [({}, 1.0)]}
    # only an exact "# EOF" line ends the page
    assert len(read(b"# EOF.\nx 1\n# EOF x\nx 2\n #EOF\nx 3", ["x"], strategy)["x"]) == 3


def test_page_order_across_indented_and_quoted_lines(strategy: str) -> None:
    page = b'x 1\n {"x"} 2\nx 3\n\tx 4\n{"x",a="b"} 5\nx 6\n{"x.y"} 7\n{"x"="label"} 8\n'
    assert [v for _, v in read(page, ["x"], strategy)["x"]] == [1, 2, 3, 4, 5, 6]
    assert read(page, ["x.y"], strategy) == {"x.y": [({}, 7.0)]}


def test_openmetrics_page(strategy: str) -> None:
    page = b"""\
# TYPE rpc histogram
# UNIT rpc seconds
# HELP rpc RPC latency.
rpc_bucket{le="0.5"} 1 # {trace_id="KOO5S4vxi0o"} 0.25 1520879607.789
rpc_bucket{le="+Inf"} 2 # {trace_id="oHg5SJYRHA0"} 9.8 1520879602.123
rpc_sum 10.05
rpc_count 2
rpc_created 1520430000.123
# TYPE jobs counter
jobs_total 5 1520879607.789
jobs_created 1520430000
# EOF
"""
    names = ["rpc_bucket", "rpc_count", "rpc_created", "jobs_total", "jobs", "rpc"]
    assert read(page, names, strategy) == {
        "rpc_bucket": [({"le": "0.5"}, 1.0), ({"le": "+Inf"}, 2.0)],
        "rpc_count": [({}, 2.0)],
        "rpc_created": [({}, 1520430000.123)],
        "jobs_total": [({}, 5.0)],
        "jobs": [],
        "rpc": [],
    }


def test_counter_without_total_keeps_its_name(strategy: str) -> None:
    # prometheus_client renames these samples to "requests_total"; Prometheus keeps the name.
    page = b"# TYPE requests counter\nrequests 3\n"
    assert read(page, ["requests", "requests_total"], strategy) == {
        "requests": [({}, 3.0)],
        "requests_total": [],
    }


BAD_LINES: list[tuple[bytes, str]] = [
    (b"x", "missing value"),
    (b"x ", "missing value"),
    (b"x{}", "missing value"),
    (b"x #", "missing value before '#'"),
    (b"x abc", "invalid value 'abc'"),
    (b"x 0x1p3", "invalid value '0x1p3'"),
    (b"x 1_000", "invalid value '1_000'"),
    (b"x 1,5", "invalid value '1,5'"),
    (b"x infinit", "invalid value 'infinit'"),
    (b"x 1 abc", "invalid timestamp 'abc'"),
    (b"x 1 2 3", "unexpected '3' after the timestamp"),
    (b"x\x0b1", "unexpected '\\x0b' after the metric name"),
    (b'x"a" 1', "unexpected '\"' after the metric name"),
    (b"x{a=b} 1", "expected a double-quoted value for label 'a'"),
    (b"x{a='b'} 1", "expected a double-quoted value for label 'a'"),
    (b'x{a:"b"} 1', "expected '=' after label name 'a'"),
    (b'x{a="b} 1', "unterminated value for label 'a'"),
    (b'x{a="b"', "label set not closed with '}'"),
    (b'x{a="b",', "label set not closed with '}'"),
    (b'x{a="b" c="d"} 1', "expected ',' or '}' after the value of label 'a'"),
    (b'x{,a="b"} 1', "expected a label name, found ','"),
    (b'x{a="b",,c="d"} 1', "expected a label name, found ','"),
    (b'x{1a="b"} 1', "expected a label name, found '1'"),
    (b'x{"a="b"} 1', "expected '=' after label name \"a=\""),
    (b'x{"a} 1', "unterminated quoted label name"),
    (b'x{""="b"} 1', "empty label name"),
    (b'x{a="b",a="c"} 1', "label 'a' appears twice"),
    (b'x{__name__="x"} 1', "label '__name__' appears twice"),
    (b'x{a="\xff"} 1', "invalid UTF-8 at byte 6 of the line"),
    (b"x 1\xc3", "invalid UTF-8 at byte 4 of the line"),
    (b"x 1 # x", "expected '{' after '#' (an exemplar)"),
    (b"x 1 # {a=b} 1", "expected a double-quoted value for label 'a'"),
    (b'x 1 # {a="b"}', "an exemplar needs a value and at most a timestamp after its labels"),
    (b'x 1 # {a="b"} 1 2 3', "an exemplar needs a value and at most a timestamp after its labels"),
    (b'x 1 # {a="b"} z', "invalid exemplar value 'z'"),
    (b'x 1 # {a="b"} 1 z', "invalid exemplar timestamp 'z'"),
    (b'{"x" 1', "expected ',' or '}' after the quoted metric name"),
    (b'{"x"', "expected ',' or '}' after the quoted metric name"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES)
def test_malformed_watched_lines(line: bytes, problem: str, strategy: str) -> None:
    page = b"# TYPE x gauge\nx_ok 1\n" + line + b"\nx 2\n"
    with pytest.raises(ExpositionError) as caught:
        read(page, ["x"], strategy)
    message = str(caught.value)
    assert message.startswith(f"line 3: {problem}: ")
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("line", "problem"), BAD_LINES)
def test_malformed_unwatched_lines_are_not_looked_at(
    line: bytes, problem: str, strategy: str
) -> None:
    page = b"y 1\n" + line + b"\ny 2\n" + line.replace(b"x", b"x_total", 1) + b"\n"
    assert read(page, ["y", "x_tot", "x_total_"], strategy) == {
        "y": [({}, 1.0), ({}, 2.0)],
        "x_tot": [],
        "x_total_": [],
    }


def test_garbage_around_watched_lines_is_ignored(strategy: str) -> None:
    page = b'\xff\xfe garbage {{{ "\nx 1\n}}} = NaN\n9x 1\n-x 1\n"x 1\nx{a="\\"} 2\n'
    with pytest.raises(ExpositionError, match="line 7"):
        read(page, ["x"], strategy)
    assert read(page.replace(b'x{a="\\"} 2', b""), ["x"], strategy) == {"x": [({}, 1.0)]}


def test_long_lines_are_shortened_in_errors() -> None:
    line = b'x{a="' + b"v" * 1000 + b'"} nope'
    with pytest.raises(ExpositionError) as caught:
        read_series(line, ["x"])
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1.0),
        ("-1.5e-3", -0.0015),
        (".5", 0.5),
        ("5.", 5.0),
        ("+Inf", math.inf),
        ("-inf", -math.inf),
        ("INFINITY", math.inf),
        ("+infinity", math.inf),
    ],
)
def test_decode_value(text: str, expected: float) -> None:
    assert decode_value(text) == expected


@pytest.mark.parametrize(
    "text", ["", " 1", "1 ", "0x10", "1_0", "\u0661", "nan1", "+-1", "1e", "e5", ".", "Inf1", "İnf"]
)
def test_decode_value_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        decode_value(text)


# --- prometheus_client as the reference ----------------------------------------------

# Stems that are prefixes of each other, and of the suffixed series names.
STEMS = ["q", "q_depth", "q_depth_max", "q:rate", "http_requests", "x", "x_bucket", "x_count"]
LABEL_NAMES = ["a", "b", "job", "_x", "A1", "le_", "quantile_"]
label_values = st.text(
    st.characters(codec="utf-8", exclude_characters="\r"), max_size=8
) | st.sampled_from(['"', "\\", "\n", '\\"', "\\n", "} 1", " # {", ",", "=", ""])


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def sample_values(draw: st.DrawFn) -> str:
    """A rendered sample value, in any of the spellings exporters use."""
    kind = draw(st.sampled_from(["float", "int", "nan", "inf", "-inf"]))
    if kind == "nan":
        return draw(st.sampled_from(["NaN", "nan", "NAN"]))
    if kind == "inf":
        return draw(st.sampled_from(["+Inf", "Inf", "inf", "+inf", "Infinity"]))
    if kind == "-inf":
        return draw(st.sampled_from(["-Inf", "-inf", "-Infinity"]))
    if kind == "int":
        return str(draw(st.integers(-(10**30), 10**30)))
    number = draw(st.floats(allow_nan=False, allow_infinity=False))
    return draw(st.sampled_from([repr(number), f"{number:.17g}", f"{number:e}"]))


@st.composite
def text_pages(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A valid text-format 0.0.4 page and the sample names it holds."""
    lines: list[str] = []
    sample_names: list[str] = []
    for index in range(draw(st.integers(1, 6))):
        stem = draw(st.sampled_from(STEMS))
        kind = draw(st.sampled_from(["gauge", "counter", "histogram", "summary", "untyped", ""]))
        family = f"{stem}_total" if kind == "counter" else stem
        if draw(st.booleans()):
            lines.append(f"# HELP {family} Family {index}, a \\\\ and a \\n in help.")
        if kind:
            lines.append(f"# TYPE {family} {kind}")
        suffixes = {"histogram": ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"]}
        for _ in range(draw(st.integers(1, 4))):
            suffix = draw(st.sampled_from(suffixes.get(kind, [""])))
            name = family + suffix
            labels = draw(st.dictionaries(st.sampled_from(LABEL_NAMES), label_values, max_size=3))
            if suffix == "_bucket":
                labels["le"] = draw(st.sampled_from(["0.5", "1", "+Inf"]))
            elif kind == "summary" and not suffix:
                labels["quantile"] = draw(st.sampled_from(["0.5", "0.99"]))
            space = draw(st.sampled_from([" ", "  ", "\t"]))
            rendered = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
            if rendered and draw(st.booleans()):
                rendered += ","
            head = f"{name}{{{rendered}}}" if rendered or draw(st.booleans()) else name
            line = f"{head}{space}{draw(sample_values())}"
            if draw(st.booleans()):
                line += f"{space}{draw(st.integers(-(2**53), 2**53))}"
            lines.append(line)
            sample_names.append(name)
            if draw(st.integers(0, 9)) == 0:
                lines.append(draw(st.sampled_from(["", "# a comment", "#", "# UNIT x"])))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return "".join(line + end for line in lines), sample_names


def reference(families: object, names: Collection[str]) -> Found:
    found: Found = {name: [] for name in names}
    for family in families:  # type: ignore[attr-defined]
        for sample in family.samples:
            if sample.name in found:
                found[sample.name].append((sample.labels, float(sample.value)))
    return found


name_choices = st.sampled_from(
    [*STEMS, "q_depth_total", "x_bucket_bucket", "http_requests_total", "absent"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_pages(), st.data())
def test_text_format_agrees_with_prometheus_client(
    page: tuple[str, list[str]], data: st.DataObject
) -> None:
    text, sample_names = page
    present = st.sampled_from(sample_names) if sample_names else name_choices
    names = data.draw(st.lists(present, min_size=1, max_size=3))
    names += data.draw(st.lists(name_choices, max_size=3))
    expected = comparable(reference(text_string_to_metric_families(text), names))
    for strategy in STRATEGIES:
        assert comparable(read(text.encode(), names, strategy)) == expected


@st.composite
def registries(draw: st.DrawFn) -> CollectorRegistry:
    """A registry of real prometheus_client metrics with nasty label values."""
    registry = CollectorRegistry()
    kinds = {"gauge": Gauge, "counter": Counter, "histogram": Histogram, "summary": Summary}
    used: set[str] = set()
    for index in range(draw(st.integers(1, 4))):
        stem = draw(st.sampled_from(["q", "q_depth", "q_depth_max", "rpc", "rpc_seconds"]))
        kind = draw(st.sampled_from(sorted(kinds)))
        if stem in used:
            continue
        used.add(stem)
        label_names = draw(st.lists(st.sampled_from(["a", "b", "job"]), unique=True, max_size=2))
        metric = kinds[kind](stem, f"Metric {index}.", label_names, registry=registry)
        for _ in range(draw(st.integers(1 if not label_names else 0, 3))):
            values = [draw(label_values) for _ in label_names]
            child = metric.labels(*values) if label_names else metric
            # prometheus_client's own OpenMetrics parser trips on quotes in exemplar labels
            trace = draw(st.text("abcXYZ019 -_.", max_size=12))
            exemplar = {"trace_id": trace} if draw(st.booleans()) else None
            if kind == "gauge":
                child.set(draw(st.floats()))
            elif kind == "counter":
                child.inc(draw(st.floats(0, 1e300)), exemplar=exemplar)
            elif kind == "histogram":
                child.observe(draw(st.floats(0, 1e300)), exemplar=exemplar)
            else:
                child.observe(draw(st.floats(0, 1e300)))
    return registry


om_names = st.sampled_from(
    [
        f"{stem}{suffix}"
        for stem in ["q", "q_depth", "q_depth_max", "rpc", "rpc_seconds"]
        for suffix in ["", "_total", "_created", "_bucket", "_sum", "_count", "_max"]
    ]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries(), st.data())
def test_real_metrics_agree_with_prometheus_client(
    registry: CollectorRegistry, data: st.DataObject
) -> None:
    text = generate_latest(registry)
    present = sorted({s.name for f in registry.collect() for s in f.samples})
    names = data.draw(st.lists(st.sampled_from(present), max_size=4)) if present else []
    names += data.draw(st.lists(om_names, max_size=4))
    expected = comparable(reference(text_string_to_metric_families(text.decode()), names))
    openmetrics = generate_openmetrics(registry)
    expected_om = comparable(reference(parse_openmetrics(openmetrics.decode()), names))
    for strategy in STRATEGIES:
        assert comparable(read(text, names, strategy)) == expected
        assert comparable(read(openmetrics, names, strategy)) == expected_om


# --- nothing but ExpositionError, whatever the bytes -----------------------------------

FRAGMENTS = [
    b"x", b"x_y", b"a", b"{", b"}", b'"', b"\\", b"=", b",", b" ", b"\t", b"\n", b"\r\n",
    b"#", b"# EOF", b"1", b"NaN", b"+Inf", b"e", b".", b"-", b"\xff", b"\xc3", b"\xc3\xa9",
    b'{"x"', b'"x.y"', b"le", b"# {", b"\x00",
]  # fmt: skip
FUZZ_NAMES = ["x", "x_y", "a", "x.y", "", "\n", "x{", "x\ud800"]


def check_only_exposition_errors(page: bytes, names: list[str]) -> None:
    outcomes: list[object] = []
    for strategy in STRATEGIES:
        try:
            outcomes.append(comparable(read(page, names, strategy)))
        except ExpositionError as err:
            assert str(err).startswith("line ") and "\n" not in str(err)
            outcomes.append(None)
    assert outcomes[0] == outcomes[1], "the two ways of finding lines disagree"


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=200) | st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join),
    st.lists(st.sampled_from(FUZZ_NAMES), max_size=4),
)
def test_arbitrary_bytes_raise_only_exposition_error(page: bytes, names: list[str]) -> None:
    check_only_exposition_errors(page, names)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_pages(), st.data())
def test_mutated_pages_raise_only_exposition_error(
    page: tuple[str, list[str]], data: st.DataObject
) -> None:
    raw = bytearray(page[0].encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            raw[at:at] = data.draw(st.sampled_from(FRAGMENTS) | st.binary(max_size=3))
        elif action == "delete":
            del raw[at : at + data.draw(st.integers(1, 5))]
        else:
            raw[at : at + 1] = data.draw(st.binary(min_size=1, max_size=1))
    names = data.draw(st.lists(st.sampled_from([*STEMS, *FUZZ_NAMES, *page[1]]), max_size=5))
    check_only_exposition_errors(bytes(raw), names)
