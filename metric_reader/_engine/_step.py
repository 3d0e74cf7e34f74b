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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .._core import Event, Sample
from ._delivery import Deliveries
from ._nodata import NoData
from ._rule import Rule
from ._series_limit import admit
from ._state import Action

if TYPE_CHECKING:
    from .._config import Route, RuleConfig


@dataclass(frozen=True, slots=True)
class Observation:
    """What the rule's source returned at ``at``; ``samples`` None: the fetch failed (the
    rule's state stays as it was, as after a failed poll)."""

    at: float
    samples: list[Sample] | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the step did with one observation."""

    evaluated: bool
    """Whether the rule was evaluated: not when the fetch failed or the series limit
    refused what it returned."""
    refused: str | None = None
    """Why the series limit refused the observation (one line), or None."""


class OwedCall:
    """One action a rule handed out, from the plugins it goes to until it is settled.

    ``plugins`` are those still to call (the routes', or for a resolve those that took the
    breach's fire and repeats, less those that took the action already); ``report`` each
    one's outcome as it comes, then ``settle`` once, at the time
    the call ended. Or ``give_back`` instead, when this replica may not run it.
    """

    __slots__ = ("_deliveries", "_failed", "_pending", "_reported", "action", "at", "rule")

    def __init__(self, deliveries: Deliveries, rule: Rule, action: Action, at: float) -> None:
        self.rule = rule
        self.action = action
        self.at = at
        """When the rule handed the action out."""
        self._deliveries = deliveries
        self._pending: list[str | None] | None = None
        self._reported = 0
        self._failed = False

    def plugins(self) -> list[str | None]:
        """The plugins to call, in order (None: the action is only logged). Asked once,
        when the call runs: a plugin that took the action before is not called again."""
        if self._pending is None:
            self._pending = self._deliveries.pending(self.rule, self.action)
        return list(self._pending)

    def event(self, plugin: str | None, now: float, wall: datetime | None = None) -> Event:
        """What ``plugin`` is told, at ``now`` (``wall``: its wall-clock time, by default the
        current time)."""
        return self.rule.event(self.action, now, plugin or "", wall)

    def report(self, plugin: str | None, ok: bool) -> None:
        """How the call of ``plugin`` went; one that took the action is not called again
        for it."""
        self._reported += 1
        if ok:
            self._deliveries.took(self.rule, self.action, plugin)
            if plugin is not None:
                self.rule.took(self.action, plugin)
        else:
            self._failed = True

    def settle(self, now: float) -> bool:
        """The call is over at ``now``: the rule records its outcome (a retry is due after a
        failure); return whether it succeeded, that is every plugin was called and took it
        (a call cut off before its plugins ran, or before they all answered, failed)."""
        pending = self._pending
        ok = pending is not None and self._reported >= len(pending) and not self._failed
        self.rule.finish(now, self.action, ok)
        self._deliveries.settle(self.rule, self.action, ok)
        return ok

    def give_back(self) -> None:
        """The call did not run (this replica may not act): the action stays owed as it
        was."""
        self.rule.give_back(self.action)


Notify = Callable[[OwedCall], object]
"""What is done with each owed call, in the order the rule owes them (Prometheus'
``NotifyFunc``)."""


class EvaluationStep:
    """Evaluates rules on what their sources returned and hands out the calls they owe.

    One per service (or replay): it remembers, across evaluations, which plugins took an
    action that reaches several, so that a retry calls only those that have not.
    """

    def __init__(self, routes: tuple[Route, ...] = ()) -> None:
        self._deliveries = Deliveries(routes)
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
        actions = rule.evaluate(at, samples, acting)
        self._deliveries.prune(rule)
        self._hand_out(rule, actions, at, notify)
        return Evaluation(True)

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
        for action in actions:
            notify(OwedCall(self._deliveries, rule, action, at))
