"""The settings, frozen: what the loader builds and every other layer reads.

The small records no code copies with ``record_replace`` are named tuples: as
immutable, and a tenth of a frozen dataclass' cost to define, which ``check`` and ``test``
pay at every start."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from .._core import Selector, Threshold, record, record_field
from ._client import MAX_RESPONSE_BYTES, ClientConfig
from ._problems import env_name
from ._verify import VerifyConfig

if TYPE_CHECKING:
    from ._inhibit_rules import InhibitRule
    from ._routes import Route

DEFAULT_SERIES_LIMIT = 10_000
"""``SERIES_LIMIT``: each series is a state machine (about 1 KiB); a rule that acts per series
and reads more than this is almost always a label that churns (a request ID, a pod hash),
and 10,000 is still ~10 MiB a rule, far above the few hundred a real rule watches."""
HISTORY_RETENTION = 30 * 86400.0
"""``HISTORY_RETENTION``: the action history keeps 30 days by default."""


class MissingValueBehavior(StrEnum):
    """``MISSING_VALUE_BEHAVIOR``: what a poll that returns no value for a series means."""

    SKIP = "skip"
    LAST_VALUE = "last_value"
    ZERO = "zero"
    ASSUME_BREACHED = "assume_breached"
    RESOLVE = "resolve"
    """Not breached, at once: how a Prometheus alert ends when its series leaves the result."""


class AlertDefinition(NamedTuple):
    """What a rule from a Prometheus rule file adds: its alert's name, and its labels and
    annotations as templates (Prometheus renders them for each series, at each evaluation)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    """The group's labels, then the rule's own over them."""
    annotations: tuple[tuple[str, str], ...]
    expr: str
    group: str
    file: Path
    line: int
    default_plugin: str | None = None
    """The rule file's ``action_plugin``: for an alert no route takes (None: only logged)."""

    def known_labels(self) -> dict[str, str]:
        """The alert's labels known before any series is read: ``alertname`` and those of
        its labels that are not templates (what routes can be matched on ahead)."""
        known = {name: value for name, value in self.labels if "{{" not in value}
        known["alertname"] = self.name
        return known


@record(frozen=True, slots=True)
class LevelConfig:
    """One level of a rule (the base level, or ``hard.``): when it is breached and what runs."""

    threshold: Threshold
    duration: float = 0.0
    backoff: float = 0.0
    plugin: str | None = None
    keep_firing_for: float = 0.0
    clear_threshold: Threshold | None = None
    breach_count: int = 1
    """Debounce: the level is breached while at least this many of its last
    ``breach_window`` evaluations breached."""
    breach_window: int = 1
    backoff_multiplier: float = 1.0
    """Escalating repeats: the interval after the n-th successful call of a breach is
    ``backoff * backoff_multiplier ** (n - 1)``, at most ``backoff_max``."""
    backoff_max: float | None = None
    """None: the interval grows without bound."""


@record(frozen=True, slots=True)
class PrometheusQuery:
    """A ``QUERY`` rule, or the ``expr`` of a rule file's alert: PromQL run on a Prometheus,
    every series of its answer the rule's. Read in a batch of expressions when it returns an
    instant vector (``BATCH_EXPRESSIONS``), each rule taking its own expression's series;
    otherwise with a query of its own (shared only with rules of the same text)."""

    endpoint: str
    query: str
    endpoint_defaulted: bool = False
    """Nothing set ``prometheus_endpoint``: ``endpoint`` is the default."""
    kind: ClassVar[Literal["prometheus"]] = "prometheus"

    @property
    def expression(self) -> str:
        return self.query

    @property
    def where(self) -> str:
        return self.endpoint


@record(frozen=True, slots=True)
class PrometheusSelector:
    """``metric_name{label filters}`` read from a Prometheus: the selector rules of one
    Prometheus can be answered together (``BATCH_SELECTORS``), each taking its own series."""

    endpoint: str
    selector: Selector
    endpoint_defaulted: bool = False
    """Nothing set ``prometheus_endpoint``: ``endpoint`` is the default."""
    kind: ClassVar[Literal["prometheus"]] = "prometheus"

    @property
    def expression(self) -> str:
        return str(self.selector)

    @property
    def where(self) -> str:
        return self.endpoint


