"""The evaluation step: the one place that decides which plugin calls a rule owes.

The service and the replay (backtests, rule tests) evaluate every observation of a rule
through this step, as Prometheus' ``Group.Eval`` hands each alert to a ``NotifyFunc`` and
promtool reuses it: the series limit (``_series_limit``), ``Rule.evaluate`` (the state
machines), the routes (for a resolve: the plugins that took the breach's fire, which the
series level records as their outcomes are reported) and the never-twice bookkeeping of a
call that reaches several plugins (``_delivery``). Each owed call goes to a callback; what
differs is only what that callback does with it. The service's runner claims it (leader
election) and dispatches it later, in a task group of its own, reporting each plugin's
outcome as it comes; the replay records it at once. Whatever decides whether, when and to
which plugins a call is made belongs here, so a backtest or a rule test cannot disagree
with the service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .._core import Event, HistoryEntry, Outcome, Sample, idempotency_key, record, record_field
from ._approvals import ApprovalNotice
from ._delivery import Deliveries
from ._governor import Governor, StormStart, Verdict
from ._nodata import NoData
from ._notice import Notice
from ._rule import Rule
from ._series_limit import admit
from ._state import Action
from ._verify import FixNotice, expect, hand_out

if TYPE_CHECKING:
    from .._config import Route, RuleConfig


@record(frozen=True, slots=True)
class Observation:
    """What the rule's source returned at ``at``; ``samples`` None: the fetch failed (the
    rule's state stays as it was, as after a failed poll)."""

    at: float
    samples: list[Sample] | None
    verify: Mapping[str, list[Sample] | None] = record_field(default_factory=dict)
    """The answer at ``at`` of each ``verify_query`` the rule needed
    (``EvaluationStep.verify_queries``), by its text; None (or absent): the read failed,
    and judges nothing."""


@record(frozen=True, slots=True)
class Evaluation:
    """What the step did with one observation."""

    evaluated: bool
    """Whether the rule was evaluated: not when the fetch failed or the series limit
    refused what it returned."""
    refused: str | None = None
    """Why the series limit refused the observation (one line), or None."""


