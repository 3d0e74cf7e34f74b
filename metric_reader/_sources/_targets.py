"""Targets: what is read once per interval for every rule that needs it.

Rules that read the same page, or run the same query on the same endpoint, at the same
interval share one target, so a source is read once per interval however many rules
watch it; the selector rules of one Prometheus and interval share a few batched queries
(``_batch``). Targets are read in groups (``_groups``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx

from .._config import MAX_RESPONSE_BYTES, RuleConfig
from .._core._exceptions import FetchError
from .._core._samples import Sample, labels_of
from .._core._throttle import Throttle
from ._batch import SelectorBatch
from ._exposition import ExpositionError, read_series
from ._prometheus import instant_query, instant_vector
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
    split: Callable[[], list[Target]] | None = None
    """For a batched read of several metric names: the two reads it becomes when its answer
    is larger than ``MAX_RESPONSE_BYTES``."""
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


def batch_target(
    endpoint: str,
    batch: SelectorBatch,
    interval: float,
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Target:
    """One query for the selector rules of ``batch``; each rule gets the series its own
    selector matches. Split in two (by metric name) when its answer is too large."""
    promql = batch.promql

    async def read(client: httpx.AsyncClient, timeout: float) -> Reading:
        started = anyio.current_time()
        series, warnings = await instant_vector(
            client, endpoint, promql, timeout, max_bytes, limit.limiter
        )
        samples, unsure = batch.samples(series)
        if unsure:
            remaining = max(timeout - (anyio.current_time() - started), 0.05)

            failures: list[FetchError] = []

            async def own_query(rule: RuleConfig) -> None:
                try:
                    result = await instant_query(
                        client, endpoint, rule.promql, remaining, max_bytes, limit.limiter
                    )
                except FetchError as exc:  # raised below, not as an exception group
                    failures.append(exc)
                    return
                samples[rule.name] = result.samples

            async with anyio.create_task_group() as queries:
                for rule in unsure:
                    queries.start_soon(own_query, rule)
            if failures:
                raise failures[0]
        return Reading(samples, warnings)

    def split() -> list[Target]:
        halves = batch.halves()
        assert halves is not None
        return [batch_target(endpoint, half, interval, limit, max_bytes) for half in halves]

    names = batch.names
    description = (
        f"query {promql} at {endpoint}"
        if len(names) == 1
        else f"selectors of {len(names)} metrics ({names[0]} to {names[-1]}) at {endpoint}"
    )
    return Target(description, interval, read, list(batch.rules), split if len(names) > 1 else None)