@record(frozen=True, slots=True)
class ScrapePage:
    """``metric_name{label filters}`` read from an application's metrics page
    (``SCRAPE_URL``), without Prometheus."""

    url: str
    selector: Selector
    kind: ClassVar[Literal["scrape"]] = "scrape"

    @property
    def expression(self) -> str:
        return str(self.selector)

    @property
    def where(self) -> str:
        return self.url


RuleSource = PrometheusQuery | PrometheusSelector | ScrapePage
"""Where a rule's samples come from and what it reads there. Each type answers ``kind``
(what users are shown: ``/api/status``' ``source``, the state file's fingerprint, group
names), ``where`` (the endpoint or URL fetched) and ``expression`` (the PromQL text it reads);
``_sources/_kinds.py`` says which source kind fetches each."""


GuardMode = Literal["auto", "shadow", "approve"]  # as _routes' (which it may not import)
"""``mode``: ``auto`` runs the calls; ``shadow`` records them as would-have-run, never
calling a plugin, and the rule goes on as if they succeeded; ``approve`` asks first: each
fire or repeat waits for ``metric-reader approve ID`` (``_engine._approvals``)."""
DEFAULT_APPROVAL_TIMEOUT = 900.0
"""``approval_timeout``: an approval request not answered in 15 minutes expires."""
DEFAULT_BUDGET_PERIOD = 3600.0
"""``per`` when a budget gives only ``max_actions``."""


class BudgetConfig(NamedTuple):
    """At most ``max_actions`` fire and repeat calls in any ``per`` seconds."""

    max_actions: int
    per: float
    name: str
    """What the budget covers, for messages and the history: ``global``, ``plugin
    restart_pod``, ``rule DiskFull``."""


class BreakerConfig(NamedTuple):
    """``breaker_failures`` failed calls within ``breaker_window`` open a plugin's breaker
    for ``breaker_cooldown``; then one trial call decides."""

    failures: int
    window: float
    cooldown: float


class PluginGuard(NamedTuple):
    """The limits of ``[plugins.NAME]``."""

    budget: BudgetConfig | None = None
    breaker: BreakerConfig | None = None


class RuleGuard(NamedTuple):
    """What limits a rule's calls besides the service-wide ones."""

    budget: BudgetConfig | None = None
    max_breaching: int | None = None
    """At most this many series breached at once, else a storm (None: no limit)."""
    max_breaching_percent: float | None = None
    """Or at most this percentage of the rule's series (``max_breaching = "20%"``)."""
    storm_plugin: str | None = None
    """Where the storm event goes (None: only logged)."""
    mode: GuardMode = "auto"
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    approval_plugin: str | None = None
    """``mode = "approve"``: where the approval request goes (None: only logged)."""
    approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT

    def breaching_limit(self, series: int) -> int | None:
        """The most series that may be breached at once out of ``series`` tracked."""
        if self.max_breaching is not None:
            return self.max_breaching
        if self.max_breaching_percent is not None:
            # Rounded down, as Cluster API's maxUnhealthy, but never under one series: one
            # breached series is never a storm by itself.
            return max(1, int(series * self.max_breaching_percent / 100))
        return None

    def breaching_text(self) -> str:
        if self.max_breaching_percent is not None:
            return f"{self.max_breaching_percent:g}%"
        return str(self.max_breaching)


