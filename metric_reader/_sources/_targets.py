"""Targets: what is read once per interval for every rule that needs it.

Rules that read the same page, or run the same query on the same endpoint, at the same
interval share one target, so a source is read once per interval however many rules
watch it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import httpx

from .._config import MAX_RESPONSE_BYTES, RuleConfig
from .._core._exceptions import FetchError
from .._core._samples import Sample, labels_of
from .._core._throttle import Throttle
from ._exposition import ExpositionError, read_series
from ._prometheus import instant_query
from ._scrape import fetch_page


def fetch_timeout(interval: float) -> float:
    """Shorter than the interval, so a slow endpoint cannot make polls pile up."""
    return max(min(interval * 0.8, 30.0), 0.05)


@dataclass(frozen=True, slots=True)
class Reading:
    """One successful read of a target: the samples of each of its rules, by rule name."""

    samples: dict[str, list[Sample]]
    warnings: tuple[str, ...] = ()


@dataclass
class Target:
    """One endpoint read once per interval for every rule that needs it."""

    description: str
    interval: float
    read: Callable[[httpx.AsyncClient, float], Awaitable[Reading]]
    rules: list[RuleConfig] = field(default_factory=list)
    errors: Throttle = field(init=False)
    warnings: Throttle = field(init=False)
    last_success: float | None = None
    """Monotonic time of the last successful read."""
    last_error: str | None = None
    """Why the last read failed; None once one succeeds."""

    def __post_init__(self) -> None:
        self.errors = Throttle(self.description, "ERROR", "poll failed")
        self.warnings = Throttle(self.description, "WARNING", "query warning")


class EndpointLimit:
    """Bounds the requests in flight to one endpoint, so 1,000 rules do not hammer it.

    The limiter is made on first use: anyio creates it for the running event loop.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.total)
        return self._limiter


def scrape_target(
    url: str, interval: float, rules: list[RuleConfig], max_bytes: int = MAX_RESPONSE_BYTES
) -> Target:
    """A metrics page read directly; each rule gets the series its selector matches."""
    names = sorted({rule.selector.metric_name for rule in rules if rule.selector})

    async def read(client: httpx.AsyncClient, timeout: float) -> Reading:
        page = await fetch_page(client, url, timeout, max_bytes)
        try:
            found = read_series(page, names)
        except ExpositionError as exc:
            raise FetchError(f"unparsable page: {exc} (GET {url})") from None
        out = {}
        for rule in rules:
            selector = rule.selector
            assert selector is not None
            out[rule.name] = [
                Sample(labels_of(labels), value)
                for labels, value in found.get(selector.metric_name, ())
                if selector.matches(labels)
            ]
        return Reading(out)

    return Target(f"scrape {url}", interval, read, rules)


def query_target(
    endpoint: str,
    promql: str,
    interval: float,
    rules: list[RuleConfig],
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Target:
    """One query on a Prometheus endpoint; every rule gets all of its answer."""

    async def read(client: httpx.AsyncClient, timeout: float) -> Reading:
        result = await instant_query(client, endpoint, promql, timeout, max_bytes, limit.limiter)
        return Reading({rule.name: result.samples for rule in rules}, result.warnings)

    return Target(f"query {promql} at {endpoint}", interval, read, rules)


def build_targets(
    rules: Sequence[RuleConfig],
    max_concurrent_queries: int = 8,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> list[Target]:
    """Group rules so that each scrape target, and each query on an endpoint, is read once
    per interval; queries to one endpoint share a bound on requests in flight; no answer
    larger than ``max_response_bytes`` is read."""
    groups: dict[tuple[str, ...], list[RuleConfig]] = {}
    for rule in rules:
        key: tuple[str, ...] = (
            ("scrape", rule.scrape_url or "", repr(rule.polling_interval))
            if rule.source == "scrape"
            else ("query", rule.prometheus_endpoint, rule.promql, repr(rule.polling_interval))
        )
        groups.setdefault(key, []).append(rule)
    targets = []
    limits: dict[str, EndpointLimit] = {}
    for key, members in groups.items():
        interval = members[0].polling_interval
        if key[0] == "scrape":
            targets.append(scrape_target(key[1], interval, members, max_response_bytes))
        else:
            limit = limits.setdefault(key[1], EndpointLimit(max_concurrent_queries))
            targets.append(
                query_target(key[1], key[2], interval, members, limit, max_response_bytes)
            )
    return targets
