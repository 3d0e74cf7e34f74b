"""The replay: a rule run over values read before, on their clock, as the service runs it.

The service and the replay evaluate through one step (``_step``), which decides every call:
the series limit, ``Rule.evaluate`` (the state machines: duration, backoff,
``keep_firing_for``, clear thresholds, the hard level, missing values), the routes, and
retrying only the plugins that failed. What differs is only where the values come from
(``query_range`` or a test's input series, instead of a read at each tick) and that a
replayed plugin call takes no time and succeeds unless a script says it fails.

Times are seconds since the epoch: the events handed to plugins carry them as wall-clock
times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._core import Event, HistoryEntry, Labels, Sample, record, record_field, record_replace
from ._approvals import ApprovalNotice
from ._governor import Governor
from ._rule import Rule
from ._rules import make_rule
from ._state import State
from ._step import Call, EvaluationStep, Observation, OwedCall
from ._verify import FixNotice

if TYPE_CHECKING:
    from .._config import Route, RuleConfig

CallOutcome = Callable[[str | None, float], bool]
"""Whether a replayed call of a plugin (None: only logged) at a time succeeds."""


def always_succeeds(plugin: str | None, at: float) -> bool:
    return True


@record(frozen=True, slots=True)
class ReplayedCall:
    """One plugin call the rule made (or would have made)."""

    at: float
    series: Labels
    """The series' labels (the event's may have more: an alert's ``alertname``...)."""
    plugin: str | None
    """None: no plugin is configured, the action is only logged."""
    event: Event
    ok: bool
    outcome: str = ""
    """``executed`` or ``failed`` (by ``ok``), or ``shadow``: recorded, not made."""
    verified: bool | None = None
    """For a fire or repeat with ``verify_within``: whether the fix held (None: not
    verified, or the replay ended first)."""


@record(frozen=True, slots=True)
class Step:
    """A series at one evaluation: its value (None: absent from the read) and the state of
    each level after it."""

    at: float
    value: float | None
    base: State
    hard: State | None


@record(slots=True)
class SeriesHistory:
    labels: Labels
    steps: list[Step] = record_field(default_factory=list)
    """A step at each evaluation while the rule tracks the series. At the evaluation where
    the rule forgets it (absent, and nothing left to do: a rule file's alert at once, as
    Prometheus drops an alert whose series left the result), a step absent and OK; then
    none until it is read again. So a reader of the steps (the report's changes, its
    chart, a rule test's alerts) sees the breach end where the service ended it, and a gap
    where the series was absent, not the last state held across it."""


@record(slots=True)
class Replay:
    """What a rule did over the replayed reads."""

    rule: Rule
    series: dict[Labels, SeriesHistory] = record_field(default_factory=dict)
    calls: list[ReplayedCall] = record_field(default_factory=list)
    history: list[HistoryEntry] = record_field(default_factory=list)
    """Every owed call and what became of it, as the service's action history has it:
    suppressed calls (once per call and reason) and shadowed ones too."""
    problems: list[tuple[float, str]] = record_field(default_factory=list)
    """Evaluations that did not happen, and why (a read over ``SERIES_LIMIT``)."""
    evaluations: int = 0


