"""``backtest --html FILE``: the backtest drawn, a timeline per series (``_html``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .._config import LevelConfig, RuleConfig
from .._core import ANY, Chart, Line, LineKind, Threshold, state_spans
from .._engine import ReplayedCall
from ._backtest import RuleBacktest, Window, utc
from ._html import ReportCall, ReportRule, ReportSeries, render_report
from ._report import summary
from ._timeline import SeriesTimeline, ran, storm_calls, timelines


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
    storms = [_call(call) for call in storm_calls(result.replayed)]
    return ReportRule(config.name, result.expression, threshold, series, storms)


def _series(timeline: SeriesTimeline, config: RuleConfig, span: Window) -> ReportSeries:
    steps = timeline.history.steps
    chart = Chart(
        span.start,
        span.end,
        [(step.at, step.value) for step in steps],
        _lines(config),
        state_spans([(step.at, step.base.value) for step in steps], span.end),
    )
    calls = [_call(call) for call in timeline.calls]
    calls += [
        ReportCall(
            entry.at,
            entry.kind,
            entry.plugin or "no plugin: logged",
            entry.value,
            entry.detail,
            outcome="suppressed",
            reason=entry.reason,
        )
        for entry in timeline.held
    ]
    calls.sort(key=lambda call: call.at)
    return ReportSeries(dict(timeline.labels), chart, calls)


def _call(call: ReplayedCall) -> ReportCall:
    event = call.event
    about = f"{event.threshold}, breached for {event.duration.total_seconds():g}s"
    if event.kind == "storm":
        about = f"{event.value:g} series breached at once, more than {event.threshold}"
    return ReportCall(
        call.at,
        event.kind,
        call.plugin or "no plugin: logged",
        event.value,
        about,
        call.ok,
        "shadow" if not ran(call) else "executed" if call.ok else "failed",
    )


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
