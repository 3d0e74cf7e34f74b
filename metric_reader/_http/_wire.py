"""An httpx transport that speaks HTTP/1.1 itself, on a plain asyncio ``Protocol``: a
request (httpx and decoding included) costs about a quarter less CPU than through aiohttp
and a third of httpcore's, and there is nothing more to install (``make bench``).
httpx is kept for everything around it (auth, redirects and the headers they drop, proxies
from the environment, the errors ``_http.deadline`` explains).

What it does: a keep-alive pool per origin (``limits.max_connections`` open in all, at
most ``limits.max_keepalive_connections`` idle, each idle one dropped once it has been idle
``limits.keepalive_expiry`` seconds, looked at when a request is made); the request line
from the URL's raw path and query, the request's own headers (httpx sets ``Host``) and
body; the answer's status line and headers as raw bytes, its body by ``Content-Length``,
chunked (trailers read and dropped) or until the server closes, none for ``HEAD``, 1xx,
204 and 304. The body is handed on piece by piece as it arrives, still encoded:
``_body.read_body`` decodes it within its bound. A connection goes back to the pool only
when its body was read to the end and both sides let it live; an idempotent request
(``GET``) that a pooled connection lost before any of the answer came (the server had
closed it) is sent once more on a new connection.

Errors are the ones httpcore raises for the same failure, with the ``OSError``, name
lookup or ``ssl`` error under them as their cause, which is what ``_http.deadline`` reads.

``ssl`` is imported, and the TLS context built (``tls``, called once), only when an
``https://`` connection is made. Requests through a proxy do not come here: httpx sends
them through its own proxy transport (``AsyncClient._init_proxy_transport``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import ssl

_CLOSED = (errno.EPIPE, errno.ECONNRESET)
"""The endpoint closed the connection: a server that wants a client certificate may do
just that under TLS 1.3."""
_DISCONNECTED = "Server disconnected without sending a response."
_MAX_HEAD = 64 * 1024
"""The longest status line and headers (or chunk-size line and trailers) accepted."""
_HIGH_WATER = 256 * 1024
"""Reading from the socket pauses while this much of a body waits to be taken."""
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_PORTS = {"http": 80, "https": 443}


class _ReadTimeout(Exception):
    pass


class _Disconnected(Exception):
    """The connection ended before the answer's first byte: perhaps a pooled connection
    the server had just closed (``handle_async_request`` may try once more)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def _lost(error: BaseException | None, request: httpx.Request) -> httpx.TransportError:
    """What an ended connection is, as httpcore says it: a reset or a broken pipe is a
    ``ReadError`` without words (``_http`` words it, with the TLS 1.3 hint)."""
    if error is None:
        return httpx.RemoteProtocolError(_DISCONNECTED, request=request)
    if isinstance(error, OSError) and error.errno in _CLOSED:
        return httpx.ReadError("", request=request)
    return httpx.ReadError(str(error), request=request)


