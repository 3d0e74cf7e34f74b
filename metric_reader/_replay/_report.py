"""A backtest as text for people and as JSON for scripts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._core import format_duration
from .._engine import ReplayedCall, format_series
from ._backtest import RuleBacktest, Window, utc
from ._timeline import SeriesTimeline, timelines


def summary(results: Sequence[RuleBacktest]) -> str:
    """``would have acted 14 times on 3 series`` (and what was skipped)."""
    acted = series = 0
    for result in results:
        if result.replayed is None:
            continue
        for timeline in timelines(result.replayed):
            acted += timeline.acted
            series += timeline.acted > 0
    skipped = sum(result.replayed is None for result in results)
    line = f"would have acted {acted} time{'s' * (acted != 1)} on {series} series"
    backtested = len(results) - skipped
    line += f" ({backtested} rule{'s' * (backtested != 1)} backtested"
    return line + (f", {skipped} skipped)" if skipped else ")")


def text_report(results: Sequence[RuleBacktest], span: Window) -> str:
    lines = [f"backtest from {utc(span.start)} to {utc(span.end)}", ""]
    for result in results:
        rule = result.config
        head = f"rule {rule.name}: {result.expression}, every {format_duration(result.step)}"
        if result.replayed is None:
            lines += [f"{head}: skipped: {result.skipped}", ""]
            continue
        shown = [t for t in timelines(result.replayed) if t.changes or t.calls]
        lines.append(f"{head}: {result.replayed.evaluations} evaluations")
        for at, problem in result.replayed.problems[:3]:
            lines.append(f"  {utc(at)}  not evaluated: {problem}")
        if not shown:
            lines.append("  never breached")
        for timeline in shown:
            lines += _series_lines(rule.metric_name, timeline)
        lines.append("")
    lines.append(summary(results))
    return "\n".join(lines) + "\n"


def _series_lines(metric: str, timeline: SeriesTimeline) -> list[str]:
    moments: list[tuple[float, int, str]] = []
    for change in timeline.changes:
        level = "" if change.level == "base" else f" ({change.level} level)"
        word = {"pending": "pending", "firing": "firing", "ok": "resolved"}[change.new.value]
        if change.new.value == "ok" and change.old.value == "pending":
            word = "back to ok"
        moments.append((change.at, 0, f"{word}{level}, value {_number(change.value)}"))
    for call in timeline.calls:
        moments.append((call.at, 1, _call_text(call)))
    out = [f"  {format_series(metric, timeline.labels)}"]
    out += [f"    {utc(at)}  {text}" for at, _, text in sorted(moments, key=lambda m: m[:2])]
    return out


def _call_text(call: ReplayedCall) -> str:
    event = call.event
    method = "resolve" if event.kind == "resolve" else "execute"
    arguments = (
        f"metric_name={event.metric_name!r}, value={_number(event.value)}, "
        f"threshold={event.threshold!r}, duration={format_duration(event.duration.total_seconds())}"
    )
    failed = "" if call.ok else "  (fails, as the test scripted)"
    if call.plugin is None:
        return f"{event.kind}: no plugin configured, only logged ({arguments}){failed}"
    return f"{event.kind}: {call.plugin}.{method}({arguments}){failed}"


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return repr(value) if math.isfinite(value) and value != int(value) else f"{value:g}"


def json_report(results: Sequence[RuleBacktest], span: Window) -> dict[str, Any]:
    """The backtest as one JSON document (times in RFC 3339 and in epoch seconds)."""
    rules = []
    for result in results:
        entry: dict[str, Any] = {
            "rule": result.config.name,
            "reads": result.expression,
            "step_seconds": result.step,
        }
        if result.replayed is None:
            entry["skipped"] = result.skipped
            rules.append(entry)
            continue
        entry["evaluations"] = result.replayed.evaluations
        entry["not_evaluated"] = [
            {"at": utc(at), "reason": problem} for at, problem in result.replayed.problems
        ]
        entry["series"] = [_series_json(t) for t in timelines(result.replayed)]
        rules.append(entry)
    return {
        "from": utc(span.start),
        "to": utc(span.end),
        "summary": summary(results),
        "actions": sum(t.acted for r in results if r.replayed for t in timelines(r.replayed)),
        "rules": rules,
    }


def _series_json(timeline: SeriesTimeline) -> dict[str, Any]:
    return {
        "labels": dict(timeline.labels),
        "changes": [
            {
                "at": utc(c.at),
                "time": c.at,
                "level": c.level,
                "from": c.old.value,
                "to": c.new.value,
                "value": _json_number(c.value),
            }
            for c in timeline.changes
        ],
        "calls": [_call_json(call) for call in timeline.calls],
    }


def _call_json(call: ReplayedCall) -> dict[str, Any]:
    fields = call.event.as_dict()
    fields["value"] = _json_number(call.event.value)
    return {"at": utc(call.at), "time": call.at, "ok": call.ok, **fields, "plugin": call.plugin}


def _json_number(value: float | None) -> float | str | None:
    """JSON has no NaN or infinities: those are given as Prometheus writes them."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
