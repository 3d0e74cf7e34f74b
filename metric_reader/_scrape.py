"""The scrape source: read an application's metrics page directly, without Prometheus."""

from __future__ import annotations

import httpx

from ._http import deadline
from ._samples import FetchError

# Text format first: every exporter speaks it, and it has no _created lines to skip.
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


async def fetch_page(
    client: httpx.AsyncClient, url: str, timeout: float, limit: int = MAX_RESPONSE_BYTES
) -> bytes:
    """The body of ``url``; raise ``FetchError`` on failure or when it exceeds ``limit``."""
    async with (
        deadline(timeout),
        client.stream("GET", url, headers={"Accept": ACCEPT}, timeout=timeout) as response,
    ):
        if not 200 <= response.status_code < 300:
            raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FetchError(f"the page is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
