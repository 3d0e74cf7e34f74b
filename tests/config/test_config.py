"""Configuration from the environment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _slips import slips_of

from metric_reader._config import KNOWN_VARIABLES, ConfigError, load_settings
from metric_reader._core._durations import format_duration, parse_duration

BASE = {"METRIC_NAME": "queue_depth"}


def settings(**env: str):
    return load_settings({**BASE, **env})


def test_defaults() -> None:
    s = settings()
    [rule] = s.rules
    assert rule.source.kind == "prometheus"
    assert rule.source.where == "http://prometheus:9090"
    assert rule.polling_interval == 1.0
    assert rule.missing.value == "skip"
    assert rule.base is None and rule.hard is None  # no THRESHOLD: read and log only
    assert rule.source.expression == "queue_depth"
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
    assert rule.source.expression == 'queue_depth{job="node",mode!="idle",device=~"sd.*"}'
    assert rule.source.where == "http://127.0.0.1:9090"
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
    assert rule.source.expression == "sum(rate(x[5m])) > 0"
    assert rule.metric_name == "sum(rate(x[5m])) > 0"


def test_scrape_source() -> None:
    [rule] = settings(SCRAPE_URL="http://127.0.0.1:8080/metrics").rules
    assert rule.source.kind == "scrape"
    assert rule.source.where == "http://127.0.0.1:8080/metrics"


def test_the_lifecycle_endpoint_is_off_unless_enable_lifecycle_says_true(tmp_path: Path) -> None:
    assert settings().enable_lifecycle is False
    assert settings(ENABLE_LIFECYCLE="false").enable_lifecycle is False
    assert settings(ENABLE_LIFECYCLE="true").enable_lifecycle is True
    with pytest.raises(ConfigError, match="ENABLE_LIFECYCLE"):
        settings(ENABLE_LIFECYCLE="yes please")
    config = tmp_path / "rules.toml"
    config.write_text('enable_lifecycle = true\n[[rules]]\nname = "r"\nmetric_name = "m"\n')
    assert load_settings({"CONFIG_FILE": str(config)}).enable_lifecycle is True
    off = {"CONFIG_FILE": str(config), "ENABLE_LIFECYCLE": "false"}
    assert load_settings(off).enable_lifecycle is False  # the environment overrides the file


def test_empty_values_count_as_unset() -> None:
    [rule] = settings(THRESHOLD="", LABEL_FILTERS="", SCRAPE_URL="").rules
    assert rule.base is None and rule.source.kind == "prometheus"


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("THRESHOLD_DURATON", "THRESHOLD_DURATION"),  # a letter missing
        ("THRESHOLD_DURATIOON", "THRESHOLD_DURATION"),  # a letter extra
        ("THRESHOLD_DURAITON", "THRESHOLD_DURATION"),  # two letters swapped
        ("THRESHOLD_DURATIPN", "THRESHOLD_DURATION"),  # a wrong letter
        ("METRICNAME", "METRIC_NAME"),  # an underscore dropped
        ("METRIC__NAME", "METRIC_NAME"),
        ("Metric_Name", "METRIC_NAME"),  # case
        ("metric-name", "METRIC_NAME"),
        ("HARD_TRESHOLD", "HARD_THRESHOLD"),
        ("LOGLEVEL", "LOG_LEVEL"),
        ("QUEYR", "QUERY"),
        ("DRYRUN", "DRY_RUN"),
        ("PLUGIN_TIMEOUTS", "PLUGIN_TIMEOUT"),
    ],
)
def test_a_variable_a_slip_away_from_a_setting_is_refused(name: str, meant: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**{name: "10s"})
    assert error.value.problems == (
        f"{name} is not a known variable: did you mean {meant}? (rename it, or unset it if it "
        "is not meant for metric-reader)",
    )


def test_every_setting_gets_a_did_you_mean_for_every_kind_of_slip() -> None:
    meant = slips_of(KNOWN_VARIABLES)
    with pytest.raises(ConfigError) as error:
        settings(**dict.fromkeys(meant, "x"))
    assert sorted(error.value.problems) == sorted(
        f"{slip} is not a known variable: did you mean {known}? (rename it, or unset it if it "
        "is not meant for metric-reader)"
        for slip, known in meant.items()
    )


def test_the_other_variables_of_a_container_are_left_alone() -> None:
    """What a Kubernetes pod, a base image and the bundled plugins put into the environment,
    and a plugin's own settings built on ours: none is called a slip."""
    s = settings(
        HOSTNAME="metric-reader-0",
        HOME="/root",
        PATH="/usr/bin",
        LANG="C.UTF-8",
        TERM="xterm",
        PYTHONSAFEPATH="1",
        PYTHONUNBUFFERED="1",
        KUBERNETES_SERVICE_HOST="10.0.0.1",
        KUBERNETES_SERVICE_PORT="443",
        KUBERNETES_PORT_443_TCP_ADDR="10.0.0.1",
        PROMETHEUS_SERVICE_HOST="10.0.0.2",
        PROMETHEUS_PORT="tcp://10.0.0.2:9090",
        METRIC_READER_SERVICE_HOST="10.0.0.3",
        METRIC_READER_PORT_9180_TCP="tcp://10.0.0.3:9180",
        FILE_ACTION_DIR="/tmp",
        FILE_ACTION_SIZE="10",
        HTTP_PLUGIN_ENDPOINT="http://x",
        HTTP_PLUGIN_TIMEOUT="5s",
        MY_PLUGIN_DIR="/x",
        MY_PLUGIN_TIMEOUT="1",
        MY_PLUGIN_MARKER_DIR="/tmp",
        ACTION_PLUGIN_URL="http://a",
        MAX_POLLING_INTERVAL="1s",
        QUERY_STRING="a=b",
        SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt",
        SSL_CERT_DIR="/etc/ssl/certs",
        REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
        HTTPS_PROXY="http://proxy:3128",
        no_proxy="localhost",
        THRESHOLD=">0",
    )
    assert s.unknown_variables == ()


