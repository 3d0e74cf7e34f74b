"""Timelines as SVG: a series' values, its threshold lines, its pending and firing spans and
the actions taken. Pure drawing, no I/O: the backtest report and the status page both call
``render_svg``.

The output is inline SVG for an HTML document (no ``xmlns``, no script, no external
reference), the same bytes for the same input, and bounded in size whatever the input:

- values are drawn at most two per pixel column (the lowest and the highest of the column,
  in time order), so a week at 15 s costs about as much as an hour;
- spans closer than a pixel merge, and at most one mark per kind is drawn in 4 pixel
  columns (2 on a sparkline; its tooltip says how many it stands for);
- NaN is no value (a gap in the line, like ``None``); +Inf and -Inf are drawn at the top and
  bottom edge of the plot and do not stretch the value axis (nor do values beyond
  ``±VALUE_LIMIT``, 1e300, drawn on the edge too);
- every text (labels are hostile input: label values, plugin names) is XML-escaped.

Times are seconds since the epoch; ticks and labels are in UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Literal

LineKind = Literal["threshold", "clear", "hard"]
SpanState = Literal["pending", "firing"]
MarkKind = Literal["fire", "repeat", "resolve", "failed", "suppressed"]

# Okabe and Ito's palette, which people with any common colour blindness tell apart.
VALUE_COLOUR = "#0072B2"  # blue
LINE_COLOURS: dict[LineKind, str] = {
    "threshold": "#D55E00",  # vermillion
    "clear": "#009E73",  # bluish green
    "hard": "#000000",
}
SPAN_COLOURS: dict[SpanState, str] = {"pending": "#E69F00", "firing": "#D55E00"}
SPAN_OPACITY = 0.28
MARK_COLOURS: dict[MarkKind, str] = {
    "fire": "#CC79A7",  # reddish purple: no other part of a chart uses it
    "repeat": "#CC79A7",
    "resolve": "#56B4E9",  # sky blue
    "failed": "#000000",
    "suppressed": "#8C959F",  # grey: a call the governor held back, not made
}
AXIS_COLOUR = "#59636e"
GRID_COLOUR = "#e6e9ec"
VALUE_LIMIT = 1e300
"""The value scale ends here: values beyond it are drawn on the edge of the plot."""


@dataclass(frozen=True, slots=True)
class Line:
    """A horizontal line across the chart: a threshold, a clear threshold, a hard one."""

    value: float
    label: str
    kind: LineKind = "threshold"


@dataclass(frozen=True, slots=True)
class Span:
    """A time the series was pending or firing (shaded)."""

    start: float
    end: float
    state: SpanState


@dataclass(frozen=True, slots=True)
class Mark:
    """An action at ``at``: a vertical line, labelled (with the plugin) on a detailed chart."""

    at: float
    label: str
    kind: MarkKind = "fire"


@dataclass(frozen=True, slots=True)
class Chart:
    """What one chart shows from ``start`` to ``end``.

    ``points``: ``(time, value)`` in time order; a value of ``None`` (or NaN) is no value,
    and the line breaks there."""

    start: float
    end: float
    points: Sequence[tuple[float, float | None]]
    lines: Sequence[Line] = ()
    spans: Sequence[Span] = ()
    marks: Sequence[Mark] = ()


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def state_spans(states: Sequence[tuple[float, str]], end: float) -> list[Span]:
    """The pending and firing spans of a series from its state at each evaluation (in time
    order): a state holds from its evaluation to the next one, the last until ``end``."""
    spans: list[Span] = []
    for k, (at, state) in enumerate(states):
        until = states[k + 1][0] if k + 1 < len(states) else end
        kind: SpanState
        if state == "pending":
            kind = "pending"
        elif state == "firing":
            kind = "firing"
        else:
            continue
        if spans and spans[-1].state == kind and spans[-1].end == at:
            spans[-1] = Span(spans[-1].start, until, kind)
        else:
            spans.append(Span(at, until, kind))
    return spans


def escape_text(text: str) -> str:
    """``text`` safe in XML text and attributes (quotes too); characters XML 1.0 cannot
    hold (NUL and most control characters) become U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _n(number: float) -> str:
    """A coordinate: one decimal, no trailing ``.0`` (deterministic, short)."""
    text = f"{number:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def utc_text(at: float, fmt: str) -> str:
    """``at`` (seconds since the epoch) in UTC as ``fmt`` says; ``?`` for a time no
    calendar holds (before year 1, after 9999)."""
    try:
        return datetime.fromtimestamp(at, UTC).strftime(fmt)
    except (OverflowError, ValueError, OSError):
        return "?"


