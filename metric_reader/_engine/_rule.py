"""What the service does with any rule, whatever its kind: read, evaluate, act.

Two kinds implement it, as Prometheus' ``rules/rule.go`` has alerting and recording rules:
``AlertingRule`` (thresholds, and a state machine per series) and ``LoggingRule`` (no
threshold: it only logs what it reads). A rule of either kind answers every question here,
so callers need not ask which kind it is: a rule without a threshold hands out no actions,
tracks no series and has nothing to save.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .._core import Event, EventKind, Labels, Sample, idempotency_key, record
from ._fix import FixCheck, PendingFix
from ._state import Action, SeriesMachine, State

if TYPE_CHECKING:
    from .._config import LevelConfig, RuleConfig


def format_series(name: str, labels: Labels) -> str:
    """``name{a="x",b="y"}``: how a series is shown in logs."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


def generator_url(external_url: str, expression: str) -> str:
    """The link Prometheus sends with an alert (rules/manager.go ``SendAlerts``): the
    external URL and the table view of the expression; empty without an external URL."""
    if not external_url:
        return ""
    return f"{external_url}/graph?g0.expr={urllib.parse.quote_plus(expression)}&g0.tab=1"


def rule_identity(config: RuleConfig) -> tuple[object, ...]:
    """What makes a rule the same rule across a reload, as Prometheus' ``Group.CopyState``
    matches alerts: for an alert of a rule file its group, alert name and labels; for any
    other rule its name. Its kind too: a rule that lost its threshold is another rule.
    Labels are a set, as Prometheus compares them: their order in the file is no part of it."""
    alert = config.alert
    if alert is not None:
        return ("alert", alert.group, alert.name, tuple(sorted(dict(alert.labels).items())))
    return ("logging" if config.base is None else "alerting", config.name)


@record(frozen=True, slots=True)
class ActiveAlert:
    """A pending or firing series level, as Prometheus shows an alert (``ALERTS``)."""

    labels: Mapping[str, str]
    """The alert's labels: ``alertname`` and the series' labels (see ``Rule.alert_labels``)."""
    state: State
    active_at: float
    """Monotonic time the breach started (Prometheus' ``activeAt``)."""


