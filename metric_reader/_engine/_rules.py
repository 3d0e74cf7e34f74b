"""A configured rule at run time: its state machine, and what it logs as it evaluates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loguru import logger

from .._config import LevelConfig, RuleConfig
from .._core._durations import format_duration
from .._core._events import Event
from .._core._samples import Labels, Sample
from ._state import Action, RuleMachine, State, Transition, level_policy


def format_series(name: str, labels: Labels) -> str:
    """``name{a="x",b="y"}``: how a series is shown in logs."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


@dataclass
class Rule:
    """One rule: evaluates each successful read of its source and hands out actions."""

    config: RuleConfig
    machine: RuleMachine | None = field(init=False)

    def __post_init__(self) -> None:
        base, hard = self.config.base, self.config.hard
        retry = self.config.polling_interval
        self.machine = (
            RuleMachine(
                level_policy(base, retry),
                level_policy(hard, retry) if hard else None,
                self.config.missing,
            )
            if base is not None
            else None
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def reads(self) -> str:
        """What the rule reads: its selector (scrape) or its query."""
        config = self.config
        return str(config.selector) if config.source == "scrape" else config.promql

    def level(self, level: str) -> LevelConfig:
        config = self.config.base if level == "base" else self.config.hard
        assert config is not None
        return config

    def evaluate(self, now: float, samples: list[Sample], acting: bool = True) -> list[Action]:
        """Feed one successful read at monotonic time ``now``; return the actions to run
        (none when not ``acting``: a follower keeps them owed for when it leads)."""
        if self.machine is None:
            for sample in samples:
                logger.bind(rule=self.name, value=sample.value).info(
                    "{}", format_series(self.config.metric_name, sample.labels)
                )
            return []
        transitions = self.machine.observe(now, samples)
        self._log(transitions)
        return self.machine.take_due(now) if acting else []

    def finish(self, now: float, action: Action, ok: bool) -> None:
        if self.machine is not None:
            self.machine.finish(now, action, ok)

    def give_back(self, action: Action) -> None:
        if self.machine is not None:
            self.machine.give_back(action)

    def event(self, action: Action, now: float, plugin: str) -> Event:
        """What a plugin is told about ``action``, with the breach start in wall-clock time."""
        started = datetime.now(UTC) - timedelta(seconds=now - action.active_at)
        return Event(
            rule=self.name,
            metric_name=self.config.metric_name,
            labels=dict(action.labels),
            value=action.value,
            threshold=self.level(action.level).threshold.text,
            level=action.level,
            kind=action.kind,
            breach_started=started,
            duration=timedelta(seconds=action.duration),
            fire_count=action.fire_count,
            plugin=plugin,
        )

    def _log(self, transitions: Iterable[Transition]) -> None:
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


def revision(rules: Iterable[Rule]) -> int:
    """Changes to the state of ``rules`` so far: compare before and after a step."""
    return sum(rule.machine.revision for rule in rules if rule.machine is not None)
