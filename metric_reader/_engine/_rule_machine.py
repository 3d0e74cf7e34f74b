"""Every series of one rule: the ``SeriesMachine`` of each label set a rule has seen, which
series are forgotten, and the recent values kept for the status page's sparklines.

Pure code like the machines it holds (``_state``): every call is given ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .._config import MissingValueBehavior
from .._core import EventKind, Labels, Sample, record, record_field
from ._fix import FixCheck, PendingFix
from ._recent import RECENT_SERIES_PER_RULE, Recent
from ._state import (
    DEFAULT_FORGET_AFTER,
    Action,
    LevelMachine,
    LevelPolicy,
    SeriesMachine,
    State,
    Transition,
    reached,
)


@record(slots=True)
class RuleMachine:
    """Every series of one rule.

    A rule that has never seen a series keeps one placeholder series with the empty label set,
    so ``assume_breached`` can act on a metric that does not exist. Once real series appear
    the placeholder is cleared (resolved if it had fired) and dropped when idle. With
    ``resolve`` (an alert of a rule file) absence never breaches: there is no placeholder,
    and an empty result leaves the rule with no series (Prometheus' *inactive* alert).
    """

    base: LevelPolicy
    hard: LevelPolicy | None = None
    missing: MissingValueBehavior = MissingValueBehavior.SKIP
    forget_after: float = DEFAULT_FORGET_AFTER
    """A series absent this long is forgotten once forgetting it cannot change what the rule
    does: once it is idle (OK, nothing owed or running) after this poll's missing value.

    - ``skip``: absence gives nothing to evaluate, so a series absent this long is taken as
      gone (Prometheus resolves an alert whose series vanished): its breach ends, resolved
      if it fired, and it is forgotten.
    - ``zero`` and ``last_value``: the absent series goes on being evaluated with 0 or its
      last value; it is forgotten only once that value leaves it idle (a value that breaches
      keeps it breached, firing and repeating, for as long as it is absent).
    - ``assume_breached``: an absent series is breached, so it is never forgotten while it is
      absent: it fires after the duration and repeats until it comes back.
    - ``resolve``: an absent series is not breached, at once (its ``keep_firing_for`` still
      applies), and forgotten as soon as that leaves it idle: a Prometheus alert.
    """
    series: dict[Labels, SeriesMachine] = record_field(default_factory=dict)
    seen_any: bool = False
    revision: int = 0
    """Counts the changes worth saving (transitions, actions handed out or finished, series
    forgotten): whoever persists the state compares it before and after a step."""
    recent_length: int = 0
    """Evaluations a series keeps for the status page (``SeriesMachine.recent``); 0: none."""
    recent_series: int = RECENT_SERIES_PER_RULE
    """Series that keep them, at most."""
    _recorded: dict[Labels, SeriesMachine] = record_field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    _fix_checks: list[tuple[Labels, FixCheck]] = record_field(
        default_factory=list, init=False, compare=False, repr=False
    )
    queried: bool = record_field(default=False, compare=False, repr=False)
    """A fix judged by a ``verify_query`` may be pending: ``verify_queries`` looks (and
    clears it when none is), so a rule without one never scans its series for them."""

    def observe(self, now: float, samples: Iterable[Sample]) -> list[Transition]:
        """One successful read of the rule's source at ``now``."""
        transitions: list[Transition] = []
        forgot = False
        if self.recent_length:
            self._drop_forgotten_recent()
        seen: set[Labels] = set()
        for sample in samples:
            if sample.labels in seen:
                continue  # a source repeating a series: the first value counts
            seen.add(sample.labels)
            series = self._series(sample.labels)
            series.placeholder = False
            series.last_seen = now
            transitions += series.observe(now, sample.value)
            self._take_checks(series)
            if series.recent is not None:
                series.recent.add(now, sample.value, series.worst)
        self.seen_any = self.seen_any or bool(seen)
        resolve = self.missing is MissingValueBehavior.RESOLVE
        if not self.seen_any and not self.series and not resolve:
            self._series((), placeholder=True)
        for labels, series in list(self.series.items()):
            if labels in seen:
                continue
            # A placeholder of an alert comes from a state file written before alerts had none.
            replaced = series.placeholder and (self.seen_any or resolve)
            absent_long = series.last_seen is not None and (
                resolve  # an alert: gone once it is idle
                or reached(now - series.last_seen, self.forget_after)
            )
            if replaced or (absent_long and not series.absence_is_evaluated):
                transitions += series.clear(now)
            else:
                transitions += series.observe(now, None)
            self._take_checks(series)
            if series.recent is not None:
                series.recent.add(now, None, series.worst)
            if (replaced or absent_long) and series.idle:
                del self.series[labels]
                forgot = True
        if self.recent_length and transitions:
            self._recent_for_breached(transitions, now)
        if transitions or forgot:
            self.revision += 1
        return transitions

    def _take_checks(self, series: SeriesMachine) -> None:
        for machine in series.levels():
            if machine.checks:
                self._fix_checks += [(series.labels, check) for check in machine.checks]
                machine.checks.clear()

    def take_fix_checks(self) -> list[tuple[Labels, FixCheck]]:
        """What came of fixes being verified since this was last asked, by series."""
        checks, self._fix_checks = self._fix_checks, []
        if checks:
            self.revision += 1
        return checks

    def verify_queries(self) -> frozenset[str]:
        """The ``verify_query`` texts of the fixes being verified now."""
        if not self.queried:
            return frozenset()
        queries = frozenset(
            machine.fix.query
            for series in self.series.values()
            for machine in series.levels()
            if machine.fix is not None and machine.fix.query is not None
        )
        self.queried = bool(queries)
        return queries

    def judge_queries(
        self, now: float, unhealthy: Callable[[Labels, LevelMachine, str], bool | None]
    ) -> None:
        """Judge every fix verified by a query at ``now``: ``unhealthy`` says whether its
        query's answer is unhealthy for the series level's alert (None: not known, the
        read failed: nothing is judged)."""
        if not self.queried:
            return
        for series in self.series.values():
            for machine in series.levels():
                fix = machine.fix
                if fix is None or fix.query is None:
                    continue
                verdict = unhealthy(series.labels, machine, fix.query)
                if verdict is not None:
                    machine.judge_query(now, verdict)
            self._take_checks(series)

    def expect_fix(self, action: Action, now: float, within: float, fix: PendingFix) -> None:
        """``action`` succeeded at ``now``: verify that its fix holds (``LevelMachine``)."""
        series = self.series.get(action.labels)
        machine = None if series is None else series.level(action.level)
        if series is not None and machine is not None:
            machine.expect_fix(action, now, within, fix)
            self.queried = self.queried or fix.query is not None
            self._take_checks(series)
            self.revision += 1

    def reconfigure(
        self,
        base: LevelPolicy,
        hard: LevelPolicy | None,
        missing: MissingValueBehavior,
        now: float,
    ) -> list[Transition]:
        """New settings for the same rule, at ``now``: every series keeps its state and is
        judged by them from its next observation. A hard level added starts idle in every
        series; a removed one ends at once (``remove_hard``): return those transitions."""
        self.base, self.hard, self.missing = base, hard, missing
        for series in self.series.values():
            series.missing = missing
            series.base.policy = base
            if hard is not None:
                series.restore_hard(hard)
        self.revision += 1
        return self.remove_hard(now) if hard is None else []

    def remove_hard(self, now: float) -> list[Transition]:
        """End the hard level of every series that has one, at ``now``: the configuration
        has none (any more). Each stays, judged no more, until its resolve is settled."""
        transitions = [t for series in self.series.values() for t in series.remove_hard(now)]
        if transitions:
            self.revision += 1
        return transitions

    def take_removed_due(self, now: float) -> list[Action]:
        """The actions owed now by hard levels the configuration no longer has (their
        resolves), handed out at once: they are then in flight."""
        actions = []
        for series in self.series.values():
            if series.hard_removed and series.hard is not None:
                action = series.hard.take_due(now, series.labels)
                if action is not None:
                    actions.append(action)
        if actions:
            self.revision += 1
        return actions

    def forget_idle(self) -> None:
        """Forget every series that owes and runs nothing (a retired rule keeps only what
        it still has to settle)."""
        idle = [labels for labels, series in self.series.items() if series.idle]
        for labels in idle:
            del self.series[labels]
        if idle:
            self.revision += 1

    def take_due(self, now: float) -> list[Action]:
        actions = [action for series in self.series.values() for action in series.take_due(now)]
        if actions:
            self.revision += 1
        return actions

    def finish(self, now: float, action: Action, ok: bool) -> None:
        series = self.series.get(action.labels)
        if series is not None:
            series.finish(now, action, ok)
            self.revision += 1

    def took(self, action: Action, plugin: str) -> None:
        """``plugin`` took ``action``: its breach's resolve goes to it too."""
        series = self.series.get(action.labels)
        if series is not None:
            series.took(action, plugin)
            self.revision += 1

    def give_back(self, action: Action) -> None:
        found = self._level(action.level, action.labels)
        if found is not None:
            found.give_back(action)
            self.revision += 1

    def adopt(
        self,
        level: str,
        labels: Labels,
        kind: EventKind,
        at: float,
        fire_count: int,
        slack: float,
    ) -> bool:
        """The leader ran ``kind`` for the series ``labels`` at ``level``, successfully, at
        ``at``: count it as run here (see ``LevelMachine.adopt``). A record from before the
        breach began (or, for a resolve, before it ended) by more than ``slack`` seconds is
        of an earlier breach and changes nothing. Return whether anything changed."""
        found = self._level(level, labels)
        if found is None:
            return False
        since = found.resolved_at if kind == "resolve" else found.active_at
        if since is None or at < since - slack:
            return False
        if not found.adopt(kind, at, fire_count):
            return False
        self.revision += 1
        return True

    def busy(self, level: str, labels: Labels) -> bool:
        """Whether the series ``labels`` at ``level`` is breached or acting."""
        found = self._level(level, labels)
        return found is not None and not found.idle

    def _level(self, level: str, labels: Labels) -> LevelMachine | None:
        series = self.series.get(labels)
        return None if series is None else series.level(level)

    def series_for(self, labels: Labels, placeholder: bool = False) -> SeriesMachine:
        """The machine of the series ``labels``, made (in OK) if there is none yet."""
        return self._series(labels, placeholder)

    def _series(self, labels: Labels, placeholder: bool = False) -> SeriesMachine:
        series = self.series.get(labels)
        if series is None:
            series = SeriesMachine(
                labels=labels,
                base=LevelMachine(self.base, "base"),
                hard=LevelMachine(self.hard, "hard") if self.hard is not None else None,
                missing=self.missing,
                placeholder=placeholder,
            )
            self.series[labels] = series
            if self.recent_length and len(self._recorded) < self.recent_series:
                self._record(series, None)
        return series

    def _record(self, series: SeriesMachine, now: float | None) -> None:
        """Keep the recent evaluations of ``series`` from now on (``now``: it was just
        evaluated, at ``now``)."""
        series.recent = Recent(self.recent_length, State.OK)
        self._recorded[series.labels] = series
        if now is not None:
            series.recent.add(now, series.base.value, series.worst)

    def _drop_forgotten_recent(self) -> None:
        """Series forgotten (here or by ``make_room``) give their place back: once a poll,
        and only when every place is taken."""
        recorded = self._recorded
        if len(recorded) >= self.recent_series:
            for labels, kept in list(recorded.items()):
                if self.series.get(labels) is not kept:
                    del recorded[labels]

    def _recent_for_breached(self, transitions: list[Transition], now: float) -> None:
        """Series that went pending or firing keep their recent evaluations: in a free
        place, else in that of a calm series (the status page lists the breached first)."""
        calm: list[Labels] | None = None
        for transition in transitions:
            series = self.series.get(transition.labels)
            if transition.new is State.OK or series is None or series.recent is not None:
                continue
            if len(self._recorded) >= self.recent_series:
                if calm is None:  # once a poll, however many series breach at once
                    calm = [
                        labels
                        for labels, kept in reversed(self._recorded.items())
                        if kept.worst is State.OK
                    ]
                if not calm:
                    return
                self._recorded.pop(calm.pop()).recent = None
            self._record(series, now)