class _Connection(asyncio.Protocol):
    """One socket's bytes, gathered for whoever reads them next (``fill``)."""

    __slots__ = (
        "buffer",
        "done",
        "error",
        "idle_since",
        "origin",
        "pool",
        "received",
        "reused",
        "transport",
        "waiter",
    )

    def __init__(self, pool: _Pool, origin: tuple[str, str, int]) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.done = False
        """The socket has ended (end of file, an error, or closed here)."""
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.received = False
        """Bytes arrived since the current request was sent."""
        self.reused = False
        self.idle_since = 0.0

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received = True
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.done = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        if self.error is None:
            self.error = exc
        self._wake()
        self.pool.forget(self)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # the reader's side

    async def fill(self, timeout: float | None) -> bool:
        """Wait for more bytes in ``buffer``; False when the socket has ended instead."""
        if self.done:
            return False
        transport = self.transport
        assert transport is not None
        if not transport.is_reading():
            transport.resume_reading()
        loop = self.pool.loop
        waiter = self.waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        return not self.done or bool(self.buffer)

    def take(self, size: int) -> bytes:
        buffer = self.buffer
        if size >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:size])
            del buffer[:size]
        return data

    async def line(self, timeout: float | None, request: httpx.Request) -> bytes:
        """One CRLF-ended line (a chunk size or a trailer), without its end."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                data = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return data
            if len(self.buffer) > _MAX_HEAD:
                raise httpx.RemoteProtocolError("a chunk line is too long", request=request)
            if not await self.fill(timeout):
                raise _cut_short(self, request)

    def close(self) -> None:
        if not self.done:
            self.done = True
            if self.transport is not None:
                self.transport.close()
        self.pool.forget(self)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_ReadTimeout())


def _cut_short(connection: _Connection, request: httpx.Request) -> httpx.TransportError:
    error = connection.error
    if error is not None:
        failure = _lost(error, request)
        failure.__cause__ = error
        return failure
    return httpx.RemoteProtocolError(
        "Server disconnected before the whole response was received.", request=request
    )


class _Head:
    __slots__ = ("headers", "keep_alive", "length", "reason", "status", "version")

    def __init__(self) -> None:
        self.status = 0
        self.version = b""
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self.length: int | None = None
        """Bytes of body; -1: chunked; None: until the server closes."""


def _parse_head(data: bytes, request: httpx.Request) -> _Head:
    lines = data.split(b"\r\n")
    head = _Head()
    version, _, rest = lines[0].partition(b" ")
    code, _, head.reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(
            f"malformed status line {lines[0][:100]!r}", request=request
        )
    head.version, head.status = version, int(code)
    headers = head.headers
    lengths: set[bytes] = set()
    chunked = until_close = close = keep_alive = False
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:  # an obsolete folded continuation
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header {line[:100]!r}", request=request)
        value = value.strip(b" \t")
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            lengths.update(part.strip() for part in value.split(b","))
        elif lower == b"transfer-encoding":
            chunked = value.lower().rstrip().endswith(b"chunked")
            until_close = not chunked  # another coding last: the body ends with the socket
        elif lower == b"connection":
            tokens = value.lower()
            close = close or b"close" in tokens
            keep_alive = keep_alive or b"keep-alive" in tokens
    if chunked:
        head.length = -1
    elif lengths and not until_close:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise httpx.RemoteProtocolError(
                f"malformed Content-Length {b', '.join(sorted(lengths))[:100]!r}",
                request=request,
            )
        head.length = int(next(iter(lengths)))
    head.keep_alive = not close and not until_close and (version != b"HTTP/1.0" or keep_alive)
    return head


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; the connection goes back to the pool once all of it
    has been read, and is closed if the body is left unfinished."""

    __slots__ = ("_connection", "_finished", "_head", "_pool", "_request", "_timeout")

    def __init__(
        self,
        pool: _Pool,
        connection: _Connection,
        head: _Head,
        request: httpx.Request,
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._head = head
        self._request = request
        self._timeout = timeout
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        length = self._head.length
        try:
            if length is None:
                pieces = self._until_close(connection)
            elif length < 0:
                pieces = self._chunked(connection)
            else:
                pieces = self._sized(connection, length)
            async for piece in pieces:
                yield piece
        except _ReadTimeout:
            self._drop()
            raise httpx.ReadTimeout("timed out reading the answer", request=self._request) from None
        except BaseException:
            self._drop()
            raise
        self._finished = True
        self._release()

    async def _sized(self, connection: _Connection, remaining: int) -> AsyncIterator[bytes]:
        while remaining:
            if not connection.buffer and not await connection.fill(self._timeout):
                raise _cut_short(connection, self._request)
            piece = connection.take(remaining)
            remaining -= len(piece)
            yield piece

    async def _chunked(self, connection: _Connection) -> AsyncIterator[bytes]:
        request, timeout = self._request, self._timeout
        while True:
            line = await connection.line(timeout, request)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                size = -1
            if size < 0 or not size_text or size_text[:1] in b"+-":
                raise httpx.RemoteProtocolError(
                    f"malformed chunk size {line[:100]!r}", request=request
                )
            if size == 0:
                break
            async for piece in self._sized(connection, size):
                yield piece
            if await connection.line(timeout, request):
                raise httpx.RemoteProtocolError("a chunk is longer than its size", request=request)
        trailers = 0
        while await connection.line(timeout, request):  # trailers, up to an empty line
            trailers += 1
            if trailers > 100:
                raise httpx.RemoteProtocolError("too many trailers", request=request)

    async def _until_close(self, connection: _Connection) -> AsyncIterator[bytes]:
        self._head.keep_alive = False
        while True:
            if connection.buffer:
                yield connection.take(len(connection.buffer))
            elif not await connection.fill(self._timeout):
                error = connection.error
                if error is not None and not (isinstance(error, OSError) and _tls_eof(error)):
                    raise _cut_short(connection, self._request)
                return

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            if self._head.keep_alive and not connection.buffer:
                self._pool.release(connection)
            else:
                connection.close()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def aclose(self) -> None:
        if self._finished:
            self._release()
        else:  # not read to its end: the connection cannot carry another request
            self._drop()


def _tls_eof(error: OSError) -> bool:
    """A TLS peer that closed without its close_notify: the end of a read-until-close
    body, as browsers and httpcore take it."""
    return "EOF occurred in violation of protocol" in str(error) or "UNEXPECTED_EOF" in str(error)


class _Pool:
    """The open connections, the idle ones kept per origin."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        tls: Callable[[], ssl.SSLContext],
        limits: httpx.Limits,
    ) -> None:
        self.loop = loop
        self.tls = tls
        self.max_connections = limits.max_connections
        self.max_idle = limits.max_keepalive_connections
        self.expiry = limits.keepalive_expiry
        self.idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.idle_count = 0
        self.open: set[_Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()

    def forget(self, connection: _Connection) -> None:
        """``connection`` is closed: its place is free."""
        if connection in self.open:
            self.open.discard(connection)
            idle = self.idle.get(connection.origin)
            if idle is not None and connection in idle:
                idle.remove(connection)
                self.idle_count -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def release(self, connection: _Connection) -> None:
        if connection.done or (self.max_idle is not None and self.idle_count >= self.max_idle):
            connection.close()
            return
        connection.idle_since = self.loop.time()
        self.idle.setdefault(connection.origin, []).append(connection)
        self.idle_count += 1
        self._wake_one()

    def _sweep(self, now: float) -> None:
        """Close the connections idle for longer than ``keepalive_expiry``."""
        if self.expiry is None:
            return
        for idle in list(self.idle.values()):
            for connection in [c for c in idle if now - c.idle_since >= self.expiry]:
                connection.close()

    async def acquire(
        self, origin: tuple[str, str, int], request: httpx.Request, fresh: bool
    ) -> _Connection:
        timeouts = request.extensions.get("timeout", {})
        while True:
            now = self.loop.time()
            if self.idle_count:
                self._sweep(now)
            idle = self.idle.get(origin)
            while idle and not fresh:
                connection = idle.pop()
                self.idle_count -= 1
                if not connection.done:
                    connection.reused = True
                    return connection
                connection.close()
            if self.max_connections is None or len(self.open) < self.max_connections:
                return await self._connect(origin, request, timeouts.get("connect"))
            if self.idle_count:  # room made by closing an idle connection to elsewhere
                oldest = min(
                    (c for conns in self.idle.values() for c in conns),
                    key=lambda c: c.idle_since,
                )
                oldest.close()
                continue
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout(
                    "no connection free within the pool timeout", request=request
                ) from None
            finally:
                if not waiter.done():
                    waiter.cancel()
                elif not waiter.cancelled() and sys.exc_info()[0] is not None:
                    self._wake_one()  # woken, but leaving: the turn passes to the next

    async def _connect(
        self, origin: tuple[str, str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        server_hostname = None
        if scheme == "https":
            try:
                context = self.tls()
            except ValueError as exc:  # a CA file or client key that cannot be loaded
                raise httpx.ConnectError(str(exc), request=request) from None
            server_hostname = request.extensions.get("sni_hostname") or host
        connection = _Connection(self, origin)
        self.open.add(connection)  # counted while it connects: the limit holds
        try:
            async with asyncio.timeout(timeout):
                await self._open(connection, host, port, context, server_hostname)
        except TimeoutError:
            connection.close()
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except OSError as exc:  # refused, name lookup (socket.gaierror), TLS handshake
            connection.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        except BaseException:
            connection.close()
            raise
        return connection

    async def _open(
        self,
        connection: _Connection,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> None:
        """Connect to each address of ``host`` in turn until one answers; the first
        address's error otherwise (asyncio would merge them into one ``OSError``, and a
        refused connection would no longer read as one)."""
        addresses: list[Any] = [host]
        if not _is_address(host):
            infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(info[4][0] for info in infos))
        first: OSError | None = None
        for address in addresses:
            try:
                await self.loop.create_connection(
                    lambda: connection,
                    address,
                    port,
                    ssl=context,
                    server_hostname=server_hostname,
                )
            except OSError as exc:
                if context is not None and isinstance(exc, _ssl_error()):
                    raise  # the endpoint answered: its certificate is what failed
                first = first or exc
                continue
            return
        assert first is not None
        raise first

    async def aclose(self) -> None:
        for connection in list(self.open):
            connection.close()
        self.open.clear()
        self.idle.clear()
        self.idle_count = 0


def _ssl_error() -> type[Exception]:
    import ssl  # already imported: a TLS context was made

    return ssl.SSLError


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except (OSError, ValueError):
        return False
    return True


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 on asyncio: a pool of ``limits.max_connections`` connections, kept
    ``limits.keepalive_expiry`` seconds when idle; ``tls`` makes the TLS context, called
    on the first ``https://`` connection."""

    def __init__(self, tls: Callable[[], ssl.SSLContext], limits: httpx.Limits) -> None:
        self._tls = tls
        self._limits = limits
        self._pool: _Pool | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pool
        if pool is None:
            pool = self._pool = _Pool(asyncio.get_running_loop(), self._tls, self._limits)
        url = request.url
        scheme = url.scheme
        if scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'.", request=request
            )
        origin = (scheme, url.host, url.port or _PORTS[scheme])
        content = await request.aread()
        data, close = _request_bytes(request, content)
        read_timeout = request.extensions.get("timeout", {}).get("read")
        fresh = False
        while True:
            connection = await pool.acquire(origin, request, fresh)
            try:
                head = await self._exchange(connection, data, request, read_timeout)
            except _Disconnected as exc:
                connection.close()
                if connection.reused and not fresh and request.method in _IDEMPOTENT:
                    fresh = True  # a pooled connection the server had closed: once more
                    continue
                failure = _lost(exc.error, request)
                raise failure from exc.error
            except _ReadTimeout:
                connection.close()
                raise httpx.ReadTimeout(
                    "timed out waiting for the answer", request=request
                ) from None
            except BaseException:
                connection.close()
                raise
            break
        if close:
            head.keep_alive = False
        extensions: dict[str, object] = {"http_version": head.version}
        if head.reason:
            extensions["reason_phrase"] = head.reason
        no_body = request.method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200
        if no_body:
            head.length = 0
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=_Body(pool, connection, head, request, read_timeout),
            request=request,
            extensions=extensions,
        )

    async def _exchange(
        self,
        connection: _Connection,
        data: bytes,
        request: httpx.Request,
        timeout: float | None,
    ) -> _Head:
        """Send the request and read the answer's head (skipping interim 1xx answers)."""
        transport = connection.transport
        assert transport is not None
        connection.received = False
        transport.write(data)
        while True:
            buffer = connection.buffer
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = _parse_head(bytes(buffer[:end]), request)
                del buffer[: end + 4]
                if 100 <= head.status < 200 and head.status != 101:
                    continue  # 100 Continue, 103 Early Hints: the answer follows
                return head
            if len(buffer) > _MAX_HEAD:
                raise httpx.RemoteProtocolError(
                    "the answer's headers are too long", request=request
                )
            if not await connection.fill(timeout):
                if not connection.received:
                    raise _Disconnected(connection.error)
                if connection.error is not None:
                    failure = _lost(connection.error, request)
                    raise failure from connection.error
                raise httpx.RemoteProtocolError(
                    "Server disconnected before the whole response head was received.",
                    request=request,
                )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def _request_bytes(request: httpx.Request, content: bytes) -> tuple[bytes, bool]:
    """The request as sent, and whether it asks for the connection to be closed after it."""
    url = request.url
    target = url.raw_path or b"/"
    parts = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    headers = request.headers.raw
    if not any(name.lower() == b"host" for name, _ in headers):
        parts += [b"Host: ", url.netloc, b"\r\n"]
    chunked = close = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif lower == b"connection" and b"close" in value.lower():
            close = True
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    if chunked:  # the body was read whole: one chunk, then the end
        if content:
            parts += [b"%x\r\n" % len(content), content, b"\r\n"]
        parts.append(b"0\r\n\r\n")
    elif content:
        parts.append(content)
    return b"".join(parts), close