def test_a_name_like_a_setting_but_farther_than_a_slip_is_a_warning() -> None:
    s = settings(BASIC_AUTH_USER="alice", TRESHOLD_DURATON="1s")
    assert s.unknown_variables == (
        "BASIC_AUTH_USER (did you mean BASIC_AUTH_USERNAME?)",
        "TRESHOLD_DURATON (did you mean THRESHOLD_DURATION?)",
    )


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
        ({"POLLING_INTERVAL": "0s"}, ["POLLING_INTERVAL='0s'", "at least 1ms"]),
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
    ("env", "line"),
    [
        # Go reads no underscores in these (Python's int() and float() do)
        (
            {"MAX_CONCURRENT_QUERIES": "1_0"},
            "MAX_CONCURRENT_QUERIES='1_0' is invalid: expected a whole number of at least 1",
        ),
        (
            {"SHARD_COUNT": "1_0"},
            "SHARD_COUNT='1_0' is invalid: expected a whole number of at least 1",
        ),
        (
            {"MAX_RESPONSE_BYTES": "1_000MiB"},
            "MAX_RESPONSE_BYTES='1_000MiB' is invalid: expected a whole number of bytes",
        ),
        ({"POLLING_INTERVAL": "1_0s"}, "POLLING_INTERVAL='1_0s' is invalid: not a duration"),
        ({"THRESHOLD": ">1_0"}, "THRESHOLD='>1_0' is invalid: expected an operator"),
        # nor words for numbers where Go would refuse them
        ({"THRESHOLD": ">nan"}, "THRESHOLD='>nan' is invalid: expected an operator"),
        ({"THRESHOLD": ">1e999"}, "THRESHOLD='>1e999' is invalid: 1e999 is too large for a number"),
        ({"POLLING_INTERVAL": "infs"}, "POLLING_INTERVAL='infs' is invalid: not a duration"),
        (
            {"MAX_CONCURRENT_QUERIES": "9223372036854775808"},
            "MAX_CONCURRENT_QUERIES='9223372036854775808' is invalid",
        ),
        (
            {"MAX_CONCURRENT_QUERIES": "9" * 5000},
            "is invalid: expected a whole number of at least 1",
        ),
        # no interval or duration below 1ms (0 stays "at once" where it means that)
        (
            {"POLLING_INTERVAL": "999us"},
            "POLLING_INTERVAL='999us' is invalid: must be at least 1ms, e.g. 1s",
        ),
        ({"POLLING_INTERVAL": "1ns"}, "POLLING_INTERVAL='1ns' is invalid: must be at least 1ms"),
        ({"PLUGIN_TIMEOUT": "0.5ms"}, "PLUGIN_TIMEOUT='0.5ms' is invalid: must be at least 1ms"),
        (
            {"THRESHOLD_DURATION": "10ns"},
            "THRESHOLD_DURATION='10ns' is invalid: must be 0 or at least 1ms",
        ),
        ({"BACKOFF_DELAY": "1us"}, "BACKOFF_DELAY='1us' is invalid: must be 0 or at least 1ms"),
        (
            {"LEADER_ELECTION_ENABLED": "true", "LEADER_ELECTION_RETRY_PERIOD": "100us"},
            "LEADER_ELECTION_RETRY_PERIOD='100us' is invalid: must be at least 1ms",
        ),
        # spaces around a value are trimmed, but only ASCII ones
        ({"POLLING_INTERVAL": "5s\u00a0"}, "POLLING_INTERVAL='5s\\xa0' is invalid: not a duration"),
        ({"SHARD_COUNT": "\u20033"}, "SHARD_COUNT='\\u20033' is invalid"),
    ],
)
def test_numbers_are_read_as_go_reads_them(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**{"THRESHOLD": ">1", **env})
    assert any(line in problem for problem in error.value.problems), error.value