@record(frozen=True, slots=True)
class RuleConfig:
    name: str
    metric_name: str
    """The metric name, or the PromQL text of a ``query`` rule: what plugins are given."""
    source: RuleSource
    polling_interval: float
    missing: MissingValueBehavior
    base: LevelConfig | None
    """None without a threshold: the rule only reads and logs values."""
    hard: LevelConfig | None = None
    series_limit: int = DEFAULT_SERIES_LIMIT
    """``SERIES_LIMIT``: a read with more series for this rule fails for it (Prometheus'
    ``sample_limit``), and it never tracks more."""
    alert: AlertDefinition | None = None
    """Set for an alerting rule of a Prometheus rule file (``rule_files``)."""
    external_labels: tuple[tuple[str, str], ...] = ()
    """``EXTERNAL_LABELS``, as each of Prometheus' rules holds its global external labels:
    ``$externalLabels`` in the templates, and in every event for the plugins."""
    external_url: str = ""
    """``EXTERNAL_URL`` (Prometheus' ``--web.external-url``): ``$externalURL`` in the
    templates, and the start of the events' ``generator_url``."""
    guard: RuleGuard = RuleGuard()  # immutable: one shared is safe
    """Its budget, blast-radius guard, mode and mute windows."""
    verify: VerifyConfig = record_field(default_factory=VerifyConfig)
    """Whether its fixes held, and whom to tell when they did not."""


@record(frozen=True, slots=True)
class RecordingRuleConfig:
    """A recording rule of a Prometheus rule file, checked as promtool 2.42 checks it. The
    service does not evaluate it (Prometheus records it); ``metric-reader test`` may."""

    record: str
    """The metric name it records."""
    expr: str
    labels: tuple[tuple[str, str], ...]
    """The group's labels, then the rule's own over them: set on every series it records
    (not templates)."""
    group: str
    group_index: int
    """The group's place among all groups of the rule files (0-based, files in their
    order, groups in the file's order): ``Settings.rule_groups[group_index]``."""
    index: int
    """The rule's place in its group, alerting and recording rules counted alike (0-based):
    ``Settings.rule_groups[group_index].rules[index]`` is this rule."""
    file: Path
    line: int
    """Where the rule's ``record:`` name is."""


@record(frozen=True, slots=True)
class RuleGroupConfig:
    """A group of a Prometheus rule file: its rules in their order, as Prometheus evaluates
    them at each tick (a recording rule's output seen by the rules after it)."""

    name: str
    file: Path
    interval: float | None
    """Seconds between evaluations; None: the default (the rule file's
    ``polling_interval``, a test's ``evaluation_interval``)."""
    limit: int
    """Most series (alerts) each rule may give at one evaluation; 0: no limit."""
    rules: tuple[RuleConfig | RecordingRuleConfig, ...]
    """Each alerting rule as the ``RuleConfig`` of ``Settings.rules`` (the same object),
    each recording rule as a ``RecordingRuleConfig``, in the file's order."""