_TICK_STEPS = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800, 1209600, 2592000,
)  # fmt: skip


def time_ticks(start: float, end: float, most: int) -> list[tuple[float, str]]:
    """At most ``most`` (about) round UTC times between ``start`` and ``end``, with labels:
    ``HH:MM:SS`` for steps under a minute, ``HH:MM`` under a day, else ``MM-DD``."""
    span = end - start
    if span <= 0 or most < 1:
        return []
    step = next((s for s in _TICK_STEPS if span / s <= most), None)
    if step is None:
        step = math.ceil(span / most / 86400) * 86400
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m-%d"
    first = math.ceil(start / step) * step
    count = int((end - first) // step) + 1
    return [(first + k * step, utc_text(first + k * step, fmt)) for k in range(max(0, count))]


def _nice_step(span: float, most: int) -> float:
    raw = span / max(1, most)
    if not (math.isfinite(raw) and raw > 1e-300):
        return math.nan
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def value_ticks(low: float, high: float, most: int) -> list[float]:
    """Round values between ``low`` and ``high``, about ``most`` of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return []
    step = _nice_step(high - low, most)
    if not math.isfinite(step) or step <= 0:
        return []
    first = math.ceil(low / step)
    last = math.floor(high / step)
    return [k * step for k in range(first, last + 1)][: most * 3]


def format_value(value: float) -> str:
    """A value as an axis or a table shows it: at most 6 significant digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    return f"{value:.6g}"


def _value_range(chart: Chart) -> tuple[float, float]:
    """The finite values and line values, padded a little; a flat series gets room.
    Beyond ``±VALUE_LIMIT`` the scale stops (a difference of two values must stay finite),
    and values out there are drawn on its edge."""
    finite = [v for _, v in chart.points if v is not None and math.isfinite(v)]
    finite += [line.value for line in chart.lines if math.isfinite(line.value)]
    if not finite:
        return 0.0, 1.0
    low = max(-VALUE_LIMIT, min(finite))
    high = min(VALUE_LIMIT, max(finite))
    largest = max(abs(low), abs(high))
    if high - low <= largest * 1e-9:  # flat, to within rounding
        room = largest * 0.1 if largest > 1e-200 else 1.0
        return low - room, high + room
    pad = (high - low) * 0.06
    return low - pad, high + pad


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where the plot is on the canvas, and how times and values map onto it."""

    left: float
    top: float
    width: float
    height: float
    start: float
    end: float
    low: float
    high: float

    def x(self, at: float) -> float:
        return self.left + (at - self.start) / (self.end - self.start) * self.width

    def y(self, value: float) -> float:
        if value == math.inf:
            return self.top
        if value == -math.inf:
            return self.top + self.height
        share = (value - self.low) / (self.high - self.low)
        return self.top + (1.0 - min(1.0, max(0.0, share))) * self.height

    def column(self, at: float) -> int:
        whole = int(self.width)
        return min(whole - 1, max(0, int((at - self.start) / (self.end - self.start) * whole)))


def _downsample(
    points: Iterable[tuple[float, float | None]], frame: _Frame
) -> list[list[tuple[float, float]]]:
    """The runs of values to draw: at most two points per pixel column (its lowest and
    highest, in time order). A gap (None or NaN) ends a run only when the next value falls
    in a later column, so runs never share a column and the output stays within two points
    a column whatever the input."""
    runs: list[list[tuple[float, float]]] = []
    run: list[tuple[float, float]] = []
    column = -1
    gap = False
    lowest: tuple[float, float] = (0.0, 0.0)
    highest: tuple[float, float] = (0.0, 0.0)

    def flush() -> None:
        if column < 0:
            return
        run.extend(sorted({lowest, highest}))

    for at, value in points:
        if not frame.start <= at <= frame.end:
            continue
        if value is None or math.isnan(value):
            gap = True
            continue
        here = frame.column(at)
        if here == column:
            if value < lowest[1]:
                lowest = (at, value)
            if value > highest[1]:
                highest = (at, value)
            gap = False
            continue
        flush()
        if gap and run:
            runs.append(run)
            run = []
        gap = False
        column = here
        lowest = highest = (at, value)
    flush()
    if run:
        runs.append(run)
    return runs


def _span_rects(spans: Iterable[Span], frame: _Frame) -> list[tuple[SpanState, float, float]]:
    """Spans as ``(state, x0, x1)`` in whole pixels, clipped, touching ones of a state merged."""
    out: list[tuple[SpanState, float, float]] = []
    left, right = frame.left, frame.left + frame.width
    for state in ("pending", "firing"):
        pieces = sorted(
            (max(left, round(frame.x(s.start))), min(right, round(frame.x(s.end))))
            for s in spans
            if s.state == state and s.end >= s.start
        )
        merged: list[list[float]] = []
        for x0, x1 in pieces:
            if x1 < x0:
                continue
            x1 = max(x1, x0 + 1)  # a span shorter than a pixel still shows
            if merged and x0 <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], x1)
            else:
                merged.append([x0, x1])
        out += [(state, x0, x1) for x0, x1 in merged]
    return out


def _marks(marks: Iterable[Mark], frame: _Frame, spacing: int) -> list[tuple[Mark, int, float]]:
    """Marks inside the chart, one per ``spacing`` pixel columns and kind (closer ones could
    not be told apart): ``(first mark, count, x)``."""
    chosen: dict[tuple[int, str], tuple[Mark, int]] = {}
    for mark in sorted(marks, key=lambda m: (m.at, m.kind, m.label)):
        if not frame.start <= mark.at <= frame.end:
            continue
        key = (frame.column(mark.at) // spacing, mark.kind)
        first, count = chosen.get(key, (mark, 0))
        chosen[key] = (first, count + 1)
    # Whole pixels: a mark's line covers the same columns in every renderer.
    out = [(mark, count, float(round(frame.x(mark.at)))) for mark, count in chosen.values()]
    return sorted(out, key=lambda item: (item[2], item[0].kind))


def _tip(text: str, detailed: bool) -> str:
    """A tooltip; none on a sparkline, which has no text at all (a page's text and title
    stay its own)."""
    return f"<title>{escape_text(text)}</title>" if detailed else ""


def _path(runs: list[list[tuple[float, float]]], frame: _Frame, stroke: float) -> str:
    parts = []
    dots = []
    for run in runs:
        coords = [(frame.x(at), frame.y(value)) for at, value in run]
        if len(coords) == 1:
            x, y = coords[0]
            dots.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(stroke + 0.5)}"/>')
            continue
        parts.append("M" + "L".join(f"{_n(x)} {_n(y)}" for x, y in coords))
    out = ""
    if parts:
        out += (
            f'<path class="values" d="{"".join(parts)}" fill="none" stroke="{VALUE_COLOUR}" '
            f'stroke-width="{_n(stroke)}" stroke-linejoin="round"/>'
        )
    if dots:
        out += f'<g class="values" fill="{VALUE_COLOUR}">{"".join(dots)}</g>'
    return out


def render_svg(chart: Chart, width: int, height: int, *, detailed: bool) -> str:
    """``chart`` as an ``<svg>`` element ``width`` x ``height`` pixels.

    ``detailed`` (the report): axes with UTC time ticks and value ticks, the lines and the
    marks labelled, ``<title>`` tooltips. Otherwise a sparkline: the same drawing, tiny,
    without axes, labels or tooltips: no text at all."""
    width, height = max(16, int(width)), max(8, int(height))
    start, end = chart.start, chart.end
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        end = (start if math.isfinite(start) else 0.0) + 1.0
        start = end - 1.0
    if not end > start:  # so far from 1970 that a second is lost in rounding: no real time
        start, end = 0.0, 1.0
    low, high = _value_range(chart)
    if detailed:
        left, top, right, bottom = 64.0, 22.0, 12.0, 34.0
    else:
        left, top, right, bottom = 1.0, 2.0, 1.0, 2.0
    frame = _Frame(
        left, top, max(4.0, width - left - right), max(4.0, height - top - bottom),
        start, end, low, high,
    )  # fmt: skip
    out = [
        f'<svg class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif">'
    ]
    plot_bottom = frame.top + frame.height
    if detailed:
        out += _axes(frame)
    for state, x0, x1 in _span_rects(chart.spans, frame):
        out.append(
            f'<rect class="span {state}" x="{_n(x0)}" y="{_n(frame.top)}" '
            f'width="{_n(x1 - x0)}" height="{_n(frame.height)}" fill="{SPAN_COLOURS[state]}" '
            f'fill-opacity="{SPAN_OPACITY}"/>'
        )
    for line in chart.lines:
        if not math.isfinite(line.value):
            continue
        y = _n(frame.y(line.value))
        colour = LINE_COLOURS.get(line.kind, LINE_COLOURS["threshold"])
        dash = "6 4" if line.kind != "clear" else "2 3"
        out.append(
            f'<line class="line {escape_text(line.kind)}" x1="{_n(frame.left)}" y1="{y}" '
            f'x2="{_n(frame.left + frame.width)}" y2="{y}" stroke="{colour}" '
            f'stroke-width="{1.5 if detailed else 1}" stroke-dasharray="{dash}">'
            f"{_tip(line.label, detailed)}</line>"
        )
        if detailed:
            out.append(
                f'<text x="{_n(frame.left + frame.width - 4)}" y="{_n(frame.y(line.value) - 4)}" '
                f'text-anchor="end" font-size="11" fill="{colour}">'
                f"{escape_text(line.label)}</text>"
            )
    out.append(_path(_downsample(chart.points, frame), frame, 1.5 if detailed else 1.2))
    if detailed and not any(v is not None and not math.isnan(v) for _, v in chart.points):
        out.append(
            f'<text x="{_n(frame.left + frame.width / 2)}" y="{_n(frame.top + frame.height / 2)}" '
            f'text-anchor="middle" font-size="13" fill="{AXIS_COLOUR}">no values</text>'
        )
    last_label = -math.inf
    for mark, count, x in _marks(chart.marks, frame, 4 if detailed else 2):
        colour = MARK_COLOURS.get(mark.kind, MARK_COLOURS["fire"])
        tip = mark.label if count == 1 else f"{mark.label} (and {count - 1} more here)"
        out.append(
            f'<g class="mark {escape_text(mark.kind)}">{_tip(tip, detailed)}'
            f'<line x1="{_n(x)}" y1="{_n(frame.top)}" x2="{_n(x)}" y2="{_n(plot_bottom)}" '
            f'stroke="{colour}" stroke-width="{2 if detailed else 1}"/>'
        )
        if detailed:
            out.append(
                f'<path d="M{_n(x - 5)} {_n(frame.top - 8)}L{_n(x + 5)} {_n(frame.top - 8)}'
                f'L{_n(x)} {_n(frame.top)}Z" fill="{colour}"/>'
            )
            if x - last_label >= 90:  # room for a label: else the tooltip says it
                out.append(
                    f'<text x="{_n(x + 7)}" y="{_n(frame.top - 10)}" font-size="11" '
                    f'fill="#1f2328">{escape_text(mark.label)}</text>'
                )
                last_label = x
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _axes(frame: _Frame) -> list[str]:
    """Grid, tick labels (values left, UTC times below) and the plot's frame."""
    out = []
    right = frame.left + frame.width
    bottom = frame.top + frame.height
    for value in value_ticks(frame.low, frame.high, max(2, int(frame.height // 40))):
        y = _n(frame.y(value))
        out.append(
            f'<line x1="{_n(frame.left)}" y1="{y}" x2="{_n(right)}" y2="{y}" '
            f'stroke="{GRID_COLOUR}"/><text x="{_n(frame.left - 6)}" y="{y}" '
            f'text-anchor="end" dominant-baseline="middle" font-size="11" '
            f'fill="{AXIS_COLOUR}">{escape_text(format_value(value))}</text>'
        )
    for at, label in time_ticks(frame.start, frame.end, max(2, int(frame.width // 90))):
        x = _n(frame.x(at))
        # A label at the right end would be cut off by the edge of the drawing.
        anchor = "end" if frame.x(at) > right - 20 else "middle"
        out.append(
            f'<line x1="{x}" y1="{_n(bottom)}" x2="{x}" y2="{_n(bottom + 4)}" '
            f'stroke="{AXIS_COLOUR}"/><text x="{x}" y="{_n(bottom + 16)}" '
            f'text-anchor="{anchor}" font-size="11" fill="{AXIS_COLOUR}">'
            f"{escape_text(label)}</text>"
        )
    day = utc_text(frame.start, "%Y-%m-%d %H:%M:%S UTC")
    out.append(
        f'<text x="{_n(frame.left)}" y="{_n(bottom + 30)}" font-size="10" '
        f'fill="{AXIS_COLOUR}">from {day}</text>'
        # Half a pixel outside the plot: the frame's 1 px lines fall on whole pixels.
        f'<rect x="{_n(frame.left - 0.5)}" y="{_n(frame.top - 0.5)}" '
        f'width="{_n(frame.width + 1)}" height="{_n(frame.height + 1)}" fill="none" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    return out
