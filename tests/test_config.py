"""Configuration from the environment (SPEC section 2)."""

from __future__ import annotations

import math

import pytest

from metric_reader._config import ConfigError, load_settings
from metric_reader._durations import format_duration, parse_duration

BASE = {"METRIC_NAME": "queue_depth"}


def settings(**env: str):
    return load_settings({**BASE, **env})


def test_defaults() -> None:
    s = settings()
    [rule] = s.rules
    assert rule.source == "prometheus"
    assert rule.prometheus_endpoint == "http://prometheus:9090"
    assert rule.polling_interval == 1.0
    assert rule.missing.value == "skip"
    assert rule.base is None and rule.hard is None  # no THRESHOLD: read and log only
    assert rule.promql == "queue_depth"
    assert (s.plugin_timeout, s.log_level, s.log_format, s.plugin_dir) == (
        30.0,
        "INFO",
        "text",
        None,
    )


def test_full_rule() -> None:
    s = settings(
        LABEL_FILTERS='job="node",mode!="idle",device=~"sd.*"',
        THRESHOLD="> 80",
        THRESHOLD_DURATION="1m30s",
        BACKOFF_DELAY="5m",
        POLLING_INTERVAL="250ms",
        PROMETHEUS_ENDPOINT="http://127.0.0.1:9090/",
        ACTION_PLUGIN="log_action",
        MISSING_VALUE_BEHAVIOR="assume_breached",
        HARD_THRESHOLD=">=95",
        HARD_THRESHOLD_DURATION="10s",
        HARD_BACKOFF_DELAY="1h",
        HARD_ACTION_PLUGIN="file_action",
        PLUGIN_TIMEOUT="2s",
        LOG_LEVEL="WARN",
        LOG_FORMAT="json",
    )
    [rule] = s.rules
    assert rule.promql == 'queue_depth{job="node",mode!="idle",device=~"sd.*"}'
    assert rule.prometheus_endpoint == "http://127.0.0.1:9090"
    assert rule.base is not None and rule.hard is not None
    assert (rule.base.threshold.text, rule.base.duration, rule.base.backoff, rule.base.plugin) == (
        "> 80",
        90.0,
        300.0,
        "log_action",
    )
    assert (rule.hard.threshold.text, rule.hard.duration, rule.hard.backoff, rule.hard.plugin) == (
        ">=95",
        10.0,
        3600.0,
        "file_action",
    )
    assert rule.polling_interval == 0.25
    assert (s.log_level, s.log_format, s.plugin_timeout) == ("WARNING", "json", 2.0)


def test_query_replaces_the_selector_and_names_the_metric() -> None:
    [rule] = load_settings({"QUERY": "sum(rate(x[5m])) > 0"}).rules
    assert rule.promql == "sum(rate(x[5m])) > 0"
    assert rule.metric_name == "sum(rate(x[5m])) > 0"


def test_scrape_source() -> None:
    [rule] = settings(SCRAPE_URL="http://127.0.0.1:8080/metrics").rules
    assert rule.source == "scrape"
    assert rule.scrape_url == "http://127.0.0.1:8080/metrics"


def test_empty_values_count_as_unset() -> None:
    [rule] = settings(THRESHOLD="", LABEL_FILTERS="", SCRAPE_URL="").rules
    assert rule.base is None and rule.source == "prometheus"


