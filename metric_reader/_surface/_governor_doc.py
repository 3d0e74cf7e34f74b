"""What the status document, the status page and ``/metrics`` show of the governor: the
pause, the circuit breakers and the silences (``governor`` in ``/api/status``, the red
banner, ``metric_reader_paused`` and ``metric_reader_breaker_open{plugin}``).

Governor times are wall-clock seconds; the document gives them as RFC 3339 UTC times.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .._engine import ApprovalRequest, Governor, Pause
from ._metrics import ServiceMetrics
from ._page_text import Clock, esc
from ._status_doc import ApprovalDoc, BreakerDoc, BudgetDoc, GovernorDoc, PauseDoc


def rfc3339(at: float) -> str:
    """``2026-11-20T08:00:00.000Z``: how Alertmanager writes a time (RFC 3339, in UTC,
    milliseconds)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pause_doc(pause: Pause | None) -> PauseDoc | None:
    if pause is None:
        return None
    return {
        "since": rfc3339(pause.since),
        "until": None if pause.until is None else rfc3339(pause.until),
        "reason": pause.reason,
        "by": pause.by,
    }


def governor_doc(governor: Governor, now: float) -> GovernorDoc:
    """The ``governor`` part of ``/api/status`` at ``now`` (wall-clock seconds)."""
    states = [silence.state(now) for silence in governor.silences]
    breakers: list[BreakerDoc] = []
    for plugin, breaker in sorted(governor.breakers.items()):
        reopens = breaker.reopens_at()
        breakers.append(
            {
                "plugin": plugin,
                "state": breaker.state,
                "reopens_at": None if reopens is None else rfc3339(reopens),
            }
        )
    budgets: list[BudgetDoc] = []
    for budget in governor.budgets():
        frees = budget.frees_at(now)
        budgets.append(
            {
                "name": budget.config.name,
                "used": budget.used(now),
                "max_actions": budget.config.max_actions,
                "per_seconds": budget.config.per,
                "frees_at": None if frees is None else rfc3339(frees),
            }
        )
    doc: GovernorDoc = {
        "paused": pause_doc(governor.paused(now)),
        "breakers": breakers,
        "silences": {"active": states.count("active"), "pending": states.count("pending")},
        "budgets": budgets,
        "storms": [{"rule": rule, "breached": n} for rule, n in sorted(governor.storms.items())],
    }
    pending = sorted(
        (r for r in governor.approvals if r.state == "pending" and now < r.expires),
        key=lambda r: r.created,
    )
    if pending:
        doc["approvals"] = [_approval_doc(request) for request in pending]
    return doc


def _approval_doc(request: ApprovalRequest) -> ApprovalDoc:
    return {
        "id": request.id,
        "rule": request.rule,
        "series": dict(request.series),
        "kind": request.kind,
        "plugin": request.plugin,
        "summary": request.summary,
        "created": rfc3339(request.created),
        "expires": rfc3339(request.expires),
        "link": request.link,
    }


def show_governor(metrics: ServiceMetrics, governor: Governor, now: float) -> None:
    """Set ``metric_reader_paused`` and ``metric_reader_breaker_open{plugin}`` to what the
    governor holds at ``now`` (before each ``/metrics`` page); a plugin whose breaker is no
    longer configured loses its series."""
    metrics.paused.set(1 if governor.paused(now) is not None else 0)
    shown = {plugin for (plugin,) in _label_values(metrics)}
    for plugin, breaker in governor.breakers.items():
        metrics.breaker_open.labels(plugin).set(0 if breaker.state == "closed" else 1)
    for plugin in shown - set(governor.breakers):
        metrics.breaker_open.remove(plugin)


def _label_values(metrics: ServiceMetrics) -> list[tuple[str, ...]]:
    return [
        tuple(sample.labels.values())
        for family in metrics.breaker_open.collect()
        for sample in family.samples
    ]


def governor_banner(clock: Clock, doc: GovernorDoc | None) -> str:
    """The status page's lines about the governor: a red banner while paused, a line per
    breaker not closed, budget spent and rule in a storm."""
    if doc is None:
        return ""
    out = ""
    pause = doc["paused"]
    if pause is not None:
        until = (
            "until resumed (metric-reader resume)"
            if pause["until"] is None
            else f"until {clock.at(pause['until'], ago=False)} UTC"
        )
        by = f" by {esc(pause['by'])}" if pause["by"] else ""
        reason = f": {esc(pause['reason'])}" if pause["reason"] else ""
        out += (
            '<div class="problems paused"><b>Paused: no plugin is called</b>'
            f"<ul><li>since {clock.at(pause['since'])}{by}{reason}</li><li>{until}</li></ul>"
            "</div>"
        )
    items = []
    for breaker in doc["breakers"]:
        if breaker["state"] == "closed":
            continue
        if breaker["state"] == "open":
            when = breaker["reopens_at"]
            text = "open: its calls are suppressed"
            if when is not None:
                text += f" until {clock.at(when, ago=False)} UTC, then one trial call"
        else:
            text = "half-open: one trial call decides"
        items.append(
            f'<li>plugin <span class="mono">{esc(breaker["plugin"])}</span>: '
            f'<span class="error">{text}</span></li>'
        )
    for budget in doc["budgets"]:
        if budget["frees_at"] is None:
            continue
        items.append(
            f"<li>budget of {esc(budget['name'])}: {budget['used']} of "
            f"{budget['max_actions']} calls spent, calls suppressed until "
            f"{clock.at(budget['frees_at'], ago=False)} UTC</li>"
        )
    for storm in doc["storms"]:
        items.append(
            f'<li>rule <span class="mono">{esc(storm["rule"])}</span>: storm, '
            f"{storm['breached']} series breached at once: per-series calls held</li>"
        )
    if items:
        what = "guard holds calls back" if len(items) == 1 else "guards hold calls back"
        out += (
            f'<div class="problems"><b>{len(items)} {what} not closed</b>'
            f"<ul>{''.join(items)}</ul></div>"
        )
    return out + _approvals_table(clock, doc.get("approvals", []))


def _approvals_table(clock: Clock, pending: list[ApprovalDoc]) -> str:
    """The pending approval requests: what each would run, and how to answer it."""
    if not pending:
        return ""
    rows = "".join(
        f'<tr id="approval-{esc(a["id"])}"><td class="mono">{esc(a["id"])}</td>'
        f'<td class="mono">{esc(a["rule"])}</td>'
        f'<td class="mono">{esc(_series(a["series"]))}</td>'
        f'<td>{esc(a["kind"])} to <span class="mono">{esc(a["plugin"])}</span></td>'
        f"<td>{clock.at(a['created'])}</td><td>{clock.at(a['expires'], ago=False)} UTC</td>"
        f'<td class="mono">metric-reader approve {esc(a["id"])}</td></tr>'
        for a in pending
    )
    count = len(pending)
    return (
        f'<section class="approvals"><h2>{count} approval request'
        f"{'s' if count != 1 else ''} pending</h2>"
        "<table><tr><th>id</th><th>rule</th><th>series</th><th>would run</th>"
        f"<th>asked</th><th>expires</th><th>to approve</th></tr>{rows}</table></section>"
    )


def _series(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def silences_fact(doc: GovernorDoc | None) -> str:
    """``2 silences active · ``, for the page's header, while there are any."""
    if doc is None or not doc["silences"]["active"]:
        return ""
    count = doc["silences"]["active"]
    return f"<b>{count}</b> silence{'s' if count != 1 else ''} active &middot; "
