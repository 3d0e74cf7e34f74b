"""``metric-reader backtest`` lists the actions the live service took over the same window.

A real Prometheus scrapes a Pushgateway; the service runs against it (a selector rule with
a backoff, and a QUERY rule) while the test moves the values through breaches that fire,
repeat and resolve. Then ``backtest`` replays the same window from Prometheus' history and
must list the very calls the service made: same rules, series, kinds and plugins, in the
same order, each within one step of when the service made it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _bounded import run_bounded

from .conftest import (
    REPO_ROOT,
    PrometheusProxy,
    PrometheusStack,
    RecordingPlugins,
    ServiceFactory,
    base_env,
    wait_until,
)

JOB = "backtest"
# (seconds from the start, series, value): mail breaches 5 s to 28 s (fires after 3 s,
# repeats every 8 s), sms 12 s to 34 s; the sum of both is over 150 from 12 s to 28 s.
SCRIPT = [
    (0, "mail", 10.0),
    (0, "sms", 10.0),
    (5, "mail", 80.0),
    (12, "sms", 90.0),
    (28, "mail", 10.0),
    (34, "sms", 10.0),
    (40, "mail", 10.0),
]
RULES = """
prometheus_endpoint = "{prometheus}"
polling_interval = "1s"

[[rules]]
name = "queue-high"
metric_name = "bt_queue"
label_filters = 'job="{job}"'
threshold = ">50"
threshold_duration = "3s"
backoff_delay = "8s"
action_plugin = "recorder"

