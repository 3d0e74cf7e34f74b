"""A backtest as text for people and as JSON for scripts."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .._core import HistoryEntry, format_duration
from .._engine import ReplayedCall, format_series
from ._backtest import RuleBacktest, Window, utc
from ._timeline import SeriesTimeline, ran, storm_calls, suppressed, timelines


def summary(results: Sequence[RuleBacktest]) -> str:
    """``would have acted 14 times on 3 series; 6 stopped by the budget of plugin
    restart_pod`` (what the governor held back and what shadow mode recorded, if any; and
    what was skipped)."""
    acted = series = shadow = gave_up = asked = 0
    stopped: Counter[str] = Counter()
    unheld: set[str] = set()
    for result in results:
        if result.replayed is None:
            continue
        for timeline in timelines(result.replayed):
            acted += timeline.acted
            series += timeline.acted > 0
            shadow += sum(not ran(call) for call in timeline.calls)
            unheld.update(c.event.idempotency_key for c in timeline.calls if c.verified is False)
            gave_up += sum(call.event.kind == "gave_up" for call in timeline.calls)
            asked += timeline.asked
        acted += sum(call.plugin is not None for call in storm_calls(result.replayed))
        stopped.update(stopped_by(entry) for entry in suppressed(result.replayed))
    skipped = sum(result.replayed is None for result in results)
    line = f"would have acted {acted} time{'s' * (acted != 1)} on {series} series"
    if stopped:
        line += "; " + ", ".join(f"{n} stopped by {what}" for what, n in stopped.most_common())
    if shadow:
        line += f"; {shadow} in shadow mode, recorded and not made"
    if unheld:
        line += f"; {len(unheld)} fix{'es' * (len(unheld) != 1)} did not hold"
        line += f", given up {gave_up} time{'s' * (gave_up != 1)}" if gave_up else ""
    if asked:
        line += (
            f"; {asked} approval request{'s' * (asked != 1)} (a backtest approves none: "
            "their calls stay held)"
        )
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
        shown = [t for t in timelines(result.replayed) if t.changes or t.calls or t.held]
        lines.append(f"{head}: {result.replayed.evaluations} evaluations")
        for at, problem in result.replayed.problems[:3]:
            lines.append(f"  {utc(at)}  not evaluated: {problem}")
        for call in storm_calls(result.replayed):
            lines.append(f"  {utc(call.at)}  {_storm_text(call)}")
        if not shown:
            lines.append("  never breached")
        for timeline in shown:
            lines += _series_lines(rule.metric_name, timeline)
        lines.append("")
    lines.append(summary(results))
    return "\n".join(lines) + "\n"


def stopped_by(entry: HistoryEntry) -> str:
    """What held a call back, for the summary: ``the budget of plugin restart_pod``, ``the
    global budget``, ``a storm of rule disk``, ``the mute time interval night``..."""
    detail = entry.detail.split(";")[0]
    if entry.reason == "budget" and detail.startswith("budget of ") and ":" in detail:
        name = detail[len("budget of ") : detail.rindex(":")]
        return "the global budget" if name == "global" else f"the budget of {name}"
    if entry.reason == "breaker":
        return f"the breaker of plugin {entry.plugin}"
    if entry.reason == "storm":
        return f"a storm of rule {entry.rule}"
    if entry.reason == "muted":
        outside = "outside the active time intervals "
        if detail.startswith(outside):
            return f"the active time intervals {detail[len(outside) :]}"
        return f"the {detail}"
    if entry.reason == "inhibited" and entry.detail.endswith(")"):
        return f"the inhibit rule {entry.detail[:-1].rpartition(' (')[2]}"
    return {
        "silenced": "a silence",
        "paused": "the pause",
        "approval": "waiting for an approval",
    }.get(entry.reason, entry.reason)


def _storm_text(call: ReplayedCall) -> str:
    event = call.event
    what = f"storm: {event.value:g} series breached at once, more than {event.threshold}"
    if call.plugin is None:
        return f"{what}: no storm_plugin, only logged"
    failed = "" if call.ok else "  (fails, as the test scripted)"
    return f"{what}: {call.plugin}.execute(kind='storm', series={len(event.series)}){failed}"


def _held_text(entry: HistoryEntry) -> str:
    plugin = entry.plugin or "no plugin"
    return f"{entry.kind}: {plugin} not called: suppressed ({entry.reason}): {entry.detail}"


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
    for entry in timeline.held:
        moments.append((entry.at, 1, _held_text(entry)))
    out = [f"  {format_series(metric, timeline.labels)}"]
    out += [f"    {utc(at)}  {text}" for at, _, text in sorted(moments, key=lambda m: m[:2])]
    return out


def _call_text(call: ReplayedCall) -> str:
    event = call.event
    if event.kind in ("unverified", "gave_up"):
        told = event.annotations.get("verification", "")
        if call.plugin is None:
            return f"{event.kind}: no escalate_plugin, only logged: {told}"
        failed = "" if call.ok else "  (fails, as the test scripted)"
        return f"{event.kind}: {call.plugin}.execute(kind={event.kind!r}): {told}{failed}"
    method = "resolve" if event.kind == "resolve" else "execute"
    arguments = (
        f"metric_name={event.metric_name!r}, value={_number(event.value)}, "
        f"threshold={event.threshold!r}, duration={format_duration(event.duration.total_seconds())}"
    )
    failed = "" if call.ok else "  (fails, as the test scripted)"
    if not ran(call):
        failed = "  (shadow mode: recorded, not made)"
    if call.verified is not None:
        failed += "  (the fix held)" if call.verified else "  (the fix did not hold)"
    if event.kind == "approval_request":
        wants = event.annotations.get("approval_for", "the call")
        where = "only logged" if call.plugin is None else f"to {call.plugin}"
        return (
            f"approval_request {where}: asks to run the {wants} (a backtest approves "
            "nothing: it stays held)"
        )
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
        entry["storms"] = [_call_json(call) for call in storm_calls(result.replayed)]
        entry["series"] = [_series_json(t) for t in timelines(result.replayed)]
        rules.append(entry)
    replayed = [r.replayed for r in results if r.replayed is not None]
    return {
        "from": utc(span.start),
        "to": utc(span.end),
        "summary": summary(results),
        "actions": sum(t.acted for r in replayed for t in timelines(r))
        + sum(call.plugin is not None for r in replayed for call in storm_calls(r)),
        "suppressed": sum(len(suppressed(r)) for r in replayed),
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
        "suppressed": [_held_json(entry) for entry in timeline.held],
    }


def _call_json(call: ReplayedCall) -> dict[str, Any]:
    fields = call.event.as_dict()
    fields["value"] = _json_number(call.event.value)
    return {
        "at": utc(call.at),
        "time": call.at,
        "ok": call.ok,
        "outcome": call.outcome,
        **fields,
        "plugin": call.plugin,
        "verified": call.verified,
    }


def _held_json(entry: HistoryEntry) -> dict[str, Any]:
    """A call held back, as the action history has it (its series are the timeline's)."""
    fields = entry.as_dict()
    del fields["series"], fields["at_unix"]
    fields["value"] = _json_number(entry.value)
    return {"at": utc(entry.at), "time": entry.at, **{k: v for k, v in fields.items() if k != "at"}}


def _json_number(value: float | None) -> float | str | None:
    """JSON has no NaN or infinities: those are given as Prometheus writes them."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
