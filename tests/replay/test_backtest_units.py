"""The pure parts of a backtest: its steps, its requests, its times and its report."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from loguru import logger

from metric_reader._config import Settings, load_settings
from metric_reader._core._exceptions import ConfigError, FetchError
from metric_reader._core._samples import Sample
from metric_reader._engine import Observation, replay
from metric_reader._replay._backtest import (
    RuleBacktest,
    Window,
    check_evaluations,
    parse_time,
    select_rules,
)
from metric_reader._replay._commands import EXIT_FAILED, EXIT_OK, BacktestOptions, backtest_command
from metric_reader._replay._report import json_report, summary, text_report
from metric_reader._sources._range import MAX_POINTS, evaluation_times, query_range, windows

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC).timestamp()


def test_steps_are_aligned_to_multiples_of_the_step() -> None:
    assert evaluation_times(100.5, 130.0, 10.0) == [110.0, 120.0, 130.0]
    assert evaluation_times(101.0, 109.0, 10.0) == []
    # Two backtests of one rule over overlapping windows evaluate at the same times.
    assert set(evaluation_times(0, 95, 15)) & set(evaluation_times(40, 200, 15)) == {
        45.0,
        60.0,
        75.0,
        90.0,
    }


@pytest.mark.parametrize("steps", [1, MAX_POINTS - 1, MAX_POINTS, MAX_POINTS + 1, 3 * MAX_POINTS])
def test_requests_hold_at_most_11000_steps_and_cover_every_step(steps: int) -> None:
    times = [float(k) for k in range(steps)]
    parts = list(windows(times))
    assert all(end - start + 1 <= MAX_POINTS for start, end in parts)
    covered = [t for start, end in parts for t in times if start <= t <= end]
    assert covered == times  # each step once, in order
    assert len(parts) == -(-steps // MAX_POINTS)


def test_times_are_durations_back_from_now_or_rfc3339() -> None:
    assert parse_time("2h", NOW, "--from") == NOW - 7200
    assert parse_time("7d", NOW, "--from") == NOW - 7 * 86400
    assert parse_time("2026-11-27T10:00:00Z", NOW, "--from") == NOW - 7200
    assert parse_time("2026-11-27T11:00:00+01:00", NOW, "--to") == NOW - 7200
    with pytest.raises(ConfigError, match="give the time zone"):
        parse_time("2026-11-27T10:00:00", NOW, "--from")
    with pytest.raises(ConfigError, match=r"--to 'soon': expected a duration back from now"):
        parse_time("soon", NOW, "--to")


def _settings() -> tuple[Settings, list[RuleBacktest], Window]:
    settings = load_settings(
        {
            "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9",
            "METRIC_NAME": "queue_depth",
            "THRESHOLD": ">50",
            "THRESHOLD_DURATION": "20s",
            "BACKOFF_DELAY": "30s",
            "POLLING_INTERVAL": "10s",
            "ACTION_PLUGIN": "log_action",
        }
    )
    [config] = settings.rules
    mail = (("queue", "mail"),)
    values = [10, 80, 80, 80, 80, 80, 80, 80, 10, 10]  # breached from 10 s to 70 s
    reads = [Observation(NOW + 10 * k, [Sample(mail, v)]) for k, v in enumerate(values)]
    result = RuleBacktest(config, 10.0, "queue_depth at http://127.0.0.1:9", replay(config, reads))
    return settings, [result], Window(NOW, NOW + 100)


def test_the_text_report_tells_each_moment_and_call_and_sums_up() -> None:
    _, results, span = _settings()
    text = text_report(results, span)
    assert text.splitlines() == [
        "backtest from 2026-11-27T12:00:00Z to 2026-11-27T12:01:40Z",
        "",
        "rule queue_depth: queue_depth at http://127.0.0.1:9, every 10s: 10 evaluations",
        '  queue_depth{queue="mail"}',
        "    2026-11-27T12:00:10Z  pending, value 80",
        "    2026-11-27T12:00:30Z  firing, value 80",
        "    2026-11-27T12:00:30Z  fire: log_action.execute(metric_name='queue_depth', value=80,"
        " threshold='>50', duration=20s)",
        "    2026-11-27T12:01:00Z  repeat: log_action.execute(metric_name='queue_depth', value=80,"
        " threshold='>50', duration=50s)",
        "    2026-11-27T12:01:20Z  resolved, value 10",
        "    2026-11-27T12:01:20Z  resolve: log_action.resolve(metric_name='queue_depth',"
        " value=80, threshold='>50', duration=1m10s)",  # the last value that breached
        "",
        "would have acted 3 times on 1 series (1 rule backtested)",
    ]


def test_the_json_report_has_every_field_of_the_events() -> None:
    _, results, span = _settings()
    document = json.loads(json.dumps(json_report(results, span)))
    assert document["actions"] == 3
    [rule] = document["rules"]
    [series] = rule["series"]
    assert series["labels"] == {"queue": "mail"}
    assert [(c["at"], c["kind"], c["plugin"]) for c in series["calls"]] == [
        ("2026-11-27T12:00:30Z", "fire", "log_action"),
        ("2026-11-27T12:01:00Z", "repeat", "log_action"),
        ("2026-11-27T12:01:20Z", "resolve", "log_action"),
    ]
    first = series["calls"][0]
    assert first["breach_started"] == "2026-11-27T12:00:10+00:00"
    assert first["duration_seconds"] == 20.0 and first["threshold"] == ">50"
    assert [(c["from"], c["to"]) for c in series["changes"]] == [
        ("ok", "pending"),
        ("pending", "firing"),
        ("firing", "ok"),
    ]


def test_an_unknown_rule_name_lists_the_rules() -> None:
    settings, _, _ = _settings()
    with pytest.raises(ConfigError, match=r"--rule 'nope': no rule of that name; the rules: q"):
        select_rules(settings, ["nope"])
    assert select_rules(settings, []) == list(settings.rules)
    assert summary([]) == "would have acted 0 times on 0 series (0 rules backtested)"


# --- the exit code: 1 when a rule's history could not be read ---------------------------------


class _Prometheus(BaseHTTPRequestHandler):
    """A Prometheus that scrapes one page, ``SCRAPED``, and has no history of it."""

    def do_GET(self) -> None:
        targets = [{"scrapeUrl": SCRAPED, "labels": {"job": "app", "instance": "app:8080"}}]
        body = json.dumps({"status": "success", "data": {"activeTargets": targets}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


SCRAPED = "http://app.test:8080/metrics"


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _backtest(environ: dict[str, str], **options: Any) -> int:
    """``backtest --from 10m`` run here; its output is captured by the caller's ``capsys``."""
    try:
        return backtest_command(load_settings(environ), BacktestOptions("10m", **options))
    finally:
        logger.enable("metric_reader._engine")  # the command silences it for its run