class Rule(ABC):
    """One configured rule at run time: evaluates each successful read of its source."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self.identity = rule_identity(config)
        self.identity_digest = hashlib.sha256(repr(self.identity).encode()).hexdigest()[:16]
        """The identity, hashed: the same in every process (``repr`` of strings and tuples
        of them) and for the rule's whole life. The rule's idempotency keys are made of it
        besides the call, so a reload that keeps the rule (an annotation edited) keeps its
        calls' keys, and one that changes its identity makes a new rule whose keys are not
        the old one's; the state file keeps it, so a restart restores the rule's state
        into the rule of the same identity, as a reload keeps it."""
        self.quiet = False
        """A replay's rule: its transitions are not logged (the replay reports them), and so
        a rule test never loads the logging library."""
        self._dropped_hard: LevelConfig | None = None
        """The hard level a reload removed: what the resolves it still owes are about."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def expression(self) -> str:
        """What the rule reads: its selector or its query."""
        return self.config.source.expression

    def level(self, level: str) -> LevelConfig:
        config = self.config.base if level == "base" else self.config.hard or self._dropped_hard
        assert config is not None
        return config

    def reconfigure(self, config: RuleConfig, now: float) -> list[Action]:
        """A reload keeps the rule (its ``identity`` is ``config``'s) under new settings:
        every series keeps its state and is judged by them from its next evaluation, so a
        changed annotation, route, threshold or duration resolves nothing by itself. Return
        the resolves owed at ``now`` for a hard level the reload removed."""
        assert rule_identity(config) == self.identity, "another rule: retire this one"
        if config.hard is None and self.config.hard is not None:
            self._dropped_hard = self.config.hard
        self.config = config
        return []

    @abstractmethod
    def evaluate(self, now: float, samples: list[Sample], acting: bool = True) -> list[Action]:
        """Feed one successful read at monotonic time ``now``; return the actions to run
        (none when not ``acting``: a follower keeps them owed for when it leads)."""

    @property
    @abstractmethod
    def series(self) -> Mapping[Labels, SeriesMachine]:
        """The series the rule tracks, by their labels."""

    @property
    @abstractmethod
    def revision(self) -> int:
        """Counts the changes worth saving: compare before and after a step."""

    @abstractmethod
    def finish(self, now: float, action: Action, ok: bool) -> None:
        """Record the outcome of ``action``, which ``evaluate`` handed out."""

    @abstractmethod
    def took(self, action: Action, plugin: str) -> None:
        """``plugin`` took ``action`` (reported before ``finish``): the resolve of its
        breach goes to the plugins that took its fire and repeats."""

    def expect_fix(  # noqa: B027 (a rule without a threshold makes no fix)
        self, action: Action, now: float, within: float, fix: PendingFix
    ) -> None:
        """``action`` (a fire or repeat) succeeded at ``now``: its breach must end within
        ``within`` seconds, else its fix did not hold (``_fix``)."""

    def fix_checks(self) -> list[tuple[Labels, FixCheck]]:
        """What came of the fixes being verified since this was last asked."""
        return []

    def verify_queries(self) -> frozenset[str]:
        """The ``verify_query`` texts whose answers its fixes being verified need now (none
        unless a fix judged by one is pending)."""
        return frozenset()

    def judge_fixes(  # noqa: B027 (a rule without a threshold makes no fix)
        self, now: float, verify: Mapping[str, list[Sample] | None]
    ) -> None:
        """Judge the fixes verified by a query on ``verify`` (each query's answer at
        ``now``; None or absent: not read, nothing judged)."""

    @abstractmethod
    def give_back(self, action: Action) -> None:
        """``action`` was not run (this replica may not act): it stays owed as it was."""

    @abstractmethod
    def make_room(self, read: set[Labels], limit: int) -> bool:
        """Forget what can be forgotten so the series ``read`` fit among at most ``limit``
        tracked; return whether they do (see ``_series_limit``)."""

    @abstractmethod
    def adopt(
        self, level: str, labels: Labels, kind: EventKind, at: float, fire_count: int
    ) -> bool:
        """The leader ran ``kind`` successfully for a series and level at monotonic ``at``:
        count it as run here; return whether anything changed."""

    @abstractmethod
    def retire(self, now: float) -> None:
        """The rule is changed or removed by a reload: end every breach at once (a resolve
        is owed for what had acted). It is evaluated no more: ``wind_down`` hands out what
        it still owes."""

    @abstractmethod
    def wind_down(self, now: float) -> list[Action]:
        """A retired rule: forget the series that owe and run nothing, and return the
        actions owed that may start at ``now`` (they are then in flight, as from
        ``evaluate``): a resolve whose breach's call was still running when the rule
        retired, once that call is over; a failed resolve, after its retry delay."""

    @property
    @abstractmethod
    def wound_down(self) -> bool:
        """A retired rule has nothing left to send: every series it had is forgotten."""

    @abstractmethod
    def busy(self, level: str, labels: Labels) -> bool:
        """Whether that series and level is breached, or has an action owed or running."""

    def alert_labels(self, labels: Labels, level: str, value: float) -> dict[str, str]:
        """The labels of the alert a series level is: its labels, ``alertname`` (the rule's
        name) and, for the hard level, ``breach_level="hard"``. ``value``: the series' last
        value (an alerting rule of a rule file renders its label templates with it)."""
        out = dict(labels)
        out["alertname"] = self.name
        if level != "base":
            out["breach_level"] = level
        return out

    @abstractmethod
    def keep_recent(self, series: int) -> None:
        """Keep the recent evaluations (the status page's sparklines) of at most ``series``
        of the rule's series from now on; 0: of none."""

    def annotations(self, labels: Labels, value: float) -> dict[str, str]:
        """The alert's annotations, rendered for a series (only rule files' alerts have
        any)."""
        return {}

    def alerts(self) -> Iterator[ActiveAlert]:
        """Every pending or firing series level of the rule."""
        for labels, series in self.series.items():
            for machine in series.levels():
                if machine.state is not State.OK and machine.active_at is not None:
                    yield ActiveAlert(
                        self.alert_labels(labels, machine.level, machine.held_value),
                        machine.state,
                        machine.active_at,
                    )

    def event(self, action: Action, now: float, plugin: str, wall: datetime | None = None) -> Event:
        """What a plugin is told about ``action``, with the breach start in wall-clock time:
        ``wall`` is the wall-clock time of ``now`` (default: the current time)."""
        wall = datetime.now(UTC) if wall is None else wall
        started = wall - timedelta(seconds=now - action.active_at)
        labels = dict(action.labels)
        key = idempotency_key(
            self.name,
            labels,
            action.level,
            started,
            action.breach,
            action.kind,
            action.fire_count,
            self.identity_digest,
        )
        return Event(
            rule=self.name,
            metric_name=self.config.metric_name,
            labels=labels,
            value=action.value,
            threshold=self.level(action.level).threshold.text,
            level=action.level,
            kind=action.kind,
            breach_started=started,
            duration=timedelta(seconds=action.duration),
            fire_count=action.fire_count,
            plugin=plugin,
            idempotency_key=key,
            external_labels=dict(self.config.external_labels),
            generator_url=generator_url(self.config.external_url, self.expression),
        )


def revision(rules: Iterable[Rule]) -> int:
    """Changes to the state of ``rules`` so far: compare before and after a step."""
    return sum(rule.revision for rule in rules)
