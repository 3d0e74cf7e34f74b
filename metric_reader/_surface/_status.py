"""What the service knows right now, as plain data: for ``/api/status`` and the status page.

Times inside the service are monotonic; here they become wall-clock ISO 8601 (UTC), the
only kind a person or another program can use.

A document is bounded: it lists at most ``Selection.limit`` series in all (each rule's
count by state is always complete), so a rule with 50,000 series costs a few milliseconds,
not a second of the event loop. ``Selection.rule`` with ``offset`` pages through one rule.
``Selection.by_severity`` (the page's) lists the rules with a firing series first, then
those with a pending one, then those whose last read failed or with no data, then the rest,
each in their order, so the troubled ones get the series budget first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, overload

from .._core import (
    ANY,
    LineKind,
    Threshold,
    format_duration,
    json_number,
    round_duration,
    to_wall,
    wall_at,
)
from .._engine import (
    RECENT_SERIES_PER_RULE,
    LevelMachine,
    NoData,
    Rule,
    SeriesMachine,
    State,
    recent_window,
)
from ._selection import EVERY_RULE, MAX_SERIES, Selection
from ._status_doc import (
    AlertDoc,
    LevelDoc,
    LevelSettingsDoc,
    RuleDoc,
    RuleState,
    SeriesDoc,
    StatusDocument,
    ThresholdLineDoc,
)
from ._view import FetchStatus, GroupStatus, LastEvaluation

if TYPE_CHECKING:
    from .._config import LevelConfig, RuleConfig

_RANK = {State.FIRING: 0, State.PENDING: 1, State.OK: 2}


def severity(series: SeriesMachine) -> tuple[int, int]:
    """Sort key: the worse of the levels first, a firing hard level before a base one."""
    base = _RANK[series.base.state]
    hard = 3 if series.hard is None else _RANK[series.hard.state]
    return min(base, hard), hard


@dataclass(slots=True)
class _Ordered:
    """A rule's series counted by the worse state of their levels, and in the order a
    document lists them."""

    states: dict[str, int]
    """Every state, 0 included."""
    series: Iterable[SeriesMachine]

    def rank(self, no_data: NoData | None, failing: bool) -> int:
        """The rule's place on the page: 0 with a firing series, 1 with a pending one, 2
        ``failing`` (its last read or evaluation failed) or in no data, 3 otherwise."""
        if self.states["firing"] or self.states["pending"]:
            return 0 if self.states["firing"] else 1
        return 2 if failing or (no_data is not None and no_data.active) else 3


def _order(series: Collection[SeriesMachine], by_severity: bool) -> _Ordered:
    """Count ``series`` by state, in one pass. By severity: firing, then pending (each
    sorted by severity and labels), then ok in the order first seen; only the few that are
    not ok are sorted. Otherwise in the order first seen."""
    ok, pending, firing = State.OK, State.PENDING, State.FIRING
    troubled: list[SeriesMachine] = []
    calm: list[SeriesMachine] = []
    counts = {firing: 0, pending: 0, ok: 0}
    for one in series:
        base, hard = one.base.state, None if one.hard is None else one.hard.state
        worst = firing if firing in (base, hard) else pending if pending in (base, hard) else ok
        counts[worst] += 1
        if by_severity:
            (calm if worst is ok else troubled).append(one)
    states = {state.value: 0 for state in State}
    states.update({state.value: number for state, number in counts.items()})
    if not by_severity:
        return _Ordered(states, series)
    troubled.sort(key=lambda one: (severity(one), one.labels))
    return _Ordered(states, itertools.chain(troubled, calm))


def _state(config: RuleConfig, states: Mapping[str, int]) -> RuleState | None:
    if config.base is None:
        return None
    return "firing" if states["firing"] else "pending" if states["pending"] else "inactive"


def _alert(config: RuleConfig) -> AlertDoc | None:
    alert = config.alert
    if alert is None:
        return None
    return {"group": alert.group, "file": str(alert.file), "line": alert.line}


class _DocumentBuilder:
    """Builds the snapshot; ``now_mono`` must be on the service's clock."""

    def __init__(self, now_mono: float, now_wall: float | None = None) -> None:
        self.now_mono = now_mono
        self.now_wall = wall_at(now_mono) if now_wall is None else now_wall

    @overload
    def wall(self, mono: float) -> str: ...
    @overload
    def wall(self, mono: float | None) -> str | None: ...
    def wall(self, mono: float | None) -> str | None:
        """``mono`` as wall-clock ISO 8601 (UTC), to the millisecond."""
        if mono is None:
            return None
        stamp = datetime.fromtimestamp(to_wall(mono, self.now_mono, self.now_wall), UTC)
        return stamp.isoformat(timespec="milliseconds")

    def level(self, machine: LevelMachine) -> LevelDoc:
        last = machine.last_action
        return {
            "state": machine.state.value,
            "since": self.wall(machine.active_at) if machine.state.value != "ok" else None,
            "fired_at": self.wall(machine.fired_at),
            "fire_count": machine.fire_count,
            "in_flight": machine.in_flight,
            "last_action": None
            if last is None
            else {
                "kind": last[0],
                "result": "success" if last[1] else "failure",
                "at": self.wall(last[2]),
            },
        }

    def series(self, series: SeriesMachine, recent: bool = False) -> SeriesDoc:
        out: SeriesDoc = {
            "labels": dict(series.labels),
            "value": json_number(
                series.base.value if not math.isnan(series.base.value) else series.last_value
            ),
            "last_seen": self.wall(series.last_seen),
            "base": self.level(series.base),
            "hard": None if series.hard is None else self.level(series.hard),
        }
        if series.placeholder:  # stands for a rule that has never seen a series
            out["placeholder"] = True
        if recent and series.recent is not None:
            out["recent"] = [
                (round(self.epoch(at), 3), None if math.isnan(value) else json_number(value), state)
                for at, value, state in series.recent
            ]
        return out

    def epoch(self, mono: float) -> float:
        """``mono`` as seconds since the epoch."""
        return to_wall(mono, self.now_mono, self.now_wall)

    def rule(
        self,
        rule: Rule,
        no_data: NoData | None = None,
        selection: Selection = EVERY_RULE,
        budget: int | None = None,
        evaluation: LastEvaluation | None = None,
        ordered: _Ordered | None = None,
        error: str | None = None,
    ) -> RuleDoc:
        """One rule, listing at most ``budget`` of its series (``selection.limit``);
        ``ordered``: its series as ``_order`` gives them for ``selection``, when counted
        already."""
        config = rule.config
        every = rule.series
        count = max(0, selection.limit if budget is None else budget)
        start = selection.offset
        ordered = ordered or _order(every.values(), selection.by_severity)
        states = ordered.states
        listed = list(itertools.islice(ordered.series, start, start + count))
        out: RuleDoc = {
            "name": rule.name,
            "metric_name": config.metric_name,
            "reads": rule.expression,
            "source": config.source.kind,
            "target": config.source.where,
            "alert": _alert(config),
            "polling_interval": format_duration(config.polling_interval),
            "last_evaluation": None if evaluation is None else self.wall(evaluation.at),
            "evaluation_duration": None
            if evaluation is None
            else format_duration(round_duration(evaluation.seconds)),
            "last_error": error,
            "levels": {"base": _settings(config.base), "hard": _settings(config.hard)},
            "state": _state(config, states),
            "no_data": None
            if no_data is None
            else {
                "active": no_data.active,
                "empty_polls": no_data.empty_polls,
                "since": self.wall(no_data.since) if no_data.active else None,
            },
            "series_count": len(every),
            "states": states,
            "series": [self.series(series, selection.recent) for series in listed],
        }
        if selection.recent and config.base is not None:
            out["sparkline"] = {
                "seconds": recent_window(config.polling_interval),
                "lines": _lines(config),
                "series_kept": RECENT_SERIES_PER_RULE,
            }
        if start or start + len(listed) < len(every):
            following = start + len(listed)
            out["page"] = {
                "offset": start,
                "listed": len(listed),
                "next": selection.link("api/status", rule.name, following)
                if following < len(every)
                else None,
            }
        return out


