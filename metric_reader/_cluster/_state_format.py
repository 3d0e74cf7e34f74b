"""The state file's JSON document: rules' snapshots in, snapshots out.

``document`` writes the snapshots of the rules (``_engine.RuleSnapshot``) as one JSON-able
document; ``parse`` reads such a document back into snapshots, every time on the wall clock
(seconds since the epoch), checking each record as a file edited by hand or written by a
failing service may hold anything: one bad record costs only itself. Moving the times
between the wall clock and the monotonic one, and what a rule's state is restored into, is
``_persist``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from .._core import EventKind, Labels, StateError, json_number
from .._engine import (
    MAX_COUNT,
    LevelSnapshot,
    PendingFix,
    RuleSnapshot,
    SeriesSnapshot,
    State,
)

FORMAT = "metric-reader-state"
VERSION = 1
_KINDS: tuple[EventKind, ...] = ("fire", "repeat", "resolve")
_NUMBERS = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}

SAVED_LEVEL_FIELDS = (
    "state",
    "active_at",
    "fired_at",
    "resolved_at",
    "last_held_at",
    "last_success_at",
    "last_action",
    "due",
    "due_at",
    "failures",
    "fire_count",
    "breach",
    "value",
    "takers",
    "held_value",
    "breaches",
    "fix",
    "unheld",
    "gave_up",
)
"""The keys of a saved level: every field of a ``LevelSnapshot``, in this order."""

LATER_LEVEL_FIELDS = ("takers", "held_value", "breaches", "fix", "unheld", "gave_up")
"""Keys of a saved level that files written by earlier versions lack: a level without
``takers`` resolves where a fire would go now (as those versions did), one without
``held_value`` carries its ``value``, one without ``breaches`` counts its last evaluations
as its state says (breached while pending or firing); one without ``fix``, ``unheld`` and
``gave_up`` verifies no fix yet and counts none that did not hold (``verify_within``)."""


@dataclass(frozen=True, slots=True)
class SavedRule:
    """One rule's entry: which rule it is (``Rule.identity_digest``), what the rule meant
    when saved (``_persist.fingerprint``, which earlier versions restored by), and its
    state."""

    fingerprint: str
    state: RuleSnapshot
    identity: str | None = None
    """None: an entry an earlier version wrote, which only its fingerprint ties to a rule."""


@dataclass(frozen=True, slots=True)
class SavedState:
    """A whole document as read; the snapshots' times are on the wall clock."""

    written_at: float
    dry_run: bool
    rules: dict[str, SavedRule]
    notes: tuple[str, ...] = ()
    """Records dropped and numbers clamped while reading, one line each."""


# --- writing --------------------------------------------------------------------------------

Wall = Callable[[float | None], float | None]
"""A monotonic time (or None) to the wall clock, as the document holds it."""


def _level_doc(level: LevelSnapshot, wall: Wall) -> dict[str, Any]:
    last = level.last_action
    return {
        "state": level.state.value,
        "active_at": wall(level.active_at),
        "fired_at": wall(level.fired_at),
        "resolved_at": wall(level.resolved_at),
        "last_held_at": wall(level.last_held_at),
        "last_success_at": wall(level.last_success_at),
        "last_action": None
        if last is None
        else {"kind": last[0], "ok": last[1], "at": wall(last[2])},
        "due": level.due,
        "due_at": wall(level.due_at),
        "failures": level.failures,
        "fire_count": level.fire_count,
        "breach": level.breach,
        "value": json_number(level.value),
        "takers": None if level.takers is None else list(level.takers),
        "held_value": json_number(level.held_value),
        "breaches": None if level.breaches is None else list(level.breaches),
        "fix": None if level.fix is None else _fix_doc(level.fix, wall),
        "unheld": level.unheld,
        "gave_up": level.gave_up,
    }


def _fix_doc(fix: PendingFix, wall: Wall) -> dict[str, Any]:
    return {
        "deadline": wall(fix.deadline),
        "key": fix.key,
        "attempts": fix.attempts,
        "plugins": list(fix.plugins),
        **({} if fix.query is None else {"query": fix.query}),
    }


def document(rules: Mapping[str, SavedRule], written_at: float, wall: Wall) -> dict[str, Any]:
    """The document of ``rules``, written at wall-clock ``written_at``; ``wall`` moves the
    snapshots' times to the wall clock (the rules make them on the monotonic clock: moving
    them while writing spares a copy of every snapshot at every save)."""
    saved: dict[str, Any] = {}
    for name, rule in rules.items():
        entry: dict[str, Any] = {
            "identity": rule.identity,
            "fingerprint": rule.fingerprint,
            "seen_any": rule.state.seen_any,
            "series": [
                {
                    "labels": [list(pair) for pair in series.labels],
                    "placeholder": series.placeholder,
                    "last_value": json_number(series.last_value),
                    "last_seen": wall(series.last_seen),
                    "base": _level_doc(series.base, wall),
                    "hard": None if series.hard is None else _level_doc(series.hard, wall),
                }
                for series in rule.state.series
            ],
        }
        if rule.state.hard_threshold is not None:
            entry["hard_threshold"] = rule.state.hard_threshold
        saved[name] = entry
    return {
        "format": FORMAT,
        "version": VERSION,
        "written_at": round(written_at, 3),
        "dry_run": False,  # only dry runs of earlier versions wrote true
        "rules": saved,
    }


