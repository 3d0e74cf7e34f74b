"""Reading a batch of expression rules (``_expression_batch``), and keeping apart, for good,
what a batch cannot answer.

- An answer larger than ``max_response_bytes``: the batch is split in two and both halves are
  read again at once (as a selector batch is).
- Prometheus refuses the batched query (``bad_data``, ``execution``, ``internal``: a type or
  a duplicate-label-set error, too many samples): the culprit is found by bisection within the
  same poll, halves read again at once until the failing part is one expression, read with its
  own query; it is read alone from then on, said once in the log. Its rules get what its own
  query gets, an error included, as without batching.
- No answer in time (our timeout, or Prometheus' ``timeout``): the part's rules fail this
  poll, as a slow query fails, and the part is split in two from the next poll on, so a slow
  expression ends up alone after a few polls while the others are read on time.

Any other failure (Prometheus down, not JSON, a full queue) fails the part's rules and
changes nothing: it is not the expressions' fault. A split is kept until a reload.
"""

from __future__ import annotations

import anyio
import httpx

from .._config import RuleConfig
from .._core import (
    FetchError,
    FetchTimeout,
    QueueTimeout,
    ResponseTooLarge,
    Sample,
    logger,
    loop_time,
)
from ._expression_batch import ExpressionBatch
from ._fetches import EndpointLimit, Fetch, Fetched
from ._parts_reader import PartsReader
from ._prometheus import QueryFailed

_BISECTED = frozenset({"bad_data", "execution", "internal"})
"""Prometheus' error types that can come of one expression of a batch."""


class ExpressionReader(PartsReader[ExpressionBatch]):
    """Reads the expression rules of one batch at each poll (``perform``)."""

    def __init__(
        self,
        endpoint: str,
        batch: ExpressionBatch,
        rules: dict[str, list[RuleConfig]],
        limit: EndpointLimit,
        max_bytes: int,
        defaulted: bool = False,
    ) -> None:
        super().__init__(endpoint, batch, limit, max_bytes, defaulted)
        self.rules = rules
        """The rules of each expression."""

    def _all_failed(self, fetched: Fetched) -> bool:
        return not fetched.samples  # every expression answered has its (maybe empty) list

    async def _read(
        self,
        client: httpx.AsyncClient,
        part: ExpressionBatch,
        timeout: float,
        deadline: float,
        fetched: Fetched,
        again: bool = False,
    ) -> None:
        """Read ``part`` within ``timeout`` (the poll's, or what is left of it before
        ``deadline`` for a part read ``again`` after a split: one that times out then is
        not split again, the poll had too little time left to tell)."""
        if len(part.expressions) == 1:
            await self._alone(client, part.expressions[0], timeout, fetched)
            return
        try:
            series, warnings = await self.vector(client, part.promql, timeout)
            answers = part.split(series)
        except ResponseTooLarge:
            await self._split_now(client, part, deadline, fetched, "the answer is too large")
        except QueryFailed as exc:
            if exc.error_type in _BISECTED:
                await self._split_now(client, part, deadline, fetched, str(exc))
            else:
                self._fail(part, exc, fetched)
                if exc.error_type == "timeout" and not again:
                    self._split_later(part, str(exc))
        except FetchError as exc:
            self._fail(part, exc, fetched)
            if isinstance(exc, FetchTimeout) and not isinstance(exc, QueueTimeout) and not again:
                self._split_later(part, str(exc))
        except ValueError as exc:  # not the answer to this query: a proxy's doing?
            self._fail(part, FetchError(f"unexpected answer: {exc}"), fetched)
        else:
            fetched.warnings += warnings
            for expr, samples in answers.items():
                self._give(expr, samples, fetched)

    async def _alone(
        self, client: httpx.AsyncClient, expr: str, timeout: float, fetched: Fetched
    ) -> None:
        try:
            result = await self.query(client, expr, timeout)
        except FetchError as exc:
            for rule in self.rules[expr]:
                fetched.failed[rule.name] = exc
            return
        fetched.warnings += result.warnings
        self._give(expr, result.samples, fetched)

    async def _split_now(
        self,
        client: httpx.AsyncClient,
        part: ExpressionBatch,
        deadline: float,
        fetched: Fetched,
        why: str,
    ) -> None:
        halves = self._replace(part, why)
        async with anyio.create_task_group() as both:
            for half in halves:
                left = max(deadline - loop_time(), 0.01)
                both.start_soon(self._read, client, half, left, deadline, fetched, True)

    def _split_later(self, part: ExpressionBatch, why: str) -> None:
        self._replace(part, why)

    def _replace(self, part: ExpressionBatch, why: str) -> tuple[ExpressionBatch, ...]:
        """Split ``part`` in two for good, and say what comes of it."""
        halves = part.halves()
        assert halves is not None, "one expression is read alone"
        index = next(i for i, p in enumerate(self.parts) if p is part)
        self.parts[index : index + 1] = halves
        for half in halves:
            if len(half.expressions) == 1:
                logger.bind(endpoint=self.endpoint, expression=half.expressions[0]).info(
                    "this expression is read with its own query from now on, not batched: {}",
                    why,
                )
        if len(part.expressions) > 2:
            logger.bind(endpoint=self.endpoint, expressions=len(part.expressions)).debug(
                "a batch of expressions split in two: {}", why
            )
        return halves

    def _fail(self, part: ExpressionBatch, exc: FetchError, fetched: Fetched) -> None:
        for expr in part.expressions:
            for rule in self.rules[expr]:
                fetched.failed[rule.name] = exc

    def _give(self, expr: str, samples: list[Sample], fetched: Fetched) -> None:
        for rule in self.rules[expr]:
            fetched.samples[rule.name] = samples


def expression_fetch(
    endpoint: str,
    batch: ExpressionBatch,
    interval: float,
    rules: dict[str, list[RuleConfig]],
    limit: EndpointLimit,
    max_bytes: int,
    defaulted: bool = False,
) -> Fetch:
    """The rules of ``batch`` (``rules``: those of each of its expressions), read together;
    each rule gets what its own query gets. ``defaulted``: nothing set the endpoint."""
    reader = ExpressionReader(endpoint, batch, rules, limit, max_bytes, defaulted)
    served = [rule for expr in batch.expressions for rule in rules[expr]]
    first, last = served[0].name, served[-1].name
    count = len(served)
    description = (
        f"expressions of {count} rule{'' if count == 1 else 's'} ({first} to {last}) "
        f"in one query at {endpoint}"
    )
    return Fetch(description, interval, reader.perform, served)