[[rules]]
name = "queues-total"
query = 'sum(bt_queue{{job="{job}"}})'
threshold = ">150"
threshold_duration = "2s"
action_plugin = "recorder_hard"
"""


def test_a_backtest_lists_the_actions_the_live_service_took(
    prometheus_stack: PrometheusStack,
    service: ServiceFactory,
    recording_plugin_dir: RecordingPlugins,
    tmp_path: Path,
) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULES.format(prometheus=prometheus_stack.prometheus_url, job=JOB))
    env = {"CONFIG_FILE": str(config), **recording_plugin_dir.env}
    live = service(env)
    wait_until(lambda: "polling every" in live.stderr(), 20, "the service polls")
    start = time.time()
    for at, queue, value in SCRIPT:
        time.sleep(max(0.0, start + at - time.time()))
        prometheus_stack.push("bt_queue", value, {"queue": queue}, job=JOB)
    wait_until(
        lambda: sum(r["kind"] == "resolve" for r in recording_plugin_dir.records()) >= 3,
        15,
        "the three resolves",
        diagnostics=recording_plugin_dir.describe,
    )
    live.stop()
    to_wall = time.time() - time.monotonic()
    took = [
        _call(r["rule"], r["labels"], r["kind"], r["plugin"], r["t"] + to_wall)
        for r in recording_plugin_dir.records()
    ]

    report = tmp_path / "report.html"
    window = ("--from", "1h")  # as a user asks: the last hour, which holds the whole run
    rules_only = {"CONFIG_FILE": str(config)}
    result = _backtest(*window, "--format", "json", "--html", str(report), env=rules_only)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    would = sorted(
        (
            _call(rule["rule"], call["labels"], call["kind"], call["plugin"], call["time"])
            for rule in document["rules"]
            for series in rule["series"]
            for call in series["calls"]
        ),
        key=lambda call: call[-1],
    )
    # Per rule and series, the same calls in the same order, each within a step (1 s) and
    # a scrape (0.5 s) of when the service made it (two rules acting at one moment may be
    # told in either order).
    assert _by_series(would).keys() == _by_series(took).keys(), (would, took)
    for key, calls in _by_series(took).items():
        backtested = _by_series(would)[key]
        assert [c[:-1] for c in backtested] == [c[:-1] for c in calls], (key, backtested, calls)
        for replayed, lived in zip(backtested, calls, strict=True):
            assert abs(replayed[-1] - lived[-1]) < 1.6, (key, replayed, lived)
    kinds = [call[2] for call in took]
    assert kinds.count("fire") == 3 and kinds.count("repeat") == 4 and kinds.count("resolve") == 3
    assert document["summary"].startswith("would have acted 10 times on 3 series")
    # The report draws a mark for each of those calls, labelled with its plugin (where on
    # the time axis: tests/replay/test_html_report.py, in a browser). Over an hour, calls a
    # few seconds apart share a pixel column: one mark then says how many it stands for.
    html = report.read_text()
    drawn = []
    for kind, plugin, more in re.findall(
        r'<g class="mark \w+"><title>(\w+) (\w+)(?: \(and (\d+) more here\))?</title>', html
    ):
        drawn += [(kind, plugin)] * (1 + int(more or 0))
    assert sorted(drawn) == sorted((call[2], call[3]) for call in took), drawn
    assert "<script" not in html and "http://" not in html.replace(
        prometheus_stack.prometheus_url, ""
    )

    text = _backtest(*window, "--rule", "queue-high", env=rules_only)
    assert text.returncode == 0, text.stderr
    print(text.stdout)
    assert 'bt_queue{job="backtest",queue="mail"}' in text.stdout
    assert "fire: recorder.execute(metric_name='bt_queue', value=80" in text.stdout
    assert text.stdout.rstrip().endswith("would have acted 8 times on 2 series (1 rule backtested)")


def _by_series(calls: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    out: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for call in calls:
        out.setdefault(call[:2], []).append(call[2:])
    return out


def _call(rule: str, labels: dict[str, str], kind: str, plugin: str, at: float) -> tuple[Any, ...]:
    return (rule, tuple(sorted(labels.items())), kind, plugin, at)


def _wait_for_history(stack: PrometheusStack, selector: str, steps: int) -> None:
    """Until Prometheus holds ``selector`` at the last ``steps`` whole seconds: what a
    backtest at 1 s steps, aligned to whole seconds, can see."""

    def held() -> bool:
        end = math.floor(time.time())
        form = {"query": selector, "start": str(end - steps + 1), "end": str(end), "step": "1"}
        answer = httpx.post(f"{stack.prometheus_url}/api/v1/query_range", data=form).json()
        return any(len(series["values"]) >= steps for series in answer["data"]["result"])

    wait_until(held, 30, f"{steps} seconds of {selector} in Prometheus")


def _backtest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "backtest", *args],
        cwd=REPO_ROOT,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_long_window_is_read_in_requests_of_at_most_11000_steps(
    prometheus_stack: PrometheusStack, prometheus_proxy: PrometheusProxy
) -> None:
    """5 hours at 1 s are 18,000 steps: Prometheus answers at most 11,000 a request (it
    refuses more with an error), so the backtest asks twice and joins the answers."""
    prometheus_stack.push("bt_long", 7.0, {"queue": "mail"}, job="backtest-long")
    _wait_for_history(prometheus_stack, 'bt_long{job="backtest-long"}', steps=3)
    env = {
        "PROMETHEUS_ENDPOINT": prometheus_proxy.url,
        "METRIC_NAME": "bt_long",
        "THRESHOLD": ">5",
        "POLLING_INTERVAL": "1s",
    }
    before = prometheus_proxy.requests
    result = _backtest("--from", "5h", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    asked = prometheus_proxy.request_log[before:]
    assert asked == ["POST /api/v1/query_range"] * 2, asked
    [rule] = json.loads(result.stdout)["rules"]
    assert 17_999 <= rule["evaluations"] <= 18_001
    assert len(rule["series"]) == 1, result.stdout[:3000]
    [series] = rule["series"]
    # The series exists only for the last seconds of the window: it fired then.
    assert [change["to"] for change in series["changes"]] == ["firing"]
    assert [call["kind"] for call in series["calls"]] == ["fire"]
    assert series["calls"][0]["time"] > time.time() - 60


def test_a_rule_reading_a_page_is_backtested_from_a_prometheus_scraping_it(
    prometheus_stack: PrometheusStack, tmp_path: Path
) -> None:
    prometheus_stack.push("bt_page", 9.0, {"queue": "sms"}, job="backtest-page")
    _wait_for_history(prometheus_stack, 'bt_page{job="backtest-page"}', steps=3)
    env = {
        "SCRAPE_URL": f"{prometheus_stack.pushgateway_url}/metrics",
        "METRIC_NAME": "bt_page",
        "THRESHOLD": ">5",
        "POLLING_INTERVAL": "1s",
    }
    skipped = _backtest("--from", "1m", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert (
        f"skipped: reads {prometheus_stack.pushgateway_url}/metrics directly: give --prometheus "
        "URL, a Prometheus that scrapes that page, to backtest it from there" in skipped.stdout
    )
    assert skipped.stdout.rstrip().endswith("(0 rules backtested, 1 skipped)")
    read = _backtest(
        "--from", "1m", "--prometheus", prometheus_stack.prometheus_url, "--format", "json", env=env
    )
    assert read.returncode == 0, read.stderr
    [rule] = json.loads(read.stdout)["rules"]
    labels = [series["labels"] for series in rule["series"]]
    # As the page shows it: the pushed job (Prometheus keeps it, honor_labels), no target
    # instance.
    assert {"queue": "sms", "job": "backtest-page"} in labels, labels
    assert rule["reads"] == f"bt_page at {prometheus_stack.prometheus_url}"


def test_a_page_the_given_prometheus_does_not_scrape_is_unread_and_exits_1(
    prometheus_stack: PrometheusStack,
) -> None:
    page = f"{prometheus_stack.pushgateway_url}/not-scraped"
    env = {"SCRAPE_URL": page, "METRIC_NAME": "bt_page", "THRESHOLD": ">5"}
    prometheus = prometheus_stack.prometheus_url
    result = _backtest("--from", "1m", "--prometheus", prometheus, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"skipped: the Prometheus at {prometheus} does not scrape {page}" in result.stdout
    assert result.stdout.rstrip().endswith("(0 rules backtested, 1 skipped)")


def test_an_unreadable_history_is_reported_and_exits_1(tmp_path: Path) -> None:
    env = {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "QUERY": "up", "THRESHOLD": ">0"}
    result = _backtest("--from", "10m", env=env)
    assert result.returncode == 1
    assert "skipped: could not read its history:" in result.stdout
    assert "(0 rules backtested, 1 skipped)" in result.stdout


def test_bad_flags_are_one_line_and_exit_2() -> None:
    env = {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "QUERY": "up", "THRESHOLD": ">0"}
    for args, message in [
        (["--from", "yesterday"], "--from 'yesterday': expected a duration back from now"),
        (["--from", "1h", "--to", "2h"], "--from '1h' is not before --to '2h'"),
        (["--from", "1h", "--rule", "nope"], "--rule 'nope': no rule of that name"),
        (["--from", "1h", "--step", "0s"], "--step '0s': must be more than 0"),
        (["--from", "1h", "--html", "/no-such-dir/r.html"], "--html '/no-such-dir/r.html': no"),
    ]:
        result = _backtest(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_credentials_in_the_prometheus_flag_are_refused_in_one_line_not_shown() -> None:
    """As PROMETHEUS_ENDPOINT refuses them (it was a traceback); the password is masked
    whole, read as RFC 3986 reads it (the userinfo ends at the last ``@``)."""
    env = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">0"}
    for given, shown in [
        ("http://u:s3cr3tpw@127.0.0.1:9/", "http://u:***@127.0.0.1:9/"),
        ("http://admin:p@ss@tPa55@127.0.0.1:9", "http://admin:***@127.0.0.1:9"),
    ]:
        result = _backtest("--from", "1m", "--prometheus", given, env=env)
        assert result.returncode == 2, (given, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"--prometheus '{shown}': credentials in the URL are not accepted" in result.stderr
        for piece in ("s3cr3tpw", "p@ss", "tPa55"):
            assert piece not in result.stdout + result.stderr


def test_a_year_at_1s_is_refused_before_any_read_and_1ns_is_not_a_step() -> None:
    """--from 365d --step 1s died of MemoryError after 1,017 of 2,868 requests: now one
    line, before anything is read, saying how many evaluations and the limit."""
    env = {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "QUERY": "up", "THRESHOLD": ">0"}
    result = run_bounded("backtest", "--from", "365d", "--step", "1s", env=env, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        r"metric-reader: configuration error: the window takes 31,536,00[01] evaluations of "
        r"rule 'query', one every 1s; a backtest makes at most 1,000,000 a rule: give a larger "
        r"--step or a shorter window",
        line,
    ), line
    result = run_bounded("backtest", "--from", "1h", "--step", "1ns", env=env, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.splitlines() == [
        "metric-reader: configuration error: --step '1ns': must be at least 1ms, e.g. 1s"
    ]


GAPS_JOB = "backtest_gaps"
GAPS_ALERTS = """
groups:
  - name: gaps
    rules:
      - alert: GapHigh
        expr: bt_gap{job="backtest_gaps"} > 50
        for: 4s
