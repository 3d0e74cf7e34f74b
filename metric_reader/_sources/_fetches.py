"""Fetches: the requests made once per interval for every rule that needs them.

Vocabulary, used throughout the package: a *fetch* is one request a group makes at each of
its ticks (a Prometheus query, or a metrics page scraped); what it brings back is
``Fetched``; an *observation* is what one rule was given at one time (``_engine``), and
evaluating a rule turns observations into actions.

Rules that read the same page, or run the same query on the same endpoint, at the same
interval share one fetch, so a source is read once per interval however many rules
watch it; the selector rules of one Prometheus and interval share a few batched queries
(``_batch``), and so do its expressions (``_expression_batch``). Fetches are made in
groups (``_groups``), each planned by the kind of source its rules read (``_kinds``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx

from .._config import RuleConfig
from .._core import FetchError, Sample, Throttle
from ._read_errors import ReadErrors


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


ReadQuery = Callable[[httpx.AsyncClient, str, float], Awaitable[list[Sample]]]
"""Reads a PromQL text on a fetch's source within a timeout; ``FetchError`` on failure."""


@dataclass
class Fetch:
    """One request made once per interval for every rule that needs it (not a Prometheus
    scrape fetch: a query, or a page fetched)."""

    description: str
    interval: float
    perform: Callable[[httpx.AsyncClient, float], Awaitable[Fetched]]
    rules: list[RuleConfig] = field(default_factory=list)
    group: str = ""
    """The name of the group it is read in (set by the group): how its metrics are labelled."""
    errors: ReadErrors = field(init=False)
    """Its failures when it is read alone, not at a group's tick (which says those)."""
    warnings: Throttle = field(init=False)
    last_success: float | None = None
    """Monotonic time of the last successful read."""
    last_error: str | None = None
    """Why the last read failed; None once one succeeds."""
    read_query: ReadQuery | None = None
    """Runs another query on the same source (a ``verify_query``), within a timeout, as
    the fetch's own read is made; None: the source runs no query (a scrape)."""
    verify_errors: Throttle = field(init=False)
    """Its ``verify_query`` reads that failed (said once a while, not once a poll)."""

    def __post_init__(self) -> None:
        self.errors = ReadErrors()
        self.warnings = Throttle(self.description, "WARNING", "query warning")
        self.verify_errors = Throttle(self.description, "WARNING", "verify_query not read")


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
