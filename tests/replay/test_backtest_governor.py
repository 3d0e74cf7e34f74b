"""A backtest decides as the service does (issue 25, point 9): the rules backtested
together share one governor configured from the settings, so a budget stops the calls
over it and a storm makes one call instead of one a series; the report says what the
governor stopped and why."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

from metric_reader._config import Settings, load_settings
from metric_reader._replay._backtest import RuleBacktest, Window, backtest, replay_histories
from metric_reader._replay._html_report import write_html
from metric_reader._replay._report import json_report, summary, text_report
from metric_reader._sources import RangeSeries, evaluation_times

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STEP = 60.0
END = START + 20 * STEP
RULE = """
prometheus_endpoint = "{prometheus}"
polling_interval = "1m"
{top}
[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
threshold_duration = "2m"
backoff_delay = "24h"
action_plugin = "restart_pod"
{guard}
"""


class _Prometheus(BaseHTTPRequestHandler):
    """Answers every ``query_range`` with ``SERIES`` series at 95 at each step."""

    series = 10

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        start, end, step = (float(form[key]) for key in ("start", "end", "step"))
        values = [[start + k * step, "95"] for k in range(round((end - start) / step) + 1)]
        result = [
            {"metric": {"__name__": "disk_used", "host": f"h{n:02d}"}, "values": values}
            for n in range(self.series)
        ]
        body = json.dumps(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, top: str = "", guard: str = "", prometheus: str = "") -> Settings:
    config = tmp_path / "rules.toml"
    config.write_text(
        RULE.format(prometheus=prometheus or "http://127.0.0.1:9", top=top, guard=guard)
    )
    return load_settings({"CONFIG_FILE": str(config)})


def _backtest(
    tmp_path: Path, series: int, top: str = "", guard: str = ""
) -> tuple[list[RuleBacktest], Window]:
    settings = _settings(tmp_path, top, guard)
    [rule] = settings.rules
    times = evaluation_times(START, END, STEP)
    # Every series breached from the start of the window to its end.
    answer = [
        RangeSeries(
            {"__name__": "disk_used", "host": f"h{n:02d}"},
            {round(at * 1000): 95.0 for at in times},
        )
        for n in range(series)
    ]
    [replayed] = replay_histories(settings, [(rule, answer, times)])
    return [RuleBacktest(rule, STEP, "disk_used", replayed)], Window(START, END)


def test_a_global_budget_of_3_lets_3_of_10_series_act_and_the_report_says_why(
    tmp_path: Path, prometheus: str
) -> None:
    """The backtest as the command runs it: read from a Prometheus, then replayed."""
    settings = _settings(tmp_path, '[limits]\nmax_actions = 3\nper = "1h"\n', "", prometheus)
    span = Window(START, END)
    results = anyio.run(backtest, settings, settings.rules, span)
    assert summary(results) == (
        "would have acted 3 times on 3 series; 7 stopped by the global budget (1 rule backtested)"
    )
    text = text_report(results, span)
    assert text.count("fire: restart_pod.execute(") == 3
    held = [line for line in text.splitlines() if "not called" in line]
    assert (
        held
        == [
            "    2026-01-01T00:02:00Z  fire: restart_pod not called: suppressed (budget): budget "
            "of global: 3 per 1h0m0s; frees at 2026-01-01 01:02:00 UTC"
        ]
        * 7
    )
    document = json_report(results, span)
    assert (document["actions"], document["suppressed"]) == (3, 7)
    [rule] = document["rules"]
    assert [len(s["calls"]) for s in rule["series"]] == [1, 1, 1] + [0] * 7
    assert [
        (held["kind"], held["outcome"], held["reason"], held["plugin"])
        for s in rule["series"]
        for held in s["suppressed"]
    ] == [("fire", "suppressed", "budget", "restart_pod")] * 7
    html = tmp_path / "report.html"
    write_html(html, results, span)
    page = html.read_text()
    assert page.count('<g class="mark suppressed">') == 7
    assert page.count("suppressed (budget)</span>") == 7
    assert "suppressed call (the governor held it back)" in page  # the legend


def test_a_storm_of_12_series_makes_one_storm_call_and_no_series_call(tmp_path: Path) -> None:
    results, span = _backtest(tmp_path, 12, guard='max_breaching = 5\nstorm_plugin = "pager"\n')
    [result] = results
    assert result.replayed is not None
    calls = [(call.at - START, call.plugin, call.event.kind) for call in result.replayed.calls]
    assert calls == [(0.0, "pager", "storm")]
    assert summary(results) == (
        "would have acted 1 time on 0 series; 12 stopped by a storm of rule disk "
        "(1 rule backtested)"
    )
    text = text_report(results, span)
    assert (
        "  2026-01-01T00:00:00Z  storm: 12 series breached at once, more than max_breaching 5: "
        "pager.execute(kind='storm', series=12)\n" in text
    )
    assert "restart_pod.execute" not in text


def test_rules_share_the_budget_and_are_replayed_in_time_order(tmp_path: Path) -> None:
    """Two rules under one budget of 1: the one that fires first takes it, whichever is
    backtested first."""
    settings = _settings(tmp_path, '[limits]\nmax_actions = 1\nper = "1h"\n')
    [disk] = settings.rules
    fast = dataclasses.replace(disk, name="fast", base=dataclasses.replace(disk.base, duration=0.0))
    times = evaluation_times(START, END, STEP)
    answer = [RangeSeries({"__name__": "disk_used"}, {round(at * 1000): 95.0 for at in times})]
    slow_run, fast_run = replay_histories(settings, [(disk, answer, times), (fast, answer, times)])
    assert [(call.at - START, call.event.kind) for call in fast_run.calls] == [(0.0, "fire")]
    assert slow_run.calls == []
    assert [(e.rule, e.reason, e.at - START) for e in slow_run.history] == [
        ("disk", "budget", 120.0)
    ]


def test_an_approval_request_is_shown_as_such_and_its_fix_stays_held(tmp_path: Path) -> None:
    results, span = _backtest(tmp_path, 1, guard='mode = "approve"\napproval_plugin = "chat"\n')
    [result] = results
    assert result.replayed is not None
    calls = [(call.at - START, call.plugin, call.event.kind) for call in result.replayed.calls]
    assert calls == [(120.0, "chat", "approval_request")]  # a backtest approves nothing
    assert summary(results) == (
        "would have acted 0 times on 0 series; 1 stopped by waiting for an approval; "
        "1 approval request (a backtest approves none: their calls stay held) "
        "(1 rule backtested)"
    )
    text = text_report(results, span)
    assert (
        "    2026-01-01T00:02:00Z  approval_request to chat: asks to run the fire to plugin "
        "restart_pod (a backtest approves nothing: it stays held)\n" in text
    )
    assert "fire: restart_pod not called: suppressed (approval): approval " in text
    assert "restart_pod.execute" not in text
