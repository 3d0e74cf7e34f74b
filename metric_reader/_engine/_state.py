"""The state machine: observations of one rule in, actions out.

Pure code, no I/O and no clock of its own: every call is given ``now``, a monotonic time in
seconds, so tests drive it with a fake clock. Modelled on Prometheus' ``rules/alerting.go``:
each series of a rule has, per level, an explicit ``state`` with ``active_at`` (when the
breach began), ``fired_at`` and ``resolved_at``.

On top of the alert state each level keeps the bookkeeping of its action: which action is
owed (``due``), from when (``due_at``), which one is running (``in_flight``, at most one), how
many succeeded in this breach (``fire_count``) and when the last one did, and which plugins
took its fire and repeats (``takers``: its resolve goes to them). The service asks for owed
actions with ``take_due``, runs them, and reports the outcome with ``took`` for each plugin
that took it and ``finish`` once; a failed action stays owed and is retried with
exponential backoff.

The machines of one series are here; all the series of a rule are ``_rule_machine``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum

from .._config import LevelConfig, MissingValueBehavior
from .._core import EventKind, Labels, Level, Threshold, record, record_field, record_replace
from ._fix import FixCheck, FixResult, PendingFix, judge
from ._recent import Recent

RESOLVE = MissingValueBehavior.RESOLVE

MAX_RETRY_DELAY = 300.0
VERIFY_READ_GRACE = 300.0
"""A fix judged by a ``verify_query`` that could not be read this long after its deadline
is judged by the level's own condition: a query that keeps failing must not hold the
level's repeats back for ever."""
DEFAULT_FORGET_AFTER = 600.0
MAX_COUNT = 2**53 - 1
"""Counters stop here: the largest whole number every JSON reader (a status page, a plugin,
the state file) keeps exactly. Unreachable by counting, so only a restored count meets it."""
TIME_EPSILON = 1e-6
"""Two times closer than a microsecond are the same moment. Poll ticks are floats
(``start + k * interval``), so a duration that is a multiple of the interval may measure a
few rounding errors short of itself; it must still count as reached."""


def reached(elapsed: float, wait: float) -> bool:
    """Whether ``elapsed`` seconds amount to ``wait`` (within ``TIME_EPSILON``)."""
    return elapsed >= wait - TIME_EPSILON


def retry_delay(first: float, failures: int) -> float:
    """The delay after ``failures`` failed tries in a row: ``first``, doubled per further
    failure, at most ``MAX_RETRY_DELAY``. The doubling stops before the cap is far behind,
    so no number of failures can overflow it."""
    doublings = min(max(failures - 1, 0), 64)
    return min(first * 2.0**doublings, MAX_RETRY_DELAY)


def count_up(count: int) -> int:
    """``count + 1``, staying at ``MAX_COUNT``."""
    return count + 1 if count < MAX_COUNT else MAX_COUNT