"""
GAPS_RULES = """
prometheus_endpoint = "{prometheus}"
polling_interval = "1s"
rule_files = ["alerts.yml"]
"""
GAPS_SCRIPT = [(0, True), (2, False), (4, True), (6, False), (8, True), (14, False)]
"""(seconds from the start, whether the series is pushed): present twice for 2 s, half the
alert's ``for``, then long enough to fire; deleted from the Pushgateway in between, so
the expression returns nothing (Prometheus marks the series stale at its next scrape)."""
CHANGE_OF = {
    "breach started": ("ok", "pending"),
    "breach ended": ("pending", "ok"),
    "firing": ("pending", "firing"),
    "resolved": ("firing", "ok"),
}


def test_a_backtest_ends_a_breach_at_a_gap_where_the_service_ended_it(
    prometheus_stack: PrometheusStack, service: ServiceFactory, tmp_path: Path
) -> None:
    """Issue 23: the service logged "breach ended ... before the duration" at each gap;
    the backtest showed the alert pending all along."""
    (tmp_path / "alerts.yml").write_text(GAPS_ALERTS)
    config = tmp_path / "rules.toml"
    config.write_text(GAPS_RULES.format(prometheus=prometheus_stack.prometheus_url))
    live = service({"CONFIG_FILE": str(config), "LOG_FORMAT": "json"})
    wait_until(lambda: "polling every" in live.stderr(), 20, "the service polls")
    start = time.time()
    for at, present in GAPS_SCRIPT:
        time.sleep(max(0.0, start + at - time.time()))
        if present:
            prometheus_stack.push("bt_gap", 80.0, job=GAPS_JOB)
        else:
            prometheus_stack.remove("bt_gap", job=GAPS_JOB)

    def lived() -> list[tuple[str, str, float]]:
        out = []
        for line in live.stderr().splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            for start_of, change in CHANGE_OF.items():
                if record.get("rule") == "GapHigh" and record["message"].startswith(start_of):
                    at = datetime.fromisoformat(record["time"]).timestamp()
                    out.append((*change, at))
        return out

    wait_until(lambda: lived() and lived()[-1][1] == "ok" and len(lived()) >= 6, 10, "the resolve")
    live.stop()
    took = lived()
    assert [change[:2] for change in took] == [
        ("ok", "pending"),
        ("pending", "ok"),
        ("ok", "pending"),
        ("pending", "ok"),
        ("ok", "pending"),
        ("pending", "firing"),
        ("firing", "ok"),
    ], took

    # The window ends two steps past the resolve: the step that sees the stale series.
    time.sleep(max(0.0, took[-1][2] + 2.5 - time.time()))
    result = _backtest("--from", "2m", "--format", "json", env={"CONFIG_FILE": str(config)})
    assert result.returncode == 0, result.stderr
    [rule] = json.loads(result.stdout)["rules"]
    [series] = rule["series"]
    told = [(c["from"], c["to"], c["time"]) for c in series["changes"]]
    assert [change[:2] for change in told] == [change[:2] for change in took], (told, took)
    for backtested, then in zip(told, took, strict=True):
        # Within a step (1 s) and a scrape (0.5 s) of when the service saw it.
        assert abs(backtested[2] - then[2]) < 1.6, (backtested, then)
