"""What every kind of source answers: how its rules are planned into fetches, and how a
backtest reads one rule's history.

A source kind reads the rules of one or more types of ``RuleSource`` (``_kinds`` says which):
the Prometheus kind ``PrometheusQuery`` and ``PrometheusSelector`` rules, the scrape kind
``ScrapePage`` rules. ``build_groups`` (``_groups``) puts the rules of one kind, one
endpoint or URL and one interval in a group and asks their kind for the group's fetches;
the backtest asks it how to read a rule's past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx

from .._config import MAX_RESPONSE_BYTES, RuleConfig, RuleSource
from ._fetches import EndpointLimit, Fetch
from ._range import RangeSeries


@dataclass
class PlanOptions:
    """What planning a group depends on besides its rules: the settings, and the bounds
    that the groups of one plan share."""

    max_concurrent_queries: int = 8
    max_response_bytes: int = MAX_RESPONSE_BYTES
    batch_selectors: bool = True
    batch_expressions: bool = True
    limits: dict[str, EndpointLimit] = field(default_factory=dict)
    """By endpoint: the requests to one endpoint share one bound, whatever their group."""

    def limit(self, endpoint: str) -> EndpointLimit:
        return self.limits.setdefault(endpoint, EndpointLimit(self.max_concurrent_queries))

    def settings(self) -> tuple[int, int, bool, bool]:
        """What a plan depends on besides its rules."""
        return (
            self.max_concurrent_queries,
            self.max_response_bytes,
            self.batch_selectors,
            self.batch_expressions,
        )


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """The fetches that serve the rules of one group, and how the group reads them."""

    fetches: list[Fetch]
    advice: str
    """What to change when the group cannot keep up (for the missed-evaluations warning)."""
    concurrency: int = 1
    """Fetches in flight at once."""


class HistoryUnavailable(Exception):
    """The source cannot give this rule's history from where it was asked, and the message
    says why in full (a Prometheus that does not scrape the page): not a failed read."""


class ReadHistory(Protocol):
    async def __call__(
        self,
        client: httpx.AsyncClient,
        times: list[float],
        step: float,
        timeout: float,
        max_bytes: int,
    ) -> list[RangeSeries]:
        """Every series the rule would have read at ``times`` (``step`` apart), with the
        labels the service would have seen; ``FetchError`` when the read fails,
        ``HistoryUnavailable`` when the source cannot give it."""
        ...


@dataclass(frozen=True, slots=True)
class History:
    """How a backtest reads one rule's past, or why it cannot."""

    description: str
    """The query sent, and where (``up at http://prometheus:9090``): shown in reports."""
    read: ReadHistory | None
    skipped: str | None = None
    """Why the history cannot be read at all (``read`` is None)."""


class SourceKind(Protocol):
    """One kind of source: a module of ``_sources`` and one entry in ``_kinds``."""

    def plan(
        self, where: str, interval: float, rules: list[RuleConfig], options: PlanOptions
    ) -> GroupPlan:
        """The fetches that serve ``rules`` (all of this kind, read from ``where`` every
        ``interval``), each fetch read once a tick however many rules it serves."""
        ...

    def history(self, source: RuleSource, prometheus: str | None) -> History:
        """How a backtest reads the past of a rule reading ``source``; ``prometheus`` is
        the one named by ``--prometheus``, for sources Prometheus does not answer itself."""
        ...
