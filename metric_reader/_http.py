"""The one HTTP client the service shares, and how its failures become ``FetchError``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx

from . import __version__
from ._samples import FetchError


def make_client() -> httpx.AsyncClient:
    """A keep-alive client; each request passes its own timeout."""
    return httpx.AsyncClient(
        headers={"User-Agent": f"metric-reader/{__version__}"},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=True,
        max_redirects=5,
    )


@asynccontextmanager
async def deadline(timeout: float) -> AsyncIterator[None]:
    """Bound a whole request, body included, by ``timeout``; turn every failure into
    ``FetchError`` (httpx's own timeouts are per read, so a trickling body would evade them).
    """
    try:
        with anyio.fail_after(timeout):
            yield
    except (TimeoutError, httpx.TimeoutException):
        raise FetchError(f"no complete answer within {timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise FetchError(f"cannot connect: {exc or type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}") from None