class OwedCall:
    """One action a rule handed out, from the plugins it goes to until it is settled.

    The governor has judged each plugin it goes to when it was handed out (``verdicts``):
    ``plugins`` are those to call (the routes', or for a resolve those that took the
    breach's fire and repeats, less those that took the action already, less those shadowed
    or suppressed); ``report`` each one's outcome as it comes, then ``settle`` once, at the
    time the call ended. Or ``give_back`` instead, when this replica may not run it.
    """

    __slots__ = (
        "_acted",
        "_deliveries",
        "_failed",
        "_governor",
        "_held",
        "_reported",
        "_runnable",
        "action",
        "at",
        "rule",
        "verdicts",
        "wall",
    )

    def __init__(
        self,
        deliveries: Deliveries,
        governor: Governor,
        rule: Rule,
        action: Action,
        at: float,
        wall: float,
    ) -> None:
        self.rule = rule
        self.action = action
        self.at = at
        """When the rule handed the action out."""
        self.wall = wall
        """The same moment on the wall clock."""
        self.verdicts: list[tuple[str | None, Verdict]] = []
        """What the governor said of each plugin the action goes to, in order."""
        self._deliveries = deliveries
        self._governor = governor
        self._runnable: list[str | None] = []
        self._held = False
        self._reported = 0
        self._failed = False
        self._acted = False

    def judge(self) -> bool:
        """Ask the governor about each plugin still to call; record the suppressed and
        shadowed ones, and count a shadowed one as taken. Return whether anything is left
        to do: a plugin to call, or a shadowed one to settle as taken."""
        governor, rule, action = self._governor, self.rule, self.action
        shadowed = False
        for plugin, route in self._deliveries.pending(rule, action):
            verdict = governor.judge(rule, action, plugin, route, self.wall)
            self.verdicts.append((plugin, verdict))
            if verdict.outcome == "run":
                self._runnable.append(plugin)
            elif verdict.outcome == "shadow":
                shadowed = True
                self._record(plugin, "shadow", detail="mode shadow: not called")
                self._took(plugin)
            else:
                self._held = True
                if verdict.first:
                    self._record(plugin, "suppressed", verdict.reason, verdict.detail)
        return bool(self._runnable) or shadowed

    def plugins(self) -> list[str | None]:
        """The plugins to call, in order (None: the action is only logged)."""
        return list(self._runnable)

    def event(self, plugin: str | None, now: float, wall: datetime | None = None) -> Event:
        """What ``plugin`` is told, at ``now`` (``wall``: its wall-clock time, by default the
        current time)."""
        return self.rule.event(self.action, now, plugin or "", wall)

    def report(
        self, plugin: str | None, ok: bool, result: str | None = None, detail: str = ""
    ) -> None:
        """How the call of ``plugin`` went (``result``: the dispatch's, ``timeout`` for a
        call that timed out); one that took the action is not called again for it."""
        self._reported += 1
        if result == "dry_run":
            self._record(plugin, "shadow", detail="DRY_RUN: not called")
        elif result == "timeout":
            self._record(plugin, "timed_out", detail=detail)
        else:
            self._record(plugin, "executed" if ok else "failed", detail=detail)
        self._governor.outcome(plugin, ok and result != "timeout", self.wall)
        if ok:
            self._took(plugin)
            self._acted = self._acted or (plugin is not None and result != "dry_run")
        else:
            self._failed = True

    def _took(self, plugin: str | None) -> None:
        self._deliveries.took(self.rule, self.action, plugin)
        if plugin is not None:
            self.rule.took(self.action, plugin)

    def settle(self, now: float) -> bool:
        """The call is over at ``now``: the rule records its outcome (a retry is due after a
        failure; a call some of whose plugins the governor held back stays owed for them,
        for the series' next evaluation); return whether it succeeded, that is every plugin
        was called and took it (a call cut off before its plugins ran, or before they all
        answered, failed)."""
        done = self._reported >= len(self._runnable)
        if done and not self._failed and self._held:
            self.rule.give_back(self.action)
            return False
        ok = done and not self._failed
        self.rule.finish(now, self.action, ok)
        self._deliveries.settle(self.rule, self.action, ok)
        if ok and self._acted:  # a fix was made (not only logged or shadowed): did it hold?
            wall = datetime.fromtimestamp(self.wall, UTC)
            key = self.event(None, self.at, wall).idempotency_key
            plugins = self._deliveries.plugins_for(self.rule, self.action)
            expect(self.rule, self.action, self._deliveries.routes, plugins, now, key)
        return ok

    def give_back(self) -> None:
        """The call did not run (this replica may not act, or the governor held it back):
        the action stays owed as it was."""
        self.rule.give_back(self.action)

    def _record(
        self, plugin: str | None, outcome: Outcome, reason: str = "", detail: str = ""
    ) -> None:
        rule, action = self.rule, self.action
        wall = datetime.fromtimestamp(self.wall, UTC)
        self._governor.record(
            HistoryEntry(
                at=self.wall,
                rule=rule.name,
                series=dict(action.labels),
                plugin=plugin or "",
                kind=action.kind,
                outcome=outcome,
                reason=reason,
                detail=detail,
                value=action.value,
                threshold=rule.level(action.level).threshold.text,
                duration=action.duration,
                annotations=rule.annotations(action.labels, action.value),
                attempt=action.attempt,
                idempotency_key=self.event(plugin, self.at, wall).idempotency_key,
                level=action.level,
            )
        )