def test_the_shortest_interval_and_the_widest_numbers_are_accepted() -> None:
    s = settings(
        POLLING_INTERVAL="1ms",
        THRESHOLD_DURATION="0",
        BACKOFF_DELAY="1ms",
        THRESHOLD=" >= +Inf ",
        MAX_CONCURRENT_QUERIES=" 9223372036854775807 ",
        MAX_RESPONSE_BYTES="1 KiB",
    )
    [rule] = s.rules
    assert rule.polling_interval == 0.001 and rule.base is not None
    assert (rule.base.duration, rule.base.backoff, rule.base.threshold.number) == (
        0.0,
        0.001,
        math.inf,
    )
    assert (s.max_concurrent_queries, s.max_response_bytes) == (2**63 - 1, 1024)


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


PASSWORD_WITH_AT = "p@ss@tPa55"


@pytest.mark.parametrize(
    ("given", "where"),
    [
        ({"PROMETHEUS_ENDPOINT": "http://admin:{}@prom.example:9090/"}, "PROMETHEUS_ENDPOINT="),
        ({"SCRAPE_URL": "http://admin:{}@prom.example:9090/"}, "SCRAPE_URL="),
        ('prometheus_endpoint = "http://admin:{}@prom.example:9090/"\n', "prometheus_endpoint="),
        ('[[rules]]\nname = "r"\nmetric_name = "m"\n', "rules[0].prometheus_endpoint="),
        ('[[rules]]\nname = "r"\nmetric_name = "m"\n', "rules[0].scrape_url="),
    ],
)
def test_a_url_password_holding_at_signs_is_masked_whole_for_every_url_setting(
    tmp_path: Path, given: dict[str, str] | str, where: str
) -> None:
    """RFC 3986: the userinfo ends at the last ``@`` before the host, so all of
    ``p@ss@tPa55`` is the password, and none of it may show."""
    url = f"http://admin:{PASSWORD_WITH_AT}@prom.example:9090/"
    if isinstance(given, dict):
        env = {name: value.format(PASSWORD_WITH_AT) for name, value in given.items()}
    else:
        key = where.split(".")[-1].rstrip("=")
        rules = tmp_path / "rules.toml"
        text = given.format(PASSWORD_WITH_AT)
        rules.write_text(text + (f'{key} = "{url}"\n' if "[[rules]]" in text else ""))
        env = {"CONFIG_FILE": str(rules)}
    with pytest.raises(ConfigError) as error:
        settings(**env)
    message = str(error.value)
    assert f"{where}'http://admin:***@prom.example:9090/' is invalid" in message, message
    assert "credentials in the URL are not accepted" in message
    for piece in ("p@ss", "ss@", "tPa55", "@tPa"):
        assert piece not in message, message


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (0.3, "300ms"), (90, "1m30s"), (7200, "2h0m0s"), (5, "5s")]
)
def test_duration_formatting_matches_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_credentials_in_an_endpoint_url_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        settings(PROMETHEUS_ENDPOINT="https://alice:s3cret@prom.example:9090")
    message = str(error.value)
    assert "s3cret" not in message
    assert "https://alice:***@prom.example:9090" in message
    assert "BASIC_AUTH_USERNAME" in message


