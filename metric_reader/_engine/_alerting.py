"""A rule with thresholds: a state machine per series, which hands out actions to run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .._config import LevelConfig
from .._core import EventKind, Labels, Sample, any_value, format_duration
from ._fix import FixCheck, PendingFix, healthy
from ._recent import recent_length
from ._rule import Rule, format_series
from ._rule_machine import RuleMachine
from ._series_limit import make_room
from ._state import (
    Action,
    LevelMachine,
    LevelPolicy,
    SeriesMachine,
    State,
    Transition,
    level_policy,
)

if TYPE_CHECKING:
    from .._config import RuleConfig
    from ._snapshot import Restored, RuleSnapshot


def _policies(config: RuleConfig) -> tuple[LevelPolicy, LevelPolicy | None]:
    """The base and hard level policies of ``config``; a failed action is retried after a
    polling interval."""
    base, hard, retry = config.base, config.hard, config.polling_interval
    assert base is not None, "a rule without a threshold is a LoggingRule"
    return level_policy(base, retry), level_policy(hard, retry) if hard else None


class AlertingRule(Rule):
    """Evaluates each read against its base (and hard) threshold, logs every transition,
    and hands out the actions its ``machine`` owes."""

    def __init__(self, config: RuleConfig) -> None:
        super().__init__(config)
        self.machine = RuleMachine(
            *_policies(config), config.missing, recent_length=recent_length(config.polling_interval)
        )

    def reconfigure(self, config: RuleConfig, now: float) -> list[Action]:
        super().reconfigure(config, now)
        self._log(self.machine.reconfigure(*_policies(config), config.missing, now))
        self.machine.recent_length = recent_length(config.polling_interval)
        return self.machine.take_removed_due(now)

    def evaluate(self, now: float, samples: list[Sample], acting: bool = True) -> list[Action]:
        transitions = self.machine.observe(now, samples)
        self._log(transitions)
        return self.machine.take_due(now) if acting else []

    def keep_recent(self, series: int) -> None:
        self.machine.recent_series = series

    @property
    def series(self) -> Mapping[Labels, SeriesMachine]:
        return self.machine.series

    @property
    def revision(self) -> int:
        return self.machine.revision

    def finish(self, now: float, action: Action, ok: bool) -> None:
        self.machine.finish(now, action, ok)

    def took(self, action: Action, plugin: str) -> None:
        self.machine.took(action, plugin)

    def give_back(self, action: Action) -> None:
        self.machine.give_back(action)

    def expect_fix(self, action: Action, now: float, within: float, fix: PendingFix) -> None:
        self.machine.expect_fix(action, now, within, fix)

    def fix_checks(self) -> list[tuple[Labels, FixCheck]]:
        return self.machine.take_fix_checks()

    def verify_queries(self) -> frozenset[str]:
        return self.machine.verify_queries()

    def judge_fixes(self, now: float, verify: Mapping[str, list[Sample] | None]) -> None:
        def unhealthy(labels: Labels, machine: LevelMachine, query: str) -> bool | None:
            answer = verify.get(query)
            if answer is None:
                return None
            alert = self.alert_labels(labels, machine.level, machine.held_value)
            return not healthy(answer, alert)

        self.machine.judge_queries(now, unhealthy)

    def make_room(self, read: set[Labels], limit: int) -> bool:
        return make_room(self.machine, read, limit)

    def adopt(
        self, level: str, labels: Labels, kind: EventKind, at: float, fire_count: int
    ) -> bool:
        slack = self.config.polling_interval + 1.0  # replicas poll at different moments
        return self.machine.adopt(level, labels, kind, at, fire_count, slack)

    def busy(self, level: str, labels: Labels) -> bool:
        return self.machine.busy(level, labels)

    def snapshot(self) -> RuleSnapshot:
        """The state of every series, times on the monotonic clock: what a restart keeps."""
        from ._snapshot import snapshot_of  # here: a replay (a rule test) keeps no state

        hard = self.config.hard or self._dropped_hard
        return snapshot_of(self.machine, None if hard is None else hard.threshold.text)

    def restore(self, snapshot: RuleSnapshot, now: float) -> Restored:
        """Take the state in ``snapshot`` (times on the monotonic clock) in place of the
        rule's own, at ``now``, whatever settings it was made under: the rule judges it by
        its own from its next evaluation, as after a reload (see ``restore_into``)."""
        if self.config.hard is None and any(one.hard is not None for one in snapshot.series):
            # Removed since the snapshot: what its resolves say it was. Never judged again.
            self._dropped_hard = LevelConfig(any_value(snapshot.hard_threshold or ""))
        from ._snapshot import restore_into

        restored = restore_into(self.machine, snapshot, now)
        self.machine.queried = True  # a fix judged by a query may be restored: look once
        self._log(restored.ended)
        return restored

    def retire(self, now: float) -> None:
        for series in self.machine.series.values():
            for machine in series.levels():
                if machine.fix is not None and machine.fix.query is not None:
                    machine.fix = None  # no query is read for a retired rule
        transitions = [t for series in self.machine.series.values() for t in series.clear(now)]
        self._log(transitions)
        if transitions:
            self.machine.revision += 1

    def wind_down(self, now: float) -> list[Action]:
        self.machine.forget_idle()
        return self.machine.take_due(now)

    @property
    def wound_down(self) -> bool:
        return not self.machine.series

    def _log(self, transitions: Iterable[Transition]) -> None:
        if self.quiet or not transitions:
            return
        from .._core import logger  # not imported by a replay, which logs nothing

        for t in transitions:
            level = self.level(t.level)
            log = logger.bind(
                rule=self.name,
                series=format_series(self.config.metric_name, t.labels),
                breach_level=t.level,
                value=t.value,
                threshold=level.threshold.text,
            )
            if t.new is State.PENDING:
                log.info("breach started, pending for {}", format_duration(level.duration))
            elif t.new is State.FIRING:
                log.warning("firing: breached for {}", format_duration(round(t.duration, 3)))
            elif t.old is State.FIRING:
                log.info("resolved after {}", format_duration(round(t.duration, 3)))
            else:
                log.info(
                    "breach ended after {}, before the duration",
                    format_duration(round(t.duration, 3)),
                )
