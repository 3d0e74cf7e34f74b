"""What a restart keeps of a rule's state machines, as plain values, and taking it back.

``snapshot_of`` reads a ``RuleMachine`` into frozen values; ``restore_into`` puts such
values back into a machine, in place of its series, so that it goes on as the saved one
would have. Times in
a snapshot are on whatever clock its maker used: the engine makes and takes them on the
monotonic clock of the process, and ``retimed`` moves every time of a snapshot to another
clock, so whoever keeps snapshots across processes (the state file) can hold them on the
wall clock. No I/O and no clock is read here: ``restore_into`` is given ``now``.

The values are checked on construction (a count beyond ``MAX_COUNT``, a breach without a
start, an owed action without a deadline, a time that is not finite is refused), and
``restore_into`` clamps what only ``now`` can judge: nothing restored happened later than
now, and a retry deadline lies at most ``MAX_RETRY_DELAY`` ahead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from .._core import EventKind, Labels
from ._fix import PendingFix
from ._rule_machine import RuleMachine
from ._state import MAX_COUNT, MAX_RETRY_DELAY, LevelMachine, State, Transition

LEVEL_FIELDS_NOT_IN_SNAPSHOT = ("policy", "level", "in_flight", "cleared_at", "checks")
"""The ``LevelMachine`` fields a ``LevelSnapshot`` leaves out: the policy and the level come
from the configuration; the call running now is kept as the ``due`` it came from (it is not
confirmed, so it stays owed); and where the ``keep_firing_for`` window started is not kept:
after a restore the window starts again, never shorter; nor what came of fixes not yet
handed out (the step takes them at the evaluation that made them)."""

Retime = Callable[[float], float]
"""A time on one clock to the same moment on another."""


def _retime(convert: Retime, at: float | None) -> float | None:
    return None if at is None else convert(at)


@dataclass(frozen=True, slots=True)
class LevelSnapshot:
    """One level (base or hard) of one series: every ``LevelMachine`` field but those in
    ``LEVEL_FIELDS_NOT_IN_SNAPSHOT``."""

    state: State
    active_at: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    last_held_at: float | None = None
    last_success_at: float | None = None
    last_action: tuple[EventKind, bool, float] | None = None
    due: EventKind | None = None
    due_at: float | None = None
    """When the owed action may run; None when nothing is owed."""
    failures: int = 0
    fire_count: int = 0
    breach: int = 0
    value: float = math.nan
    takers: tuple[str, ...] | None = None
    """The plugins that took the breach's fire and repeats, where its resolve goes; None:
    not known (a snapshot made before they were kept): the resolve goes where a fire would
    go now."""
    held_value: float | None = None
    """The value at the last evaluation at which the condition held, which the actions
    carry; None: not known, taken as ``value``."""
    breaches: tuple[bool, ...] | None = None
    """Debounce: whether each of the last evaluations breached, oldest first; None: not
    kept (no debounce, or a snapshot made before it was kept): they count as the state
    says."""
    fix: PendingFix | None = None
    """The fix being verified (``verify_within``), if any."""
    unheld: int = 0
    """Fixes of the breach that did not hold."""
    gave_up: bool = False
    """The loop breaker gave up on the breach."""

    def __post_init__(self) -> None:
        if not (
            0 <= self.failures <= MAX_COUNT
            and 0 <= self.fire_count <= MAX_COUNT
            and 0 <= self.breach <= MAX_COUNT
            and 0 <= self.unheld <= MAX_COUNT
        ):
            raise ValueError(self._problem())
        last = self.last_action
        for at in (
            self.active_at,
            self.fired_at,
            self.resolved_at,
            self.last_held_at,
            self.last_success_at,
            None if last is None else last[2],
            self.due_at,
            None if self.fix is None else self.fix.deadline,
        ):
            if at is not None and not math.isfinite(at):
                raise ValueError(self._problem())
        if (self.state is not State.OK or self.due is not None) and self.active_at is None:
            raise ValueError(f"{self.state.value} with an action owed needs active_at")
        if self.due is not None and self.due_at is None:
            raise ValueError(f"due {self.due} needs due_at")

    def _problem(self) -> str:
        """Which count or time ``__post_init__`` found out of range: looked for by name only
        then, as a save snapshots every level of every rule."""
        for name in ("failures", "fire_count", "breach", "unheld"):
            count = getattr(self, name)
            if not 0 <= count <= MAX_COUNT:
                return f"{name}: {count} is not a count from 0 to {MAX_COUNT}"
        last = self.last_action
        for name, at in (
            ("active_at", self.active_at),
            ("fired_at", self.fired_at),
            ("resolved_at", self.resolved_at),
            ("last_held_at", self.last_held_at),
            ("last_success_at", self.last_success_at),
            ("last_action.at", None if last is None else last[2]),
            ("due_at", self.due_at),
            ("fix.deadline", None if self.fix is None else self.fix.deadline),
        ):
            if at is not None and not math.isfinite(at):
                return f"{name}: {at} is not a time"
        return "a count or a time is out of range"

    def retimed(self, convert: Retime) -> LevelSnapshot:
        """The same level with every time moved by ``convert`` to another clock."""
        last, fix = self.last_action, self.fix
        return replace(
            self,
            active_at=_retime(convert, self.active_at),
            fired_at=_retime(convert, self.fired_at),
            resolved_at=_retime(convert, self.resolved_at),
            last_held_at=_retime(convert, self.last_held_at),
            last_success_at=_retime(convert, self.last_success_at),
            last_action=None if last is None else (last[0], last[1], convert(last[2])),
            due_at=_retime(convert, self.due_at),
            fix=None if fix is None else replace(fix, deadline=convert(fix.deadline)),
        )


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """One series of a rule: its levels, and what its missing values fall back on."""

    labels: Labels
    base: LevelSnapshot
    hard: LevelSnapshot | None = None
    placeholder: bool = False
    last_value: float | None = None
    last_seen: float | None = None

    def __post_init__(self) -> None:
        if self.last_seen is not None and not math.isfinite(self.last_seen):
            raise ValueError(f"last_seen: {self.last_seen} is not a time")

    def retimed(self, convert: Retime) -> SeriesSnapshot:
        return replace(
            self,
            base=self.base.retimed(convert),
            hard=None if self.hard is None else self.hard.retimed(convert),
            last_seen=_retime(convert, self.last_seen),
        )


@dataclass(frozen=True, slots=True)
class RuleSnapshot:
    """Every series of one rule, in the order the rule tracks them."""

    seen_any: bool
    series: tuple[SeriesSnapshot, ...] = ()
    hard_threshold: str | None = None
    """The hard level's threshold as configured when the snapshot was made (None: the rule
    had no hard level, or it is not known): what the resolve of a hard level says when it
    is restored into a rule that has none any more."""

    def retimed(self, convert: Retime) -> RuleSnapshot:
        series = tuple(one.retimed(convert) for one in self.series)
        return RuleSnapshot(self.seen_any, series, self.hard_threshold)


@dataclass(frozen=True, slots=True)
class Restored:
    """What ``restore_into`` did, for whoever reports it."""

    pending: int
    firing: int
    owed: int
    """Levels restored PENDING, FIRING, and with an action owed."""
    clamped: int
    """Times later than now taken as now (a retry deadline: as ``MAX_RETRY_DELAY`` ahead)."""
    ended: tuple[Transition, ...] = ()
    """Breaches of a hard level saved that the rule no longer has, ended at now: each owes
    its resolve if it had acted (``RuleMachine.remove_hard``)."""


def _level_snapshot(machine: LevelMachine) -> LevelSnapshot:
    # Positional, in the order of the fields: a save snapshots every level of every rule.
    return LevelSnapshot(
        machine.state,
        machine.active_at,
        machine.fired_at,
        machine.resolved_at,
        machine.last_held_at,
        machine.last_success_at,
        machine.last_action,
        # An action in flight is not confirmed: it stays owed (``due``) until it finishes.
        machine.due,
        machine.due_at if machine.due is not None else None,
        machine.failures,
        machine.fire_count,
        machine.breach,
        machine.value,
        machine.takers,
        machine.held_value,
        None if machine.breaches is None else tuple(machine.breaches),
        machine.fix,
        machine.unheld,
        machine.gave_up,
    )


def snapshot_of(machine: RuleMachine, hard_threshold: str | None = None) -> RuleSnapshot:
    """The state of every series of ``machine``, its times on the machine's clock;
    ``hard_threshold``: the text of the rule's hard threshold (see ``RuleSnapshot``)."""
    return RuleSnapshot(
        machine.seen_any,
        tuple(
            SeriesSnapshot(
                series.labels,
                _level_snapshot(series.base),
                None if series.hard is None else _level_snapshot(series.hard),
                series.placeholder,
                series.last_value,
                series.last_seen,
            )
            for series in machine.series.values()
        ),
        hard_threshold,
    )


