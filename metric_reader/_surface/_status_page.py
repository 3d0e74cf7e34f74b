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

After the rules, the newest ``RECENT_ACTIONS`` entries of the action history: each owed
plugin call and what became of it (executed, failed, suppressed and why, shadow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from .._core import Chart, HistoryEntry, Line, iso_utc, render_svg, state_spans
from ._governor_doc import governor_banner, silences_fact
from ._page_text import CSS, Clock, as_float, esc, labels_html, number_cell
from ._selection import Selection
from ._status_doc import (
    GroupDoc,
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


def _state(level: LevelDoc | None, prefix: str = "") -> str:
    state = level["state"] if level else "none"
    css = state if state in _SEVERITY else "none"
    return f'<span class="state {css}">{esc(prefix + state)}</span>'


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
    parts = [] if alert else [f"<code>{esc(level['threshold'])}</code>"]
    if level["duration"] != "0s":
        parts.append(f"for {esc(level['duration'])}")
    if level["backoff"] != "0s":
        parts.append(f"again every {esc(level['backoff'])}")
    plugin = level["plugin"]
    parts.append(f"&rarr; <b>{esc(plugin)}</b>" if plugin else "&rarr; log only")
    return " ".join(parts) if alert else f"{esc(name)}: {' '.join(parts)}"


def _evaluated(clock: Clock, rule: RuleDoc) -> str:
    """``evaluated 3s ago in 1.23ms``, as Prometheus' rules page says it."""
    last = rule["last_evaluation"]
    if last is None:
        return '<span class="muted">not evaluated yet</span>'
    took = rule["evaluation_duration"]
    return f"evaluated {clock.ago(last)}" + (f" in {esc(took)}" if took else "")


def _last_action(clock: Clock, level: LevelDoc | None) -> str:
    if level is None:
        return ""
    out = []
    last = level["last_action"]
    if last:
        css = "good" if last["result"] == "success" else "bad"
        out.append(
            f'{esc(last["kind"])} <span class="{css}">{esc(last["result"])}</span>'
            f' <span class="muted">{clock.ago(last["at"])}</span>'
        )
    if level["in_flight"]:
        out.append(f'<span class="running">{esc(level["in_flight"])} running</span>')
    return "<br>".join(out) if out else '<span class="muted">&mdash;</span>'


def _sparkline(clock: Clock, spark: SparklineDoc | None, series: SeriesDoc) -> str:
    """The series' recent values, threshold lines and pending and firing stretches."""
    recent = series.get("recent")
    if not spark or recent is None or clock.now is None:
        kept = spark["series_kept"] if spark else 0
        why = f"recent values are kept for {kept} series of a rule" if kept else "no values kept"
        return f'<span class="muted" title="{esc(why)}">&mdash;</span>'
    end = clock.now.timestamp()
    chart = Chart(
        end - spark["seconds"],
        end,
        [(at, as_float(value)) for at, value, _ in recent],
        [Line(line["value"], line["label"], line["kind"]) for line in spark["lines"]],
        state_spans([(at, state) for at, _, state in recent], end),
    )
    return render_svg(chart, SPARK_WIDTH, SPARK_HEIGHT, detailed=False)


def _page_link(rule: str, offset: int, limit: int) -> str:
    return "?" + esc(urlencode({"rule": rule, "offset": offset, "limit": limit}))


def _series_rows(clock: Clock, rule: RuleDoc, limit: int) -> Iterable[str]:
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
        fires = esc(base["fire_count"])
        if hard and hard["state"] != "ok":
            state += f'<span class="hard">{_state(hard, "hard ")}</span>'
            since += f'<span class="level">hard {clock.since(hard["since"], short=True)}</span>'
            fires += f'<span class="level">hard {esc(hard["fire_count"])}</span>'
        if hard and (hard["last_action"] or hard["in_flight"]):
            action += f'<span class="level">hard: {_last_action(clock, hard)}</span>'
        yield (
            f'<tr class="{css}"><td>{labels_html(one["labels"])}</td>'
            f"<td>{state}</td>"
            f'<td class="num mono right">{number_cell(one["value"])}</td>'
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
            f'<a href="api/status?{esc(urlencode({"rule": name}))}">as JSON</a></td></tr>'
        )
    if offset:
        back = _page_link(name, max(0, offset - limit), limit)
        yield (
            f'<tr><td colspan="8" class="more">{offset:,} more severe series before these: '
            f'<a href="{back}">the previous page</a></td></tr>'
        )


def _no_data_note(clock: Clock, rule: RuleDoc) -> str:
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
        f'<span class="error">{esc(error)}</span></p>'
    )


def _alert_about(clock: Clock, rule: RuleDoc, kept: str) -> str:
    """Where an alert comes from, how it is run, and its expression (once); ``kept``: what
    the sparklines draw, when not every series."""
    alert = rule["alert"]
    assert alert is not None
    facts = [
        f"group <b>{esc(alert['group'])}</b> of <code>{esc(alert['file'])}:{alert['line']}</code>",
        f"on <code>{esc(rule['target'])}</code> every {esc(rule['polling_interval'])}",
        _level_text("base", rule["levels"]["base"], alert=True),
        _evaluated(clock, rule),
    ]
    if kept:
        facts.append(kept)
    return (
        f'<p class="about">{" &nbsp;&middot;&nbsp; ".join(facts)}</p>'
        f'<pre class="expr">{esc(rule["reads"])}</pre>'
    )


def _rule_about(clock: Clock, rule: RuleDoc, kept: str) -> str:
    """What a rule that is not an alert of a rule file reads, its thresholds and actions;
    ``kept``: what the sparklines draw, when not every series."""
    levels = rule["levels"]
    about = (
        f'<p class="about">reads <code>{esc(rule["reads"])}</code> from '
        f"<code>{esc(rule['target'])}</code> every {esc(rule['polling_interval'])}"
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


def _rule(clock: Clock, rule: RuleDoc, limit: int) -> str:
    levels = rule["levels"]
    series = rule["series"]
    total = rule["series_count"]
    head = (
        f'<h2 id="rule-{esc(rule["name"])}">{esc(rule["name"])} {_badges(rule)}'
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


def _inactive_alerts(clock: Clock, rules: list[RuleDoc]) -> str:
    """The alerts of rule files that hold no series, one row each, in file order."""
    if not rules:
        return ""
    rows = []
    for rule in rules:
        alert = rule["alert"]
        assert alert is not None
        name = rule["name"]
        rows.append(
            f'<tr id="rule-{esc(name)}"><td><b>{esc(name)}</b><span class="level">'
            f"{esc(alert['group'])} &middot; {esc(alert['file'])}:{alert['line']}</span></td>"
            f'<td><code class="expr">{esc(rule["reads"])}</code></td>'
            f"<td>every {esc(rule['polling_interval'])}</td>"
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
            f'<a href="#rule-{esc(name)}">{esc(name)}</a>' for name in named[:NAMED_AT_TOP]
        )
        if len(named) > NAMED_AT_TOP:
            links += f" and {len(named) - NAMED_AT_TOP:,} more"
        parts.append(f'<span class="state {state}">{len(named):,} {state}</span> {links}')
    if inactive:
        parts.append(f'<a href="#inactive">{inactive:,} inactive alerts</a>')
    if not parts:
        return ""
    return f'<nav class="jump">rules: {" &nbsp;&middot;&nbsp; ".join(parts)}</nav>'


def _targets(clock: Clock, targets: list[TargetDoc]) -> str:
    rows = []
    for target in targets:
        error = target["last_error"]
        if error:
            health = f'<span class="error">{esc(error)}</span>'
        elif target["last_success"]:
            health = '<span class="good">ok</span>'
        else:
            health = '<span class="muted">not read yet</span>'
        rows.append(
            f'<tr><td class="mono">{esc(target["target"])}</td>'
            f'<td class="num">{esc(target["polling_interval"])}</td>'
            f'<td class="num">{esc(target["rules"])}</td>'
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
            f'<tr><td class="mono">{esc(group["group"])}</td>'
            f'<td class="num">{esc(group["polling_interval"])}</td>'
            f'<td class="num">{esc(group["offset"])}</td>'
            f'<td class="num">{esc(group["rules"])}</td>'
            f'<td class="num">{esc(group["reads"])}</td>'
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
                f'<li><span class="mono">{esc(target["target"])}</span>: '
                f'<span class="error">{esc(error)}</span></li>'
            )
        elif not target["last_success"]:
            items.append(
                f'<li><span class="mono">{esc(target["target"])}</span>: not read yet</li>'
            )
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
        f'<li><span class="mono">{esc(group["group"])}</span>: '
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


_OUTCOME_CLASS = {"executed": "good", "failed": "error", "timed_out": "error"}


def _recent_actions(clock: Clock, actions: Sequence[HistoryEntry]) -> str:
    """The newest entries of the action history: every owed call and what became of it."""
    rows = [
        f'<tr><td class="num">{clock.at(iso_utc(e.at))}</td><td>{esc(e.rule)}</td>'
        f'<td>{labels_html(e.series)}</td><td class="mono">{esc(e.plugin or "-")}</td>'
        f"<td>{esc(e.kind)}</td>"
        f'<td><span class="{_OUTCOME_CLASS.get(e.outcome, "muted")}">{esc(e.outcome)}</span></td>'
        f"<td>{esc(e.why())}</td></tr>"
        for e in actions
    ]
    table = (
        "<table><thead><tr><th>time</th><th>rule</th><th>series</th><th>plugin</th>"
        "<th>kind</th><th>outcome</th><th>reason</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted">no actions recorded</p>'
    )
    return (
        f'<section id="recent-actions"><h2>Recent actions</h2>{table}'
        '<p class="about"><a href="api/actions">api/actions</a> (JSON) has more</p></section>'
    )


def render_status_page(
    status: StatusDocument,
    selection: Selection | None = None,
    actions: Sequence[HistoryEntry] | None = None,
) -> str:
    """The whole page for a ``Service.status()`` snapshot made with ``selection``, with the
    newest ``actions`` of the action history when given."""
    selection = selection or Selection(limit=PAGE_SERIES, per_rule=PAGE_SERIES_PER_RULE)
    clock = Clock(status["time"])
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
    facts += silences_fact(status.get("governor"))
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
            f'<p class="about">only rule <b>{esc(selection.rule)}</b> &middot; '
            f'<a href="./">every rule</a></p>{body}'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>metric-reader<small>{esc(status['version'])}</small></h1>"
        f'{readiness}<span class="facts">{facts}</span></header>'
        f"<main>{governor_banner(clock, status.get('governor'))}"
        f"{_problems(targets)}{_overload(groups)}{body}"
        f"{'' if actions is None else _recent_actions(clock, actions)}{_groups(groups)}"
        f"{_targets(clock, targets)}</main>"
        f"<footer>as of {clock.at(status['time'], ago=False)} UTC &middot; refreshes every "
        f'{REFRESH_SECONDS} s &middot; <a href="api/status">api/status</a> (JSON) &middot; '
        '<a href="metrics">metrics</a> &middot; <a href="readyz">readyz</a></footer>'
        "</body></html>\n"
    )