class StormNotice(Notice):
    """The one call a storm makes: the rule's ``storm_plugin`` told that more of its series
    are breached at once than ``max_breaching`` allows (only logged without one). It is not
    retried; the pause holds it back as any call, and it counts for the plugin's breaker."""

    __slots__ = ("_governor", "_plugins", "at", "rule", "start", "wall")

    def __init__(self, governor: Governor, start: StormStart, at: float, wall: float) -> None:
        self.rule = start.rule
        self.start = start
        self.at = at
        self.wall = wall
        self._governor = governor
        self._plugins = self._unless_paused(start.rule.config.guard.storm_plugin)

    def event(self, plugin: str | None, now: float, wall: datetime | None = None) -> Event:
        rule, start = self.rule, self.start
        wall = datetime.now(UTC) if wall is None else wall
        guard = rule.config.guard
        summary = (
            f"{start.breached} series of rule {rule.name} breached at once, more than "
            f"max_breaching {guard.breaching_text()} ({start.limit}): per-series calls are "
            "held until no more than that are"
        )
        return Event(
            rule=rule.name,
            metric_name=rule.config.metric_name,
            labels={"alertname": rule.name},
            value=float(start.breached),
            threshold=f"max_breaching {guard.breaching_text()}",
            level="base",
            kind="storm",
            breach_started=wall,
            duration=timedelta(0),
            fire_count=0,
            plugin=plugin or "",
            annotations={"summary": summary},
            idempotency_key=idempotency_key(
                rule.name, {}, "base", wall, 0, "fire", 0, f"storm:{rule.identity_digest}"
            ),
            external_labels=dict(rule.config.external_labels),
            series=tuple(dict(labels) for labels in start.series),
        )

    def _record(
        self, plugin: str | None, outcome: Outcome, reason: str = "", detail: str = ""
    ) -> None:
        start = self.start
        self._governor.record(
            HistoryEntry(
                at=self.wall,
                rule=self.rule.name,
                series={},
                plugin=plugin or "",
                kind="storm",
                outcome=outcome,
                reason=reason,
                detail=detail or f"{start.breached} series breached, limit {start.limit}",
                value=float(start.breached),
                threshold=f"max_breaching {self.rule.config.guard.breaching_text()}",
            )
        )


Call = OwedCall | StormNotice | FixNotice | ApprovalNotice
Notify = Callable[[Call], object]
"""What is done with each owed call, in the order the rule owes them (Prometheus'
``NotifyFunc``)."""


def _same_time(at: float) -> float:
    return at


