"""The Prometheus source kind: ``QUERY`` rules, the alerts of rule files and selector rules,
read with instant queries on a Prometheus endpoint (``/api/v1/query``).

A group (one endpoint, one interval) makes a few batched queries for its selector rules
(``_batch``), a few for its expressions that return an instant vector (``QUERY`` rules and
the alerts of rule files: ``_expression_batch``), and one query per other distinct
expression; with ``batch_selectors`` off, one query per distinct selector too, with
``batch_expressions`` off, one per distinct expression. The requests to one endpoint, from
every group, share one bound (``max_concurrent_queries``). A backtest reads a rule's
expression over the window with ``query_range`` on the rule's own endpoint.
"""

from __future__ import annotations

import anyio
import httpx

from .._config import (
    MAX_RESPONSE_BYTES,
    PrometheusQuery,
    PrometheusSelector,
    RuleConfig,
    RuleSource,
)
from .._core import FetchError, ResponseTooLarge, Sample, format_duration, logger, loop_time
from ._batch import SelectorBatch, plan_batches
from ._expression_batch import batchable, plan_expression_batches
from ._expression_reader import expression_fetch
from ._fetches import EndpointLimit, Fetch, Fetched, ReadQuery
from ._kind import GroupPlan, History, PlanOptions
from ._parts_reader import BoundedEndpoint, PartsReader
from ._range import RangeSeries, query_range


class PrometheusKind:
    """Plans, fetches and replays the rules whose source is a ``PrometheusQuery`` or a
    ``PrometheusSelector``: both read one endpoint, so they share its groups."""

    def plan(
        self, where: str, interval: float, rules: list[RuleConfig], options: PlanOptions
    ) -> GroupPlan:
        limit = options.limit(where)
        max_bytes, batching = options.max_response_bytes, options.batch_selectors
        defaulted = any(_endpoint_defaulted(rule.source) for rule in rules)
        batched = [rule for rule in rules if _batchable(rule)] if batching else []
        fetches = [
            batch_fetch(where, batch, interval, limit, max_bytes, defaulted)
            for batch in (plan_batches(batched) if batched else ())
        ]
        by_query: dict[str, list[RuleConfig]] = {}
        for rule in rules:
            if not (batching and _batchable(rule)):
                by_query.setdefault(rule.source.expression, []).append(rule)
        if options.batch_expressions and len(by_query) > 1:  # one: the parser is not loaded
            together = [  # BATCH_SELECTORS=false: a selector rule is its own query
                promql
                for promql, sharing in by_query.items()
                if all(isinstance(rule.source, PrometheusQuery) for rule in sharing)
                and batchable(promql)
            ]
            if len(together) > 1:
                served = {promql: by_query.pop(promql) for promql in together}
                fetches += [
                    expression_fetch(where, batch, interval, served, limit, max_bytes, defaulted)
                    for batch in plan_expression_batches(together)
                ]
        fetches += [
            query_fetch(where, promql, interval, sharing, limit, max_bytes, defaulted)
            for promql, sharing in by_query.items()
        ]
        reader = query_reader(where, limit, max_bytes, defaulted)
        for fetch in fetches:
            fetch.read_query = reader  # a verify_query reads on the same endpoint
        concurrency = options.max_concurrent_queries
        advice = (
            f"to keep up, raise its polling_interval (now {format_duration(interval)}) or "
            f"max_concurrent_queries (now {concurrency})"
            + ("" if batching else ", or turn batch_selectors on")
            + ("" if options.batch_expressions else ", or turn batch_expressions on")
            + ", or make the Prometheus answer faster"
        )
        return GroupPlan(fetches, advice, concurrency)

    def history(self, source: RuleSource, prometheus: str | None) -> History:
        """The rule's own expression on its own endpoint (``prometheus`` is not needed)."""
        assert isinstance(source, PrometheusQuery | PrometheusSelector)
        endpoint, promql = source.endpoint, source.expression

        async def read(
            client: httpx.AsyncClient,
            times: list[float],
            step: float,
            timeout: float,
            max_bytes: int,
        ) -> list[RangeSeries]:
            return await query_range(
                client,
                endpoint,
                promql,
                times,
                step,
                timeout,
                max_bytes,
                endpoint_defaulted=source.endpoint_defaulted,
            )

        return History(f"{promql} at {endpoint}", read)


PROMETHEUS = PrometheusKind()


def _batchable(rule: RuleConfig) -> bool:
    return isinstance(rule.source, PrometheusSelector)


def _endpoint_defaulted(source: RuleSource) -> bool:
    return isinstance(source, PrometheusQuery | PrometheusSelector) and source.endpoint_defaulted


def query_reader(endpoint: str, limit: EndpointLimit, max_bytes: int, defaulted: bool) -> ReadQuery:
    """Runs any query on ``endpoint`` within the requests bound of its fetches: how a
    rule's ``verify_query`` is read."""
    bounded = BoundedEndpoint(endpoint, limit, max_bytes, defaulted)

    async def read(client: httpx.AsyncClient, promql: str, timeout: float) -> list[Sample]:
        return (await bounded.query(client, promql, timeout)).samples

    return read


def query_fetch(
    endpoint: str,
    promql: str,
    interval: float,
    rules: list[RuleConfig],
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
    defaulted: bool = False,
) -> Fetch:
    """One query on a Prometheus endpoint; every rule gets all of its answer. ``defaulted``:
    nothing set the endpoint (see ``instant_query``)."""
    bounded = BoundedEndpoint(endpoint, limit, max_bytes, defaulted)

    async def perform(client: httpx.AsyncClient, timeout: float) -> Fetched:
        result = await bounded.query(client, promql, timeout)
        return Fetched({rule.name: result.samples for rule in rules}, result.warnings)

    return Fetch(f"query {promql} at {endpoint}", interval, perform, rules)


class _BatchReader(PartsReader[SelectorBatch]):
    """Reads the rules of a batch: its query, split in two by metric name (for good) when
    the answer is larger than ``max_bytes``, and own queries for the rules the batch cannot
    answer for sure (``_batch``). A rule whose part of the read failed fails alone."""

    def _all_failed(self, fetched: Fetched) -> bool:
        return len(fetched.failed) == sum(len(part.rules) for part in self.parts)

    async def _read(
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
            series, warnings = await self.vector(client, part.promql, timeout)
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
                        self._read, client, half, self._left(deadline), deadline, fetched
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
            result = await self.query(client, rule.source.expression, self._left(deadline))
        except FetchError as exc:
            del fetched.samples[rule.name]
            fetched.failed[rule.name] = exc
            return
        fetched.samples[rule.name] = result.samples

    @staticmethod
    def _left(deadline: float) -> float:
        return max(deadline - loop_time(), 0.01)


def batch_fetch(
    endpoint: str,
    batch: SelectorBatch,
    interval: float,
    limit: EndpointLimit,
    max_bytes: int = MAX_RESPONSE_BYTES,
    defaulted: bool = False,
) -> Fetch:
    """The selector rules of ``batch``, read together; each rule gets the series its own
    selector matches. ``defaulted``: nothing set the endpoint (see ``instant_query``)."""
    names = batch.names
    description = (
        f"query {batch.promql} at {endpoint}"
        if len(names) == 1
        else f"selectors of {len(names)} metrics ({names[0]} to {names[-1]}) at {endpoint}"
    )
    reader = _BatchReader(endpoint, batch, limit, max_bytes, defaulted)
    return Fetch(description, interval, reader.perform, list(batch.rules))