@record(frozen=True, slots=True)
class ElectionSettings:
    """Leader election on a Kubernetes Lease; the defaults are client-go's."""

    lock_name: str = "metric-reader-leader"
    lock_namespace: str | None = None
    """None: the pod's namespace, from the service account."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    service_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@record(frozen=True, slots=True)
class Settings:
    rules: tuple[RuleConfig, ...]
    plugin_dir: Path | None = None
    plugin_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    unknown_variables: tuple[str, ...] = ()
    """Environment variables that look like a misspelt setting, with a suggestion each."""
    plugin_dir_insecure: bool = False
    """``PLUGIN_DIR_INSECURE``: load PLUGIN_DIR files others could change (development)."""
    max_concurrent_queries: int = 8
    """Requests in flight at once to one Prometheus endpoint."""
    batch_selectors: bool = True
    """``BATCH_SELECTORS``: the selector rules of a group are answered by a few queries,
    each rule's label filters applied here (False: one query per distinct selector)."""
    batch_expressions: bool = True
    """``BATCH_EXPRESSIONS``: the expressions of a group that return an instant vector are
    answered by a few queries joined with ``or`` (False: one query per distinct expression)."""
    dry_run: bool = False
    """``DRY_RUN``: evaluate everything and log each action that would run; call no plugin."""
    listen_address: str | None = None
    """``LISTEN_ADDRESS``: where /metrics, /healthz, /readyz and the status page are served;
    None serves nothing (``LISTEN_ADDRESS=off``)."""
    enable_lifecycle: bool = False
    """``ENABLE_LIFECYCLE``: ``POST /-/reload`` reloads (off: it answers 403), as Prometheus'
    ``--web.enable-lifecycle``."""
    plugin_settings: Mapping[str, Mapping[str, Any]] = record_field(default_factory=dict)
    """``[plugins.NAME]`` tables of the rule file, for the plugins' ``configure``."""
    plugin_bases: Mapping[str, str] = record_field(default_factory=dict)
    """Plugins made of another (a ``[plugins.NAME]`` table with ``plugin = "BASE"``): each
    name to the plugin it is made of."""
    config_file: Path | None = None
    rule_file_globs: tuple[str, ...] = ()
    """The ``rule_files`` (``RULE_FILES``) patterns, each as it is matched: relative to the
    working directory or absolute."""
    watch_config: bool = True
    """``WATCH_CONFIG``: reload when ``config_file`` or a rule file changes on disk."""
    warnings: tuple[str, ...] = ()
    """Settings that were given but have no effect, said once at start-up."""
    state_file: Path | None = None
    """``STATE_FILE``: where rule state is kept across restarts (None: it is not)."""
    history_file: Path | None = None
    """``HISTORY_FILE``: the action history's SQLite database (None: kept in memory). By
    default ``<STATE_FILE>.history.sqlite`` beside the state file."""
    history_retention: float = HISTORY_RETENTION
    """``HISTORY_RETENTION``: how long the action history keeps a row, in seconds."""
    client: ClientConfig = record_field(default_factory=ClientConfig)
    """TLS, credentials and extra headers for every request to the endpoints."""
    max_response_bytes: int = MAX_RESPONSE_BYTES
    """``MAX_RESPONSE_BYTES``: a scraped page or query answer larger than this is refused."""
    shard_count: int = 1
    """``SHARD_COUNT``: how many replicas split the rules between them (1: no sharding)."""
    shard_index: int = 0
    """``SHARD_INDEX``, or the StatefulSet ordinal of the host name: this replica's shard."""
    shard_index_from: str = ""
    """Where ``shard_index`` came from, for messages: ``SHARD_INDEX=1``, ``host name web-1``."""
    election: ElectionSettings | None = None
    """``LEADER_ELECTION_*``: elect one replica to run the actions (None: election is off)."""
    routes: tuple[Route, ...] = ()
    """``[[routes]]``: which plugin each alert of the rule files goes to, by its labels."""
    skipped_recording_rules: tuple[str, ...] = ()
    """``FILE:LINE: recording rule NAME`` of the rule files: read, not evaluated."""
    rule_groups: tuple[RuleGroupConfig, ...] = ()
    """The groups of the rule files (``rule_files``), in the order of the files and of
    each file, with their alerting and recording rules in order: all of them, before
    sharding (``rules`` may then hold fewer)."""
    external_labels: Mapping[str, str] = record_field(default_factory=dict)
    """``EXTERNAL_LABELS`` (Prometheus' ``global.external_labels``); every rule holds them."""
    external_url: str = ""
    """``EXTERNAL_URL`` (Prometheus' ``--web.external-url``, without a trailing ``/``);
    every rule holds it."""
    limits: BudgetConfig | None = None
    """``[limits]``: the budget of every rule's calls together."""
    plugin_guards: Mapping[str, PluginGuard] = record_field(default_factory=dict)
    """``[plugins.NAME]``'s budgets and circuit breakers."""
    time_intervals: Mapping[str, tuple[Any, ...]] = record_field(default_factory=dict)
    """``[[time_intervals]]``, by name (``TimeInterval`` objects)."""
    inhibit_rules: tuple[InhibitRule, ...] = ()
    """``[[inhibit_rules]]``: while a source alert fires, calls for its targets wait."""
    approval_token_file: Path | None = None
    """``APPROVAL_TOKEN_FILE``: the bearer token ``POST /api/approvals/ID/approve|deny``
    asks for, re-read when it changes (None: those endpoints answer 403)."""
    paused: bool = False
    """``PAUSED``: start paused (no plugin called), whatever the state file says; without
    it the pause in the state file goes on."""

    def plugin_variable(self, rule: RuleConfig, level: Literal["base", "hard"]) -> str:
        """How the user named the plugin of ``rule``'s ``level``, for messages."""
        key = "action_plugin" if level == "base" else "hard.action_plugin"
        if self.config_file is None:
            return env_name(key)
        return f"rule {rule.name!r} {key}"
