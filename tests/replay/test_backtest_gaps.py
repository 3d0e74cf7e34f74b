"""A backtest of a series that comes and goes: a step the ``query_range`` answer has no
point for is a read without the series, as it was for the service.

The case of issue 23: a ``for: 10m`` alert whose expression returned nothing for two
stretches of minutes. The service ended the breach at each gap ("breach ended ... before
the duration"); the report must say so, and its chart must break the line and the pending
shade there.
"""

from __future__ import annotations

import re
from pathlib import Path

from metric_reader._config import Settings, load_settings
from metric_reader._replay._backtest import RuleBacktest, Window, replay_history
from metric_reader._replay._html_report import write_html
from metric_reader._replay._report import json_report, text_report
from metric_reader._sources import RangeSeries, evaluation_times

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STEP = 30.0
END = START + 30 * 60 - STEP
GAPS = [(START + 300, START + 420), (START + 900, START + 1020)]
"""The expression returned nothing from 5 to 7 minutes and from 15 to 17 minutes."""
ALERTS = """
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        for: 10m
"""


def _absent(at: float) -> bool:
    return any(first <= at < last for first, last in GAPS)


def _backtest(tmp_path: Path) -> tuple[list[RuleBacktest], Window]:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    settings: Settings = load_settings(
        {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "RULE_FILES": str(tmp_path / "alerts.yml")}
    )
    [config] = settings.rules
    times = evaluation_times(START, END, STEP)
    # As Prometheus answers query_range: the series, with a point at each step it had one.
    answer = [
        RangeSeries(
            {"__name__": "queue_depth", "queue": "mail"},
            {round(at * 1000): 80.0 for at in times if not _absent(at)},
        )
    ]
    replayed = replay_history(config, answer, times, settings.routes)
    return [RuleBacktest(config, STEP, "queue_depth > 50", replayed)], Window(START, END)


def test_the_breach_ends_at_each_gap_and_starts_again_after_it(tmp_path: Path) -> None:
    results, span = _backtest(tmp_path)
    [series] = json_report(results, span)["rules"][0]["series"]
    assert [(c["at"], c["from"], c["to"]) for c in series["changes"]] == [
        ("2026-01-01T00:00:00Z", "ok", "pending"),
        ("2026-01-01T00:05:00Z", "pending", "ok"),
        ("2026-01-01T00:07:00Z", "ok", "pending"),
        ("2026-01-01T00:15:00Z", "pending", "ok"),
        ("2026-01-01T00:17:00Z", "ok", "pending"),
        ("2026-01-01T00:27:00Z", "pending", "firing"),
    ]
    text = text_report(results, span)
    assert "2026-01-01T00:05:00Z  back to ok, value none" in text
    assert "2026-01-01T00:15:00Z  back to ok, value none" in text


def test_the_chart_breaks_its_line_and_its_pending_shade_at_each_gap(tmp_path: Path) -> None:
    results, span = _backtest(tmp_path)
    page = tmp_path / "report.html"
    write_html(page, results, span)
    svg = page.read_text()
    # The plot's frame: where the window's start and end are drawn.
    frame = re.search(
        r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" fill="none"', svg
    )
    assert frame is not None
    left, width = float(frame[1]) + 0.5, float(frame[2]) - 1

    def x(at: float) -> float:
        return left + (at - span.start) / (span.end - span.start) * width

    [path] = re.findall(r'<path class="values" d="([^"]*)"', svg)
    runs = [[float(point.split()[0]) for point in run.split("L")] for run in path.split("M")[1:]]
    assert len(runs) == 3, path  # one line a stretch the series was there
    pending = [
        (float(a), float(a) + float(w))
        for a, w in re.findall(
            r'<rect class="span pending" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg
        )
    ]
    firing = re.findall(r'<rect class="span firing"', svg)
    assert len(pending) == 3 and len(firing) == 1, (pending, firing)
    for first, last in GAPS:
        inside = x(first + 30), x(last - 30)  # the gap's steps without the series
        for run in runs:
            assert not (min(run) < inside[1] and max(run) > inside[0]), (run, inside)
        for x0, x1 in pending:
            assert not (x0 < inside[1] and x1 > inside[0]), ((x0, x1), inside)
