"""The scrape source: read an application's metrics page directly, without Prometheus."""

from __future__ import annotations

import httpx

from .._config import MAX_RESPONSE_BYTES
from .._core import FetchError
from .._http import Attempt, Source, deadline, read_body

# Text format first: every exporter speaks it, and it has no _created lines to skip.
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
# What a metrics page may be labelled: the two text formats, or nothing specific. Anything
# else (an HTML login or error page, a JSON API answer) is not a page to read: a failed read.
_PAGE_TYPES = ("", "text/plain", "application/openmetrics-text", "application/octet-stream")


async def fetch_page(
    client: httpx.AsyncClient, url: str, timeout: float, limit: int = MAX_RESPONSE_BYTES
) -> bytes:
    """The body of ``url``; raise ``FetchError`` on failure or when it exceeds ``limit``."""
    attempt = Attempt(url, Source("SCRAPE_URL", url, "the application's metrics page"))
    async with (
        deadline(timeout, attempt),
        client.stream("GET", url, headers={"Accept": ACCEPT}, timeout=timeout) as response,
    ):
        attempt.status = response.status_code
        if not 200 <= response.status_code < 300:
            raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
        media_type = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media_type not in _PAGE_TYPES:
            attempt.wrong_kind = True
            raise FetchError(f"the page is {media_type}, not a metrics page")
        return await read_body(response, limit, "the page")
