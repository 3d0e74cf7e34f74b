"""Groups: the rules that read one source at one interval, evaluated together on one tick.

As in Prometheus' rule groups (``rules/group.go``), a group is the unit of scheduling: its
reads run together at each tick and all its rules are evaluated at that tick. Each group
has its own grid, ``interval`` apart, starting at its first read: a fraction of a second
after the start (``SPREAD``), at an offset from a hash of its name, so that groups started
together never wake at the same instant, and the offset is the same at every start. Its
reads: one page (a scrape group), or a few batched queries for its selector rules and its
expressions, plus one query per distinct expression that cannot be batched (a Prometheus
group).

A reload plans the groups again; a group whose plan did not change is kept, the very
object, so that it goes on where it was: on its grid, with its reads' state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .._config import MAX_RESPONSE_BYTES, RuleConfig
from .._core import format_duration
from ._fetches import Fetch
from ._kind import PlanOptions, SourceKind
from ._kinds import kind_of
from ._read_errors import ReadErrors

SPREAD = 0.1
"""Seconds: the groups' first reads, and so their grids, are spread over this much of the
start (or of the interval, when shorter)."""


def group_offset(name: str, interval: float) -> float:
    """How long after the start a group's first read, and so its grid, falls: FNV-1a of its
    name (as Prometheus hashes a group's name and file), so the same group lands at the same
    offset at every start. Prometheus spreads groups over the whole interval and reads first
    at the offset; a sidecar must be ready at once, so the spread is ``SPREAD`` at most. The
    grid starts at the first read, so a breach seen by it fires exactly its ``for`` later,
    not up to an interval after that (a read at the start and a grid at an offset would)."""
    digest = 0xCBF29CE484222325
    for byte in name.encode():
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    nanoseconds = max(round(min(interval, SPREAD) * 1e9), 1)
    return (digest % nanoseconds) / 1e9


@dataclass
class Group:
    """The rules read from one source at one interval, and the reads that serve them."""

    name: str
    interval: float
    fetches: list[Fetch]
    kind: SourceKind | None = None
    """What plans and reads its rules (``_kinds``)."""
    where: str = ""
    """The Prometheus endpoint or the scraped URL."""
    advice: str = ""
    """What to change when the group cannot keep up (for the missed-evaluations warning)."""
    concurrency: int = 1
    """Reads in flight at once (``max_concurrent_queries`` for a Prometheus)."""
    planned: PlanOptions = field(default_factory=PlanOptions, compare=False)
    """What it was planned with: the settings, and the per-endpoint bounds it shares with
    the groups planned with it."""
    offset: float = field(init=False)
    """Seconds after the start at which the group first reads: its ticks fall on
    ``start + offset + k * interval``."""
    read_errors: ReadErrors = field(init=False, compare=False)
    """Its failed reads, said once a tick (``_read_errors``)."""

    def __post_init__(self) -> None:
        self.offset = group_offset(self.name, self.interval)
        self.read_errors = ReadErrors()
        for fetch in self.fetches:
            fetch.group = self.name

    @property
    def rules(self) -> list[RuleConfig]:
        return [rule for fetch in self.fetches for rule in fetch.rules]

    def plan_key(self) -> tuple[object, ...]:
        """What the group was planned from and into: equal for two groups that make the same
        reads for the same rules with the same settings."""
        reads = tuple((fetch.description, tuple(fetch.rules)) for fetch in self.fetches)
        return (self.name, reads, self.planned.settings())


def build_groups(
    rules: Sequence[RuleConfig],
    max_concurrent_queries: int = 8,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    batch_selectors: bool = True,
    running: Sequence[Group] = (),
    *,
    batch_expressions: bool = True,
) -> list[Group]:
    """One group per scrape URL or Prometheus endpoint and polling interval. A page, and a
    query, is read once per interval however many rules need it; selector rules are batched
    (``batch_selectors``), and so are the expressions that return an instant vector
    (``batch_expressions``); requests to one endpoint share a bound on those in flight; no
    answer larger than ``max_response_bytes`` is read.

    ``running``: the groups that run now (a reload). One planned the same way as a new
    group (``Group.plan_key``) is returned in its place, the very object; the new groups
    share the running groups' bounds on requests to one endpoint."""
    members: dict[tuple[str, str, float], list[RuleConfig]] = {}
    for rule in rules:
        source = rule.source
        members.setdefault((source.kind, source.where, rule.polling_interval), []).append(rule)
    options = shared_options(
        max_concurrent_queries,
        max_response_bytes,
        batch_selectors,
        running,
        batch_expressions=batch_expressions,
    )
    kept = {group.name: group for group in running}
    groups = []
    for (kind_name, where, interval), group_rules in members.items():
        name = f"{kind_name} {where} every {format_duration(interval)}"
        kind = kind_of(group_rules[0].source)
        plan = kind.plan(where, interval, group_rules, options)
        group = Group(
            name, interval, plan.fetches, kind, where, plan.advice, plan.concurrency, options
        )
        before = kept.get(name)
        groups.append(
            before if before is not None and before.plan_key() == group.plan_key() else group
        )
    return groups


def shared_options(
    max_concurrent_queries: int,
    max_response_bytes: int,
    batch_selectors: bool,
    running: Sequence[Group] = (),
    *,
    batch_expressions: bool = True,
) -> PlanOptions:
    """Options to plan with, whose per-endpoint bounds are those of the ``running`` groups
    planned with the same settings: requests to one endpoint share one bound, whichever
    configuration planned them."""
    options = PlanOptions(
        max_concurrent_queries, max_response_bytes, batch_selectors, batch_expressions
    )
    for group in running:
        if group.planned.settings() == options.settings():
            options.limits.update(group.planned.limits)
    return options


def build_fetches(
    rules: Sequence[RuleConfig],
    max_concurrent_queries: int = 8,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    batch_selectors: bool = True,
    *,
    batch_expressions: bool = True,
) -> list[Fetch]:
    """Every read the ``rules`` need, group after group."""
    groups = build_groups(
        rules,
        max_concurrent_queries,
        max_response_bytes,
        batch_selectors,
        batch_expressions=batch_expressions,
    )
    return [fetch for group in groups for fetch in group.fetches]