def _settings(level: LevelConfig | None) -> LevelSettingsDoc | None:
    """One level of a rule as configured; None for a level the rule does not have."""
    if level is None:
        return None
    return {
        "threshold": level.threshold.text,
        "duration": format_duration(level.duration),
        "backoff": format_duration(level.backoff),
        "plugin": level.plugin,
    }


def _lines(config: RuleConfig) -> list[ThresholdLineDoc]:
    """The threshold lines a sparkline of the rule draws: value, label, kind."""
    out: list[ThresholdLineDoc] = []
    drawn: tuple[tuple[LineKind, Threshold | None], ...] = (
        ("threshold", config.base.threshold if config.base else None),
        ("clear", config.base.clear_threshold if config.base else None),
        ("hard", config.hard.threshold if config.hard else None),
    )
    for kind, threshold in drawn:
        if threshold is not None and threshold.op != ANY and math.isfinite(threshold.number):
            label = threshold.text if kind == "threshold" else f"{kind} {threshold.text}"
            out.append({"value": threshold.number, "label": label, "kind": kind})
    return out


def status_snapshot(
    rules: Sequence[Rule],
    fetches: Sequence[FetchStatus],
    now_mono: float,
    *,
    ready: bool,
    started_mono: float,
    version: str,
    no_data: Mapping[str, NoData] | None = None,
    selection: Selection = EVERY_RULE,
    groups: Sequence[GroupStatus] = (),
    now_wall: float | None = None,
    evaluations: Mapping[str, LastEvaluation] | None = None,
    errors: Mapping[str, str] | None = None,
) -> StatusDocument:
    """Everything ``/api/status`` returns but ``leader_election`` (the service adds it).

        With ``selection.rule`` naming no rule, ``rules`` is empty. ``now_wall``: the wall-clock
        time of ``now_mono`` (default: the current time). ``no_data``: the trackers of the rules
        that have one; ``evaluations``: the last evaluation of those evaluated; ``errors``: why
    the last read or evaluation of those whose last one failed did."""
    view = _DocumentBuilder(now_mono, now_wall)
    budget = max(0, min(selection.limit, MAX_SERIES))
    listed_rules: list[RuleDoc] = []
    no_data = no_data or {}
    evaluations = evaluations or {}
    errors = errors or {}
    chosen = [rule for rule in rules if selection.rule in (None, rule.name)]
    orders = {rule.name: _order(rule.series.values(), selection.by_severity) for rule in chosen}
    if selection.by_severity:
        chosen.sort(
            key=lambda rule: orders[rule.name].rank(no_data.get(rule.name), rule.name in errors)
        )
    for rule in chosen:
        share = budget if selection.per_rule is None else min(budget, selection.per_rule)
        document = view.rule(
            rule,
            no_data.get(rule.name),
            selection,
            share,
            evaluations.get(rule.name),
            orders[rule.name],
            errors.get(rule.name),
        )
        budget -= len(document["series"])
        listed_rules.append(document)
    total = sum(rule["series_count"] for rule in listed_rules)
    listed = sum(len(rule["series"]) for rule in listed_rules)
    truncated = any("page" in rule and rule["page"]["next"] for rule in listed_rules)
    snapshot: StatusDocument = {
        "version": version,
        "time": view.wall(now_mono),
        "started_at": view.wall(started_mono),
        "ready": ready,
        "targets": [
            {
                "target": fetch.description,
                "polling_interval": format_duration(fetch.interval),
                "rules": fetch.rules,
                "last_success": view.wall(fetch.last_success),
                "last_error": fetch.last_error,
            }
            for fetch in fetches
        ],
        "groups": [
            {
                "group": group.name,
                "polling_interval": format_duration(group.interval),
                "offset": format_duration(round_duration(group.offset)),
                "rules": group.rules,
                "reads": group.fetches,
                "evaluations_missed_last_minute": group.missed_last_minute,
                "evaluations_missed_total": group.missed_total,
            }
            for group in groups
        ],
        "rules": listed_rules,
        "truncated": truncated,
    }
    if truncated:
        snapshot["note"] = (
            f"{listed} of {total} series listed (at most {MAX_SERIES} a document); each "
            "rule's 'page.next' lists more: ?rule=NAME&offset=N&limit=N"
        )
    return snapshot
