"""The backtest report (``--html FILE``): one self-contained HTML5 document.

Per rule a heading, what it reads and its thresholds; per series a timeline (values,
threshold lines, pending and firing spans, a mark per plugin call, a grey one per call the
governor held back: ``_core/_chart.py``) and a table of the calls; a rule's storm calls
in a table of their own. Inline CSS and inline SVG only: no script, no font, image or style
sheet by URL, so the file opens the same anywhere, offline, and runs nothing.

Bounded: at most ``SERIES_PER_RULE`` charts of a rule and ``CALLS_PER_SERIES`` rows of
calls a series; the report says how many it left out. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._core import Chart, Mark, MarkKind, escape_text, format_value, render_svg, utc_text

SERIES_PER_RULE = 200
CALLS_PER_SERIES = 100
CHART_WIDTH = 960
CHART_HEIGHT = 240

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: #1f2328; background: #fff; }
header { padding: 14px 24px; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 20px; font-weight: 600; }
header p { margin: 4px 0 0; color: #d0d7de; white-space: pre-wrap; }
main { padding: 0 24px 32px; }
h2 { font-size: 18px; margin: 26px 0 2px; }
h3 { font-size: 14px; font-weight: 600; margin: 18px 0 4px; overflow-wrap: anywhere; }
.about { color: #59636e; margin: 2px 0 8px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; background: #f6f8fa; padding: 1px 5px; border-radius: 4px;
  overflow-wrap: anywhere; }
svg.chart { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 6px 0 4px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #d8dee4;
  font-variant-numeric: tabular-nums; vertical-align: top; }
th { font-size: 12px; color: #59636e; font-weight: 600; }
.legend { color: #59636e; font-size: 12px; margin: 4px 0 0; }
.legend i { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 10px;
  vertical-align: -1px; }
.muted, .more { color: #59636e; font-style: italic; }
.failed { color: #c5221f; font-weight: 600; }
.suppressed { color: #59636e; font-weight: 600; }
"""

_LEGEND = (
    '<p class="legend"><i style="background:#0072B2;height:3px"></i>value'
    '<i style="border-top:2px dashed #D55E00;height:0"></i>threshold'
    '<i style="border-top:2px dotted #009E73;height:0"></i>clear threshold'
    '<i style="background:rgba(230,159,0,.35)"></i>pending'
    '<i style="background:rgba(213,94,0,.35)"></i>firing'
    '<i style="background:#CC79A7;width:3px"></i>fire, repeat'
    '<i style="background:#56B4E9;width:3px"></i>resolve'
    '<i style="background:#000;width:3px"></i>failed call'
    '<i style="background:#8C959F;width:3px"></i>suppressed call (the governor held it back)</p>'
)


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One plugin call of the replay: when (seconds since the epoch), which, to whom."""

    at: float
    kind: str
    """``fire``, ``repeat``, ``resolve`` or ``storm``."""
    plugin: str
    value: float
    summary: str = ""
    ok: bool = True
    outcome: str = "executed"
    """``executed`` or ``failed`` (by ``ok``), ``shadow`` (recorded, not made) or
    ``suppressed`` (held back by the governor: ``summary`` says why)."""
    reason: str = ""
    """For ``suppressed``: budget, breaker, storm, muted, silenced or paused."""


@dataclass(frozen=True, slots=True)
class ReportSeries:
    labels: Mapping[str, str]
    chart: Chart
    """Drawn as given; without marks of its own, a mark is drawn for each of ``calls``."""
    calls: Sequence[ReportCall] = ()


@dataclass(frozen=True, slots=True)
class ReportRule:
    name: str
    expression: str
    """The rule's query or selector, as written."""
    threshold: str
    series: Sequence[ReportSeries] = ()
    storms: Sequence[ReportCall] = ()
    """The rule's storm calls (more of its series breached than ``max_breaching``)."""


