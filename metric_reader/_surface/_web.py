"""``LISTEN_ADDRESS``: the service's own HTTP endpoints, served from its event loop.

``/metrics`` (Prometheus text, OpenMetrics on request), ``/healthz`` (the loop is alive),
``/readyz`` (``200`` once every target was read recently and every plugin the rules name
is loaded, else ``503`` with the reasons), ``/`` (the status page), ``/api/status`` (the
same as JSON) and ``/api/actions`` (the action history, ``_actions_api``): ``GET`` and
``HEAD``, anything else is ``405``. One write, as Prometheus names it: ``POST`` (or
``PUT``) ``/-/reload`` reads the configuration again, when ``ENABLE_LIFECYCLE`` allows it
(else ``403``). The governor's endpoints (``_governor_api``: Alertmanager's API v2 for
silences, ``/api/pause``, ``/api/resume``) take a JSON or form body and change something
only under the same switch. Every write from another site is ``403`` (``_writes``).

No web framework: a small HTTP/1.1 server on anyio, one request per connection, read
within limits (request line, headers, a deadline for the whole head), so a bad or slow
client cannot disturb the service. When ``MAX_CONNECTIONS`` are open, the connection idle
longest is closed to make room: probes send their request at once, so they always get in.
Status documents are bounded (``_selection``) and built at most once per poll and second
for the same query (``_DocumentCache``); ``/metrics`` is built off the event loop
(``_scrape``).
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from .. import __version__
from .._config import parse_listen_address
from .._core import ListenError, logger, utf8
from ._collectors import register_service_collectors
from ._governor_api import MAX_BODY, GovernorApi, handles, takes_body
from ._governor_doc import show_governor
from ._messages import Request, Response
from ._scrape import MetricsPages
from ._view import ServiceView, fetched_recently
from ._writes import write_refusal

if TYPE_CHECKING:  # the status page, /api/status and /api/actions: imported when first asked
    from ._selection import Selection

MAX_REQUEST_LINE = 8 * 1024
"""Longest request line (method, target, version); longer is ``414``."""
MAX_HEADER_BYTES = 16 * 1024
"""Most bytes of header lines together; more is ``431``."""
MAX_HEADERS = 100
"""Most header lines; more is ``431``."""
READ_TIMEOUT = 5.0
"""The request head must arrive within this many seconds of the connection, else ``408``
(Go's ``ReadHeaderTimeout``): a client sending a byte a second holds a connection no longer."""
WRITE_TIMEOUT = 10.0
"""Longest time spent sending one response to a client that does not read it."""
LINGER_TIME = 1.0
"""After a response, how long unread request bytes are drained before closing, so the
client sees the response instead of a connection reset."""
LINGER_BYTES = 256 * 1024
MAX_CONNECTIONS = 512
"""Connections open at once. A new one beyond it closes the connection that has waited
longest for its request (only when every open one is being answered is it ``503``). Well
below the usual limit of 1,024 open files, so the service keeps files for its own reads."""
DOCUMENT_MAX_AGE = 1.0
"""A status document is built again when a poll has changed the state, or after this
many seconds (its times say "ago")."""
_DOCUMENTS_KEPT = 32
LIFECYCLE_OFF = (
    "/-/reload is off: set ENABLE_LIFECYCLE=true (enable_lifecycle = true in CONFIG_FILE) "
    "to reload over HTTP; SIGHUP reloads either way\n"
)

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


async def serve_http(
    address: str,
    service: ServiceView,
    *,
    enable_lifecycle: bool = False,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    approval_token_file: Path | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the endpoints of ``service`` on ``address`` until cancelled; ``/-/reload``
    only with ``enable_lifecycle`` (``ENABLE_LIFECYCLE``).

    Binds first, then reports the bound port with ``task_status.started(port)`` (so
    ``address`` may end in ``:0``). Raises ``ValueError`` for an address that does not parse
    and ``ListenError`` when it cannot be bound. Also registers the service's scrape-time
    collectors in ``service.registry`` (once).
    """
    host, port = parse_listen_address(address)
    collector = register_service_collectors(service.registry, service)
    try:
        listener = await anyio.create_tcp_listener(local_host=host or None, local_port=port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {address}: {reason}", exc.errno) from exc
    async with listener, anyio.create_task_group() as connections:
        bound = int(listener.extra(SocketAttribute.local_port))
        pages = MetricsPages(service.registry, collector, connections)
        server = _Server(
            service, pages, enable_lifecycle, read_timeout, max_connections, approval_token_file
        )
        logger.bind(address=address, port=bound).info(
            "serving /metrics, /healthz, /readyz and the status page on port {}", bound
        )
        for one in listener.listeners:
            # TCP listeners on every backend are SocketListeners, which can accept()
            connections.start_soon(_accept_forever, cast(SocketListener, one), server, connections)
        task_status.started(bound)


async def _accept_forever(listener: SocketListener, server: _Server, group: TaskGroup) -> None:
    """Accept connections until cancelled. An accept that fails (out of file descriptors,
    ...) is logged and retried: the HTTP side must never take the service down."""
    failures = 0
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            failures += 1
            if failures == 1 or failures % 1000 == 0:
                logger.bind(failures=failures).warning(
                    "http: accepting a connection failed: {}", exc
                )
            await anyio.sleep(0.1)
            continue
        failures = 0
        group.start_soon(server.handle, stream)


# --- requests -------------------------------------------------------------------------------


class _BadRequestHead(Exception):
    """A request we answer with an error status and no further reading."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _text(status: int, text: str, **headers: str) -> Response:
    return Response(status, utf8(text), headers=dict(headers))


async def _read_line(reader: BufferedByteReceiveStream, limit: int, status: int) -> bytes:
    """One line without its ``\\r\\n`` (a bare ``\\n`` is accepted too).

    Raises ``IncompleteRead`` when the client closes the connection first."""
    what = {414: "request line too long", 431: "headers too large"}.get(status, "malformed body")
    try:
        line = await reader.receive_until(b"\n", limit + 1)
    except anyio.DelimiterNotFound:
        raise _BadRequestHead(status, what) from None
    if len(line) > limit + 1:  # found in data that arrived in one go with more
        raise _BadRequestHead(status, what)
    return line[:-1] if line.endswith(b"\r") else line


async def read_request(reader: BufferedByteReceiveStream) -> Request:
    """Read and check one request head; raise ``_BadRequestHead`` with the status to answer."""
    line = await _read_line(reader, MAX_REQUEST_LINE, 414)
    while not line:  # RFC 9112 2.2: ignore empty lines before the request line
        line = await _read_line(reader, MAX_REQUEST_LINE, 414)
    try:
        method, target, version = line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise _BadRequestHead(400, "malformed request line") from None
    if not _TOKEN.fullmatch(method) or not _VERSION.fullmatch(version):
        raise _BadRequestHead(400, "malformed request line")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise _BadRequestHead(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
    query = ""
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif target.startswith(("http://", "https://")):  # absolute form
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    elif target == "*":
        path = "*"
    else:
        raise _BadRequestHead(400, "malformed request target")
    headers: dict[str, str] = {}
    budget, count = MAX_HEADER_BYTES, 0
    while True:
        line = await _read_line(reader, budget, 431)
        if not line:
            break
        budget -= len(line) + 2
        count += 1
        if budget < 0 or count > MAX_HEADERS:
            raise _BadRequestHead(431, "headers too large")
        name, colon, value = line.partition(b":")
        try:
            key = name.decode("ascii")
        except UnicodeDecodeError:
            raise _BadRequestHead(400, "malformed header line") from None
        if not colon or not _TOKEN.fullmatch(key):
            raise _BadRequestHead(400, "malformed header line")
        text = value.strip(b" \t").decode("latin-1")
        key = key.lower()
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(method, unquote(path), version, headers, query)


async def read_body(reader: BufferedByteReceiveStream, request: Request) -> bytes:
    """The body of ``request`` (``Content-Length`` or chunked), at most ``MAX_BODY`` bytes;
    raise ``_BadRequestHead`` with the status to answer."""
    if "chunked" in request.header("Transfer-Encoding").lower():
        body = bytearray()
        while True:
            line = await _read_line(reader, 1024, 400)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequestHead(400, "malformed chunked body") from None
            if size == 0:
                while await _read_line(reader, MAX_HEADER_BYTES, 431):  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _BadRequestHead(413, f"the body is longer than {MAX_BODY} bytes")
            body += await reader.receive_exactly(size)
            if await _read_line(reader, 2, 400):
                raise _BadRequestHead(400, "malformed chunked body")
    length = request.header("Content-Length").strip()
    if not length:
        return b""
    if not length.isascii() or not length.isdigit():
        raise _BadRequestHead(400, "malformed Content-Length")
    if int(length) > MAX_BODY:
        raise _BadRequestHead(413, f"the body is longer than {MAX_BODY} bytes")
    return await reader.receive_exactly(int(length)) if int(length) else b""


# --- the server -----------------------------------------------------------------------------


class _Connections:
    """The open connections, the ones waiting for (or lingering after) a request oldest
    first: when there are ``limit``, the oldest of those is closed to admit a new one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: OrderedDict[anyio.CancelScope, None] = OrderedDict()
        self.answering: set[anyio.CancelScope] = set()
        self.evicted = 0

    def admit(self, scope: anyio.CancelScope) -> bool:
        """Make room for a new connection; False when every open one is being answered."""
        if len(self.waiting) + len(self.answering) >= self.limit:
            if not self.waiting:
                return False
            oldest, _ = self.waiting.popitem(last=False)
            oldest.cancel()
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                logger.bind(evicted=self.evicted, limit=self.limit).warning(
                    "http: {} connections open; closing the ones idle longest", self.limit
                )
        self.waiting[scope] = None
        return True

    def answer(self, scope: anyio.CancelScope) -> None:
        self.waiting.pop(scope, None)
        self.answering.add(scope)

    def done_answering(self, scope: anyio.CancelScope) -> None:
        self.answering.discard(scope)
        self.waiting[scope] = None  # lingering: the first to go when room is needed

    def leave(self, scope: anyio.CancelScope) -> None:
        self.waiting.pop(scope, None)
        self.answering.discard(scope)


class _DocumentCache:
    """Built documents by request, reused while the service's state has not changed (no
    poll, no action) and for at most ``DOCUMENT_MAX_AGE`` seconds."""

    def __init__(self) -> None:
        self.kept: OrderedDict[tuple[str, ...], tuple[object, float, Response]] = OrderedDict()

    def get(
        self, key: tuple[str, ...], generation: object, build: Callable[[], Response]
    ) -> Response:
        now = anyio.current_time()
        kept = self.kept.get(key)
        if kept is not None and kept[0] == generation and now - kept[1] < DOCUMENT_MAX_AGE:
            return kept[2]
        response = build()
        self.kept[key] = (generation, now, response)
        self.kept.move_to_end(key)
        while len(self.kept) > _DOCUMENTS_KEPT:
            self.kept.popitem(last=False)
        return response


class _BadQuery(ValueError):
    pass


def _selection(
    query: str, rules: set[str], limit: int, *, by_severity: bool, per_rule: int | None = None
) -> Selection:
    """``?rule=NAME&offset=N&limit=N`` as a ``Selection``; ``_BadQuery`` saying what is wrong."""
    from ._selection import MAX_SERIES, Selection

    try:
        params = parse_qs(query, strict_parsing=False, max_num_fields=20)
    except ValueError:
        raise _BadQuery("too many query parameters") from None
    unknown = sorted(set(params) - {"rule", "offset", "limit"})
    if unknown:
        raise _BadQuery(f"unknown parameter {unknown[0]!r}: use rule, offset and limit")
    rule = params.get("rule", [None])[-1]
    if rule is not None and rule not in rules:
        raise _BadQuery(f"no rule named {rule!r}")
    numbers = {}
    for name, default, top in (("offset", 0, None), ("limit", limit, MAX_SERIES)):
        text = params.get(name, [str(default)])[-1]
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise _BadQuery(f"{name} must be a whole number, got {text!r}")
        numbers[name] = int(text) if top is None else min(int(text), top)
    if not numbers["limit"]:
        raise _BadQuery("limit must be at least 1")
    if numbers["offset"] and rule is None:
        raise _BadQuery("offset pages through one rule: give rule=NAME too")
    per_rule = per_rule if rule is None and "limit" not in params else None
    return Selection(rule, numbers["offset"], numbers["limit"], by_severity, per_rule)


class _Server:
    def __init__(
        self,
        service: ServiceView,
        pages: MetricsPages,
        enable_lifecycle: bool,
        read_timeout: float,
        max_connections: int,
        approval_token_file: Path | None = None,
    ) -> None:
        self.service = service
        self.pages = pages
        self.enable_lifecycle = enable_lifecycle
        self.read_timeout = read_timeout
        self.connections = _Connections(max_connections)
        self.documents = _DocumentCache()
        self.governor_api = GovernorApi(
            service, enable_lifecycle, approval_token_file=approval_token_file
        )
        self.routes: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/": self.status_page,
            "/api/status": self.status_json,
            "/api/actions": self.actions_json,
            "/metrics": self.metrics,
            "/healthz": self.healthz,
            "/readyz": self.readyz,
        }

    async def handle(self, stream: SocketStream) -> None:
        """One connection: one request, one response, close. Never raises."""
        try:
            async with stream:
                with anyio.CancelScope() as scope:
                    if not self.connections.admit(scope):
                        await self._send(stream, None, _text(503, "too many connections\n"))
                        return
                    try:
                        await self._exchange(stream, scope)
                    finally:
                        self.connections.leave(scope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the client went away
        except Exception:
            logger.exception("http: unexpected error while serving a connection")

    async def _exchange(self, stream: SocketStream, scope: anyio.CancelScope) -> None:
        reader = BufferedByteReceiveStream(stream)
        request: Request | None = None
        try:
            with anyio.fail_after(self.read_timeout):
                request = await read_request(reader)
                if takes_body(request) and write_refusal(request) is None:
                    if request.header("Expect").lower() == "100-continue":
                        await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                    request.body = await read_body(reader, request)
        except TimeoutError:
            response = _text(408, "request not received in time\n")
        except _BadRequestHead as refusal:
            response = _text(refusal.status, f"{refusal}\n")
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return  # closed before a whole request: nothing to answer
        else:
            # Read whole, so being answered: never the one closed to make room, even while
            # its answer waits (a /metrics page being built, a reload).
            self.connections.answer(scope)
            response = await self.respond(request)
        self.connections.answer(scope)
        try:
            await self._send(stream, request, response)
        finally:
            self.connections.done_answering(scope)
        await _linger(stream, len(reader.buffer))

    async def _send(
        self, stream: SocketStream, request: Request | None, response: Response
    ) -> None:
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}",
            f"Date: {formatdate(usegmt=True)}",
            f"Server: metric-reader/{__version__}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: close",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if request is None or request.method != "HEAD":
            data += response.body
        with anyio.move_on_after(WRITE_TIMEOUT):
            await stream.send(data)
            await stream.send_eof()
        if request is not None:
            logger.bind(method=request.method, path=request.path, status=response.status).debug(
                "http request"
            )

    async def respond(self, request: Request) -> Response:
        refusal = write_refusal(request)
        if refusal is not None:
            return _text(403, f"{refusal}\n")
        if request.path == "/-/reload":
            return await self.reload(request)
        if handles(request.path):
            return await self.governor_api.answer(request)
        if request.method not in ("GET", "HEAD"):
            return _text(405, "only GET and HEAD are allowed\n", Allow="GET, HEAD")
        route = self.routes.get(request.path)
        if route is None:
            return _text(404, "not found\n")
        try:
            return await route(request)
        except Exception:
            logger.bind(path=request.path).exception("http: failed to answer {}", request.path)
            return _text(500, "internal error, see the service's log\n")

    async def reload(self, request: Request) -> Response:
        """``/-/reload``: the configuration read again; 500 with why, when it is refused;
        403 unless ``ENABLE_LIFECYCLE``."""
        if request.method not in ("POST", "PUT"):
            return _text(405, "only POST or PUT requests are allowed\n", Allow="POST, PUT")
        if not self.enable_lifecycle:
            return _text(403, LIFECYCLE_OFF)
        problem = await self.service.reload()
        self.pages.forget()  # the reload's result shows on the next scrape
        if problem is None:
            return _text(200, "configuration reloaded\n")
        return _text(500, f"failed to reload the configuration:\n{problem}\n")

    # --- the endpoints: run on the event loop, /metrics built off it -------------------------

    async def healthz(self, request: Request) -> Response:
        return _text(200, "ok\n")

    async def readyz(self, request: Request) -> Response:
        problems = readiness_problems(self.service)
        if not problems:
            return _text(200, "ready\n")
        return _text(503, "not ready:\n" + "".join(f"- {p}\n" for p in problems))

    async def metrics(self, request: Request) -> Response:
        show_governor(self.service.metrics, self.service.governor, time.time())
        page = await self.pages.page(request.header("Accept"), request.header("Accept-Encoding"))
        if page is None:
            return _text(500, "internal error, see the service's log\n")
        headers = {"Vary": "Accept, Accept-Encoding"}
        if page.gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(200, page.body, page.content_type, headers)

    def _document(
        self,
        request: Request,
        build: Callable[[Selection], Response],
        limit: int | None = None,
        per_rule: int | None = None,
    ) -> Response:
        """A status document, from the cache when the state has not changed since;
        ``limit``: series shown, ``DEFAULT_SERIES`` when None."""
        if limit is None:
            from ._selection import DEFAULT_SERIES

            limit = DEFAULT_SERIES
        try:
            selection = _selection(
                request.query,
                set(self.service.rule_names()),
                limit,
                by_severity=per_rule is not None,
                per_rule=per_rule,
            )
        except _BadQuery as exc:
            return _text(400, f"{exc}\n")
        generation = self.service.generation()
        key = (request.path, repr(selection))
        return self.documents.get(key, generation, lambda: build(selection))

    async def status_json(self, request: Request) -> Response:
        def build(selection: Selection) -> Response:
            document = self.service.status(selection)
            body = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
            return Response(200, utf8(body), "application/json")

        return self._document(request, build)

    async def actions_json(self, request: Request) -> Response:
        from ._actions_api import actions_response

        return actions_response(self.service.actions, request.query, time.time())

    async def status_page(self, request: Request) -> Response:
        from ._actions_api import RECENT_ACTIONS
        from ._status_page import PAGE_SERIES, PAGE_SERIES_PER_RULE, render_status_page

        def build(selection: Selection) -> Response:
            selection = replace(selection, recent=True)  # the sparklines
            actions = self.service.actions.query(limit=RECENT_ACTIONS)
            page = render_status_page(self.service.status(selection), selection, actions)
            return Response(
                200,
                utf8(page),
                "text/html; charset=utf-8",
                {
                    # The page needs no script at all: forbid every one, even if one slipped in.
                    "Content-Security-Policy": (
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
                    ),
                    "Referrer-Policy": "no-referrer",
                    "X-Frame-Options": "DENY",
                },
            )

        return self._document(request, build, PAGE_SERIES, PAGE_SERIES_PER_RULE)


async def _linger(stream: SocketStream, drained: int) -> None:
    """Lingering close: drain what the client still sends (a body, the rest of a huge
    header) for a moment, so closing does not reset the connection under the response."""
    with anyio.move_on_after(LINGER_TIME):
        try:
            while drained < LINGER_BYTES:
                drained += len(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass


def readiness_problems(service: ServiceView) -> list[str]:
    """Why ``service`` is not ready, one line each; empty when it is.

    Ready means: every fetch done successfully within the readiness window
    (``fetched_recently``), and every plugin a rule names loaded.
    """
    now = anyio.current_time()
    problems: list[str] = []
    for target in service.fetch_statuses():
        error = f" (last error: {target.last_error})" if target.last_error else ""
        if target.last_success is None:
            problems.append(f"{target.description}: not read successfully yet{error}")
        elif not fetched_recently(target.last_success, target.interval, now):
            ago = now - target.last_success
            problems.append(f"{target.description}: last read successfully {ago:.0f}s ago{error}")
    for unloaded in service.unloaded_plugins():
        why = f": {unloaded.reason}" if unloaded.reason is not None else ""
        problems.append(f"rule {unloaded.rule}: plugin {unloaded.plugin} is not loaded{why}")
    if not problems and not service.ready():
        problems.append("not every target has been read recently")
    return problems
