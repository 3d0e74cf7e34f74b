"""A batched read in parts: what the selector and the expression readers share.

A batch is read as one or more parts (one at first; a part is split for good when it
cannot be answered whole). At each poll every part is read at once; the read as a whole
fails only when every rule of it failed, else each rule has its own answer or error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import anyio
import httpx

from .._core import loop_time
from ._fetches import EndpointLimit, Fetched
from ._prometheus import QueryResult, instant_query, instant_vector

Part = TypeVar("Part")


class BoundedEndpoint:
    """A Prometheus endpoint read within its requests bound (``limit``, shared by every
    fetch on it) and ``max_bytes`` an answer: what the batched readers, the one-query
    fetch and the verify reader all read through."""

    def __init__(
        self, endpoint: str, limit: EndpointLimit, max_bytes: int, defaulted: bool = False
    ) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self.max_bytes = max_bytes
        self.defaulted = defaulted
        """Nothing set the endpoint (see ``instant_query``)."""

    async def vector(
        self, client: httpx.AsyncClient, promql: str, timeout: float
    ) -> tuple[list[tuple[Mapping[str, str], float]], tuple[str, ...]]:
        """``promql`` (an instant vector) on the endpoint, within its bounds."""
        return await instant_vector(
            client,
            self.endpoint,
            promql,
            timeout,
            self.max_bytes,
            self.limit.limiter,
            endpoint_defaulted=self.defaulted,
        )

    async def query(self, client: httpx.AsyncClient, promql: str, timeout: float) -> QueryResult:
        """``promql`` read alone on the endpoint, within its bounds."""
        return await instant_query(
            client,
            self.endpoint,
            promql,
            timeout,
            self.max_bytes,
            self.limit.limiter,
            endpoint_defaulted=self.defaulted,
        )


class PartsReader(BoundedEndpoint, Generic[Part]):
    """Reads the parts of one batch on ``endpoint`` at each poll (``perform``); a subclass
    reads one part (``_read``) and says whether every rule failed (``_all_failed``)."""

    def __init__(
        self,
        endpoint: str,
        batch: Part,
        limit: EndpointLimit,
        max_bytes: int,
        defaulted: bool = False,
    ) -> None:
        super().__init__(endpoint, limit, max_bytes, defaulted)
        self.parts = [batch]
        """What is read at each poll: the batch, or the parts it was split into."""

    async def perform(self, client: httpx.AsyncClient, timeout: float) -> Fetched:
        deadline = loop_time() + timeout
        fetched = Fetched({}, (), {})
        if len(self.parts) == 1:  # the common case: no task to spawn
            await self._read(client, self.parts[0], timeout, deadline, fetched)
        else:
            async with anyio.create_task_group() as parts:
                for part in list(self.parts):
                    parts.start_soon(self._read, client, part, timeout, deadline, fetched)
        if fetched.failed and self._all_failed(fetched):
            raise next(iter(fetched.failed.values()))  # the whole read failed
        return fetched

    async def _read(
        self,
        client: httpx.AsyncClient,
        part: Part,
        timeout: float,
        deadline: float,
        fetched: Fetched,
    ) -> None:
        raise NotImplementedError

    def _all_failed(self, fetched: Fetched) -> bool:
        raise NotImplementedError
