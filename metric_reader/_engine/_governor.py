"""The governor: what may run of the calls the rules owe, and what became of each.

The evaluation step (``_step``) asks it about every plugin a call goes to, in this order,
the first that says no deciding:

1. ``paused``: the pause switch is on (``metric-reader pause``, ``PAUSED``);
2. ``inhibited``: a firing alert inhibits the alert (``[[inhibit_rules]]``, ``_inhibit``);
3. ``silenced``: an active silence matches the alert's labels;
4. ``muted``: a mute window of the rule or route holds now, or its active windows do not;
5. ``storm``: more of the rule's series are breached than its ``max_breaching`` (a fire
   or repeat; a resolve goes through);
6. ``shadow``: the rule or route is in shadow mode: recorded as would-have-run, not made,
   and the rule goes on as if it succeeded (it spends no budget and trips no breaker);
   ``approval``: in approve mode, a fire or repeat waits for its approval request to be
   approved (``_approvals``), then runs once;
7. ``breaker``: the plugin's circuit breaker is open;
8. ``budget``: the plugin's, the rule's or the global budget is spent (a fire or repeat).

A suppressed call is not queued: it stays owed, so the series gets it at its next
evaluation once nothing holds it back. Every owed call and what became of it is recorded
(``HistoryEntry``), a suppression once per call and reason, not at every evaluation.

Times are wall-clock seconds: budgets, breakers, silences and the pause are kept in the
state file and mean the same to the next process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from .._config import BudgetConfig, PluginGuard
from .._core import HistoryEntry, record
from ._approvals import ApprovalRequest, Approvals
from ._breaker import Breaker
from ._budget import Budget
from ._inhibit import Inhibitor
from ._silences import Silences, silence_of
from ._state import Action, State

if TYPE_CHECKING:
    from .._config import InhibitRule, Route
    from ._rule import Rule

LOG_EVERY = 60.0
"""A suppression is logged at most once a minute per reason and budget."""
HELD_KEPT = 100_000
"""Calls whose suppression is remembered (so it is recorded once): the oldest go first."""
STORM_SERIES_SHOWN = 20

Record = Callable[[HistoryEntry], None]
MarkFix = Callable[[str, str, tuple[str, ...], bool], None]
"""A fix verified: its rule, its idempotency key, the plugins it went to, whether it held."""


@record(frozen=True, slots=True)
class Verdict:
    outcome: Literal["run", "shadow", "suppressed"]
    reason: str = ""
    detail: str = ""
    first: bool = True
    """For a suppression: the first time this call is suppressed for this reason (it is
    recorded then, not at every evaluation that holds it back again)."""


RUN = Verdict("run")


@record(frozen=True, slots=True)
class Pause:
    since: float
    until: float | None
    """None: until resumed."""
    reason: str
    by: str = ""

    def holds(self, now: float) -> bool:
        return self.until is None or now < self.until


def _nothing(entry: HistoryEntry) -> None:
    pass


def _no_mark(rule: str, key: str, plugins: tuple[str, ...], held: bool) -> None:
    pass


class Governor:
    """Budgets, breakers, storms, silences, mute windows, the pause and the mode."""

    def __init__(self, record: Record = _nothing, quiet: bool = False) -> None:
        self.record = record
        """Where every history entry goes (the service: the SQLite history)."""
        self.mark_fix: MarkFix = _no_mark
        """Where what came of a verified fix goes: the history rows of its call are marked
        ``verified`` (the service also counts ``metric_reader_fixes_total``)."""
        self.quiet = quiet
        """A replay's: nothing is logged."""
        self.silences = Silences()
        self.inhibitor = Inhibitor()
        """``[[inhibit_rules]]`` and the firing alerts: the evaluation step keeps it told."""
        self.pause: Pause | None = None
        self.limits: Budget | None = None
        self.plugin_budgets: dict[str, Budget] = {}
        self.rule_budgets: dict[str, Budget] = {}
        self.breakers: dict[str, Breaker] = {}
        self.time_intervals: Mapping[str, Sequence[Any]] = {}
        self.approvals = Approvals(lambda entry: self.record(entry))
        """The approval requests of calls in ``mode = "approve"``."""
        self.storms: dict[str, int] = {}
        """The rules in a storm, with how many series were breached when it began."""
        self.revision = 0
        """Counts the changes worth saving (budgets spent, breakers, the pause)."""
        self._held: dict[tuple[object, ...], str] = {}
        self._logged: dict[str, float] = {}

    # --- configuration -----------------------------------------------------------------

    def configure(
        self,
        limits: BudgetConfig | None,
        plugin_guards: Mapping[str, PluginGuard],
        rules: Sequence[Rule],
        time_intervals: Mapping[str, Sequence[Any]],
        inhibit_rules: Sequence[InhibitRule] = (),
    ) -> None:
        """Take the limits of a (re)loaded configuration; a budget or breaker whose
        settings stayed keeps what it counted."""
        self.inhibitor.configure(inhibit_rules, rules)
        self.limits = _budget(self.limits, limits)
        self.plugin_budgets = {
            name: budget
            for name, guard in plugin_guards.items()
            if (budget := _budget(self.plugin_budgets.get(name), guard.budget)) is not None
        }
        self.rule_budgets = {
            rule.name: budget
            for rule in rules
            if (budget := _budget(self.rule_budgets.get(rule.name), rule.config.guard.budget))
            is not None
        }
        breakers = {}
        for name, guard in plugin_guards.items():
            if guard.breaker is None:
                continue
            old = self.breakers.get(name)
            breakers[name] = (
                old
                if old is not None and old.config == guard.breaker
                else Breaker(name, guard.breaker)
            )
        self.breakers = breakers
        self.time_intervals = time_intervals
        if rules:  # a reload: the requests of rules gone are withdrawn
            self.approvals.keep_only({rule.identity_digest for rule in rules}, _wall())

    # --- the pause -----------------------------------------------------------------------

    def paused(self, now: float) -> Pause | None:
        pause = self.pause
        return pause if pause is not None and pause.holds(now) else None

    def set_pause(self, now: float, until: float | None, reason: str, by: str = "") -> Pause:
        self.pause = Pause(now, until, reason, by)
        self.revision += 1
        self._log("WARNING", "paused: no plugin is called{}{}", _until(until), _why(reason))
        return self.pause

    def resume(self, now: float) -> bool:
        """Resume; return whether it was paused."""
        was = self.paused(now) is not None
        self.pause = None
        self.revision += 1
        if was:
            self._log("WARNING", "resumed: owed calls run at their next evaluation")
        return was

    # --- storms --------------------------------------------------------------------------

    def watch_storm(self, rule: Rule, now: float) -> StormStart | None:
        """After an evaluation of ``rule``: whether a storm began (its one notice), and
        whether the one it was in ended."""
        guard = rule.config.guard
        if guard.max_breaching is None and guard.max_breaching_percent is None:
            if self.storms:
                self.storms.pop(rule.name, None)  # a reload removed its limit
            return None  # no walk over the series at each evaluation of every other rule
        tracked = [labels for labels, s in rule.series.items() if not s.placeholder]
        limit = guard.breaching_limit(len(tracked))
        assert limit is not None
        breached = [labels for labels in tracked if rule.series[labels].worst is not State.OK]
        if len(breached) > limit:
            if rule.name in self.storms:
                return None
            self.storms[rule.name] = len(breached)
            self._log(
                "WARNING",
                "storm: {} series of rule {} breached at once (max_breaching {}); per-series "
                "calls held until no more than {} are",
                len(breached),
                rule.name,
                guard.breaching_text(),
                limit,
            )
            return StormStart(rule, len(breached), limit, tuple(breached[:STORM_SERIES_SHOWN]))
        if self.storms.pop(rule.name, None) is not None:
            self._log(
                "INFO",
                "storm over: {} series of rule {} breached (max_breaching {}); per-series "
                "calls resume",
                len(breached),
                rule.name,
                guard.breaching_text(),
            )
        return None

    # --- one call ------------------------------------------------------------------------

    def judge(
        self,
        rule: Rule,
        action: Action,
        plugin: str | None,
        route: Route | None,
        now: float,
    ) -> Verdict:
        """What may become of the call of ``plugin`` (None: only logged) for ``action``
        at ``now``; a call that may run has spent its budgets."""
        verdict = self._judge(rule, action, plugin, route, now)
        key = (
            rule.identity_digest,
            action.labels,
            action.level,
            action.breach,
            action.kind,
            action.fire_count,
            plugin,
        )
        if verdict.outcome != "suppressed":
            self._held.pop(key, None)
            return verdict
        if self._held.get(key) == verdict.reason:
            return Verdict(verdict.outcome, verdict.reason, verdict.detail, first=False)
        self._held.pop(key, None)
        self._held[key] = verdict.reason
        if len(self._held) > HELD_KEPT:
            del self._held[next(iter(self._held))]
        self._log_suppressed(verdict, now)
        return verdict

    def _judge(
        self, rule: Rule, action: Action, plugin: str | None, route: Route | None, now: float
    ) -> Verdict:
        acting = action.kind != "resolve"
        guard = rule.config.guard
        pause = self.paused(now)
        if pause is not None and plugin is not None:
            return Verdict(
                "suppressed", "paused", f"paused{_until(pause.until)}{_why(pause.reason)}"
            )
        if plugin is not None:
            labels = rule.alert_labels(action.labels, action.level, action.value)
            inhibition = self.inhibitor.inhibited_by(labels)
            if inhibition is not None:
                return Verdict("suppressed", "inhibited", inhibition.describe())
            silence = self.silences.silencing(labels, now)
            if silence is not None:
                return Verdict("suppressed", "silenced", silence.describe())
            muted = self._muted(guard.mute_time_intervals, guard.active_time_intervals, now)
            if muted is None and route is not None:
                muted = self._muted(route.mute_time_intervals, route.active_time_intervals, now)
            if muted is not None:
                return Verdict("suppressed", "muted", muted)
        if acting and rule.name in self.storms:
            return Verdict(
                "suppressed",
                "storm",
                f"storm of rule {rule.name}: "
                f"{self.storms[rule.name]} series breached (max_breaching "
                f"{guard.breaching_text()})",
            )
        if plugin is None:
            return RUN
        mode = route.mode if route is not None and route.mode is not None else guard.mode
        if mode == "shadow":
            return Verdict("shadow")
        approval: ApprovalRequest | None = None
        if mode == "approve" and acting:  # a resolve only tells that an approved fix ended
            asks = route.approval_plugin if route is not None else None
            approval = self.approvals.ask(rule, action, plugin, asks or guard.approval_plugin, now)
            if approval.state not in ("approved", "ran"):
                return Verdict("suppressed", "approval", _approval_detail(approval))
        breaker = self.breakers.get(plugin)
        if breaker is not None:
            allowed, change = breaker.allows(now)
            if change is not None:
                self._breaker_changed(breaker, change)
            if not allowed:
                reopens = breaker.reopens_at()
                when = "" if reopens is None else f" until {_utc(reopens)}"
                return Verdict("suppressed", "breaker", f"breaker of plugin {plugin} open{when}")
        if acting:
            budgets = [
                b
                for b in (
                    self.plugin_budgets.get(plugin),
                    self.rule_budgets.get(rule.name),
                    self.limits,
                )
                if b is not None
            ]
            for budget in budgets:
                if not budget.allows(now):
                    if (
                        breaker is not None
                        and breaker.trial_running
                        and breaker.state == "half_open"
                    ):
                        breaker.trial_running = False  # the trial did not run
                    frees = budget.frees_at(now)
                    when = "" if frees is None else f"; frees at {_utc(frees)}"
                    return Verdict("suppressed", "budget", budget.describe() + when)
            for budget in budgets:
                budget.spend(now)
            if budgets:
                self.revision += 1
        if approval is not None:
            self.approvals.ran(approval, now)
        return RUN

    def _muted(self, mute: Sequence[str], active: Sequence[str], now: float) -> str | None:
        if not mute and not active:
            return None
        moment = datetime.fromtimestamp(now, UTC)
        for name in mute:
            if any(interval.contains(moment) for interval in self.time_intervals.get(name, ())):
                return f"mute time interval {name}"
        if active and not any(
            interval.contains(moment)
            for name in active
            for interval in self.time_intervals.get(name, ())
        ):
            return f"outside the active time intervals {', '.join(active)}"
        return None

    def outcome(self, plugin: str | None, ok: bool, now: float) -> None:
        """A call of ``plugin`` ended (its breaker counts it)."""
        breaker = self.breakers.get(plugin) if plugin is not None else None
        if breaker is None:
            return
        change = breaker.record(ok, now)
        if change is not None:
            self._breaker_changed(breaker, change)

    def _breaker_changed(self, breaker: Breaker, change: str) -> None:
        self.revision += 1
        level = "INFO" if breaker.state == "closed" else "WARNING"
        self._log(level, "circuit breaker of plugin {}: {}", breaker.plugin, change)

    # --- the log ----------------------------------------------------------------------

    def _log_suppressed(self, verdict: Verdict, now: float) -> None:
        topic = f"{verdict.reason}:{verdict.detail.split(';')[0]}"
        last = self._logged.get(topic)
        if last is not None and now - last < LOG_EVERY:
            return
        self._logged[topic] = now
        self._log("WARNING", "call suppressed ({}): {}", verdict.reason, verdict.detail)

    def _log(self, level: str, message: str, *args: object) -> None:
        if self.quiet:
            return
        from .._core import logger

        logger.log(level, message, *args)

    # --- the state file ------------------------------------------------------------------

    def export(self) -> dict[str, object]:
        pause = self.pause
        return {
            "pause": None
            if pause is None
            else {
                "since": pause.since,
                "until": pause.until,
                "reason": pause.reason,
                "by": pause.by,
            },
            "budgets": {name: budget.spent() for name, budget in self._budgets().items()},
            "breakers": {name: breaker.export() for name, breaker in self.breakers.items()},
            "silences": self.silences.export(),
            "approvals": self.approvals.export(),
        }

    def adopt(self, shared: object, now: float) -> None:
        """Take the leader's state as this replica's own (a follower's, which does not act):
        its pause, budgets spent, breakers and silences replace what is here."""
        if not isinstance(shared, Mapping):
            return
        self.pause = None
        for budget in self._budgets().values():
            budget.restore([], replace=True)
        for name, breaker in self.breakers.items():
            self.breakers[name] = Breaker(name, breaker.config)
        self.silences.restore([])
        approvals = shared.get("approvals")
        self.approvals.restore(approvals if isinstance(approvals, list) else [], replace=True)
        self.restore({k: v for k, v in shared.items() if k != "approvals"}, now)

    def budgets(self) -> list[Budget]:
        """Every budget configured: the global one, the plugins', the rules'."""
        return list(self._budgets().values())

    def _budgets(self) -> dict[str, Budget]:
        return {
            **({"global": self.limits} if self.limits is not None else {}),
            **{f"plugin {n}": b for n, b in self.plugin_budgets.items()},
            **{f"rule {n}": b for n, b in self.rule_budgets.items()},
        }

    def restore(self, saved: object, now: float) -> list[str]:
        """Take what a state file kept (``export``'s document): the pause, the calls spent
        of each budget still configured, the breakers and the silences. A part that cannot
        be used is skipped; return a line for each."""
        notes: list[str] = []
        if not isinstance(saved, Mapping):
            return [
                "governor: not an object: budgets, breakers, silences and the pause start afresh"
            ]
        pause = saved.get("pause")
        if isinstance(pause, Mapping):
            since, until = pause.get("since"), pause.get("until")
            if isinstance(since, int | float) and (until is None or isinstance(until, int | float)):
                restored = Pause(
                    float(since),
                    None if until is None else float(until),
                    str(pause.get("reason", "")),
                    str(pause.get("by", "")),
                )
                if restored.holds(now) and self.pause is None:  # PAUSED=true has its own
                    self.pause = restored
            else:
                notes.append("governor.pause: unusable, not restored")
        budgets = saved.get("budgets")
        if isinstance(budgets, Mapping):
            mine = self._budgets()
            for name, spent in budgets.items():
                budget = mine.get(name)
                if budget is None or not isinstance(spent, list):
                    continue
                budget.restore([float(t) for t in spent if isinstance(t, int | float)])
        breakers = saved.get("breakers")
        if isinstance(breakers, Mapping):
            for name, kept in breakers.items():
                breaker = self.breakers.get(name)
                if breaker is not None and isinstance(kept, dict):
                    breaker.restore(kept)
        silences = saved.get("silences")
        if isinstance(silences, list):
            restored_silences = []
            for kept in silences:
                try:
                    restored_silences.append(silence_of(kept))
                except ValueError as exc:
                    notes.append(f"governor.silences: {exc}: that silence is not restored")
            self.silences.restore(restored_silences)
        approvals = saved.get("approvals")
        if isinstance(approvals, list):
            notes.extend(self.approvals.restore(approvals))
        return notes


@record(frozen=True, slots=True)
class StormStart:
    """A rule's storm began: the one notice of it."""

    rule: Rule
    breached: int
    limit: int
    series: tuple[Any, ...]


def _budget(old: Budget | None, config: BudgetConfig | None) -> Budget | None:
    if config is None:
        return None
    if (
        old is not None
        and old.config.max_actions == config.max_actions
        and old.config.per == config.per
    ):
        old.config = config
        return old
    return Budget(config, old.spent() if old is not None else None)


def _approval_detail(request: ApprovalRequest) -> str:
    if request.state == "pending":
        return f"approval {request.id} pending until {_utc(request.expires)}"
    by = f" by {request.by}" if request.by else ""
    return f"approval {request.id} {request.state}{by}: not run in this breach"


def _wall() -> float:
    import time

    return time.time()


def _until(until: float | None) -> str:
    return "" if until is None else f" until {_utc(until)}"


def _why(reason: str) -> str:
    return f": {reason}" if reason else ""


def _utc(at: float) -> str:
    if not math.isfinite(at):
        return str(at)
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