class EvaluationStep:
    """Evaluates rules on what their sources returned and hands out the calls they owe.

    One per service (or replay): it remembers, across evaluations, which plugins took an
    action that reaches several, so that a retry calls only those that have not.
    """

    def __init__(
        self,
        routes: tuple[Route, ...] = (),
        governor: Governor | None = None,
        wall_of: Callable[[float], float] = _same_time,
    ) -> None:
        """``wall_of``: the wall-clock time of an evaluation time (the service evaluates on
        the monotonic clock; a replay on the wall clock already)."""
        self._deliveries = Deliveries(routes)
        self.governor = governor if governor is not None else Governor(quiet=True)
        self._wall_of = wall_of
        self._retired: list[Rule] = []
        """Rules a reload retired that still owe or run a call (``retire``)."""
        self._wound_down_at: float | None = None
        """The evaluation time at which they were last looked at: once per tick of a group,
        not once per rule evaluated."""

    @property
    def routes(self) -> tuple[Route, ...]:
        """Where the alerts of rule files go (``[[routes]]``): a reload may change them."""
        return self._deliveries.routes

    @routes.setter
    def routes(self, routes: tuple[Route, ...]) -> None:
        self._deliveries.routes = routes

    @property
    def partial_deliveries(self) -> int:
        """Actions some of whose plugins took them while another failed, remembered for
        the retry their rule owes, and no longer: the count never grows with the series
        that came and went."""
        return len(self._deliveries)

    @property
    def retired(self) -> int:
        """Rules a reload retired that still owe a call (a resolve) or run one."""
        return len(self._retired)

    def evaluate(
        self,
        rule: Rule,
        observation: Observation,
        notify: Notify,
        *,
        acting: bool = True,
        no_data: NoData | None = None,
    ) -> Evaluation:
        """Evaluate ``rule`` on ``observation``, at its time, and hand each call it owes to
        ``notify``. Not ``acting`` (a follower): the rule keeps its calls owed, for when
        this replica leads. ``no_data``: the rule's tracker of reads that return nothing,
        told about every observation the rule is evaluated on.

        The calls retired rules owe by ``at`` are handed out too (see ``retire``)."""
        at, samples = observation.at, observation.samples
        if acting and self._retired and at != self._wound_down_at:
            self._wound_down_at = at
            for retired in list(self._retired):
                self._wind_down(retired, at, notify)
        if samples is None:
            return Evaluation(False)
        problem = admit(rule, samples)
        if problem is not None:
            return Evaluation(False, problem)
        if no_data is not None:
            no_data.observe(at, len(samples))
        if observation.verify:  # before the condition: a fix that did not hold, repeats
            rule.judge_fixes(at, observation.verify)
        actions = rule.evaluate(at, samples, acting)
        self.governor.inhibitor.observe(rule)  # its firing alerts inhibit from now on
        self._deliveries.prune(rule)
        if acting:
            wall = self._wall_of(at)
            storm = self.governor.watch_storm(rule, wall)
            if storm is not None:
                notify(StormNotice(self.governor, storm, at, wall))
            hand_out(self.governor, rule, self.routes, wall, notify)
            self.governor.approvals.sweep(rule, wall)  # expired, withdrawn
        else:
            rule.fix_checks()  # a follower makes no fix: none is its to tell
        self._hand_out(rule, actions, at, notify)
        return Evaluation(True)

    @staticmethod
    def verify_queries(rule: Rule) -> frozenset[str]:
        """The ``verify_query`` texts whose answers ``rule``'s next evaluation needs, to be
        read on its source (``Observation.verify``): only while a fix of it judged by one
        is pending, so a rule reads no more than its own query otherwise."""
        return rule.verify_queries()

    def retire(self, rule: Rule, now: float, notify: Notify) -> None:
        """``rule`` is changed or removed by a reload: its breaches end at ``now``; hand
        the resolves owed for what had acted to ``notify``.

        The rule is evaluated no more, but it is kept until it owes and runs nothing, and
        what it owes later is handed out at the evaluations of the other rules (to their
        ``notify``, when ``acting``), as a rule's own calls are at its evaluations: the
        resolve of a breach whose fire or repeat was still running at the reload, once that
        call is over (if some plugin took it: to those that did); a failed resolve, after
        the usual retry delay (one polling interval of the rule, doubling up to
        ``MAX_RETRY_DELAY``), until it succeeds. A restart forgets them: a retired rule is
        not in the state file."""
        rule.retire(now)
        self._retired.append(rule)
        self._wind_down(rule, now, notify)

    def _wind_down(self, rule: Rule, now: float, notify: Notify) -> None:
        actions = rule.wind_down(now)
        self._deliveries.prune(rule)
        self._hand_out(rule, actions, now, notify)
        if rule.wound_down:
            self._retired.remove(rule)

    def reconfigure(self, rule: Rule, config: RuleConfig, now: float, notify: Notify) -> None:
        """A reload keeps ``rule`` with the settings ``config``; hand the resolves owed for
        a hard level it removed to ``notify``."""
        self._hand_out(rule, rule.reconfigure(config, now), now, notify)

    def _hand_out(self, rule: Rule, actions: list[Action], at: float, notify: Notify) -> None:
        if not actions:
            return
        wall = self._wall_of(at)
        for action in actions:
            call = OwedCall(self._deliveries, self.governor, rule, action, at, wall)
            if call.judge():
                notify(call)
            else:  # held back whole: owed still, for the next evaluation
                call.give_back()
        for request in self.governor.approvals.take_new():  # each told once
            notify(ApprovalNotice(self.governor, request, rule, at))
