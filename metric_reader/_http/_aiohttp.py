"""An httpx transport on aiohttp: about half the CPU of httpcore per request (see
``make bench``), with httpx kept for everything around it (auth, redirects and the headers
they drop, proxies from the environment, the errors ``_http.deadline`` explains).

It is written here rather than taken from ``httpx-aiohttp`` because that package maps a
refused connection or a failed name lookup to ``httpx.ConnectTimeout`` (the service would
report a timeout), keeps cookies in a second jar and re-quotes every URL.

The body is handed over exactly as it came (``auto_decompress=False``): ``_body.read_body``
decodes it within its bound. Requests through a proxy do not come here: httpx sends them
through its own proxy transport (``AsyncClient._init_proxy_transport``).
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from yarl import URL

_CLOSED = (errno.EPIPE, errno.ECONNRESET)
"""The endpoint closed the connection: a server that wants a client certificate may do
just that under TLS 1.3."""


def _mapped(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error httpcore raises for the same failure, so ``_http`` can say what it
    says today; its cause is the ``OSError`` or ``ssl`` error under it (``_cause``),
    which is what ``_http`` looks for."""
    kind: type[httpx.TransportError]
    text = str(exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        kind = httpx.RemoteProtocolError
        text = "Server disconnected without sending a response."
    elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        kind = httpx.RemoteProtocolError  # a body cut short, a malformed answer
    elif isinstance(exc, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientConnectionError):  # reset, broken pipe
        kind = httpx.ReadError
        if isinstance(exc, aiohttp.ClientOSError) and exc.errno in _CLOSED:
            text = ""  # as httpcore says it: ``_http`` words it, with the TLS 1.3 hint
    else:
        kind = httpx.TransportError
    return kind(text, request=request)


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        raise _mapped(exc, request) from _cause(exc)


def _cause(exc: aiohttp.ClientError) -> BaseException:
    """The error under ``exc``: aiohttp's connection errors pass for ``ssl`` errors
    (``isinstance``) without their attributes, which ``_http`` reads to explain them."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return exc.certificate_error
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    return exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            # Each piece as it arrived: no re-chunking, no copy.
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body not read to its end leaves the connection unusable: close it, never pool it.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (made on the first request, in the running event loop) with a
    pool of ``limits.max_connections`` kept ``limits.keepalive_expiry`` seconds, and the TLS
    settings of ``ssl_context``."""

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._ssl_context = ssl_context
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._ssl_context,
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
            # Each new connection looks the name up, as httpcore does: a Service's
            # address that moves is followed at once.
            use_dns_cache=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        timeouts = request.extensions.get("timeout", {})
        key = (timeouts.get("connect"), timeouts.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=key[0], sock_read=key[1])
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        content = await request.aread()
        with _httpx_errors(request):
            response = await self._session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx has quoted it already
                headers=request.headers.multi_items(),
                data=content or None,
                allow_redirects=False,  # httpx follows them, dropping headers off-origin
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
