"""``STATE_FILE``: rule state that survives a restart.

``snapshot`` turns the rules' state into a JSON document and ``restore`` puts it back;
``StateFile`` reads the file and replaces it atomically; ``StateWriter`` keeps it up to date
without blocking polling. Timers run on the monotonic clock, whose origin is lost when the
process ends, so the file holds wall-clock times instead (``wall = now_wall - (now_mono -
mono)`` and back): a PENDING timer keeps its start and a backoff keeps counting from the
last successful call, however long the restart took.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
from loguru import logger

from .._config import LevelConfig, RuleConfig
from .._core import (
    EventKind,
    Labels,
    StateError,
    Throttle,
    format_duration,
    json_number,
    to_mono,
    to_wall,
)
from .._engine import (
    MAX_COUNT,
    MAX_RETRY_DELAY,
    AlertingRule,
    LevelMachine,
    Rule,
    RuleMachine,
    SeriesMachine,
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
)
"""The ``LevelMachine`` fields a state file holds; ``policy`` and ``level`` come from the
configuration, and ``in_flight`` is saved as the ``due`` it came from."""
UNSAVED_LEVEL_FIELDS = ("policy", "level", "in_flight", "cleared_at")
"""Not saved: the configuration's, the call running now (saved as ``due``), and where the
``keep_firing_for`` window started (after a restart it starts again: never shorter)."""


def fingerprint(config: RuleConfig) -> str:
    """What a rule means, hashed: its state is only restored into the same rule."""

    def level(config: LevelConfig | None) -> dict[str, Any] | None:
        if config is None:
            return None
        clear = config.clear_threshold
        return {
            "threshold": [config.threshold.op, config.threshold.number],
            "duration": config.duration,
            "backoff": config.backoff,
            "plugin": config.plugin,
            "keep_firing_for": config.keep_firing_for,
            "clear_threshold": None if clear is None else [clear.op, clear.number],
        }

    meaning = {
        "source": config.source.kind,
        "target": config.source.where,
        "reads": config.source.expression,
        "base": level(config.base),
        "hard": level(config.hard),
    }
    text = json.dumps(meaning, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- snapshot -------------------------------------------------------------------------------


class _ToWall:
    def __init__(self, now_mono: float, now_wall: float) -> None:
        self.now_mono, self.now_wall = now_mono, now_wall

    def __call__(self, mono: float | None) -> float | None:
        if mono is None:
            return None
        return round(to_wall(mono, self.now_mono, self.now_wall), 3)


def _level_doc(machine: LevelMachine, wall: _ToWall) -> dict[str, Any]:
    last = machine.last_action
    return {
        "state": machine.state.value,
        "active_at": wall(machine.active_at),
        "fired_at": wall(machine.fired_at),
        "resolved_at": wall(machine.resolved_at),
        "last_held_at": wall(machine.last_held_at),
        "last_success_at": wall(machine.last_success_at),
        "last_action": None
        if last is None
        else {"kind": last[0], "ok": last[1], "at": wall(last[2])},
        # An action in flight is not confirmed: it stays owed (``due``) until it finishes.
        "due": machine.due,
        "due_at": wall(machine.due_at) if machine.due is not None else None,
        "failures": machine.failures,
        "fire_count": machine.fire_count,
        "breach": machine.breach,
        "value": json_number(machine.value),
    }


def snapshot(rules: Iterable[Rule], now_mono: float, now_wall: float) -> dict[str, Any]:
    """The state of every rule that has a state machine, as a JSON-able document with
    wall-clock times (seconds since the epoch, to the millisecond)."""
    wall = _ToWall(now_mono, now_wall)
    saved: dict[str, Any] = {}
    for rule in rules:
        if not isinstance(rule, AlertingRule):
            continue
        machine = rule.machine
        saved[rule.name] = {
            "fingerprint": fingerprint(rule.config),
            "seen_any": machine.seen_any,
            "series": [
                {
                    "labels": [list(pair) for pair in series.labels],
                    "placeholder": series.placeholder,
                    "last_value": json_number(series.last_value),
                    "last_seen": wall(series.last_seen),
                    "base": _level_doc(series.base, wall),
                    "hard": None if series.hard is None else _level_doc(series.hard, wall),
                }
                for series in machine.series.values()
            ],
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "written_at": round(now_wall, 3),
        "dry_run": False,  # only dry runs of earlier versions wrote true
        "rules": saved,
    }


# --- reading a document back ----------------------------------------------------------------


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
    """A saved count; one beyond ``MAX_COUNT`` (``Infinity`` too) is read as ``MAX_COUNT``."""
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


@dataclass(frozen=True, slots=True)
class _SavedLevel:
    """One level as saved; times are wall clock."""

    state: State
    active_at: float | None
    fired_at: float | None
    resolved_at: float | None
    last_held_at: float | None
    last_success_at: float | None
    last_action: tuple[EventKind, bool, float] | None
    due: EventKind | None
    due_at: float | None
    failures: int
    fire_count: int
    breach: int
    value: float


@dataclass(frozen=True, slots=True)
class _SavedSeries:
    labels: Labels
    placeholder: bool
    last_value: float | None
    last_seen: float | None
    base: _SavedLevel
    hard: _SavedLevel | None


@dataclass(frozen=True, slots=True)
class _SavedRule:
    fingerprint: str
    seen_any: bool
    series: tuple[_SavedSeries, ...]


@dataclass(frozen=True, slots=True)
class _Saved:
    written_at: float
    dry_run: bool
    rules: dict[str, _SavedRule]
    notes: tuple[str, ...] = ()
    """Records dropped and numbers clamped while reading, one line each."""


def _parse_level(raw: object, where: str, notes: list[str]) -> _SavedLevel:
    doc = _mapping(raw, where)
    missing = [key for key in SAVED_LEVEL_FIELDS if key not in doc]
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
    level = _SavedLevel(
        state=state,
        active_at=_time(doc["active_at"], f"{where}.active_at"),
        fired_at=_time(doc["fired_at"], f"{where}.fired_at"),
        resolved_at=_time(doc["resolved_at"], f"{where}.resolved_at"),
        last_held_at=_time(doc["last_held_at"], f"{where}.last_held_at"),
        last_success_at=_time(doc["last_success_at"], f"{where}.last_success_at"),
        last_action=last_action,
        due=_kind(doc["due"], f"{where}.due"),
        due_at=_time(doc["due_at"], f"{where}.due_at"),
        failures=_count(doc["failures"], f"{where}.failures", notes),
        fire_count=_count(doc["fire_count"], f"{where}.fire_count", notes),
        breach=_count(doc["breach"], f"{where}.breach", notes),
        value=math.nan if value is None else value,
    )
    if (level.state is not State.OK or level.due is not None) and level.active_at is None:
        raise StateError(f"{where}: {level.state.value} with an action owed needs active_at")
    if level.due is not None and level.due_at is None:
        raise StateError(f"{where}: due {level.due} needs due_at")
    return level


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


def _parse_series(raw: object, where: str, notes: list[str]) -> _SavedSeries:
    doc = _mapping(raw, where)
    placeholder = doc.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise StateError(f"{where}.placeholder: expected true or false")
    return _SavedSeries(
        labels=_parse_labels(doc.get("labels"), f"{where}.labels"),
        placeholder=placeholder,
        last_value=_value(doc.get("last_value"), f"{where}.last_value", notes),
        last_seen=_time(doc.get("last_seen"), f"{where}.last_seen"),
        base=_parse_level(doc.get("base"), f"{where}.base", notes),
        hard=None if doc.get("hard") is None else _parse_level(doc["hard"], f"{where}.hard", notes),
    )


def _parse_rule(raw: object, where: str, notes: list[str]) -> _SavedRule:
    entry = _mapping(raw, where)
    mark, seen_any, series = (entry.get("fingerprint"), entry.get("seen_any"), entry.get("series"))
    if not isinstance(mark, str) or not isinstance(seen_any, bool):
        raise StateError(f"{where}: expected a fingerprint string and seen_any")
    if not isinstance(series, list):
        raise StateError(f"{where}.series: expected a list")
    kept = []
    for i, item in enumerate(series):
        try:
            kept.append(_parse_series(item, f"{where}.series[{i}]", notes))
        except StateError as exc:
            notes.append(f"{exc}: that series is not restored")
    return _SavedRule(mark, seen_any, tuple(kept))


def parse(data: object) -> _Saved:
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
    rules: dict[str, _SavedRule] = {}
    notes: list[str] = []
    for name, raw in _mapping(doc.get("rules"), "rules").items():
        try:
            rules[name] = _parse_rule(raw, f"rules[{name!r}]", notes)
        except StateError as exc:
            notes.append(f"{exc}: that rule's state is not restored")
    return _Saved(written_at, dry_run, rules, tuple(notes))


# --- restore --------------------------------------------------------------------------------


class _ToMono:
    """Wall clock back to monotonic, with these sanity rules:

    - A file written "in the future" (the wall clock went back, or the file is bad) is read
      as if it had been written now: every saved time moves back by the same amount, so the
      intervals between them (how long a breach had lasted) are kept.
    - Any saved time later than now after that is clamped to now; a retry deadline may be
      up to ``MAX_RETRY_DELAY`` ahead of now, no more.
    - An old file is restored as it is: timers count from the saved wall times. A breach
      that still holds at the next poll simply continues (a PENDING one whose duration has
      passed fires then, as after a gap in the data with ``missing_value_behavior = skip``);
      one that does not hold any more resolves normally, and a series absent for
      ``forget_after`` is ended and forgotten or kept as its missing-value behaviour says.
    """

    def __init__(self, now_mono: float, now_wall: float, written_at: float) -> None:
        self.now_mono, self.now_wall = now_mono, now_wall
        self.shift = max(0.0, written_at - now_wall)
        self.clamped = 0

    def __call__(self, wall: float | None, ahead: float = 0.0) -> float | None:
        if wall is None:
            return None
        wall = max(wall - self.shift, 0.0)  # a shift by a garbage written_at stops at 1970
        if wall > self.now_wall + ahead:
            wall = self.now_wall + ahead
            self.clamped += 1
        return to_mono(wall, self.now_mono, self.now_wall)


def _apply_level(machine: LevelMachine, saved: _SavedLevel, mono: _ToMono) -> None:
    machine.state = saved.state
    machine.active_at = mono(saved.active_at)
    machine.fired_at = mono(saved.fired_at)
    machine.resolved_at = mono(saved.resolved_at)
    machine.last_held_at = mono(saved.last_held_at)
    machine.last_success_at = mono(saved.last_success_at)
    if saved.last_action is None:
        machine.last_action = None
    else:
        kind, ok, at = saved.last_action
        finished = mono(at)
        assert finished is not None
        machine.last_action = (kind, ok, finished)
    machine.due = saved.due
    due_at = mono(saved.due_at, ahead=MAX_RETRY_DELAY)
    machine.due_at = due_at if saved.due is not None and due_at is not None else 0.0
    machine.failures = saved.failures
    machine.fire_count = saved.fire_count
    machine.breach = saved.breach
    machine.value = saved.value
    machine.in_flight = None


def _apply_rule(
    machine: RuleMachine, saved: _SavedRule, mono: _ToMono, name: str, notes: list[str]
) -> str | None:
    machine.series.clear()
    machine.seen_any = saved.seen_any
    pending = firing = owed = 0
    for series in saved.series:
        if (series.hard is None) != (machine.hard is None):
            notes.append(f"rules[{name!r}]: series {dict(series.labels)}: its saved levels "
                         "do not match the rule: that series is not restored")  # fmt: skip
            continue
        target: SeriesMachine = machine.series_for(series.labels, series.placeholder)
        target.last_value = series.last_value
        target.last_seen = mono(series.last_seen)
        _apply_level(target.base, series.base, mono)
        if target.hard is not None and series.hard is not None:
            _apply_level(target.hard, series.hard, mono)
        for level in target.levels():
            pending += level.state is State.PENDING
            firing += level.state is State.FIRING
            owed += level.due is not None
    if not (pending or firing or owed):
        return None
    parts = [f"{pending} pending", f"{firing} firing"]
    if owed:
        parts.append(f"{owed} action(s) owed")
    return f"rule {name!r}: restored {len(saved.series)} series (" + ", ".join(parts) + ")"


def restore(
    rules: Iterable[Rule], data: object, now_mono: float, now_wall: float, *, dry_run: bool = False
) -> list[str]:
    """Put the state saved in ``data`` back into ``rules``; return what was restored or
    dropped, one message each. Raise ``StateError`` (changing nothing) if ``data`` is not a
    valid state document.

    A bad record costs only itself: a series whose record cannot be used (a time before
    1970 or NaN, a count that is not a whole number, an unknown state, levels the rule does
    not have) is not restored, and a count beyond 2**53-1, a time beyond the year 5138
    (``Infinity`` too) or a value beyond a float is clamped; all of it is said in one
    warning, and the rest of the file is restored. No count restored this way can overflow
    the state machine.

    A rule whose meaning changed between the runs (what it reads, thresholds, durations,
    backoffs, plugins) gets none of its saved state: a changed threshold must not inherit
    an old breach. A rule that is not configured any more is dropped; both are logged.

    State saved by a dry run is not restored into a real run (``dry_run`` False): its
    actions were only logged, so the real run must not take them as done."""
    saved = parse(data)
    if saved.dry_run and not dry_run:
        return ["the saved state comes from a dry run (DRY_RUN=true): not restored"]
    configured = {rule.name: rule for rule in rules if isinstance(rule, AlertingRule)}
    notes = list(saved.notes)
    mono = _ToMono(now_mono, now_wall, saved.written_at)
    age = now_wall - min(saved.written_at, now_wall)
    stamp = datetime.fromtimestamp(saved.written_at, UTC).isoformat(timespec="seconds")
    messages = [f"restoring state saved at {stamp} ({format_duration(round(age, 3))} ago)"]
    if mono.shift:
        messages.append(
            f"the state file was written {format_duration(round(mono.shift, 3))} in the future "
            "(the wall clock went back?): its times are taken as if it was written now"
        )
    for name, entry in saved.rules.items():
        rule = configured.get(name)
        if rule is None:
            messages.append(f"rule {name!r} is not configured any more: its saved state dropped")
            continue
        if entry.fingerprint != fingerprint(rule.config):
            messages.append(
                f"rule {name!r} changed since its state was saved: its saved state dropped"
            )
            continue
        message = _apply_rule(rule.machine, entry, mono, name, notes)
        if message is not None:
            messages.append(message)
    if mono.clamped:
        messages.append(f"{mono.clamped} saved time(s) later than now clamped to now")
    _warn_unusable(notes)
    return messages


NOTES_SHOWN = 5


def _warn_unusable(notes: Sequence[str]) -> None:
    """One warning for every record left out or number clamped, with the first few."""
    if not notes:
        return
    shown = "; ".join(notes[:NOTES_SHOWN])
    if len(notes) > NOTES_SHOWN:
        shown += f"; and {len(notes) - NOTES_SHOWN} more"
    logger.bind(records=len(notes)).warning(
        "state file: {} saved record(s) not usable as saved: {}", len(notes), shown
    )


# --- the file -------------------------------------------------------------------------------


def _utc_stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%SZ")


class StateFile:
    """The state file on disk: read at start, replaced atomically on every save.

    A save writes a temporary file in the same directory, flushes and fsyncs it, renames it
    over the file and fsyncs the directory, so after a crash the file holds either the
    previous or the new document. A file that cannot be read or understood is set aside as
    ``<name>.corrupt-<timestamp>`` with one warning, and the service starts without it. Only
    one service writes a state file: it holds a lock on ``<name>.lock`` (``_state_lock``).

    ``read_only`` (a dry run): ``load`` neither removes temporary files (the real service
    may be writing one) nor sets an unusable file aside, and ``save`` is refused."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only

    def _temporaries(self) -> list[Path]:
        return list(self.path.parent.glob(glob.escape(f".{self.path.name}.") + "*.tmp"))

    def load(self) -> dict[str, Any] | None:
        """The saved document; ``None`` when there is none or it is unusable (then it has
        been reported and set aside). Temporary files left by a crash are removed."""
        for leftover in [] if self.read_only else self._temporaries():
            with contextlib.suppress(OSError):
                leftover.unlink()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.set_aside(f"cannot read it: {exc.strerror or exc}")
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:  # also UnicodeDecodeError
            self.set_aside(f"not valid JSON: {exc}")
            return None
        try:
            parse(data)
        except StateError as exc:
            self.set_aside(str(exc))
            return None
        return cast(dict[str, Any], data)

    def save(self, data: Mapping[str, Any]) -> None:
        """Replace the file with ``data``, atomically and durably. Blocking; raises OSError."""
        if self.read_only:
            raise PermissionError(f"{self.path} is read only here (a dry run)")
        text = json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n"
        directory = self.path.parent
        temporary = directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(text.encode())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def set_aside(self, reason: str) -> Path | None:
        """Rename an unusable file to ``<name>.corrupt-<timestamp>`` with one warning; return
        the new name (None if even that failed: the next save replaces the file)."""
        if self.read_only:
            logger.bind(state_file=str(self.path), reason=reason).warning(
                "state file {} is unusable ({}); the dry run leaves it as it is and starts "
                "without saved state",
                self.path,
                reason,
            )
            return None
        stamp = _utc_stamp(time.time())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        number = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{number}")
            number += 1
        log = logger.bind(state_file=str(self.path), reason=reason)
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning(
                "state file {} is unusable ({}) and could not be set aside ({}); "
                "starting without saved state",
                self.path,
                reason,
                exc.strerror or exc,
            )
            return None
        log.bind(set_aside_as=str(aside)).warning(
            "state file {} is unusable ({}); set aside as {}; starting without saved state",
            self.path,
            reason,
            aside.name,
        )
        return aside


