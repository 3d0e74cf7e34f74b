"""``STATE_FILE``: rule state that survives a restart.

``snapshot`` turns the rules' state into a JSON document and ``restore`` puts it back;
``StateWriter`` keeps the file up to date without blocking polling. Each rule makes and
takes its own state (``AlertingRule.snapshot`` and ``restore``, on the monotonic clock);
the document's format is ``_state_format``'s and the file on disk ``_state_file``'s. What
is done here is what joins them: timers run on the monotonic clock, whose origin is lost
when the process ends, so the file holds wall-clock times instead (``wall = now_wall -
(now_mono - mono)`` and back): a PENDING timer keeps its start and a backoff keeps counting
from the last successful call, however long the restart took. A rule's state is restored
into the rule of the same identity (``Rule.identity_digest``), as a reload keeps it, and
judged by that rule's settings from its next evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio

from .._config import LevelConfig, RuleConfig
from .._core import StateError, Throttle, format_duration, logger, to_mono, to_wall
from .._engine import AlertingRule, Governor, Rule, State
from ._state_file import StateFile
from ._state_format import SavedRule, document, parse

__all__ = ["StateFile", "StateWriter", "fingerprint", "restore", "snapshot"]


def fingerprint(config: RuleConfig, *, with_plugins: bool = False) -> str:
    """What a rule means (what it reads, thresholds, durations, backoffs), hashed.

    Earlier versions restored a rule's state only into a rule of the same fingerprint, and
    wrote no identity: an entry without one is still restored that way. This version
    restores by identity, and writes the fingerprint too, so that an earlier version
    restores an unchanged rule. ``with_plugins``: the form of the versions before a resolve
    went to the plugins that took the fire, which a restore still accepts."""

    def level(config: LevelConfig | None) -> dict[str, Any] | None:
        if config is None:
            return None
        clear = config.clear_threshold
        out = {
            "threshold": [config.threshold.op, config.threshold.number],
            "duration": config.duration,
            "backoff": config.backoff,
            "keep_firing_for": config.keep_firing_for,
            "clear_threshold": None if clear is None else [clear.op, clear.number],
        }
        if with_plugins:
            out["plugin"] = config.plugin
        return out

    meaning = {
        "source": config.source.kind,
        "target": config.source.where,
        "reads": config.source.expression,
        "base": level(config.base),
        "hard": level(config.hard),
    }
    text = json.dumps(meaning, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _same_rule(saved: str, config: RuleConfig) -> bool:
    """Whether the fingerprint ``saved`` is that of ``config``, as this version or an
    earlier one wrote it."""
    return saved in (fingerprint(config), fingerprint(config, with_plugins=True))


# --- snapshot -------------------------------------------------------------------------------


class _ToWall:
    def __init__(self, now_mono: float, now_wall: float) -> None:
        self.now_mono, self.now_wall = now_mono, now_wall

    def __call__(self, mono: float | None) -> float | None:
        if mono is None:
            return None
        return round(to_wall(mono, self.now_mono, self.now_wall), 3)


def snapshot(rules: Iterable[Rule], now_mono: float, now_wall: float) -> dict[str, Any]:
    """The state of every rule that has a state machine, as a JSON-able document with
    wall-clock times (seconds since the epoch, to the millisecond)."""
    return _document(_take(rules), now_mono, now_wall)


def _take(rules: Iterable[Rule]) -> dict[str, SavedRule]:
    """The state of every rule that has a state machine, at this moment. The snapshots are
    frozen: making the document of them can wait for a worker thread."""
    return {
        rule.name: SavedRule(fingerprint(rule.config), rule.snapshot(), rule.identity_digest)
        for rule in rules
        if isinstance(rule, AlertingRule)
    }


def _document(saved: dict[str, SavedRule], now_mono: float, now_wall: float) -> dict[str, Any]:
    return document(saved, now_wall, _ToWall(now_mono, now_wall))


# --- restore --------------------------------------------------------------------------------


class _ToMono:
    """Wall clock back to monotonic, with these sanity rules:

    - A file written "in the future" (the wall clock went back, or the file is bad) is read
      as if it had been written now: every saved time moves back by the same amount, so the
      intervals between them (how long a breach had lasted) are kept.
    - Any saved time later than now after that is clamped to now by the rule that takes it
      (``AlertingRule.restore``); a retry deadline may be up to ``MAX_RETRY_DELAY`` ahead of
      now, no more.
    - An old file is restored as it is: timers count from the saved wall times. A breach
      that still holds at the next poll simply continues (a PENDING one whose duration has
      passed fires then, as after a gap in the data with ``missing_value_behavior = skip``);
      one that does not hold any more resolves normally, and a series absent for
      ``forget_after`` is ended and forgotten or kept as its missing-value behaviour says.
    """

    def __init__(self, now_mono: float, now_wall: float, written_at: float) -> None:
        self.now_mono, self.now_wall = now_mono, now_wall
        self.shift = max(0.0, written_at - now_wall)

    def __call__(self, wall: float) -> float:
        wall = max(wall - self.shift, 0.0)  # a shift by a garbage written_at stops at 1970
        return to_mono(wall, self.now_mono, self.now_wall)


def restore(
    rules: Iterable[Rule], data: object, now_mono: float, now_wall: float, *, dry_run: bool = False
) -> list[str]:
    """Put the state saved in ``data`` back into ``rules``; return what was restored or
    dropped, one message each. Raise ``StateError`` (changing nothing) if ``data`` is not a
    valid state document.

    A bad record costs only itself: a series whose record cannot be used (a time before
    1970 or NaN, a count that is not a whole number, an unknown state) is not restored, and
    a count beyond 2**53-1, a time beyond the year 5138 (``Infinity`` too) or a value
    beyond a float is clamped; all of it is said in one warning, and the rest of the file
    is restored. No count restored this way can overflow the state machine.

    A restart keeps what a reload keeps: a rule's saved state goes to the configured rule
    of the same identity (see ``_pair``), whatever else changed between the runs
    (annotations, routes, plugins, thresholds, durations, backoffs, what it reads), and is
    judged by that rule's settings from its next evaluation (``AlertingRule.restore``).
    The state of a rule not configured any more, or of another identity now, is dropped
    (logged): its breaches are not resolved, as the configuration that would say what their
    resolves are is gone; a warning names the rules that leave a breach some plugin took
    without its resolve.

    State saved by a dry run is not restored into a real run (``dry_run`` False): its
    actions were only logged, so the real run must not take them as done."""
    saved = parse(data)
    if saved.dry_run and not dry_run:
        return ["the saved state comes from a dry run (DRY_RUN=true): not restored"]
    configured = [rule for rule in rules if isinstance(rule, AlertingRule)]
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
    pairs = _pair(configured, saved.rules)
    names = {rule.name for rule in configured}
    clamped = 0
    for name, entry in saved.rules.items():
        rule = pairs.get(name)
        if rule is None:
            messages.append(_dropped(name, entry, name in names))
            _warn_unresolved(name, entry)
            continue
        restored = rule.restore(entry.state.retimed(mono), now_mono)
        clamped += restored.clamped
        if not (restored.pending or restored.firing or restored.owed):
            continue
        parts = [f"{restored.pending} pending", f"{restored.firing} firing"]
        if restored.owed:
            parts.append(f"{restored.owed} action(s) owed")
        into = "" if rule.name == name else f" into rule {rule.name!r} (the same rule, renamed)"
        messages.append(
            f"rule {name!r}: restored {len(entry.state.series)} series{into} ("
            + ", ".join(parts)
            + ")"
        )
    if clamped:
        messages.append(f"{clamped} saved time(s) later than now clamped to now")
    _warn_unusable(notes)
    return messages


def _pair(rules: Sequence[AlertingRule], saved: Mapping[str, SavedRule]) -> dict[str, AlertingRule]:
    """The configured rule each saved entry (by its name) is restored into, as a reload
    matches the old rules with the new (``_engine.carry_over``): the rule of the same
    identity; of two entries of one identity, a rule takes the one of its name, else the
    first. An entry an earlier version wrote (without identity) goes to the rule of its
    name if its fingerprint is that rule's, in this version's form or the older one."""
    by_identity: dict[str, list[str]] = {}
    for name, entry in saved.items():
        if entry.identity is not None:
            by_identity.setdefault(entry.identity, []).append(name)
    pairs: dict[str, AlertingRule] = {}
    for rule in rules:
        found = by_identity.get(rule.identity_digest)
        if found:
            name = rule.name if rule.name in found else found[0]
            found.remove(name)
            pairs[name] = rule
            continue
        old = saved.get(rule.name)
        if old is not None and old.identity is None and _same_rule(old.fingerprint, rule.config):
            pairs[rule.name] = rule
    return pairs


def _dropped(name: str, entry: SavedRule, name_configured: bool) -> str:
    if not name_configured:
        return f"rule {name!r} is not configured any more: its saved state dropped"
    if entry.identity is None:
        return f"rule {name!r} changed since its state was saved: its saved state dropped"
    return (
        f"rule {name!r} is another rule now (another name, or for an alert of a rule file "
        "another group or other labels): its saved state dropped"
    )


def _warn_unresolved(name: str, entry: SavedRule) -> None:
    """Say when a dropped rule's state held breaches some plugin took (or a resolve owed):
    no resolve is sent for them."""
    acted = sum(
        1
        for series in entry.state.series
        for level in (series.base, series.hard)
        if level is not None
        and (
            level.due == "resolve"
            or (level.state is State.FIRING and (level.fire_count > 0 or bool(level.takers)))
        )
    )
    if acted:
        logger.bind(rule=name, series=acted).warning(
            "state file: rule {!r} had {} firing breach(es) a plugin acted on (or a resolve "
            "owed) and is not configured any more, or is another rule now: no resolve is sent "
            "for them",
            name,
            acted,
        )


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


# --- keeping the file up to date ------------------------------------------------------------


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
        governor: Governor | None = None,
    ) -> None:
        """``governor``: its budgets, breakers, silences and pause are kept too."""
        self.governor = governor
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
                if self.governor is not None and isinstance(data, dict) and "governor" in data:
                    messages += self.governor.restore(data["governor"], self.wall_clock())
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
            # Only taking the snapshots reads the rules: the rest runs in the worker thread.
            saved, now_mono, now_wall = _take(self.rules), self.clock(), self.wall_clock()
            governed = None if self.governor is None else self.governor.export()
            try:
                await anyio.to_thread.run_sync(self._save, saved, now_mono, now_wall, governed)
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

    def _save(
        self,
        saved: dict[str, SavedRule],
        now_mono: float,
        now_wall: float,
        governed: dict[str, object] | None = None,
    ) -> None:
        data = _document(saved, now_mono, now_wall)
        if governed is not None:
            data["governor"] = governed
        self.file.save(data)