# --- reading --------------------------------------------------------------------------------


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"{where}: expected an object, got {type(value).__name__}")
    return cast(Mapping[str, Any], value)


_LATEST = 1e11
"""A saved time later than this (the year 5138) is read as this: like any time later than
now, it is then clamped to now."""


def _show(value: object) -> str:
    """``value`` for a message, cut short: a bad file may hold a 4,000-digit number."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _time(value: object, where: str) -> float | None:
    """A saved wall-clock time; one beyond any calendar (``Infinity`` too) is read as
    ``_LATEST``. NaN, a time before 1970 or anything not a number is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise StateError(f"{where}: expected a time in seconds since 1970, got {_show(value)}")
    return float(value) if value <= _LATEST else _LATEST


def _count(value: object, where: str, notes: list[str]) -> int:
    """A saved count; one beyond ``MAX_COUNT`` (``Infinity`` too), more than the engine
    keeps, is read as ``MAX_COUNT``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 0
        or (isinstance(value, float) and not value.is_integer() and value != math.inf)
    ):
        raise StateError(f"{where}: expected a whole number of at least 0, got {_show(value)}")
    if value > MAX_COUNT:
        notes.append(f"{where}: {_show(value)} is more than {MAX_COUNT}, taken as {MAX_COUNT}")
        return MAX_COUNT
    return int(value)


def _value(value: object, where: str, notes: list[str]) -> float | None:
    """A saved sample value; one beyond the range of a float is read as +Inf or -Inf."""
    if value is None:
        return None
    if isinstance(value, str) and value in _NUMBERS:
        return _NUMBERS[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateError(f"{where}: expected a number, got {_show(value)}")
    try:
        return float(value)
    except OverflowError:
        infinity = math.inf if value > 0 else -math.inf
        notes.append(f"{where}: {_show(value)} is beyond a float, taken as {json_number(infinity)}")
        return infinity


def _kind(value: object, where: str) -> EventKind | None:
    if value is None:
        return None
    if value not in _KINDS:
        raise StateError(f"{where}: expected one of {', '.join(_KINDS)}, got {value!r}")
    return value


def _takers(value: object, where: str) -> tuple[str, ...] | None:
    """The plugins that took a breach's fire; None (or no key): not known."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise StateError(f"{where}: expected a list of plugin names, got {_show(value)}")
    return tuple(dict.fromkeys(value))


