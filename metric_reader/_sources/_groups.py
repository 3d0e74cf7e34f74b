"""Groups: the rules that read one source at one interval, evaluated together on one tick.

As in Prometheus' rule groups (``rules/group.go``), a group is the unit of scheduling: its
reads run together at each tick and all its rules are evaluated at that tick. Each group
has its own grid, ``interval`` apart and offset inside the interval by a hash of its name,
so that many groups never wake at the same instant, and the offset is the same at every
start. Its reads: one page (a scrape group), or a few batched queries for its selector
rules plus one query per distinct ``QUERY`` (a Prometheus group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .._config import MAX_RESPONSE_BYTES, RuleConfig
from .._core._durations import format_duration
from ._batch import plan_batches
from ._fetches import EndpointLimit, Fetch, batch_target, query_fetch, scrape_fetch


def group_offset(name: str, interval: float) -> float:
    """Where in its interval a group's ticks fall: FNV-1a of its name (as Prometheus hashes a
    group's name and file), so the same group lands at the same offset at every start."""
    digest = 0xCBF29CE484222325
    for byte in name.encode():
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    nanoseconds = max(round(interval * 1e9), 1)
    return (digest % nanoseconds) / 1e9


@dataclass
class Group:
    """The rules read from one source at one interval, and the reads that serve them."""

    name: str
    interval: float
    fetches: list[Fetch]
    source: str = ""
    """``prometheus`` or ``scrape``."""
    where: str = ""
    """The Prometheus endpoint or the scraped URL."""
    advice: str = ""
    """What to change when the group cannot keep up (for the missed-evaluations warning)."""
    concurrency: int = 1
    """Reads in flight at once (``max_concurrent_queries`` for a Prometheus)."""
    offset: float = field(init=False)
    """Seconds into the interval at which the group's ticks fall."""

    def __post_init__(self) -> None:
        self.offset = group_offset(self.name, self.interval)

    @property
    def rules(self) -> list[RuleConfig]:
        return [rule for fetch in self.fetches for rule in fetch.rules]


def build_groups(
    rules: Sequence[RuleConfig],
    max_concurrent_queries: int = 8,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    batch_selectors: bool = True,
) -> list[Group]:
    """One group per scrape URL or Prometheus endpoint and polling interval. A page, and a
    query, is read once per interval however many rules need it; selector rules are batched
    (``batch_selectors``); requests to one endpoint share a bound on those in flight; no
    answer larger than ``max_response_bytes`` is read."""
    members: dict[tuple[str, str, float], list[RuleConfig]] = {}
    for rule in rules:
        members.setdefault((rule.source, rule.target, rule.polling_interval), []).append(rule)
    limits: dict[str, EndpointLimit] = {}
    groups = []
    for (source, where, interval), group_rules in members.items():
        name = f"{source} {where} every {format_duration(interval)}"
        concurrency = 1
        if source == "scrape":
            fetches = [scrape_fetch(where, interval, group_rules, max_response_bytes)]
            advice = f"raise its polling_interval (now {format_duration(interval)})"
        else:
            limit = limits.setdefault(where, EndpointLimit(max_concurrent_queries))
            concurrency = max_concurrent_queries
            fetches = _query_fetches(
                where, interval, group_rules, limit, max_response_bytes, batch_selectors
            )
            advice = (
                f"to keep up, raise its polling_interval (now {format_duration(interval)}) or "
                f"max_concurrent_queries (now {max_concurrent_queries})"
                + ("" if batch_selectors else ", or turn batch_selectors on")
                + ", or make the Prometheus answer faster"
            )
        groups.append(Group(name, interval, fetches, source, where, advice, concurrency))
    return groups


def _query_fetches(
    endpoint: str,
    interval: float,
    rules: list[RuleConfig],
    limit: EndpointLimit,
    max_bytes: int,
    batch_selectors: bool,
) -> list[Fetch]:
    batched = [rule for rule in rules if rule.query is None] if batch_selectors else []
    fetches = [
        batch_target(endpoint, batch, interval, limit, max_bytes)
        for batch in (plan_batches(batched) if batched else ())
    ]
    by_query: dict[str, list[RuleConfig]] = {}
    for rule in rules:
        if not (batch_selectors and rule.query is None):
            by_query.setdefault(rule.promql, []).append(rule)
    fetches += [
        query_fetch(endpoint, promql, interval, sharing, limit, max_bytes)
        for promql, sharing in by_query.items()
    ]
    return fetches


def build_fetches(
    rules: Sequence[RuleConfig],
    max_concurrent_queries: int = 8,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    batch_selectors: bool = True,
) -> list[Fetch]:
    """Every read the ``rules`` need, group after group."""
    groups = build_groups(rules, max_concurrent_queries, max_response_bytes, batch_selectors)
    return [fetch for group in groups for fetch in group.fetches]