class StateWriter:
    """Keeps the state file up to date without ever blocking polling.

    ``changed()`` (cheap, synchronous) says the state changed; ``run()`` writes the latest
    snapshot at once, in a worker thread. Changes during a write cause one more write after
    it, however many they are. ``flush()`` writes now and returns when it is on disk. A
    failing write is logged (throttled) and tried again at the next change or flush.

    Writes follow state changes (transitions, actions handed out and finished), not every
    poll, so after a SIGKILL the latest value, ``last_seen`` and ``last_held_at`` may be a
    few polls old: a ``keep_firing_for`` window may then end early by that much. A graceful
    stop writes everything. What a SIGKILL can cost (the at-least-once edge): an action that
    was running has not been confirmed, so it is saved as still owed and runs again after
    the restart (if the breach still holds; a fire whose breach ended meanwhile is not
    re-run, and its resolve is owed only when a call of the breach is known to have
    succeeded or was running when the breach ended). A success is flushed at once, so it
    is never run again inside its backoff.

    ``dry_run``: the file is only read, by ``restore``, to start from where the real service
    left off; nothing is ever written, renamed or locked, so nothing a dry run only logged
    is taken as done by a later real run. (Files written by a dry run of an earlier version
    are marked ``dry_run`` and a real run does not restore them.)
    """

    def __init__(
        self,
        state_file: StateFile,
        rules: Sequence[Rule],
        *,
        dry_run: bool = False,
        clock: Callable[[], float] = anyio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.file = StateFile(state_file.path, read_only=True) if dry_run else state_file
        self.rules = rules
        self.dry_run = dry_run
        self.clock = clock
        self.wall_clock = wall_clock
        self.writes = 0
        """Successful writes so far."""
        self._dirty = False
        self._wake: anyio.Event | None = None
        self._lock: anyio.Lock | None = None
        self._errors = Throttle(str(state_file.path), "ERROR", "cannot write the state file")

    async def restore(self) -> list[str]:
        """Load the file and restore what it holds into the rules (logged); a file that is
        unusable is set aside. Then the current state is written back (not in a dry run)."""
        log = logger.bind(state_file=str(self.file.path))
        if self.dry_run:
            log.info("DRY_RUN: state file {} is read to start from, never written", self.file.path)
        data = await anyio.to_thread.run_sync(self.file.load)
        messages: list[str] = []
        if data is None:
            log.info("no saved state in {}: starting afresh", self.file.path)
        else:
            try:
                messages = restore(
                    self.rules, data, self.clock(), self.wall_clock(), dry_run=self.dry_run
                )
            except StateError as exc:
                await anyio.to_thread.run_sync(self.file.set_aside, str(exc))
            for message in messages:
                log.info("{}", message)
        self.changed()
        return messages

    def changed(self) -> None:
        if self.dry_run:
            return
        self._dirty = True
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Write after each change until cancelled (a dry run: return at once)."""
        if self.dry_run:
            return
        self._wake = anyio.Event()
        if self._dirty:
            self._wake.set()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._write()

    async def flush(self) -> None:
        """Write the current state now (after a write in progress, if there is one)."""
        if self.dry_run:
            return
        self._dirty = True
        await self._write()

    async def _write(self) -> None:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if not self._dirty:
                return  # a write that started after the change already has it
            self._dirty = False
            data = snapshot(self.rules, self.clock(), self.wall_clock())
            try:
                await anyio.to_thread.run_sync(self.file.save, data)
            except Exception as exc:
                self._dirty = True
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self._errors.report(self.clock(), f"{type(exc).__name__}: {reason}")
                return
            self.writes += 1
            failures = self._errors.clear()
            if failures:
                logger.bind(state_file=str(self.file.path), failed_writes=failures).info(
                    "state file written again"
                )