def test_a_page_the_given_prometheus_does_not_scrape_is_unread_and_exits_1(
    prometheus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = {"METRIC_NAME": "queue_depth", "THRESHOLD": ">50"}
    other = {**page, "SCRAPE_URL": "http://other.test:8080/metrics"}
    assert _backtest(other, prometheus=prometheus) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"skipped: the Prometheus at {prometheus} does not scrape http://other.test" in out
    assert out.endswith("(0 rules backtested, 1 skipped)\n")


def test_an_unreachable_prometheus_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "QUERY": "up", "THRESHOLD": ">0"}
    assert _backtest(environ) == EXIT_FAILED
    assert "skipped: could not read its history:" in capsys.readouterr().out


def test_rules_skipped_by_design_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A page without ``--prometheus``, a rule without a threshold: nothing was unread."""
    config = tmp_path / "rules.toml"
    config.write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\n'
        f'[[rules]]\nname = "page"\nmetric_name = "queue_depth"\nscrape_url = "{SCRAPED}"\n'
        'threshold = ">50"\n'
        '[[rules]]\nname = "logged"\nmetric_name = "queue_depth"\n'
    )
    assert _backtest({"CONFIG_FILE": str(config)}) == EXIT_OK
    out = capsys.readouterr().out
    assert "rule page: " in out and "directly: give --prometheus URL" in out
    assert "rule logged: " in out and "skipped: no threshold" in out
    assert out.endswith("(0 rules backtested, 2 skipped)\n")


# --- bounded: what one read may hold (issue 22, point 8) --------------------------------------


def test_a_read_holding_more_than_its_points_fails_at_the_request_that_passes_them() -> None:
    """Three series at every step: 33,000 points a request of 11,000 steps; a read may hold
    50,000 here, so the second request's answer ends it, and the third is never asked."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.read().decode()))
        asked.append(form["start"])
        start, end = float(form["start"]), float(form["end"])
        values = [[start + k, "1"] for k in range(int(end - start) + 1)]
        series = [{"metric": {"__name__": "m", "n": str(n)}, "values": values} for n in range(3)]
        document = {"status": "success", "data": {"resultType": "matrix", "result": series}}
        return httpx.Response(200, stream=httpx.ByteStream(json.dumps(document).encode()))

    async def read() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            times = evaluation_times(0, 29_999, 1.0)
            await query_range(
                client, "http://prometheus.test", "m", times, 1.0, 5.0, max_points=50_000
            )

    with pytest.raises(
        FetchError,
        match=r"^the answers hold more than 50,000 points \(one a series and step\), the most one "
        r"read may hold: a larger step or a shorter window reads fewer$",
    ):
        anyio.run(read)
    assert asked == ["0.000", "11000.000"]


def test_a_window_of_more_than_a_million_evaluations_is_refused_before_any_read() -> None:
    settings, _, _ = _settings()
    year = Window(NOW - 365 * 86400, NOW)
    with pytest.raises(
        ConfigError,
        match=r"^the window takes 31,536,001 evaluations of rule 'queue_depth', one every 1s; a "
        r"backtest makes at most 1,000,000 a rule: give a larger --step or a shorter window$",
    ):
        check_evaluations(settings.rules, year, 1.0)
    check_evaluations(settings.rules, year, 31.6)  # 998,000 evaluations