class _NotAfter:
    """Clamps restored times to ``now`` (plus ``ahead``), counting the times it clamped."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.clamped = 0

    def __call__(self, at: float | None, ahead: float = 0.0) -> float | None:
        return None if at is None else self.at_most(at, ahead)

    def at_most(self, at: float, ahead: float = 0.0) -> float:
        if at > self.now + ahead:
            self.clamped += 1
            return self.now + ahead
        return at


def _restore_level(machine: LevelMachine, saved: LevelSnapshot, clamp: _NotAfter) -> None:
    machine.state = saved.state
    machine.active_at = clamp(saved.active_at)
    machine.fired_at = clamp(saved.fired_at)
    machine.resolved_at = clamp(saved.resolved_at)
    machine.last_held_at = clamp(saved.last_held_at)
    machine.last_success_at = clamp(saved.last_success_at)
    if saved.last_action is None:
        machine.last_action = None
    else:
        kind, ok, at = saved.last_action
        machine.last_action = (kind, ok, clamp.at_most(at))
    machine.due = saved.due
    due_at = clamp(saved.due_at, ahead=MAX_RETRY_DELAY)
    machine.due_at = due_at if saved.due is not None and due_at is not None else 0.0
    machine.failures = saved.failures
    machine.fire_count = saved.fire_count
    machine.breach = saved.breach
    machine.value = saved.value
    machine.takers = saved.takers
    machine.held_value = saved.value if saved.held_value is None else saved.held_value
    machine.breaches = None if saved.breaches is None else list(saved.breaches)
    machine.fix = saved.fix  # a deadline ahead stays ahead: verify_within may be long
    machine.unheld = saved.unheld
    machine.gave_up = saved.gave_up
    machine.in_flight = None
    machine.cleared_at = None


def restore_into(machine: RuleMachine, snapshot: RuleSnapshot, now: float) -> Restored:
    """Replace the series of ``machine`` by those of ``snapshot`` (its times on the
    machine's clock), at ``now``: timers go on where they were, and an action in flight
    when the snapshot was made is owed again. The machine's settings may differ from
    those the snapshot was made under; the series are judged by the machine's from their
    next observation, as after a reload (``RuleMachine.reconfigure``): a hard level the
    snapshot lacks starts idle, and one the machine lacks is restored, then removed (its
    breach ends, owing its resolve if it had acted)."""
    clamp = _NotAfter(now)
    machine.series.clear()
    machine.seen_any = snapshot.seen_any
    for saved in snapshot.series:
        series = machine.series_for(saved.labels, saved.placeholder)
        series.last_value = saved.last_value
        series.last_seen = clamp(saved.last_seen)
        _restore_level(series.base, saved.base, clamp)
        if saved.hard is not None:
            if series.hard is None:  # never judged again: only its retry delay counts
                series.hard = LevelMachine(machine.base, "hard")
            _restore_level(series.hard, saved.hard, clamp)
    ended = machine.remove_hard(now) if machine.hard is None else []
    pending = firing = owed = 0
    for series in machine.series.values():
        for level in series.levels():
            pending += level.state is State.PENDING
            firing += level.state is State.FIRING
            owed += level.due is not None
    return Restored(pending, firing, owed, clamp.clamped, tuple(ended))
