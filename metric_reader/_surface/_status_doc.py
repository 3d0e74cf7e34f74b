"""The ``/api/status`` document as types: declared once, for the code that builds it
(``_status``, and the service's ``leader_election``) and the code that reads it (the
status page), so ``mypy`` sees a key that one side writes and the other does not read.

A key that is always there is a plain one; a key that only some documents have is
``NotRequired``; a value that may be ``null`` is ``X | None``. Times are wall-clock
ISO 8601 (UTC) text, durations Go-style text (``1m30s``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from .._core import EventKind

if TYPE_CHECKING:  # the charts' code is imported by the status page only
    from .._core import LineKind

JsonNumber = float | str | None
"""A value: a number, ``"NaN"``, ``"+Inf"`` or ``"-Inf"`` (JSON has neither), or null."""

RecentPoint = tuple[float, JsonNumber, str]
"""One evaluation of a series: seconds since the epoch, the value read (null: none), and
the worse of its levels' states after it."""


class LastActionDoc(TypedDict):
    kind: EventKind
    result: Literal["success", "failure"]
    at: str


class LevelDoc(TypedDict):
    """One level (base or hard) of one series."""

    state: str
    """``ok``, ``pending`` or ``firing``."""
    since: str | None
    """When the breach began; null while ``ok``."""
    fired_at: str | None
    fire_count: int
    in_flight: EventKind | None
    """The plugin call running now."""
    last_action: LastActionDoc | None


class SeriesDoc(TypedDict):
    labels: dict[str, str]
    value: JsonNumber
    last_seen: str | None
    base: LevelDoc
    hard: LevelDoc | None
    placeholder: NotRequired[Literal[True]]
    """Stands for a rule that has never seen a series."""
    recent: NotRequired[list[RecentPoint]]
    """Only in documents asked for with ``Selection.recent`` (the status page's)."""


class LevelSettingsDoc(TypedDict):
    """One level of a rule as configured."""

    threshold: str
    duration: str
    backoff: str
    plugin: str | None


class LevelsDoc(TypedDict):
    base: LevelSettingsDoc | None
    """Null for a rule without a threshold (it only logs what it reads)."""
    hard: LevelSettingsDoc | None


RuleState = Literal["firing", "pending", "inactive"]
"""A rule's state as Prometheus' rules page shows an alerting rule's: the worst of its
series' (either level), *inactive* when none is pending or firing, no series at all
included."""


class AlertDoc(TypedDict):
    """Where an alert of a Prometheus rule file comes from."""

    group: str
    file: str
    line: int


class NoDataDoc(TypedDict):
    active: bool
    empty_polls: int
    since: str | None
    """Null unless ``active``."""


class ThresholdLineDoc(TypedDict):
    value: float
    label: str
    kind: LineKind


class SparklineDoc(TypedDict):
    """How the status page draws a rule's ``recent`` values."""

    seconds: float
    """The span the chart shows."""
    lines: list[ThresholdLineDoc]
    series_kept: int
    """Series of the rule that keep their recent values."""


class RulePageDoc(TypedDict):
    offset: int
    listed: int
    next: str | None
    """The link to the next page; null on the last one."""


class RuleDoc(TypedDict):
    name: str
    metric_name: str
    reads: str
    source: str
    target: str
    alert: AlertDoc | None
    """Null for a rule that is not an alert of a rule file."""
    polling_interval: str
    last_evaluation: str | None
    """When it was last evaluated (the time of the tick the read was for); null before
    its first evaluation, or outside a service."""
    evaluation_duration: str | None
    """How long that took: its read (shared with the other rules of a batched read) and
    its evaluation, rounded (``1.23ms``, ``2.041s``)."""
    last_error: str | None
    """Why its last read or evaluation failed (an expression Prometheus cannot run, an
    endpoint down, over the series limit); null once it is evaluated again."""
    levels: LevelsDoc
    state: RuleState | None
    """Null for a rule without a threshold."""
    no_data: NoDataDoc | None
    """Null for an alert of a rule file (an empty result is its healthy state, *inactive*),
    and outside a service."""
    series_count: int
    states: dict[str, int]
    """Every series counted by the worse state of its levels; every state, 0 included."""
    series: list[SeriesDoc]
    sparkline: NotRequired[SparklineDoc]
    """Only with ``Selection.recent``, for a rule with a threshold."""
    page: NotRequired[RulePageDoc]
    """Only when the document does not list every series of the rule."""