class State(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"


@record(frozen=True, slots=True)
class LevelPolicy:
    """What one level of a rule asks for: when it is breached, how long, how often to act."""

    threshold: Threshold
    duration: float = 0.0
    backoff: float = 0.0
    retry_delay: float = 1.0
    """First delay before a failed action is tried again; doubles up to MAX_RETRY_DELAY."""
    keep_firing_for: float = 0.0
    """Stay FIRING this long after the first evaluation at which the condition no longer
    held (Prometheus' keep_firing_for, counted as Prometheus counts it)."""
    clear_threshold: Threshold | None = None
    """Hysteresis: once FIRING, only a value that meets this ends the breach."""
    breach_count: int = 1
    breach_window: int = 1
    """Debounce: the level counts as breached while at least ``breach_count`` of its last
    ``breach_window`` evaluations breached (1 of 1: each evaluation decides alone)."""
    backoff_multiplier: float = 1.0
    backoff_max: float | None = None
    """Escalating repeats: see ``repeat_interval``."""

    @property
    def debounced(self) -> bool:
        return self.breach_window > 1

    def repeat_interval(self, calls: int) -> float:
        """The wait after the ``calls``-th successful fire or repeat of a breach:
        ``backoff * backoff_multiplier ** (calls - 1)``, at most ``backoff_max``."""
        if self.backoff_multiplier == 1.0 or calls <= 1:
            grown = self.backoff
        else:
            try:
                grown = self.backoff * self.backoff_multiplier ** (calls - 1)
            except OverflowError:
                grown = math.inf
        return grown if self.backoff_max is None else min(grown, self.backoff_max)

    def holds(self, state: State, value: float) -> bool:
        """Whether ``value`` keeps (or starts) a breach for a level in ``state``."""
        if state is State.FIRING and self.clear_threshold is not None:
            return not math.isnan(value) and not self.clear_threshold.breached(value)
        return self.threshold.breached(value)


def level_policy(level: LevelConfig, retry_delay: float) -> LevelPolicy:
    """The policy of a configured level; a failed action is retried after ``retry_delay``."""
    return LevelPolicy(
        level.threshold,
        level.duration,
        level.backoff,
        retry_delay,
        level.keep_firing_for,
        level.clear_threshold,
        level.breach_count,
        level.breach_window,
        level.backoff_multiplier,
        level.backoff_max,
    )


@record(frozen=True, slots=True)
class Action:
    """An action the service must run now for one series and level."""

    labels: Labels
    level: Level
    kind: EventKind
    value: float
    """The last value at which the level's condition held (Prometheus' alert value: a
    resolve carries the value of the last evaluation at which the alert was active)."""
    active_at: float
    duration: float
    fire_count: int
    """Successful fire and repeat calls of this breach before this action."""
    breach: int
    """Which breach of the series this belongs to, so a late outcome cannot touch a new one."""
    started_at: float
    """When the action was handed out: a successful one counts from here for the backoff,
    so repeats keep the configured spacing however long the plugin takes."""
    attempt: int = 1
    """Which try of this call it is: 1, then one more after each failure."""
    takers: tuple[str, ...] | None = None
    """For a resolve: the plugins that took the breach's fire or a repeat, which it goes to
    (None: not known, as after a restart from a state file that did not record them, or
    a fire the leader ran: the resolve goes where a fire would go now)."""


@record(frozen=True, slots=True)
class Transition:
    labels: Labels
    level: Level
    old: State
    new: State
    value: float
    duration: float
    """How long the breach had lasted at this transition."""


@record(slots=True)
class LevelMachine:
    """One level (base or hard) of one series."""

    policy: LevelPolicy
    level: Level
    state: State = State.OK
    active_at: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    value: float = math.nan
    breach: int = 0
    fire_count: int = 0
    last_success_at: float | None = None
    due: EventKind | None = None
    due_at: float = 0.0
    failures: int = 0
    in_flight: EventKind | None = None
    last_held_at: float | None = None
    """When the condition last held (None: it has not held since the level was cleared)."""
    cleared_at: float | None = None
    """The first evaluation at which the condition no longer held while FIRING: where the
    ``keep_firing_for`` window starts, as Prometheus counts it (its ``KeepFiringSince``).
    Not saved in the state file: after a restart the window starts again, never shorter."""
    last_action: tuple[EventKind, bool, float] | None = None
    """The last finished action: its kind, whether it succeeded, and when it finished."""
    takers: tuple[str, ...] | None = ()
    """The plugins that took the fire or a repeat of this breach, in the order they took
    it: its resolve goes to exactly these. None: not known (a state file written before
    they were recorded, or a fire the leader ran): the resolve goes where a fire would."""
    held_value: float = math.nan
    """The value at the last evaluation at which the condition held: what the actions
    carry, the resolve included (not the value that ended the breach, nor NaN)."""
    breaches: list[bool] | None = None
    """Debounce (``breach_window`` > 1): whether each of the last evaluations breached,
    oldest first, at most ``breach_window`` of them. Evaluations it lacks (None: all of
    them) count as the state says: breached while PENDING or FIRING, else not."""
    fix: PendingFix | None = None
    """The fix being verified (``verify_within``): no repeat is owed meanwhile."""
    unheld: int = 0
    """Fixes of this breach that did not hold."""
    gave_up: bool = False
    """The loop breaker gave up on this breach: no repeat is owed until it ends."""
    checks: list[FixCheck] = record_field(default_factory=list, compare=False, repr=False)
    """What came of fixes since the evaluation step last took them (``_fix``)."""

    def observe(self, now: float, value: float, breached: bool) -> tuple[State, State] | None:
        """Apply one observation; return ``(old, new)`` when the state changed."""
        old = self.state
        self.value = value
        fix = self.fix
        if fix is not None and (
            fix.query is None  # a query's is judged by ``judge_query``, unless it cannot be
            or reached(now, fix.deadline + VERIFY_READ_GRACE)  # read: then the condition
        ):
            self._check_fix(now, fix, breached)
        if breached:
            self.held_value = value
        if self.policy.debounced:
            breached = self._count_breach(breached)
        else:
            self.breaches = None  # a reload ended the debounce
        if breached:
            self.last_held_at = now
            self.cleared_at = None
            self._on_breached(now)
        elif self.state is State.FIRING and self.last_held_at is not None:
            if self.cleared_at is None:
                self.cleared_at = now
            if reached(now - self.cleared_at, self.policy.keep_firing_for):
                self._on_clear(now)
            # else: keep firing, no resolve inside the window
        else:
            self._on_clear(now)
        return (old, self.state) if self.state is not old else None

    def _count_breach(self, breached: bool) -> bool:
        """Add this evaluation to the window; whether enough of it breached."""
        window = self.policy.breach_window
        recent = self.breaches
        if recent is None or len(recent) < window:
            unknown = window - (0 if recent is None else len(recent))
            recent = [self.state is not State.OK] * unknown + (recent or [])
        recent.append(breached)
        del recent[: len(recent) - window]
        self.breaches = recent
        return recent.count(True) >= self.policy.breach_count

    def forget_breaches(self) -> None:
        """The evaluations so far count as not breached (the breach ends at once)."""
        window = self.policy.breach_window
        self.breaches = [False] * window if self.policy.debounced else None

    def _on_breached(self, now: float) -> None:
        if self.state is State.OK:
            self.state = State.PENDING
            self.active_at = now
            self.fired_at = self.resolved_at = None
            # Numbers a breach so a late outcome cannot touch a newer one; wrapping round
            # after 2**53 breaches cannot meet an outcome that old.
            self.breach = self.breach + 1 if self.breach < MAX_COUNT else 1
            self.fire_count = 0
            self.last_success_at = None
            self.failures = 0
            # A resolve still owed to the previous breach is superseded by this one.
            self.due = None
            self.takers = ()
            self.unheld = 0
            self.gave_up = False
        assert self.active_at is not None
        if self.state is State.PENDING:
            if reached(now - self.active_at, self.policy.duration):
                self.state = State.FIRING
                self.fired_at = now
                if self.fire_count == 0:  # not already run by the leader (see ``adopt``)
                    self._owe("fire", now)
        elif (
            self.due is None
            and self.policy.backoff > 0
            and self.fix is None  # the last fix is still being verified
            and not self.gave_up  # the loop breaker: no more tries in this breach
            and self.last_success_at is not None
            and reached(now - self.last_success_at, self.policy.repeat_interval(self.fire_count))
        ):
            self._owe("repeat", now)

    def judge_query(self, now: float, unhealthy: bool) -> None:
        """The fix's ``verify_query`` answered at ``now``: ``unhealthy`` for the alert or
        not (judged whatever the level's condition says: the fix may show elsewhere)."""
        if self.fix is not None and self.fix.query is not None:
            self._check_fix(now, self.fix, unhealthy)

    def _check_fix(self, now: float, fix: PendingFix, breached: bool) -> None:
        result = judge(fix, breached, reached(now, fix.deadline), self.unheld)
        if result is None:
            return
        self.fix = None
        if result != "verified":
            self.unheld = count_up(self.unheld)
            self.gave_up = result == "gave_up"
        self._told(result, fix, now)

    def _told(self, result: FixResult, fix: PendingFix, now: float) -> None:
        assert self.active_at is not None
        self.checks.append(
            FixCheck(
                self.level,
                result,
                fix,
                now,
                self.unheld,
                self.held_value,
                self.active_at,
                self.breach,
                self.fire_count,
            )
        )

    def expect_fix(self, action: Action, now: float, within: float, fix: PendingFix) -> None:
        """``action`` (a fire or repeat that succeeded, ``finish`` told) is a fix: its
        breach's condition must end by ``now + within``; ``fix`` without its deadline."""
        if action.breach != self.breach or action.kind == "resolve":
            return
        pending = record_replace(fix, deadline=now + within)
        if self.state is State.OK and fix.query is None:  # the breach ended while it ran
            self._told("verified", pending, now)
        else:
            self.fix = pending

    def _on_clear(self, now: float) -> None:
        self.cleared_at = None
        if self.state is State.FIRING:
            self.resolved_at = now
            # A plugin that took a fire the other plugins failed hears the resolve too.
            acted = self.fire_count > 0 or bool(self.takers) or self.in_flight in ("fire", "repeat")
            self.due = None
            if acted:
                self._owe("resolve", now)
        self.state = State.OK

    def _owe(self, kind: EventKind, now: float) -> None:
        self.due = kind
        self.due_at = now
        self.failures = 0

    def take_due(self, now: float, labels: Labels) -> Action | None:
        """The owed action if it may start now; it is then in flight until ``finish``."""
        if self.due is None or self.in_flight is not None or not reached(now, self.due_at):
            return None
        assert self.active_at is not None
        self.in_flight = self.due
        resolve = self.due == "resolve"
        end = self.resolved_at if resolve and self.resolved_at is not None else now
        return Action(
            labels=labels,
            level=self.level,
            kind=self.due,
            value=self.held_value,
            active_at=self.active_at,
            duration=end - self.active_at,
            fire_count=self.fire_count,
            breach=self.breach,
            started_at=now,
            attempt=count_up(self.failures),
            takers=self.takers if resolve else None,
        )

    def took(self, action: Action, plugin: str) -> None:
        """``plugin`` took ``action`` (which ``take_due`` returned): the resolve of its
        breach goes to it too."""
        takers = self.takers
        if (
            action.breach == self.breach
            and action.kind != "resolve"
            and takers is not None
            and plugin not in takers
        ):
            self.takers = (*takers, plugin)

    def finish(self, now: float, action: Action, ok: bool) -> None:
        """Record the outcome of ``action``, which ``take_due`` returned."""
        self.in_flight = None
        self.last_action = (action.kind, ok, now)
        if action.breach != self.breach:
            return
        if ok:
            if action.kind != "resolve":
                self.fire_count = count_up(self.fire_count)
                self.last_success_at = action.started_at
            else:
                self.takers = ()  # each of them heard the resolve
            if self.due == action.kind:
                self.due = None
            self.failures = 0
            return
        if (
            self.due == "resolve"
            and action.kind != "resolve"
            and self.fire_count == 0
            and not self.takers
        ):
            # The breach ended and no plugin ever took it: there is nothing to resolve.
            self.due = None
        if self.due == action.kind:
            self.failures = count_up(self.failures)
            # Counted from when the try was handed out (a poll tick), like the backoff: a
            # retry delay of one polling interval retries at the next poll.
            self.due_at = action.started_at + retry_delay(self.policy.retry_delay, self.failures)

    def give_back(self, action: Action) -> None:
        """``action`` was not run (this replica may not act): it stays owed as it was."""
        if self.in_flight == action.kind:
            self.in_flight = None

    def adopt(self, kind: EventKind, succeeded_at: float, fire_count: int) -> bool:
        """Another replica (the leader) ran ``kind`` for this breach, successfully, at
        ``succeeded_at``: count it as if this machine had, so a new leader neither runs it
        again nor misses the resolve it owes. Return whether anything changed."""
        if kind == "resolve":
            if self.due == "resolve" and self.in_flight is None:
                self.due = None
                return True
            return False
        if self.state is State.OK or self.in_flight is not None:
            return False
        if fire_count <= self.fire_count and self.due not in ("fire", "repeat"):
            return False
        self.fire_count = min(max(self.fire_count, fire_count), MAX_COUNT)
        self.takers = None  # which plugins the leader called is not known here
        if self.last_success_at is None or succeeded_at > self.last_success_at:
            self.last_success_at = succeeded_at
        if self.due in ("fire", "repeat"):
            self.due = None
        self.failures = 0
        return True

    @property
    def idle(self) -> bool:
        """OK, nothing owed or running, no fix being verified (by a ``verify_query``, which
        may judge it after the breach ended) and no breach in its debounce window:
        forgetting it changes nothing."""
        return (
            self.state is State.OK
            and self.due is None
            and self.in_flight is None
            and self.fix is None
            and not (self.policy.debounced and self.breaches and True in self.breaches)
        )


@record(slots=True)
class SeriesMachine:
    """All levels of one series of a rule, and what it does with missing values."""

    labels: Labels
    base: LevelMachine
    hard: LevelMachine | None
    missing: MissingValueBehavior
    last_value: float | None = None
    placeholder: bool = False
    """Stands for a rule that has never seen a series (see ``RuleMachine``)."""
    hard_removed: bool = False
    """The configuration has no hard level any more (a reload removed it, or a restore
    found it saved): ``hard`` is ended, never judged again, and kept only until what it
    owes or runs (its resolve) is settled (``remove_hard``)."""
    last_seen: float | None = None
    recent: Recent[State] | None = record_field(default=None, compare=False, repr=False)
    """Its last evaluations, for the status page: kept for a few series of a rule only."""

    def levels(self) -> Iterable[LevelMachine]:
        yield self.base
        if self.hard is not None:
            yield self.hard

    @property
    def worst(self) -> State:
        """Firing if a level is, else pending if a level is, else OK."""
        base, hard = self.base.state, self.hard
        if hard is None or hard.state is State.OK or base is State.FIRING:
            return base
        return hard.state if base is State.OK or hard.state is State.FIRING else base

    def observe(self, now: float, value: float | None) -> list[Transition]:
        """One poll's value for this series; ``None`` or NaN when it is missing."""
        if value is not None and math.isnan(value) and self.missing is not RESOLVE:
            value = None  # missing; for an alert, NaN in the result is a value like any other
        assume_breached = False
        if value is not None:
            self.last_value = value
        elif self.missing is MissingValueBehavior.SKIP:
            return []
        elif self.missing is MissingValueBehavior.LAST_VALUE:
            if self.last_value is None:
                return []
            value = self.last_value
        elif self.missing is MissingValueBehavior.ZERO:
            value = 0.0
        elif self.missing is RESOLVE:  # not breached, whatever the threshold says
            # keep_firing_for holds, and the debounce window counts it as not breached
            return self._apply(now, math.nan, False, force_clear=True)
        else:
            assume_breached = True
            value = self.last_value if self.last_value is not None else math.nan
        return self._apply(now, value, assume_breached)

    @property
    def absence_is_evaluated(self) -> bool:
        """Whether a poll without this series still gives it something to evaluate: a zero,
        an assumed breach, or (``last_value``) the last value seen. Then only the series'
        own state says whether forgetting it is safe; with ``skip`` (or ``last_value`` before
        any value) an absent series is frozen, and only ``forget_after`` ends it."""
        if self.missing is MissingValueBehavior.SKIP:
            return False
        return self.missing is not MissingValueBehavior.LAST_VALUE or self.last_value is not None

    def clear(self, now: float) -> list[Transition]:
        """End whatever breach there is, at once, as a value that breaches nothing would."""
        for machine in self.levels():
            machine.last_held_at = None
            machine.forget_breaches()
        return self._apply(now, math.nan, False, force_clear=True)

    def remove_hard(self, now: float) -> list[Transition]:
        """The configuration has no hard level any more: end its breach at once (a resolve
        is owed if it had acted) and judge it no more. It stays until it owes and runs
        nothing, so its resolve is sent (and retried) like any other; then it is dropped."""
        out: list[Transition] = []
        if self.hard is not None and not self.hard_removed:
            self.hard.last_held_at = None
            self.hard.forget_breaches()
            self._step(self.hard, now, math.nan, False, out)
            self.hard_removed = True
            self._drop_removed_hard()
        return out

    def restore_hard(self, policy: LevelPolicy) -> None:
        """The configuration has a hard level again (``policy``): one still kept after its
        removal is judged again, with what it still owes; else it starts idle."""
        if self.hard is None:
            self.hard = LevelMachine(policy, "hard")
        self.hard.policy = policy
        self.hard_removed = False

    def _drop_removed_hard(self) -> None:
        if self.hard_removed and self.hard is not None and self.hard.idle:
            self.hard = None
            self.hard_removed = False

    def _apply(
        self, now: float, value: float, assume_breached: bool, force_clear: bool = False
    ) -> list[Transition]:
        transitions: list[Transition] = []
        base = self.base
        base_breached = not force_clear and (
            assume_breached or base.policy.holds(base.state, value)
        )
        self._step(base, now, value, base_breached, transitions)
        hard = self.hard
        if hard is not None and not self.hard_removed:
            # The hard level only counts while the base level is firing.
            hard_breached = base.state is State.FIRING and (
                assume_breached or hard.policy.holds(hard.state, value)
            )
            if base.state is not State.FIRING:
                hard.last_held_at = None  # the base resolved: no keep_firing_for for hard
                hard.forget_breaches()  # nor a debounce window
            self._step(hard, now, value, hard_breached, transitions)
        self._drop_removed_hard()
        return transitions

    def _step(
        self,
        machine: LevelMachine,
        now: float,
        value: float,
        breached: bool,
        out: list[Transition],
    ) -> None:
        change = machine.observe(now, value, breached)
        if change is not None:
            started = machine.active_at if machine.active_at is not None else now
            out.append(Transition(self.labels, machine.level, *change, value, now - started))

    def take_due(self, now: float) -> list[Action]:
        actions = []
        for machine in self.levels():
            action = machine.take_due(now, self.labels)
            if action is not None:
                actions.append(action)
        return actions

    def finish(self, now: float, action: Action, ok: bool) -> None:
        for machine in self.levels():
            if machine.level == action.level:
                machine.finish(now, action, ok)
        self._drop_removed_hard()

    def took(self, action: Action, plugin: str) -> None:
        machine = self.level(action.level)
        if machine is not None:
            machine.took(action, plugin)

    def level(self, level: str) -> LevelMachine | None:
        return self.base if level == "base" else self.hard

    @property
    def idle(self) -> bool:
        return all(machine.idle for machine in self.levels())