def test_misspelt_variables_are_reported() -> None:
    s = settings(THRESHOLD_DURATON="5s")
    assert s.unknown_variables == ("THRESHOLD_DURATON (did you mean THRESHOLD_DURATION?)",)


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"METRIC_NAME": ""}, ["METRIC_NAME", "QUERY"]),
        ({"METRIC_NAME": "queue-depth"}, ["METRIC_NAME='queue-depth'", "metric name"]),
        ({"THRESHOLD": "abc"}, ["THRESHOLD='abc'", ">80"]),
        ({"THRESHOLD": ">"}, ["THRESHOLD='>'"]),
        ({"THRESHOLD": "=>80"}, ["THRESHOLD='=>80'"]),
        ({"THRESHOLD": ">80", "THRESHOLD_DURATION": "5"}, ["THRESHOLD_DURATION='5'", "1m30s"]),
        ({"THRESHOLD": ">80", "BACKOFF_DELAY": "-1s"}, ["BACKOFF_DELAY='-1s'", "negative"]),
        ({"POLLING_INTERVAL": "0s"}, ["POLLING_INTERVAL='0s'", "more than 0"]),
        ({"POLLING_INTERVAL": "1d"}, ["POLLING_INTERVAL='1d'"]),
        ({"PLUGIN_TIMEOUT": "0"}, ["PLUGIN_TIMEOUT"]),
        ({"LOG_LEVEL": "verbose"}, ["LOG_LEVEL='verbose'", "debug, info, warn"]),
        ({"LOG_FORMAT": "xml"}, ["LOG_FORMAT='xml'", "text, json"]),
        ({"MISSING_VALUE_BEHAVIOR": "ignore"}, ["MISSING_VALUE_BEHAVIOR='ignore'", "last_value"]),
        ({"ACTION_PLUGIN": "log_action"}, ["ACTION_PLUGIN='log_action'", "THRESHOLD"]),
        ({"THRESHOLD": ">1", "HARD_ACTION_PLUGIN": "x"}, ["HARD_ACTION_PLUGIN", "HARD_THRESHOLD"]),
        ({"HARD_THRESHOLD": ">1"}, ["HARD_THRESHOLD", "needs THRESHOLD"]),
        ({"LABEL_FILTERS": "job="}, ["LABEL_FILTERS='job='"]),
        ({"LABEL_FILTERS": 'x=~"("'}, ["LABEL_FILTERS"]),
        ({"LABEL_FILTERS": r'x=~"(a)\\1"'}, ["LABEL_FILTERS=", "RE2", "backreferences"]),
        ({"PROMETHEUS_ENDPOINT": "prometheus:9090"}, ["PROMETHEUS_ENDPOINT", "http://"]),
        ({"SCRAPE_URL": "ftp://x/metrics"}, ["SCRAPE_URL='ftp://x/metrics'"]),
        ({"QUERY": "up", "SCRAPE_URL": "http://a/metrics"}, ["QUERY", "SCRAPE_URL"]),
        ({"QUERY": "up", "LABEL_FILTERS": 'a="b"'}, ["LABEL_FILTERS", "QUERY"]),
        ({"PLUGIN_DIR": "/nonexistent/plugins"}, ["PLUGIN_DIR='/nonexistent/plugins'"]),
    ],
)
def test_invalid_values_name_the_variable_the_value_and_what_is_allowed(
    env: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**env)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("0s", 0),
        ("300ms", 0.3),
        ("5s", 5),
        ("1m30s", 90),
        ("2h", 7200),
        ("1h2m3s", 3723),
        ("1.5h", 5400),
        ("100us", 1e-4),
        ("100µs", 1e-4),
        ("10ns", 1e-8),
        ("2h45m", 9900),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text), seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "1d", "-1s", "1s 2s", "1S", "1 s", "ms5", "+"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (0.3, "300ms"), (90, "1m30s"), (7200, "2h0m0s"), (5, "5s")]
)
def test_duration_formatting_matches_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_plugin_setting_built_on_one_of_ours_is_not_called_a_typo() -> None:
    s = settings(
        MY_PLUGIN_DIR="/x",
        MY_PLUGIN_TIMEOUT="1",
        ACTION_PLUGIN_URL="http://a",
        HARD_TRESHOLD=">1",
        THRESHOLD=">0",
    )
    assert s.unknown_variables == ("HARD_TRESHOLD (did you mean HARD_THRESHOLD?)",)


def test_credentials_in_an_endpoint_url_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        settings(PROMETHEUS_ENDPOINT="https://alice:s3cret@prom.example:9090")
    message = str(error.value)
    assert "s3cret" not in message
    assert "https://alice:***@prom.example:9090" in message
    assert "BASIC_AUTH_USERNAME" in message
