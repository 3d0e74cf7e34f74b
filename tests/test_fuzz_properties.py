"""Fuzz properties: whatever the input, each parser gives a result or its own clear error.

* the exposition reader: ``ExpositionError`` (tests/test_exposition.py already feeds it
  random bytes and mutated pages with a fixed set of names; here the names are arbitrary,
  more than ``_FIND_MAX_NAMES`` of them, and written into the page so they are found);
* the Prometheus answer decoder: ``FetchError``, for any bytes and any JSON document;
* the threshold, duration and label-matcher parsers: ``ValueError``
  (tests/test_selector.py fuzzes the matcher syntax; here the regexes);
* the PromQL check: None or one line saying why not, for any text;
* ``load_settings``: ``Settings`` or ``ConfigError`` for any TOML text in ``CONFIG_FILE``
  and any values of the known environment variables.

The atheris harness for the exposition reader is fuzz/fuzz_exposition.py (docs/fuzzing.md).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metric_reader._config import (
    KNOWN_VARIABLES,
    ConfigError,
    Settings,
    _keys,
    _values,
    load_settings,
)
from metric_reader._config._problems import env_name
from metric_reader._config._promql import promql_problem
from metric_reader._core._durations import format_duration, parse_duration
from metric_reader._core._exceptions import FetchError
from metric_reader._core._selector import LabelMatcher, parse_label_filters, quote
from metric_reader._core._threshold import Threshold, parse_threshold
from metric_reader._sources._exposition import (
    _FIND_MAX_NAMES,
    ExpositionError,
    decode_value,
    read_series,
)
from metric_reader._sources._prometheus import QueryResult, decode_query_response

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the exposition reader -------------------------------------------------------------

_PADDING = [f"zz_padding_{i}" for i in range(_FIND_MAX_NAMES + 1)]
_PAGE_BITS = [
    b" ", b"\t", b"\n", b"\r\n", b"{", b"}", b"=", b",", b'"', b"\\", b"#", b"# EOF\n",
    b" 1", b" NaN", b" -Inf", b" 1e3 17", b' # {a="b"} 1', b'a="b"', b'"q.n"="v"', b"\xff",
]  # fmt: skip

metric_names = st.one_of(
    st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,6}", fullmatch=True),
    st.text(max_size=6),
    st.sampled_from(["x", "x_total", "x.y", "", "é", "x\ud800", "{", " x"]),
)


@st.composite
def pages_with_names(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """Names (few or many, any text) and a page made of them, quoted or not, and bits."""
    names = draw(st.lists(metric_names, max_size=_FIND_MAX_NAMES + 4))
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 30))):
        if names and draw(st.booleans()):
            raw = draw(st.sampled_from(names)).encode("utf-8", "surrogatepass")
            parts.append(draw(st.sampled_from([raw, b'{"' + raw + b'"', b"\n" + raw])))
        else:
            parts.append(draw(st.sampled_from(_PAGE_BITS) | st.binary(max_size=3)))
    return b"".join(parts), names


def _read(page: bytes, names: list[str]) -> dict[str, list[tuple[dict[str, str], object]]] | None:
    try:
        found = read_series(page, names)
    except ExpositionError as err:
        assert str(err).startswith("line ") and "\n" not in str(err)
        return None
    assert set(found) == set(names)
    out = {}
    for name in names:
        for labels, value in found[name]:
            assert isinstance(value, float)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        out[name] = [(lb, "NaN" if math.isnan(v) else v) for lb, v in found[name]]
    return out


@FUZZ
@given(pages_with_names())
def test_any_names_on_any_page_raise_only_exposition_error(case: tuple[bytes, list[str]]) -> None:
    page, names = case
    alone = _read(page, names)
    padded = _read(page, [*names, *_PADDING])
    if padded is not None:
        padded = {name: padded[name] for name in names}
    assert alone == padded, "the two ways of finding lines disagree"


@FUZZ
@given(st.text(max_size=12) | st.sampled_from(["+Inf", "-nan", "1e999", "\u0661", "0x1", "1_0"]))
def test_decode_value_gives_a_float_or_value_error(text: str) -> None:
    try:
        value = decode_value(text)
    except ValueError:
        return
    assert isinstance(value, float)
    if math.isfinite(value):
        assert decode_value(repr(value)) == value


# --- the Prometheus answer decoder -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
number_texts = st.sampled_from(["1", "-2.5e3", "NaN", "+Inf", "-Inf", "abc", "", "1_0", "0x1"])
sample_values = st.one_of(
    st.tuples(st.floats(), number_texts | st.text(max_size=6)).map(list), json_values
)
vector_items = st.one_of(
    st.fixed_dictionaries(
        {"metric": st.dictionaries(st.text(max_size=6), st.text(max_size=6) | json_values)},
        optional={"value": sample_values},
    ),
    json_values,
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """``/api/v1/query`` answers: near-valid documents, or any JSON."""
    if draw(st.booleans()):
        return json.dumps(draw(json_values)).encode()
    result_type = draw(st.sampled_from(["vector", "scalar", "matrix", "string", "x"]) | json_values)
    result = draw(st.lists(vector_items, max_size=3) | sample_values)
    data = {"resultType": result_type, "result": result}
    document = draw(
        st.fixed_dictionaries(
            {
                "status": st.sampled_from(["success", "success", "success", "error", None]),
                "data": st.just(data) | json_values,
                "warnings": st.one_of(
                    st.lists(json_values, max_size=2),
                    st.none(),
                    st.booleans(),
                    st.integers(),
                    st.text(max_size=4),
                    json_values,
                ),
            },
            optional={
                "errorType": json_values,
                "error": json_values,
            },
        )
    )
    return json.dumps(document).encode()


@settings(FUZZ, max_examples=300)
@given(st.sampled_from([200, 299]) | st.integers(-1, 1000), answers() | st.binary())
def test_any_answer_gives_samples_or_fetch_error(status: int, body: bytes) -> None:
    try:
        result = decode_query_response(status, body)
    except FetchError:
        return
    assert isinstance(result, QueryResult)
    assert all(isinstance(w, str) for w in result.warnings)
    for sample in result.samples:
        assert isinstance(sample.value, float)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in sample.labels)


@FUZZ
@given(st.integers(0, 3000), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
def test_json_nested_to_any_depth_gives_fetch_error(depth: int, pair: tuple[bytes, bytes]) -> None:
    opener, closer = pair
    with pytest.raises(FetchError):
        decode_query_response(200, opener * depth + b"1" + closer * depth)


# --- thresholds and durations ----------------------------------------------------------

_THRESHOLD_BITS = [
    ">", "<", "=", "!", ">=", "==", " ", "\t", "\n", "\x1c", "1", "0", ".", "e", "E", "-",
    "+", "inf", "Infinity", "nan", "٣", "x", "1e999", "_",
]  # fmt: skip


@FUZZ
@given(st.text(max_size=10) | st.lists(st.sampled_from(_THRESHOLD_BITS), max_size=8).map("".join))
def test_thresholds_parse_or_raise_value_error(text: str) -> None:
    try:
        threshold = parse_threshold(text)
    except ValueError as err:
        assert "expected" in str(err)
        return
    assert isinstance(threshold, Threshold)
    assert not math.isnan(threshold.number)
    assert not threshold.breached(math.nan)
    assert isinstance(threshold.breached(threshold.number), bool)
    assert parse_threshold(str(threshold)) == threshold


_DURATION_BITS = [
    "0", "1", "5", "9" * 30, "9" * 400, ".", "ns", "us", "µs", "μs", "ms", "s", "m", "h", "d",
    "-", "+", " ", "٣", "e3",
]  # fmt: skip


go_durations = st.lists(
    st.tuples(
        st.from_regex(r"[0-9]{1,4}(\.[0-9]{0,3})?", fullmatch=True)
        | st.integers(300, 400).map("9".__mul__),  # past a float: inf
        st.sampled_from(["ns", "us", "ms", "s", "m", "h"]),
    ).map("".join),
    min_size=1,
    max_size=3,
).map("".join)


@FUZZ
@given(
    st.text(max_size=10)
    | st.lists(st.sampled_from(_DURATION_BITS), max_size=8).map("".join)
    | go_durations
)
def test_durations_parse_to_a_finite_time_or_raise_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        assert "expected" in str(err)
        return
    assert math.isfinite(seconds) and seconds >= 0
    # What the CLI and the logs print reads back as the same duration.
    assert math.isclose(parse_duration(format_duration(seconds)), seconds, abs_tol=1e-9)


# --- label matchers --------------------------------------------------------------------

_REGEX_BITS = [
    "a", "é", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "{1,2}", "{99999999999}", "|",
    "^", "$", "\\", "\\d", "\\pL", "\\z", "\\1", "(?i)", "(?L)", "(?u)", "(?P<x>", "(?=",
    "(?#", "[[:alpha:]]", "-", ",", "\n", '"', "'", "`",
]  # fmt: skip
regexes = st.lists(st.sampled_from(_REGEX_BITS), max_size=8).map("".join) | st.text(max_size=8)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["=~", "!~", "=", "!="]), regexes, st.booleans()), max_size=3
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=6)),
)
def test_regex_matchers_parse_or_raise_value_error(
    parts: list[tuple[str, str, bool]], labels: dict[str, str]
) -> None:
    text = ",".join(
        f"{name}{op}" + (f"`{value}`" if raw else quote(value))
        for name, (op, value, raw) in zip("abc", parts, strict=False)
    )
    try:
        matchers = parse_label_filters(text)
    except ValueError as err:
        assert str(err).startswith("at position ") and "\n" not in str(err)
        return
    assert all(isinstance(m, LabelMatcher) for m in matchers)
    assert all(isinstance(m.matches(labels), bool) for m in matchers)


# --- PromQL -----------------------------------------------------------------------------

_PROMQL_BITS = [
    "up", "x", "rate(", "sum by (a) (", "holt_winters(", "(", ")", "[5m]", "[5m:1m]", "[",
    "]", "{", "}", 'a="b"', "a=~", "!~", '"(', "`\\d`", "'", '"', "\\", "#", "\n", " ",
    ",", "+", "-", "^", " and ", " or ", " bool ", " offset 5m", " @ start()", " @ 1",
    "on(a) group_left", "1e400", "NaN", "0x1f", "é", "\ud800", "\x00", "\\n", "\\Q",
]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(_PROMQL_BITS), max_size=12).map("".join) | st.text(max_size=20))
def test_any_text_is_promql_or_one_line_saying_why_not(text: str) -> None:
    problem = promql_problem(text)
    assert problem is None or (problem and "\n" not in problem), problem
    if text.strip():
        query = _values.promql  # as QUERY takes it: the same verdict, as ValueError
        if problem is None:
            assert query(text) == text.strip()
        else:
            with pytest.raises(ValueError, match="could not parse expression: "):
                query(text)


# --- only ASCII digits, as in Go -------------------------------------------------------

# A valid value for each parser of numbers, durations, thresholds, sizes and ports: every
# setting read by one of them is tried, so a new setting is covered when it is added.
_NUMBER_EXAMPLES: dict[Callable[[object], Any], str] = {
    _values.duration: "1m30s",
    _values.positive_duration: "250ms",
    _values.threshold: ">80.5",
    _values.positive_int: "12",
    _values.shard_index: "0",
    _values.byte_size: "64MiB",
    _values.listen_address: "127.0.0.1:9180",
    _values.breaching_limit: "20%",
}
_NUMBER_SETTINGS = sorted(
    (env_name(key), _NUMBER_EXAMPLES[parse])
    for key, parse in {**_keys.SERVICE_KEYS, **_keys.RULE_KEYS}.items()
    if parse in _NUMBER_EXAMPLES
)
other_digits = st.characters(categories=["Nd"]).filter(lambda char: not char.isascii())


def test_every_kind_of_number_setting_is_tried() -> None:
    assert {"POLLING_INTERVAL", "THRESHOLD", "HARD_THRESHOLD", "SHARD_COUNT"} <= {
        name for name, _ in _NUMBER_SETTINGS
    }
    assert len(_NUMBER_SETTINGS) >= 20


@FUZZ
@given(st.sampled_from(_NUMBER_SETTINGS), st.data(), other_digits)
def test_no_setting_takes_a_digit_that_is_not_ascii(
    setting: tuple[str, str], data: st.DataObject, digit: str
) -> None:
    """Python's int() and float() read the digits of every script (fullwidth, Arabic-Indic,
    Bengali, ...); Go, and so the original service, reads 0-9 only."""
    name, example = setting
    where = data.draw(st.sampled_from([i for i, char in enumerate(example) if char.isdigit()]))
    value = example[:where] + digit + example[where + 1 :]
    with pytest.raises(ConfigError) as error:
        load_settings({"METRIC_NAME": "m", "THRESHOLD": ">1", name: value})
    assert any(line.startswith(f"{name}={value!r} is invalid") for line in error.value.problems)


@FUZZ
@given(
    st.sampled_from([(parse_duration, "1h2m3.5s"), (parse_threshold, ">= -12.5e3")]),
    st.data(),
    other_digits,
)
def test_durations_and_thresholds_refuse_a_digit_that_is_not_ascii(
    parser: tuple[Callable[[str], object], str], data: st.DataObject, digit: str
) -> None:
    parse, example = parser  # what plugins call too (parse_duration is public)
    where = data.draw(st.sampled_from([i for i, char in enumerate(example) if char.isdigit()]))
    with pytest.raises(ValueError, match="expected"):
        parse(example[:where] + digit + example[where + 1 :])


# --- load_settings ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


_PLAUSIBLE = [
    ">80", "<=0.5", "5s", "0", "1m30s", "-1s", "http://127.0.0.1:9090", "https://h/", "ftp://x",
    "queue_depth", "my.metric", 'job="a"', "job=~`(`", "sum(x)", "skip", "zero", "last", "off",
    ":0", "127.0.0.1:9180", "[::1]:80", "true", "no", "debug", "json", "8", "-1", ".", "/",
    "plugins", "state.json", "x\u0000y", "", " ",
]  # fmt: skip
_RULE_FILE_KEYS = [
    "name", "metric_name", "label_filters", "query", "scrape_url", "prometheus_endpoint",
    "polling_interval", "missing_value_behavior", "threshold", "threshold_duration",
    "backoff_delay", "action_plugin", "keep_firing_for", "clear_threshold", "plugin_dir",
    "plugin_dir_insecure", "plugin_timeout", "log_level", "log_format",
    "max_concurrent_queries", "dry_run", "listen_address", "state_file", "rules", "hard",
    "plugins", "nmae", "x",
]  # fmt: skip
_ENV_NAMES = [name for name in KNOWN_VARIABLES if name != "CONFIG_FILE"]

toml_scalars = st.one_of(
    st.sampled_from(_PLAUSIBLE).map(json.dumps),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8).map(
        lambda s: json.dumps(s, ensure_ascii=False)
    ),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.sampled_from(["0", "1.5", "inf", "-inf", "nan", "true", "false", "1979-05-27T07:32:00Z"]),
    st.sampled_from(["'''multi\n[[rules]]\n'''", '"""\n[  \n"""', "'literal\\'"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(_RULE_FILE_KEYS), inner), max_size=3).map(
            lambda kvs: "{" + ", ".join(f"{k} = {v}" for k, v in dict(kvs).items()) + "}"
        ),
    ),
    max_leaves=4,
)
toml_lines = st.one_of(
    st.tuples(st.sampled_from(_RULE_FILE_KEYS), toml_values).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.sampled_from(["[[rules]]", "[rules.hard]", "[plugins.p]", "[hard]", "[rules]", "# c", ""]),
    st.text(max_size=12),
)


@settings(FUZZ, max_examples=120)  # two loads an example, the slowest property here
@given(
    st.lists(toml_lines, max_size=14).map("\n".join),
    st.dictionaries(st.sampled_from(_ENV_NAMES), st.sampled_from(_PLAUSIBLE) | st.text(max_size=8)),
    st.booleans(),
)
def test_any_rule_file_and_environment_give_settings_or_config_error(
    config_dir: Path, text: str, env: dict[str, str], rules: bool
) -> None:
    path = config_dir / "rules.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    for environ in ({**env, "CONFIG_FILE": str(path)}, env):
        try:
            result = load_settings(environ, rules=rules)
        except ConfigError as err:
            assert err.problems and all(isinstance(p, str) for p in err.problems)
        else:
            assert isinstance(result, Settings)


@FUZZ
@given(
    st.text(max_size=12) | st.sampled_from(["/", ".", "/nonexistent/x.toml", "a\x00b", "x" * 300])
)
def test_any_config_file_name_gives_settings_or_config_error(name: str) -> None:
    try:
        result = load_settings({"CONFIG_FILE": name, "METRIC_NAME": "m"})
    except ConfigError as err:
        assert err.problems
    else:
        assert isinstance(result, Settings)