def test_external_labels_and_url_from_the_environment_and_the_file(tmp_path: Path) -> None:
    """As Prometheus' ``global.external_labels`` and ``--web.external-url`` (its path
    without a trailing ``/``): every rule holds them, for its templates and events."""
    s = settings(EXTERNAL_LABELS="region=eu, dc=x", EXTERNAL_URL="https://prom.example/p/")
    assert (s.external_labels, s.external_url) == (
        {"region": "eu", "dc": "x"},
        "https://prom.example/p",
    )
    [rule] = s.rules
    assert (rule.external_labels, rule.external_url) == (
        (("region", "eu"), ("dc", "x")),
        s.external_url,
    )
    config = tmp_path / "rules.toml"
    config.write_text(
        'external_labels = {region = "eu, west"}\nexternal_url = "http://prom:9090"\n'
        '[[rules]]\nname = "r"\nmetric_name = "m"\n'
    )
    s = load_settings({"CONFIG_FILE": str(config)})
    assert (s.external_labels, s.rules[0].external_url) == (
        {"region": "eu, west"},
        "http://prom:9090",
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"EXTERNAL_LABELS": "region"},
            "EXTERNAL_LABELS='region' is invalid: 'region' has no '=': expected name=value "
            "pairs separated by commas, e.g. region=eu,dc=x",
        ),
        (
            {"EXTERNAL_LABELS": "region=eu,1dc=x"},
            "EXTERNAL_LABELS='region=eu,1dc=x' is invalid: '1dc' is not a valid label name "
            "([a-zA-Z_][a-zA-Z0-9_]*)",
        ),
        (
            {"EXTERNAL_URL": "prom.example:9090"},
            "EXTERNAL_URL='prom.example:9090' is invalid: expected an http:// or https:// URL "
            "with a host",
        ),
    ],
)
def test_bad_external_labels_or_url_are_refused_in_one_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(**env)
    assert str(error.value) == line


def test_external_labels_of_the_file_must_be_strings(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('external_labels = {dc = 1}\n[[rules]]\nname = "r"\nmetric_name = "m"\n')
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": str(config)})
    assert str(error.value) == (
        f"{config}:1: external_labels={{'dc': 1}} is invalid: label dc: expected a table of "
        'strings, e.g. {region = "eu"}'
    )


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:9",
        "http://prometheus:9090",
        "https://prom.example.org",
        "http://0.0.0.0:1",
        "http://127.0.0.1:80",
        "https://a.b:443",
        "http://Prom:9090",
        "http://a/",
        "http://a:09",
        "http://a:65536",
        "http://1.2.3",
        "http://a.1",
        "http://127.0.0.1:8080/metrics",
        "http://a/x/",
        "http://a/./b",
        "http://a/x/.",
        "http://a/b?c",
    ],
)
def test_a_url_read_without_httpx_is_the_one_httpx_gives(given: str) -> None:
    """``url`` takes a plain URL as written, without importing httpx (start-up time of
    ``test`` and ``check``): only where httpx gives it back unchanged."""
    import httpx

    from metric_reader._config._values import url

    assert url(given) == str(httpx.URL(given))


def test_the_action_history_is_beside_the_state_file_unless_named(tmp_path: Path) -> None:
    assert (settings().history_file, settings().history_retention) == (None, 30 * 86400)
    state = tmp_path / "state.json"
    s = settings(STATE_FILE=str(state), HISTORY_RETENTION="7d")
    assert (s.history_file, s.history_retention) == (
        tmp_path / "state.json.history.sqlite",
        7 * 86400,
    )
    config = tmp_path / "rules.toml"
    config.write_text('history_file = "h.sqlite"\n[[rules]]\nname = "r"\nmetric_name = "m"\n')
    s = load_settings({"CONFIG_FILE": str(config), "STATE_FILE": str(state)})
    assert s.history_file == tmp_path / "h.sqlite"  # relative to the file, as state_file
    with pytest.raises(ConfigError, match=r"HISTORY_FILE=.* no such directory"):
        settings(HISTORY_FILE=str(tmp_path / "none" / "h.sqlite"))
    with pytest.raises(ConfigError, match="HISTORY_RETENTION='30x' is invalid: not a duration"):
        settings(HISTORY_RETENTION="30x")
