"""The status page at ``/``: what every rule sees, for a person to glance at.

One self-contained HTML document built from the ``/api/status`` document: inline CSS, no
script, no external asset, a ``<meta>`` refresh every 5 seconds. Every piece of text from
the status (rule names, label names and values, errors, ...) goes through ``html.escape``:
label values come from the watched application and may contain anything.

The rules with a firing series come first, then those with a pending one, then those whose
last read failed or with no data, then the rest (the document lists them in that order);
the alerts of rule files that are *inactive* and hold no series (their expression returns
nothing: their healthy state) are listed last, one table row each, in file order. A line at
the top names the firing, pending and failing rules and links to each. Every cell wraps
what it holds (a long PromQL expression included, which is shown once per rule), so no text
runs into the next column.

The page lists each rule's most severe series, at most ``PAGE_SERIES_PER_RULE`` of a rule
and ``PAGE_SERIES`` in all; ``?rule=NAME`` shows one rule, ``&offset=N&limit=N`` pages
through it (the counts by state are always complete).

A series row has a sparkline (inline SVG, ``_core/_chart.py``) of its recent values, with the
threshold lines and its pending and firing stretches, where the engine keeps them: about the
last 10 minutes (at most 120 evaluations, at least 2) of at most ``RECENT_SERIES_PER_RULE``
series a rule (``_engine/_recent.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from .._core import Chart, Line, render_svg, state_spans
from ._selection import Selection
from ._status_doc import (
    GroupDoc,
    JsonNumber,
    LevelDoc,
    LevelSettingsDoc,
    RuleDoc,
    SeriesDoc,
    SparklineDoc,
    StatusDocument,
    TargetDoc,
)

REFRESH_SECONDS = 5
PAGE_SERIES = 1000
"""Series rows on the page at most (``limit`` may ask for up to ``_selection.MAX_SERIES``)."""
PAGE_SERIES_PER_RULE = 100
"""Series rows of one rule on the page of every rule (the most severe first)."""

_SEVERITY = {"firing": 0, "pending": 1, "ok": 2}
_COLUMNS = (
    '<colgroup><col style="width:28%"><col style="width:10%"><col style="width:9%">'
    '<col style="width:138px"><col style="width:10%"><col style="width:16%">'
    '<col style="width:6%"><col style="width:9%"></colgroup>'
)
_INACTIVE_COLUMNS = (
    '<colgroup><col style="width:22%"><col><col style="width:8%"><col style="width:12%">'
    '<col style="width:13%"></colgroup>'
)
NAMED_AT_TOP = 20
"""Firing (and pending) rules named in the line at the top of the page, at most."""
SPARK_WIDTH = 120
SPARK_HEIGHT = 24

_CSS = """
:root { color-scheme: light; --ok: #1a7f37; --ok-bg: #dafbe1; --pending: #8a5a00;
  --pending-bg: #fff1b8; --firing: #c5221f; --firing-bg: #ffe3e0; --muted: #59636e;
  --line: #d8dee4; --head: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color: #1f2328; background: #fff; }
header { padding: 14px 24px 12px; background: #24292f; color: #fff; display: flex;
  flex-wrap: wrap; align-items: baseline; gap: 6px 18px; }
header h1 { margin: 0; font-size: 20px; font-weight: 600; }
header h1 small { font-weight: 400; color: #b6bec8; font-size: 13px; margin-left: 4px; }
header .facts { color: #d0d7de; }
header .facts b { color: #fff; }
header a { color: #9ecbff; }
main { padding: 8px 24px 32px; max-width: 1400px; }
h2 { font-size: 17px; margin: 22px 0 2px; display: flex; align-items: center; gap: 10px;
  flex-wrap: wrap; }
.about { color: var(--muted); margin: 2px 0 8px; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo,
  Consolas, monospace; font-size: 12.5px; }
.about code { color: #1f2328; background: var(--head); padding: 1px 5px; border-radius: 4px;
  overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 6px; }
table.series { table-layout: fixed; }
table.series td { overflow-wrap: anywhere; }
table.series td.num { white-space: normal; }
h2 { overflow-wrap: anywhere; }
pre.expr { margin: 4px 0 8px; padding: 6px 10px; background: var(--head); border-radius: 4px;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16em; overflow: auto;
  color: #1f2328; }
td code.expr { white-space: pre-wrap; overflow-wrap: anywhere; }
nav.jump { margin: 12px 0 0; padding: 8px 14px; border: 1px solid var(--line);
  border-radius: 4px; background: var(--head); }
.state.inactive { color: var(--muted); background: var(--head); border: 1px solid var(--line); }
.state.failing { color: var(--firing); background: #fff; border: 1px solid var(--firing); }
.errornote { margin: 4px 0 6px; padding: 6px 12px; border-left: 4px solid var(--firing);
  background: #fff6f5; overflow-wrap: anywhere; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--head); font-weight: 600; font-size: 12px; color: var(--muted);
  text-transform: uppercase; letter-spacing: .03em; white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.firing td { background: #fff6f5; }
tr.firing td:first-child { box-shadow: inset 4px 0 var(--firing); }
tr.pending td:first-child { box-shadow: inset 4px 0 #d4a72c; }
.state { display: inline-block; white-space: nowrap; min-width: 64px; text-align: center;
  padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700;
  text-transform: uppercase;
  letter-spacing: .04em; }
.state.ok { color: var(--ok); background: var(--ok-bg); }
.state.pending { color: var(--pending); background: var(--pending-bg); }
.state.firing { color: #fff; background: var(--firing); }
.state.none { color: var(--muted); background: var(--head); }
.state.nodata { color: #fff; background: #6e7781; }
tr.nodata td:first-child { box-shadow: inset 4px 0 #6e7781; }
.nodatanote { margin: 4px 0 6px; padding: 6px 12px; border-left: 4px solid #6e7781;
  background: var(--head); }
.state.ready { color: #fff; background: #1f883d; }
.state.notready { color: #fff; background: var(--firing); }
.level { display: block; margin-top: 2px; font-size: 11.5px; color: var(--muted); }
.hard { display: block; margin-top: 4px; }
.running { color: #0969da; font-weight: 600; }
td.right, th.right { text-align: right; }
.label { display: inline-block; margin: 1px 4px 1px 0; padding: 0 6px; border: 1px solid
  var(--line); border-radius: 4px; background: #fff; overflow-wrap: anywhere; }
.label .k { color: #0550ae; }
.label .v { color: #0a3069; }
.nolabels { color: var(--muted); font-style: italic; }
.muted { color: var(--muted); }
.good { color: var(--ok); font-weight: 600; }
.bad { color: var(--firing); font-weight: 600; }
.error { color: var(--firing); overflow-wrap: anywhere; }
.count { font-size: 13px; font-weight: 400; color: var(--muted); }
.more { color: var(--muted); font-style: italic; padding: 4px 10px; }
.problems { margin: 16px 0 0; padding: 8px 14px; border: 1px solid #ffb3ad;
  border-left: 4px solid var(--firing); border-radius: 4px; background: #fff6f5; }
.problems ul { margin: 4px 0 0; padding-left: 18px; }
footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; }
td.spark { padding: 3px 6px; }
td.spark svg { display: block; background: #fff; border: 1px solid var(--line);
  border-radius: 3px; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _span(seconds: float) -> str:
    """A coarse, readable duration: ``45s``, ``3m05s``, ``2h10m``, ``4d3h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


class _Clock:
    def __init__(self, now: str | None) -> None:
        self.now = _parse(now)

    def at(self, stamp: str | None, *, ago: bool = True) -> str:
        """``08:31:10`` (the date too when not today), with the full time as a tooltip."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">never</span>'
        same_day = self.now is not None and when.date() == self.now.date()
        text = when.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        if ago and self.now is not None:
            text += f" ({_span((self.now - when).total_seconds())} ago)"
        return f'<span title="{_e(stamp)}">{_e(text)}</span>'

    def ago(self, stamp: str | None) -> str:
        """``17s ago``, with the full time as a tooltip."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">never</span>'
        if self.now is None:
            return self.at(stamp)
        lasted = _span((self.now - when).total_seconds())
        return f'<span title="{_e(stamp)}">{_e(lasted)} ago</span>'

    def since(self, stamp: str | None, *, short: bool = False) -> str:
        """How long a state has lasted, and since when."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">&mdash;</span>'
        lasted = _span((self.now - when).total_seconds()) if self.now is not None else "?"
        if short:
            return f'<span title="{_e(stamp)}">for {_e(lasted)}</span>'
        return (
            f'<span title="{_e(stamp)}">for <b>{_e(lasted)}</b>'
            f'<span class="level">since {_e(when.strftime("%H:%M:%S"))}</span></span>'
        )


def _number_cell(value: JsonNumber) -> str:
    """A series value as the page shows it: thousands separated, or 6 significant digits;
    the text ``/api/status`` gives for NaN and the infinities as it is."""
    if value is None:
        return '<span class="muted">&mdash;</span>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number == int(number) and abs(number) < 1e15:
            return _e(f"{int(number):,}")
        return _e(f"{number:.6g}")
    return _e(value)


def _label_value(value: str) -> str:
    """As Prometheus writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return '<span class="nolabels">no labels</span>'
    return "".join(
        f'<span class="label mono"><span class="k">{_e(name)}</span>='
        f'<span class="v">"{_e(_label_value(str(value)))}"</span></span>'
        for name, value in sorted(labels.items())
    )


def _state(level: LevelDoc | None, prefix: str = "") -> str:
    state = level["state"] if level else "none"
    css = state if state in _SEVERITY else "none"
    return f'<span class="state {css}">{_e(prefix + state)}</span>'


def _rank(level: LevelDoc | None) -> int:
    return _SEVERITY.get(level["state"], 3) if level else 3


def _worst(series: SeriesDoc) -> int:
    """0 firing, 1 pending, 2 ok (3 unknown): the worse of the series' levels."""
    return min(_rank(series["base"]), _rank(series["hard"]))


def _no_data(rule: RuleDoc) -> bool:
    """Whether the rule's successful reads return no series now."""
    no_data = rule["no_data"]
    return no_data is not None and no_data["active"]


def _is_alert(rule: RuleDoc) -> bool:
    """An alert of a rule file: its expression is its condition (it has no threshold)."""
    return rule["alert"] is not None


def _inactive_alert(rule: RuleDoc) -> bool:
    """An alert of a rule file whose expression returns nothing and that holds no series:
    a row of the table of inactive alerts, not a section of its own (unless its last read
    failed: that is not the healthy state)."""
    return (
        _is_alert(rule)
        and rule["state"] == "inactive"
        and not rule["series_count"]
        and rule["last_error"] is None
    )


def _level_text(name: str, level: LevelSettingsDoc | None, alert: bool = False) -> str:
    """``base: >80 for 5s again every 10s -> log_action``; an alert's without its name and
    threshold (its expression, shown once above)."""
    if level is None:
        return ""
    parts = [] if alert else [f"<code>{_e(level['threshold'])}</code>"]
    if level["duration"] != "0s":
        parts.append(f"for {_e(level['duration'])}")
    if level["backoff"] != "0s":
        parts.append(f"again every {_e(level['backoff'])}")
    plugin = level["plugin"]
    parts.append(f"&rarr; <b>{_e(plugin)}</b>" if plugin else "&rarr; log only")
    return " ".join(parts) if alert else f"{_e(name)}: {' '.join(parts)}"


def _evaluated(clock: _Clock, rule: RuleDoc) -> str:
    """``evaluated 3s ago in 1.23ms``, as Prometheus' rules page says it."""
    last = rule["last_evaluation"]
    if last is None:
        return '<span class="muted">not evaluated yet</span>'
    took = rule["evaluation_duration"]
    return f"evaluated {clock.ago(last)}" + (f" in {_e(took)}" if took else "")


def _last_action(clock: _Clock, level: LevelDoc | None) -> str:
    if level is None:
        return ""
    out = []
    last = level["last_action"]
    if last:
        css = "good" if last["result"] == "success" else "bad"
        out.append(
            f'{_e(last["kind"])} <span class="{css}">{_e(last["result"])}</span>'
            f' <span class="muted">{clock.ago(last["at"])}</span>'
        )
    if level["in_flight"]:
        out.append(f'<span class="running">{_e(level["in_flight"])} running</span>')
    return "<br>".join(out) if out else '<span class="muted">&mdash;</span>'


def _number(value: JsonNumber) -> float | None:
    """A value of ``recent`` back as a float; None (no value) for NaN and what is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if math.isnan(value) else float(value)
    return {"+Inf": math.inf, "-Inf": -math.inf}.get(str(value))


def _sparkline(clock: _Clock, spark: SparklineDoc | None, series: SeriesDoc) -> str:
    """The series' recent values, threshold lines and pending and firing stretches."""
    recent = series.get("recent")
    if not spark or recent is None or clock.now is None:
        kept = spark["series_kept"] if spark else 0
        why = f"recent values are kept for {kept} series of a rule" if kept else "no values kept"
        return f'<span class="muted" title="{_e(why)}">&mdash;</span>'
    end = clock.now.timestamp()
    chart = Chart(
        end - spark["seconds"],
        end,
        [(at, _number(value)) for at, value, _ in recent],
        [Line(line["value"], line["label"], line["kind"]) for line in spark["lines"]],
        state_spans([(at, state) for at, _, state in recent], end),
    )
    return render_svg(chart, SPARK_WIDTH, SPARK_HEIGHT, detailed=False)


def _page_link(rule: str, offset: int, limit: int) -> str:
    return "?" + _e(urlencode({"rule": rule, "offset": offset, "limit": limit}))


def _series_rows(clock: _Clock, rule: RuleDoc, limit: int) -> Iterable[str]:
    series = rule["series"]
    no_data = _no_data(rule)
    spark = rule.get("sparkline")
    for one in series:
        base, hard = one["base"], one["hard"]
        css = {0: "firing", 1: "pending"}.get(_worst(one), "ok")
        state = _state(base)
        if one.get("placeholder") and css == "ok":  # a rule that never saw a series
            css = "nodata" if no_data else "none"
            state = f'<span class="state {css}">{"no data" if no_data else "no series"}</span>'
        since = clock.since(base["since"])
        action = _last_action(clock, base)
        fires = _e(base["fire_count"])
        if hard and hard["state"] != "ok":
            state += f'<span class="hard">{_state(hard, "hard ")}</span>'
            since += f'<span class="level">hard {clock.since(hard["since"], short=True)}</span>'
            fires += f'<span class="level">hard {_e(hard["fire_count"])}</span>'
        if hard and (hard["last_action"] or hard["in_flight"]):
            action += f'<span class="level">hard: {_last_action(clock, hard)}</span>'
        yield (
            f'<tr class="{css}"><td>{_labels(one["labels"])}</td>'
            f"<td>{state}</td>"
            f'<td class="num mono right">{_number_cell(one["value"])}</td>'
            f'<td class="spark">{_sparkline(clock, spark, one)}</td>'
            f'<td class="num">{since}</td>'
            f"<td>{action}</td>"
            f'<td class="num right">{fires}</td>'
            f'<td class="num">{clock.ago(one["last_seen"])}</td></tr>'
        )
    page = rule.get("page")
    offset = page["offset"] if page else 0
    hidden = rule["series_count"] - offset - len(series)
    name = rule["name"]
    if hidden > 0:
        more = _page_link(name, offset + len(series), limit)
        yield (
            f'<tr><td colspan="8" class="more">and {hidden:,} more series (the least severe): '
            f'<a href="{more}">the next {min(hidden, limit):,}</a> &middot; '
            f'<a href="api/status?{_e(urlencode({"rule": name}))}">as JSON</a></td></tr>'
        )
    if offset:
        back = _page_link(name, max(0, offset - limit), limit)
        yield (
            f'<tr><td colspan="8" class="more">{offset:,} more severe series before these: '
            f'<a href="{back}">the previous page</a></td></tr>'
        )


def _no_data_note(clock: _Clock, rule: RuleDoc) -> str:
    """What "no data" means for this rule, and what to check."""
    no_data = rule["no_data"]
    if no_data is None or not no_data["active"]:
        return ""
    polls = no_data["empty_polls"]
    return (
        f'<p class="nodatanote"><span class="state nodata">no data</span> the last '
        f"{polls:,} successful read{'s' if polls != 1 else ''} returned no series "
        f"(since {clock.at(no_data['since'])}): check the metric name, label filters "
        "or query, and that the application exports it</p>"
    )


def _badges(rule: RuleDoc) -> str:
    counts = rule["states"]
    badges = "".join(
        f'<span class="state {state}">{counts[state]:,} {state}</span> '
        for state in ("firing", "pending")
        if counts[state]
    )
    if rule["last_error"] is not None:
        badges += '<span class="state failing">read failed</span> '
    if _no_data(rule):
        badges += '<span class="state nodata">no data</span> '
    elif _is_alert(rule) and rule["state"] == "inactive":
        badges += '<span class="state inactive">inactive</span> '
    return badges


def _error_note(rule: RuleDoc) -> str:
    """Why the rule's last read or evaluation failed: its state stays as it was."""
    error = rule["last_error"]
    if error is None:
        return ""
    return (
        '<p class="errornote"><span class="state failing">read failed</span> '
        f'<span class="error">{_e(error)}</span></p>'
    )


def _alert_about(clock: _Clock, rule: RuleDoc, kept: str) -> str:
    """Where an alert comes from, how it is run, and its expression (once); ``kept``: what
    the sparklines draw, when not every series."""
    alert = rule["alert"]
    assert alert is not None
    facts = [
        f"group <b>{_e(alert['group'])}</b> of <code>{_e(alert['file'])}:{alert['line']}</code>",
        f"on <code>{_e(rule['target'])}</code> every {_e(rule['polling_interval'])}",
        _level_text("base", rule["levels"]["base"], alert=True),
        _evaluated(clock, rule),
    ]
    if kept:
        facts.append(kept)
    return (
        f'<p class="about">{" &nbsp;&middot;&nbsp; ".join(facts)}</p>'
        f'<pre class="expr">{_e(rule["reads"])}</pre>'
    )


def _rule_about(clock: _Clock, rule: RuleDoc, kept: str) -> str:
    """What a rule that is not an alert of a rule file reads, its thresholds and actions;
    ``kept``: what the sparklines draw, when not every series."""
    levels = rule["levels"]
    about = (
        f'<p class="about">reads <code>{_e(rule["reads"])}</code> from '
        f"<code>{_e(rule['target'])}</code> every {_e(rule['polling_interval'])}"
        f" &nbsp;&middot;&nbsp; {_evaluated(clock, rule)}"
    )
    thresholds = [
        _level_text(name, level)
        for name, level in (("base", levels["base"]), ("hard", levels["hard"]))
        if level
    ]
    if thresholds:
        about += "<br>" + " &nbsp;&middot;&nbsp; ".join(thresholds)
    else:
        about += "<br>no threshold: values are only read and logged"
    if kept:
        about += f" &nbsp;&middot;&nbsp; {kept}"
    return about + "</p>"


def _rule(clock: _Clock, rule: RuleDoc, limit: int) -> str:
    levels = rule["levels"]
    series = rule["series"]
    total = rule["series_count"]
    head = (
        f'<h2 id="rule-{_e(rule["name"])}">{_e(rule["name"])} {_badges(rule)}'
        f'<span class="count">{total:,} series</span></h2>'
    )
    alert = _is_alert(rule)
    spark = rule.get("sparkline")
    drawn = spark["series_kept"] if spark else 0
    kept = ""
    if drawn and total > drawn:
        kept = f"recent values kept for {drawn} of its series (the breached first)"
    about = _alert_about(clock, rule, kept) if alert else _rule_about(clock, rule, kept)
    about += _error_note(rule) + _no_data_note(clock, rule)
    if not series and not total:
        if _no_data(rule):
            note = '<span class="state nodata">no data</span>'
        elif rule["last_error"] is not None:
            note = "no series: its reads fail"
        elif alert:
            note = "inactive: the expression returns no series"
        elif levels["base"]:
            note = "no series seen yet"
        else:
            note = "no state is kept for a rule without a threshold"
        return f'<section>{head}{about}<p class="muted">{note}</p></section>'
    rows = "".join(_series_rows(clock, rule, limit))
    return (
        f'<section>{head}{about}<table class="series">{_COLUMNS}<thead><tr>'
        "<th>series</th><th>state</th>"
        '<th class="right">value</th><th>recent</th><th>since</th>'
        "<th>last action</th>"
        '<th class="right">fires</th><th>last seen</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _inactive_alerts(clock: _Clock, rules: list[RuleDoc]) -> str:
    """The alerts of rule files that hold no series, one row each, in file order."""
    if not rules:
        return ""
    rows = []
    for rule in rules:
        alert = rule["alert"]
        assert alert is not None
        name = rule["name"]
        rows.append(
            f'<tr id="rule-{_e(name)}"><td><b>{_e(name)}</b><span class="level">'
            f"{_e(alert['group'])} &middot; {_e(alert['file'])}:{alert['line']}</span></td>"
            f'<td><code class="expr">{_e(rule["reads"])}</code></td>'
            f"<td>every {_e(rule['polling_interval'])}</td>"
            f"<td>{_level_text('base', rule['levels']['base'], alert=True)}</td>"
            f"<td>{_evaluated(clock, rule)}</td></tr>"
        )
    return (
        f'<section id="inactive"><h2>Inactive alerts <span class="count">{len(rules):,}'
        '</span></h2><p class="about">alerts of the rule files whose expression returns no '
        "series now: their healthy state (Prometheus shows them <i>inactive</i>)</p>"
        f'<table class="series">{_INACTIVE_COLUMNS}<thead><tr><th>alert</th>'
        "<th>expression</th><th>every</th><th>for, action</th><th>last evaluation</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _jump(rules: list[RuleDoc], inactive: int) -> str:
    """The line at the top: the firing, pending and failing rules, each a link to its
    section."""
    parts = []
    for state in ("firing", "pending", "failing"):
        if state == "failing":
            named = [rule["name"] for rule in rules if rule["last_error"] is not None]
        else:
            named = [rule["name"] for rule in rules if rule["state"] == state]
        if not named:
            continue
        links = ", ".join(
            f'<a href="#rule-{_e(name)}">{_e(name)}</a>' for name in named[:NAMED_AT_TOP]
        )
        if len(named) > NAMED_AT_TOP:
            links += f" and {len(named) - NAMED_AT_TOP:,} more"
        parts.append(f'<span class="state {state}">{len(named):,} {state}</span> {links}')
    if inactive:
        parts.append(f'<a href="#inactive">{inactive:,} inactive alerts</a>')
    if not parts:
        return ""
    return f'<nav class="jump">rules: {" &nbsp;&middot;&nbsp; ".join(parts)}</nav>'


def _targets(clock: _Clock, targets: list[TargetDoc]) -> str:
    rows = []
    for target in targets:
        error = target["last_error"]
        if error:
            health = f'<span class="error">{_e(error)}</span>'
        elif target["last_success"]:
            health = '<span class="good">ok</span>'
        else:
            health = '<span class="muted">not read yet</span>'
        rows.append(
            f'<tr><td class="mono">{_e(target["target"])}</td>'
            f'<td class="num">{_e(target["polling_interval"])}</td>'
            f'<td class="num">{_e(target["rules"])}</td>'
            f'<td class="num">{clock.at(target["last_success"])}</td><td>{health}</td></tr>'
        )
    return (
        "<section><h2>Targets</h2><table><thead><tr><th>target</th><th>every</th><th>rules</th>"
        f"<th>last read</th><th>last poll</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></section>"
    )


def _groups(groups: list[GroupDoc]) -> str:
    rows = []
    for group in groups:
        recent = group["evaluations_missed_last_minute"]
        late = f'<span class="error">{recent:,}</span>' if recent else "0"
        rows.append(
            f'<tr><td class="mono">{_e(group["group"])}</td>'
            f'<td class="num">{_e(group["polling_interval"])}</td>'
            f'<td class="num">{_e(group["offset"])}</td>'
            f'<td class="num">{_e(group["rules"])}</td>'
            f'<td class="num">{_e(group["reads"])}</td>'
            f'<td class="num">{late}</td>'
            f'<td class="num">{group["evaluations_missed_total"]:,}</td></tr>'
        )
    return (
        "<section><h2>Groups</h2><table><thead><tr><th>group</th><th>every</th><th>offset</th>"
        "<th>rules</th><th>queries</th><th>missed, last minute</th><th>missed in all</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _problems(targets: list[TargetDoc]) -> str:
    """A banner naming the targets that are failing or were never read."""
    items = []
    for target in targets:
        error = target["last_error"]
        if error:
            items.append(
                f'<li><span class="mono">{_e(target["target"])}</span>: '
                f'<span class="error">{_e(error)}</span></li>'
            )
        elif not target["last_success"]:
            items.append(f'<li><span class="mono">{_e(target["target"])}</span>: not read yet</li>')
    if not items:
        return ""
    what = "target is" if len(items) == 1 else "targets are"
    return (
        f'<div class="problems"><b>{len(items)} {what} not being read</b>'
        f"<ul>{''.join(items)}</ul></div>"
    )


def _overload(groups: list[GroupDoc]) -> str:
    """A banner naming the groups that missed evaluations in the last minute."""
    items = [
        f'<li><span class="mono">{_e(group["group"])}</span>: '
        f'<span class="error">{group["evaluations_missed_last_minute"]:,} '
        "evaluations missed in the last minute</span></li>"
        for group in groups
        if group["evaluations_missed_last_minute"]
    ]
    if not items:
        return ""
    what = "group cannot" if len(items) == 1 else "groups cannot"
    return (
        f'<div class="problems"><b>{len(items)} {what} keep up</b><ul>{"".join(items)}</ul></div>'
    )


def _plugin_calls(status: StatusDocument) -> str:
    """The plugin calls in flight, and those waiting for a thread, while there are any."""
    calls = status.get("plugin_calls")
    if calls is None or not calls["in_flight"]:
        return ""
    count, queued = calls["in_flight"], calls["queued"]
    text = f"<b>{count:,}</b> plugin call{'s' if count != 1 else ''} in flight"
    if queued:
        text += f' (<span class="error">{queued:,} waiting for a thread</span>)'
    return text + " &middot; "


def render_status_page(status: StatusDocument, selection: Selection | None = None) -> str:
    """The whole page for a ``Service.status()`` snapshot made with ``selection``."""
    selection = selection or Selection(limit=PAGE_SERIES, per_rule=PAGE_SERIES_PER_RULE)
    clock = _Clock(status["time"])
    rules = status["rules"]
    counts = {state: 0 for state in _SEVERITY}
    total = 0
    no_data = 0
    for rule in rules:
        total += rule["series_count"]
        no_data += _no_data(rule)
        for state, count in rule["states"].items():
            if state in counts:
                counts[state] += count
    readiness = (
        '<span class="state ready">ready</span>'
        if status["ready"]
        else '<span class="state notready">not ready</span>'
    )
    title = "metric-reader"
    if counts["firing"] or counts["pending"]:
        title = f"{counts['firing']} firing, {counts['pending']} pending - {title}"
    facts = (
        f"<b>{len(rules)}</b> rule{'s' if len(rules) != 1 else ''} &middot; "
        f"<b>{total:,}</b> series &middot; <b>{counts['firing']:,}</b> firing &middot; "
        f"<b>{counts['pending']:,}</b> pending &middot; "
    )
    if no_data:
        facts += f"<b>{no_data}</b> with no data &middot; "
    facts += _plugin_calls(status)
    facts += f"started {clock.at(status['started_at'])}"
    targets = status["targets"]
    groups = status["groups"]
    limit = selection.per_rule or selection.limit
    sections: list[RuleDoc] = []
    inactive: list[RuleDoc] = []
    for rule in rules:
        quiet = selection.rule is None and _inactive_alert(rule)
        (inactive if quiet else sections).append(rule)
    body = "".join(_rule(clock, rule, limit) for rule in sections)
    body = _jump(rules, len(inactive)) + body + _inactive_alerts(clock, inactive)
    if not rules:
        body = '<p class="muted">no rules</p>'
    if selection.rule is not None:
        body = (
            f'<p class="about">only rule <b>{_e(selection.rule)}</b> &middot; '
            f'<a href="./">every rule</a></p>{body}'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>metric-reader<small>{_e(status['version'])}</small></h1>"
        f'{readiness}<span class="facts">{facts}</span></header>'
        f"<main>{_problems(targets)}{_overload(groups)}{body}{_groups(groups)}"
        f"{_targets(clock, targets)}</main>"
        f"<footer>as of {clock.at(status['time'], ago=False)} UTC &middot; refreshes every "
        f'{REFRESH_SECONDS} s &middot; <a href="api/status">api/status</a> (JSON) &middot; '
        '<a href="metrics">metrics</a> &middot; <a href="readyz">readyz</a></footer>'
        "</body></html>\n"
    )
