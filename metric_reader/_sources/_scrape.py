"""The scrape source: read an application's metrics page directly, without Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import httpx

from .._config import MAX_RESPONSE_BYTES
from .._core import FetchError
from .._http import Attempt, Source, deadline, read_body, stream_body
from ._exposition import Series
from ._exposition_stream import SeriesReader

# Text format first: every exporter speaks it, and it has no _created lines to skip.
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
# What a metrics page may be labelled: the two text formats, or nothing specific. Anything
# else (an HTML login or error page, a JSON API answer) is not a page to read: a failed read.
_PAGE_TYPES = ("", "text/plain", "application/openmetrics-text", "application/octet-stream")


async def read_page(
    client: httpx.AsyncClient,
    url: str,
    timeout: float,
    names: Collection[str],
    limit: int = MAX_RESPONSE_BYTES,
) -> dict[str, Series]:
    """The series of the metrics ``names`` on the page at ``url``, read as it arrives:
    only they are kept, never the page (``SeriesReader``). Raise ``FetchError`` on failure
    or when the page exceeds ``limit``, and ``ExpositionError`` for a malformed line of
    one of them on a page read whole."""
    reader = SeriesReader(names)
    try:
        async with _page(client, url, timeout) as response:
            await stream_body(response, limit, "the page", reader.feed)
    except BaseException:
        reader.discard()  # what the traceback keeps of this frame must not keep the page
        raise
    return reader.finish()


async def fetch_page(
    client: httpx.AsyncClient, url: str, timeout: float, limit: int = MAX_RESPONSE_BYTES
) -> bytes:
    """The body of ``url``; raise ``FetchError`` on failure or when it exceeds ``limit``."""
    async with _page(client, url, timeout) as response:
        return await read_body(response, limit, "the page")


@asynccontextmanager
async def _page(
    client: httpx.AsyncClient, url: str, timeout: float
) -> AsyncIterator[httpx.Response]:
    """The answer for ``url`` if it is a metrics page, its body not read yet; the reading
    done inside is bounded by ``timeout`` and its errors explained (``deadline``)."""
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
        yield response