class TargetDoc(TypedDict):
    """One fetch (``FetchStatus``); "target" is its name in the document."""

    target: str
    polling_interval: str
    rules: int
    last_success: str | None
    last_error: str | None


class GroupDoc(TypedDict):
    group: str
    polling_interval: str
    offset: str
    rules: int
    reads: int
    """The group's fetches."""
    evaluations_missed_last_minute: int
    evaluations_missed_total: int


class LeaderElectionDoc(TypedDict):
    enabled: bool
    acting: bool
    identity: NotRequired[str]
    """This replica's; only when ``enabled``."""
    leader: NotRequired[str]
    """The Lease's holder, empty when none; only when ``enabled``."""


class PluginCallsDoc(TypedDict):
    """The plugin calls of the whole service now."""

    in_flight: int
    """Calls handed out and not settled: waiting for a thread, running, or timed out and
    still running (waited for until they end or are declared lost)."""
    queued: int
    """Plain-``def`` calls among them waiting for a free plugin thread."""
    queue_limit: int
    """Calls that may wait for a thread; one more is refused (not started)."""
    threads: int
    """Plain-``def`` calls that run at once."""


class PauseDoc(TypedDict):
    """The pause switch, while it holds; times are RFC 3339 UTC."""

    since: str
    until: str | None
    """Null: until resumed."""
    reason: str
    by: str


class BreakerDoc(TypedDict):
    plugin: str
    state: str
    """``closed``, ``open`` or ``half_open`` (one trial call allowed)."""
    reopens_at: str | None
    """While open: when the cooldown ends and a trial call may run."""


class SilenceCountsDoc(TypedDict):
    active: int
    pending: int


class BudgetDoc(TypedDict):
    name: str
    """``global``, ``plugin NAME`` or ``rule NAME``."""
    used: int
    """Calls spent within the window now."""
    max_actions: int
    per_seconds: float
    frees_at: str | None
    """While spent: when the next call fits again."""


class StormDoc(TypedDict):
    rule: str
    breached: int
    """How many series were breached when the storm began."""


class ApprovalDoc(TypedDict):
    """A pending approval request (``mode = "approve"``)."""

    id: str
    rule: str
    series: dict[str, str]
    kind: str
    plugin: str
    summary: str
    created: str
    expires: str
    link: str


class GovernorDoc(TypedDict):
    paused: PauseDoc | None
    """Null unless paused now."""
    breakers: list[BreakerDoc]
    """Every plugin with a circuit breaker configured."""
    silences: SilenceCountsDoc
    budgets: list[BudgetDoc]
    """Every budget configured."""
    storms: list[StormDoc]
    """The rules in a storm now (more series breached than their max_breaching)."""
    approvals: NotRequired[list[ApprovalDoc]]
    """The approval requests pending now, oldest first; only while there are any."""


class StatusDocument(TypedDict):
    """Everything ``/api/status`` returns."""

    version: str
    time: str
    started_at: str
    ready: bool
    targets: list[TargetDoc]
    groups: list[GroupDoc]
    rules: list[RuleDoc]
    truncated: bool
    note: NotRequired[str]
    """Only when ``truncated``: how to page through the rest."""
    leader_election: NotRequired[LeaderElectionDoc]
    """Added by the service (``status_snapshot`` alone has none)."""
    plugin_calls: NotRequired[PluginCallsDoc]
    """Added by the service (``status_snapshot`` alone has none)."""
    governor: NotRequired[GovernorDoc]
    """The pause, the circuit breakers and the silences; added by the service."""
