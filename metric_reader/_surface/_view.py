"""What the HTTP endpoints, the scrape-time metrics and the status document read from the
service: a narrow, read-only view declared here, so ``_surface`` never imports the service
and its tests can use a small fake."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry

from .._core import HistoryEntry
from .._engine import ActiveAlert, AlertingRule, Governor, Rule, State
from ._metrics import ServiceMetrics

if TYPE_CHECKING:  # the status document's code: imported on the first request for it
    from ._selection import Selection
    from ._status_doc import StatusDocument

READY_WINDOW = 60.0
"""A fetch counts as done recently within three of its polling intervals, and at least
within this many seconds."""


def fetched_recently(last_success: float | None, interval: float, now: float) -> bool:
    """Whether a fetch last done successfully at ``last_success`` (monotonic) still
    counts as recent at ``now``: the readiness window, in one place."""
    return last_success is not None and now - last_success <= max(3 * interval, READY_WINDOW)


@dataclass(frozen=True, slots=True)
class FetchStatus:
    """How one fetch goes. Times are monotonic."""

    description: str
    interval: float
    rules: int
    last_success: float | None
    last_error: str | None
    group: str = ""
    """The name of the group it is read in."""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """How one group keeps up: its rules, its fetches, and the evaluations it missed."""

    name: str
    interval: float
    offset: float
    rules: int
    fetches: int
    missed_last_minute: int
    missed_total: int


@dataclass(frozen=True, slots=True)
class LastEvaluation:
    """A rule's last evaluation, as Prometheus' rules page shows it (``lastEvaluation``,
    ``evaluationTime``)."""

    at: float
    """Monotonic time of the tick it was for (the evaluation's timestamp)."""
    seconds: float
    """From the start of its read (shared with the other rules of a batched read) to the
    end of its evaluation."""


@dataclass(frozen=True, slots=True)
class RuleSeries:
    """A rule's series counted by level and state, and its plugin calls running now."""

    rule: str
    counts: Mapping[tuple[str, str], int]
    """Series by ``(level, state)``; every state of every level the rule has, 0 included."""
    in_flight: int

    @classmethod
    def of(cls, rule: Rule) -> RuleSeries | None:
        """The summary of ``rule``; None for a rule without a threshold (it has no state)."""
        if not isinstance(rule, AlertingRule):
            return None
        levels = ["base"] if rule.config.hard is None else ["base", "hard"]
        counts = {(level, state.value): 0 for level in levels for state in State}
        running = 0
        for one in rule.series.values():
            for level in one.levels():
                counts[level.level, level.state.value] += 1
                running += level.in_flight is not None
        return cls(rule.name, counts, running)


@dataclass(frozen=True, slots=True)
class UnloadedPlugin:
    """A plugin a rule names that is not loaded now, and why when known."""

    rule: str
    plugin: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class PluginCounts:
    loaded: int
    broken: int
    """Plugin files that do not load: syntax or import error, untrusted, ..."""
    unconfigured: int
    """Plugins that loaded but whose ``validate_config`` refused."""


class ActionLog(Protocol):
    """The action history as the surface reads it (the service's ``ActionHistory``)."""

    def query(
        self,
        since: float | None = None,
        rule: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> Sequence[HistoryEntry]:
        """The entries at or after ``since`` (wall clock), of ``rule``, of ``outcome``,
        newest first, at most ``limit``."""
        ...


class ServiceView(Protocol):
    """The service as ``_surface`` sees it. Methods that read the event loop's clock
    (``ready``, ``acting``, ``status``) raise ``RuntimeError`` outside it."""

    @property
    def registry(self) -> CollectorRegistry:
        """Where the service's own counters and histograms are."""
        ...

    def rule_names(self) -> Collection[str]: ...

    def generation(self) -> Hashable:
        """Changes whenever a poll or an action changed what a status document shows."""
        ...

    def ready(self) -> bool:
        """Every fetch done successfully within ``READY_WINDOW`` (see ``fetched_recently``)."""
        ...

    def fetch_statuses(self) -> Sequence[FetchStatus]: ...

    def unloaded_plugins(self) -> Iterable[UnloadedPlugin]: ...

    def rule_series(self) -> Iterable[RuleSeries]:
        """One per rule with a threshold."""
        ...

    def rules_without_data(self) -> Mapping[str, bool]:
        """Every rule that reads a metric (not the alerts of rule files, whose empty result
        is their healthy state): True while its successful reads return no series."""
        ...

    def alerts(self) -> Iterable[ActiveAlert]:
        """Every pending or firing series level of every rule (``ALERTS``)."""
        ...

    def plugin_counts(self) -> PluginCounts: ...

    def acting(self) -> bool:
        """Whether this replica runs actions (the leader, or leader election is off)."""
        ...

    def status(self, selection: Selection | None = None) -> StatusDocument:
        """The ``/api/status`` document for ``selection``."""
        ...

    @property
    def actions(self) -> ActionLog:
        """The action history (``/api/actions``, the status page's recent actions)."""
        ...

    async def reload(self) -> str | None:
        """Read the configuration again and run it; None, or why it was refused."""
        ...

    @property
    def metrics(self) -> ServiceMetrics:
        """The service's own metrics (``metric_reader_paused`` is set from the governor)."""
        ...

    @property
    def governor(self) -> Governor:
        """Its silences and pause switch, changed by the governor's endpoints
        (``_governor_api``) on the event loop."""
        ...

    async def governor_ready(self) -> bool:
        """Wait (a few seconds at most) until the state file's silences and pause are
        restored, so that a change made over HTTP at start-up is not replaced by them;
        return whether they are."""
        ...

    async def governor_changed(self) -> None:
        """A silence or the pause changed over HTTP: save the state file now."""
        ...