def _breaches(value: object, where: str) -> tuple[bool, ...] | None:
    """A level's debounce window, oldest first; None (or no key): not kept. The level keeps
    as many of its newest as its ``breach_window``."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(one, bool) for one in value):
        raise StateError(f"{where}: expected a list of true and false, got {_show(value)}")
    return tuple(value)


def _fix(value: object, where: str) -> PendingFix | None:
    """A fix being verified; None (or no key): none."""
    if value is None:
        return None
    doc = _mapping(value, where)
    deadline = _time(doc.get("deadline"), f"{where}.deadline")
    key, attempts, plugins = doc.get("key"), doc.get("attempts"), doc.get("plugins")
    if (
        deadline is None
        or not isinstance(key, str)
        or isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_COUNT
        or not isinstance(plugins, list)
        or not all(isinstance(name, str) for name in plugins)
    ):
        raise StateError(f"{where}: expected deadline, key, attempts and plugins, got {doc!r}")
    query = doc.get("query")  # verify_query; absent: the condition judges
    if query is not None and not isinstance(query, str):
        raise StateError(f"{where}.query: expected a PromQL text, got {query!r}")
    return PendingFix(deadline, key, attempts, tuple(plugins), query)


def _parse_level(raw: object, where: str, notes: list[str]) -> LevelSnapshot:
    doc = _mapping(raw, where)
    missing = [
        key for key in SAVED_LEVEL_FIELDS if key not in doc and key not in LATER_LEVEL_FIELDS
    ]
    if missing:
        raise StateError(f"{where}: missing {', '.join(missing)}")
    try:
        state = State(doc["state"])
    except ValueError:
        raise StateError(f"{where}.state: unknown state {doc['state']!r}") from None
    last_action = None
    if doc["last_action"] is not None:
        last = _mapping(doc["last_action"], f"{where}.last_action")
        kind = _kind(last.get("kind"), f"{where}.last_action.kind")
        ok = last.get("ok")
        at = _time(last.get("at"), f"{where}.last_action.at")
        if kind is None or not isinstance(ok, bool) or at is None:
            raise StateError(f"{where}.last_action: expected kind, ok and at, got {last!r}")
        last_action = (kind, ok, at)
    value = _value(doc["value"], f"{where}.value", notes)
    held_value = _value(doc.get("held_value"), f"{where}.held_value", notes)
    takers = _takers(doc.get("takers"), f"{where}.takers")
    active_at = _time(doc["active_at"], f"{where}.active_at")
    fired_at = _time(doc["fired_at"], f"{where}.fired_at")
    resolved_at = _time(doc["resolved_at"], f"{where}.resolved_at")
    last_held_at = _time(doc["last_held_at"], f"{where}.last_held_at")
    last_success_at = _time(doc["last_success_at"], f"{where}.last_success_at")
    due = _kind(doc["due"], f"{where}.due")
    due_at = _time(doc["due_at"], f"{where}.due_at")
    failures = _count(doc["failures"], f"{where}.failures", notes)
    fire_count = _count(doc["fire_count"], f"{where}.fire_count", notes)
    breach = _count(doc["breach"], f"{where}.breach", notes)
    fix = _fix(doc.get("fix"), f"{where}.fix")
    unheld = _count(doc.get("unheld", 0), f"{where}.unheld", notes)
    gave_up = doc.get("gave_up", False)
    if not isinstance(gave_up, bool):
        raise StateError(f"{where}.gave_up: expected true or false, got {_show(gave_up)}")
    try:
        return LevelSnapshot(
            state=state,
            active_at=active_at,
            fired_at=fired_at,
            resolved_at=resolved_at,
            last_held_at=last_held_at,
            last_success_at=last_success_at,
            last_action=last_action,
            due=due,
            due_at=due_at,
            failures=failures,
            fire_count=fire_count,
            breach=breach,
            value=math.nan if value is None else value,
            takers=takers,
            held_value=held_value,
            breaches=_breaches(doc.get("breaches"), f"{where}.breaches"),
            fix=fix,
            unheld=unheld,
            gave_up=gave_up,
        )
    except ValueError as exc:  # a breach without a start, an owed action without a deadline
        raise StateError(f"{where}: {exc}") from None


def _parse_labels(raw: object, where: str) -> Labels:
    if not isinstance(raw, list):
        raise StateError(f"{where}: expected a list of [name, value] pairs")
    pairs = []
    for pair in raw:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            raise StateError(f"{where}: expected [name, value] pairs of strings, got {pair!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(sorted(pairs))


def _parse_series(raw: object, where: str, notes: list[str]) -> SeriesSnapshot:
    doc = _mapping(raw, where)
    placeholder = doc.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise StateError(f"{where}.placeholder: expected true or false")
    labels = _parse_labels(doc.get("labels"), f"{where}.labels")
    last_value = _value(doc.get("last_value"), f"{where}.last_value", notes)
    last_seen = _time(doc.get("last_seen"), f"{where}.last_seen")
    return SeriesSnapshot(
        labels=labels,
        placeholder=placeholder,
        last_value=last_value,
        last_seen=last_seen,
        base=_parse_level(doc.get("base"), f"{where}.base", notes),
        hard=None if doc.get("hard") is None else _parse_level(doc["hard"], f"{where}.hard", notes),
    )


def _optional_text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise StateError(f"{where}.{key}: expected a string, got {_show(value)}")
    return value


def _parse_rule(raw: object, where: str, notes: list[str]) -> SavedRule:
    entry = _mapping(raw, where)
    mark, seen_any, series = (entry.get("fingerprint"), entry.get("seen_any"), entry.get("series"))
    if not isinstance(mark, str) or not isinstance(seen_any, bool):
        raise StateError(f"{where}: expected a fingerprint string and seen_any")
    if not isinstance(series, list):
        raise StateError(f"{where}.series: expected a list")
    identity = _optional_text(entry, "identity", where)  # files of earlier versions lack
    hard_threshold = _optional_text(entry, "hard_threshold", where)  # these two
    kept = []
    for i, item in enumerate(series):
        try:
            kept.append(_parse_series(item, f"{where}.series[{i}]", notes))
        except StateError as exc:
            notes.append(f"{exc}: that series is not restored")
    return SavedRule(mark, RuleSnapshot(seen_any, tuple(kept), hard_threshold), identity)


def parse(data: object) -> SavedState:
    """Check a whole document; raise ``StateError`` saying what is wrong with it as a whole.

    A record that cannot be used (a rule's entry, a series) is left out, and a number out of
    range is clamped, each with a line in ``notes``: one bad record costs only itself."""
    doc = _mapping(data, "document")
    if doc.get("format") != FORMAT:
        raise StateError(f"not a metric-reader state file (format {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise StateError(f"unsupported version {doc.get('version')!r} (this one reads {VERSION})")
    written_at = _time(doc.get("written_at"), "written_at")
    if written_at is None:
        raise StateError("written_at is missing")
    dry_run = doc.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise StateError(f"dry_run: expected true or false, got {dry_run!r}")
    rules: dict[str, SavedRule] = {}
    notes: list[str] = []
    for name, raw in _mapping(doc.get("rules"), "rules").items():
        try:
            rules[name] = _parse_rule(raw, f"rules[{name!r}]", notes)
        except StateError as exc:
            notes.append(f"{exc}: that rule's state is not restored")
    return SavedState(written_at, dry_run, rules, tuple(notes))
