"""``backtest --html FILE``: the backtest drawn, a timeline per series (``_html``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .._config import LevelConfig, RuleConfig
from .._core import ANY, Chart, Line, LineKind, Threshold, state_spans
from ._backtest import RuleBacktest, Window, utc
from ._html import ReportCall, ReportRule, ReportSeries, render_report
from ._report import summary
from ._timeline import SeriesTimeline, timelines


def write_html(path: Path, results: Sequence[RuleBacktest], span: Window) -> None:
    sections = [_rule(result, span) for result in results]
    title = f"metric-reader backtest, {utc(span.start)} to {utc(span.end)}"
    path.write_text(render_report(title, summary(results), sections), encoding="utf-8")


def _rule(result: RuleBacktest, span: Window) -> ReportRule:
    config = result.config
    threshold = config.base.threshold.text if config.base else "none"
    if result.replayed is None:
        return ReportRule(config.name, f"{result.expression}: skipped: {result.skipped}", threshold)
    series = [_series(t, config, span) for t in timelines(result.replayed)]
    # The series that acted or breached first: the report keeps a bounded number of charts.
    series.sort(key=lambda s: (not s.calls, not s.chart.spans))
    return ReportRule(config.name, result.expression, threshold, series)


def _series(timeline: SeriesTimeline, config: RuleConfig, span: Window) -> ReportSeries:
    steps = timeline.history.steps
    chart = Chart(
        span.start,
        span.end,
        [(step.at, step.value) for step in steps],
        _lines(config),
        state_spans([(step.at, step.base.value) for step in steps], span.end),
    )
    calls = [
        ReportCall(
            call.at,
            call.event.kind,
            call.plugin or "no plugin: logged",
            call.event.value,
            f"{call.event.threshold}, breached for {call.event.duration.total_seconds():g}s",
            call.ok,
        )
        for call in timeline.calls
    ]
    return ReportSeries(dict(timeline.labels), chart, calls)


def _lines(config: RuleConfig) -> list[Line]:
    lines = []
    levels: tuple[tuple[LevelConfig | None, LineKind], ...] = (
        (config.base, "threshold"),
        (config.hard, "hard"),
    )
    for level, kind in levels:
        if level is None:
            continue
        if _drawable(level.threshold):
            lines.append(Line(level.threshold.number, level.threshold.text, kind))
        clear = level.clear_threshold
        if clear is not None and _drawable(clear):
            lines.append(Line(clear.number, f"clear {clear.text}", "clear"))
    return lines


def _drawable(threshold: Threshold) -> bool:
    return threshold.op != ANY and math.isfinite(threshold.number)
