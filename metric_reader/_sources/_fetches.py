"""Fetches: the requests made once per interval for every rule that needs them.

Vocabulary, used throughout the package: a *fetch* is one request a group makes at each of
its ticks (a Prometheus query, or a metrics page scraped); what it brings back is
``Fetched``; an *observation* is what one rule was given at one time (``_engine``), and
evaluating a rule turns observations into actions.

Rules that read the same page, or run the same query on the same endpoint, at the same
interval share one fetch, so a source is read once per interval however many rules
watch it; the selector rules of one Prometheus and interval share a few batched queries
(``_batch``). Fetches are made in groups (``_groups``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx
from loguru import logger

from .._config import MAX_RESPONSE_BYTES, RuleConfig
from .._core._exceptions import FetchError, ResponseTooLarge
from .._core._samples import Sample, labels_of
from .._core._throttle import Throttle
from ._batch import SelectorBatch
from ._exposition import ExpositionError, read_series
from ._prometheus import instant_query, instant_vector
from ._scrape import fetch_page


def fetch_timeout(interval: float) -> float:
    """Shorter than the interval, so a slow endpoint cannot make polls pile up."""
    return max(min(interval * 0.8, 30.0), 0.05)


@dataclass(slots=True)
class Fetched:
    """One successful fetch: the samples of each of its rules, by rule name."""

    samples: dict[str, list[Sample]]
    warnings: tuple[str, ...] = ()
    failed: dict[str, FetchError] = field(default_factory=dict)
    """Rules whose part of the read failed (a batched read), and why; the others read."""


@dataclass
class Fetch:
    """One request made once per interval for every rule that needs it (not a Prometheus
    scrape fetch: a query, or a page fetched)."""

    description: str
    interval: float
    perform: Callable[[httpx.AsyncClient, float], Awaitable[Fetched]]
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


def scrape_fetch(
    url: str, interval: float, rules: list[RuleConfig], max_bytes: int = MAX_RESPONSE_BYTES
) -> Fetch:
    """A metrics page read directly; each rule gets the series its selector matches."""
    names = sorted({rule.selector.metric_name for rule in rules if rule.selector})

    async def perform(client: httpx.AsyncClient, timeout: float) -> Fetched:
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
        return Fetched(out)

    return Fetch(f"scrape {url}", interval, perform, rules)


def query_fetch(
    endpoint: str,
    promql: str,
    interval: float,
    rules: list[RuleConfig],
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Fetch:
    """One query on a Prometheus endpoint; every rule gets all of its answer."""

    async def perform(client: httpx.AsyncClient, timeout: float) -> Fetched:
        result = await instant_query(client, endpoint, promql, timeout, max_bytes, limit.limiter)
        return Fetched({rule.name: result.samples for rule in rules}, result.warnings)

    return Fetch(f"query {promql} at {endpoint}", interval, perform, rules)


class _BatchReader:
    """Reads the rules of a batch: its query, split in two by metric name (for good) when
    the answer is larger than ``max_bytes``, and own queries for the rules the batch cannot
    answer for sure (``_batch``). A rule whose part of the read failed fails alone."""

    def __init__(
        self, endpoint: str, batch: SelectorBatch, limit: EndpointLimit, max_bytes: int
    ) -> None:
        self.endpoint = endpoint
        self.parts = [batch]
        self.limit = limit
        self.max_bytes = max_bytes

    async def perform(self, client: httpx.AsyncClient, timeout: float) -> Fetched:
        deadline = anyio.current_time() + timeout
        fetched = Fetched({}, (), {})
        async with anyio.create_task_group() as parts:
            for part in list(self.parts):
                parts.start_soon(self._read_part, client, part, timeout, deadline, fetched)
        if fetched.failed and len(fetched.failed) == sum(len(p.rules) for p in self.parts):
            raise next(iter(fetched.failed.values()))  # the whole read failed
        return fetched

    async def _read_part(
        self,
        client: httpx.AsyncClient,
        part: SelectorBatch,
        timeout: float,
        deadline: float,
        fetched: Fetched,
    ) -> None:
        """Read ``part`` within ``timeout`` (the poll's, or what is left of it before
        ``deadline`` for a part read again after a split)."""
        try:
            series, warnings = await instant_vector(
                client,
                self.endpoint,
                part.promql,
                timeout,
                self.max_bytes,
                self.limit.limiter,
            )
        except ResponseTooLarge as exc:
            halves = part.halves()
            if halves is None:
                fetched.failed.update((rule.name, exc) for rule in part.rules)
                return
            index = next(i for i, p in enumerate(self.parts) if p is part)
            self.parts[index : index + 1] = halves
            logger.bind(endpoint=self.endpoint, metrics=len(part.names)).info(
                "the answer is larger than max_response_bytes: fetched these metrics with "
                "two queries from now on"
            )
            async with anyio.create_task_group() as both:
                for half in halves:
                    both.start_soon(
                        self._read_part, client, half, self._left(deadline), deadline, fetched
                    )
            return
        except FetchError as exc:
            fetched.failed.update((rule.name, exc) for rule in part.rules)
            return
        samples, unsure = part.samples(series)
        fetched.samples.update(samples)
        fetched.warnings += warnings
        if unsure:
            async with anyio.create_task_group() as own:
                for rule in unsure:
                    own.start_soon(self._own_query, client, rule, deadline, fetched)

    async def _own_query(
        self, client: httpx.AsyncClient, rule: RuleConfig, deadline: float, fetched: Fetched
    ) -> None:
        try:
            result = await instant_query(
                client,
                self.endpoint,
                rule.promql,
                self._left(deadline),
                self.max_bytes,
                self.limit.limiter,
            )
        except FetchError as exc:
            del fetched.samples[rule.name]
            fetched.failed[rule.name] = exc
            return
        fetched.samples[rule.name] = result.samples

    @staticmethod
    def _left(deadline: float) -> float:
        return max(deadline - anyio.current_time(), 0.01)


def batch_target(
    endpoint: str,
    batch: SelectorBatch,
    interval: float,
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Fetch:
    """The selector rules of ``batch``, read together; each rule gets the series its own
    selector matches."""
    names = batch.names
    description = (
        f"query {batch.promql} at {endpoint}"
        if len(names) == 1
        else f"selectors of {len(names)} metrics ({names[0]} to {names[-1]}) at {endpoint}"
    )
    reader = _BatchReader(endpoint, batch, limit, max_bytes)
    return Fetch(description, interval, reader.perform, list(batch.rules))