def call_marks(calls: Sequence[ReportCall]) -> tuple[Mark, ...]:
    """A mark per call, labelled with its kind and plugin; a failed call is a ``failed`` mark,
    a suppressed one a ``suppressed`` mark."""
    marks = []
    for call in calls:
        kind: MarkKind = "failed"
        if call.outcome == "suppressed":
            marks.append(Mark(call.at, f"{call.kind} {call.plugin} (suppressed)", "suppressed"))
            continue
        if call.ok:
            kind = (
                "repeat"
                if call.kind == "repeat"
                else "resolve"
                if call.kind == "resolve"
                else "fire"
            )
        label = f"{call.kind} {call.plugin}" + ("" if call.ok else " (failed)")
        marks.append(Mark(call.at, label, kind))
    return tuple(marks)


def _utc(at: float) -> str:
    return utc_text(at, "%Y-%m-%d %H:%M:%S")


def _labels(labels: Mapping[str, str]) -> str:
    """``{a="x", b="y"}``, as Prometheus writes a series (quotes and backslashes escaped)."""
    if not labels:
        return "{}"
    inner = ", ".join(
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in sorted(labels.items())
    )
    return "{" + inner + "}"


def _calls_table(calls: Sequence[ReportCall]) -> str:
    if not calls:
        return '<p class="muted">no plugin calls</p>'
    rows = []
    for call in calls[:CALLS_PER_SERIES]:
        kind = escape_text(call.kind)
        if call.outcome == "suppressed":
            kind += f' <span class="suppressed">suppressed ({escape_text(call.reason)})</span>'
        elif call.outcome == "shadow":
            kind += ' <span class="suppressed">shadow: not made</span>'
        elif not call.ok:
            kind += ' <span class="failed">failed</span>'
        rows.append(
            f"<tr><td>{_utc(call.at)}</td><td>{kind}</td><td>{escape_text(call.plugin)}</td>"
            f"<td>{escape_text(format_value(call.value))}</td>"
            f"<td>{escape_text(call.summary)}</td></tr>"
        )
    more = len(calls) - CALLS_PER_SERIES
    if more > 0:
        rows.append(f'<tr><td colspan="5" class="more">and {more:,} more calls</td></tr>')
    return (
        "<table><thead><tr><th>time (UTC)</th><th>kind</th><th>plugin</th><th>value</th>"
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _series(series: ReportSeries) -> str:
    chart = series.chart
    if not chart.marks and series.calls:
        chart = Chart(
            chart.start, chart.end, chart.points, chart.lines, chart.spans,
            call_marks(series.calls),
        )  # fmt: skip
    svg = render_svg(chart, CHART_WIDTH, CHART_HEIGHT, detailed=True)
    return (
        f"<section><h3><code>{escape_text(_labels(series.labels))}</code></h3>{svg}"
        f"{_calls_table(series.calls)}</section>"
    )


def _rule(rule: ReportRule) -> str:
    drawn = rule.series[:SERIES_PER_RULE]
    parts = [
        f"<h2>{escape_text(rule.name)}</h2>"
        f'<p class="about">reads <code>{escape_text(rule.expression)}</code> &middot; threshold '
        f"<code>{escape_text(rule.threshold)}</code> &middot; {len(rule.series):,} series</p>"
    ]
    if rule.storms:
        parts.append(f'<p class="about">storms</p>{_calls_table(rule.storms)}')
    if not drawn:
        parts.append('<p class="muted">no series</p>')
    parts += [_series(series) for series in drawn]
    left_out = len(rule.series) - len(drawn)
    if left_out > 0:
        parts.append(
            f'<p class="more">and {left_out:,} more series, not drawn (at most '
            f"{SERIES_PER_RULE} a rule)</p>"
        )
    return "<section>" + "".join(parts) + "</section>"


def render_report(title: str, subtitle: str, sections: Sequence[ReportRule]) -> str:
    """The whole report: ``title``, the caller's summary (``subtitle``), then every rule."""
    body = "".join(_rule(rule) for rule in sections) or '<p class="muted">no rules</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape_text(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape_text(title)}</h1><p>{escape_text(subtitle)}</p></header>"
        f"<main>{_LEGEND}{body}</main></body></html>\n"
    )