class Replayer:
    """Replays one rule read by read (``step``), so that several rules can be replayed in
    step with each other; what it did so far is ``result``."""

    def __init__(
        self,
        config: RuleConfig,
        routes: tuple[Route, ...] = (),
        succeeds: CallOutcome = always_succeeds,
        governor: Governor | None = None,
    ) -> None:
        """``governor``: shared by the rules replayed together (budgets, pause, silences);
        by default one of the rule's own."""
        self.rule = make_rule(config)
        self.rule.keep_recent(0)  # sparklines are the status page's: a replay has its steps
        self.rule.quiet = True  # its transitions are the replay's report, not log lines
        self.result = Replay(self.rule)
        if governor is None:
            governor = Governor(quiet=True)
            governor.configure(None, {}, [self.rule], {})
        self._governor = governor
        self._step = EvaluationStep(routes, governor)
        self._succeeds = succeeds
        self._tracked: set[Labels] = set()
        """The series with a step at the last evaluation recorded."""

    def step(self, read: Observation) -> None:
        """Evaluate the rule on one read, at ``read.at`` (after every earlier read)."""
        governor = self._governor
        record, mark = governor.record, governor.mark_fix
        governor.record, governor.mark_fix = self.result.history.append, self._mark_fix
        try:
            evaluation = self._step.evaluate(self.rule, read, self._call)
        finally:
            governor.record, governor.mark_fix = record, mark
        if evaluation.refused is not None:
            self.result.problems.append((read.at, evaluation.refused))
        if evaluation.evaluated and read.samples is not None:
            self.result.evaluations += 1
            self._tracked = _record(self.result, read.at, read.samples, self._tracked)

    def _mark_fix(self, rule: str, key: str, plugins: tuple[str, ...], held: bool) -> None:
        """A fix was verified: its calls and history rows say whether it held."""
        calls, history = self.result.calls, self.result.history
        for i, call in enumerate(calls):  # in place: the governor appends to these lists
            if call.ok and call.outcome == "executed" and call.event.idempotency_key == key:
                calls[i] = record_replace(call, verified=held)
        for i, entry in enumerate(history):
            if entry.outcome == "executed" and entry.idempotency_key == key:
                history[i] = record_replace(entry, verified=held)

    def _call(self, call: Call) -> None:
        """Run an owed call at once, at the time it is owed: each plugin succeeds unless
        the script says it fails. A shadowed plugin is listed as such, not called."""
        at = call.at
        wall = datetime.fromtimestamp(at, UTC)
        series = (
            call.action.labels
            if isinstance(call, OwedCall)
            else call.labels
            if isinstance(call, FixNotice)
            else call.request.series
            if isinstance(call, ApprovalNotice)
            else ()
        )
        if isinstance(call, OwedCall):
            for plugin, verdict in call.verdicts:
                if verdict.outcome == "shadow":
                    event = call.event(plugin, at, wall)
                    self.result.calls.append(
                        ReplayedCall(at, series, plugin, event, True, "shadow")
                    )
        for plugin in call.plugins():
            took = self._succeeds(plugin, at)
            event = call.event(plugin, at, wall)
            outcome = "executed" if took else "failed"
            self.result.calls.append(ReplayedCall(at, series, plugin, event, took, outcome))
            call.report(plugin, took)
        call.settle(at)


def replay(
    config: RuleConfig,
    reads: Iterable[Observation],
    routes: tuple[Route, ...] = (),
    succeeds: CallOutcome = always_succeeds,
) -> Replay:
    """Run a new rule of ``config`` over ``reads`` (in time order)."""
    replayer = Replayer(config, routes, succeeds)
    for read in reads:
        replayer.step(read)
    return replayer.result


def _record(
    result: Replay, at: float, samples: list[Sample], tracked_before: set[Labels]
) -> set[Labels]:
    """A step for each series the rule tracks after the evaluation at ``at``, and a last
    one (absent, OK) for each it forgot since the previous; return the series tracked."""
    values = {sample.labels: sample.value for sample in samples}
    tracked = set()
    for labels, machine in result.rule.series.items():
        if machine.placeholder:
            continue
        tracked.add(labels)
        history = result.series.get(labels)
        if history is None:
            history = result.series[labels] = SeriesHistory(labels)
        hard = machine.hard.state if machine.hard is not None else None
        history.steps.append(Step(at, values.get(labels), machine.base.state, hard))
    for labels in tracked_before - tracked:
        # Forgotten: a series is only forgotten once every level is OK and idle.
        steps = result.series[labels].steps
        steps.append(Step(at, None, State.OK, None if steps[-1].hard is None else State.OK))
    return tracked
