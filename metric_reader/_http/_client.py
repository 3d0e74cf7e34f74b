"""The one HTTP client the service shares, made from a ``ClientConfig`` (the settings of
how endpoints are reached: ``metric_reader._config``), and how its failures become
``FetchError``. Credential files are read again when they change.
"""

from __future__ import annotations

import base64
import functools
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .. import __version__
from .._config import ClientConfig, Secret, build_ssl_context, read_credential
from .._core import FetchError, FetchTimeout, QueueTimeout, logger, remember_secret
from ._body import ACCEPT_ENCODING

if TYPE_CHECKING:
    import ssl

REREAD_INTERVAL = 10.0
"""A credential file is read again at least this often (seconds), even when it seems
unchanged: an in-place rewrite of the same size within one mtime tick would go unseen."""
_ORIGIN = "metric_reader.origin"
"""Request extension: the origin the request was first sent to, carried across redirects."""


class CredentialFile:
    """A secret kept in a file that may be replaced at any time (a Kubernetes
    service-account token rotates): before each request the file is ``stat``-ed, and read
    again when its inode, size or modification time changed, or ``REREAD_INTERVAL`` has
    passed since it was last read. When a new read fails, the
    last good value stays in use and the problem is logged (once per distinct problem)."""

    def __init__(self, path: Path, variable: str) -> None:
        self.path = path
        self.variable = variable
        self._signature: tuple[int, int, int, int] | None = None
        self._value: str | None = None
        self._problem: str | None = None
        self._read_at = 0.0

    def current(self) -> str:
        try:
            st = os.stat(self.path)
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            now = time.monotonic()
            if signature != self._signature or now - self._read_at >= REREAD_INTERVAL:
                value = read_credential(self.path, self.variable)
                self._read_at = now
                if self._value is not None and value != self._value:
                    logger.bind(file=str(self.path)).info(
                        "{} changed: using its new contents", self.variable
                    )
                self._value, self._signature, self._problem = value, signature, None
        except (OSError, ValueError) as exc:
            problem = (
                str(exc)
                if isinstance(exc, ValueError)
                else f"{self.variable} {str(self.path)!r}: {exc.strerror or exc}"
            )
            if problem != self._problem:
                self._problem = problem
                action = "keeping the last one read" if self._value is not None else "no value"
                logger.bind(file=str(self.path)).warning("{}; {}", problem, action)
            if self._value is None:
                raise FetchError(problem) from None
        assert self._value is not None
        return self._value


class EndpointAuth(httpx.Auth):
    """Sets ``Authorization`` on each request from the current credentials. httpx drops it
    when a redirect leaves the origin; ``_keep_headers_home`` drops the extra headers too.
    The basic auth header's value is a secret of its own (the pair, encoded): remembered
    before it is first sent, so an endpoint echoing it back shows ``***``."""

    def __init__(self, config: ClientConfig) -> None:
        self.token = (
            CredentialFile(config.bearer_token_file, "BEARER_TOKEN_FILE")
            if config.bearer_token_file is not None
            else None
        )
        self.username = config.basic_auth_username
        self.password: CredentialFile | Secret | None = (
            CredentialFile(config.basic_auth_password_file, "BASIC_AUTH_PASSWORD_FILE")
            if config.basic_auth_password_file is not None
            else config.basic_auth_password
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is not None:
            request.headers["Authorization"] = f"Bearer {self.token.current()}"
        elif self.username is not None and self.password is not None:
            password = (
                self.password.reveal()
                if isinstance(self.password, Secret)
                else self.password.current()
            )
            pair = f"{self.username}:{password}".encode()
            encoded = base64.b64encode(pair).decode("ascii")
            remember_secret(encoded, source="basic auth header")
            request.headers["Authorization"] = "Basic " + encoded
        yield request


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


TRANSPORT = "wire"
"""What carries the requests not sent through a proxy: ``wire`` (``_wire``: HTTP/1.1 on an
asyncio protocol, about half httpcore's CPU per request, nothing to install), ``aiohttp``
(``_aiohttp``, when the ``bench`` extra installed it; httpcore where it cannot be imported)
or ``httpx`` (httpcore, httpx's own); ``make bench`` compares them."""


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, asked about an answer only when it sets a cookie: httpx builds
    a ``urllib`` request and an ``email`` message for each answer to ask it (about a tenth
    of a poll's CPU), and the jar looks at ``Set-Cookie`` alone (``Set-Cookie2`` is off in
    its default policy)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """httpx, with its direct transport chosen by ``TRANSPORT``. Chosen here rather than
    passed as ``transport=``: that would also turn off the proxies from the environment.
    ``tls`` makes the TLS context, once, when it is first needed: by ``wire`` at its first
    ``https://`` connection, by the others (and a proxy from the environment) at once."""

    def __init__(self, *, tls: Callable[[], ssl.SSLContext], **kwargs: Any) -> None:
        self._tls = functools.cache(tls)
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(),  # noqa: B008 - never mutated
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is None and TRANSPORT == "wire":
            from ._wire import WireTransport

            return WireTransport(self._tls, limits)
        if transport is None and TRANSPORT == "aiohttp":
            try:
                from ._aiohttp import AiohttpTransport
            except ImportError:  # aiohttp is not installed: httpcore carries the requests
                pass
            else:
                return AiohttpTransport(self._tls(), limits)
        return super()._init_transport(
            verify=self._tls() if transport is None else verify,
            cert=cert,  # type: ignore[arg-type]
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            transport=transport,
        )

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(),  # noqa: B008 - never mutated
    ) -> httpx.AsyncBaseTransport:
        return super()._init_proxy_transport(
            proxy,
            verify=self._tls(),
            cert=cert,  # type: ignore[arg-type]
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
        )


def make_client(config: ClientConfig | None = None) -> httpx.AsyncClient:
    """A keep-alive client; each request passes its own timeout. ``config`` says how to
    reach the endpoints (TLS, credentials, extra headers); None: verified TLS, nothing else.
    """
    config = config or ClientConfig()
    extra = {name: value.reveal() for name, value in config.headers}
    sensitive = {"authorization", *(name.lower() for name in extra)}

    async def keep_headers_home(request: httpx.Request) -> None:
        """On a redirect to another origin (scheme, host, port) send neither credentials
        nor the extra headers: they were meant for the endpoint configured."""
        first = request.extensions.setdefault(_ORIGIN, _origin(request.url))
        if first != _origin(request.url):
            for name in sensitive:
                request.headers.pop(name, None)

    auth = EndpointAuth(config)
    return _Client(
        # Only the codings ``read_body`` decodes within the limit (httpx would add br and
        # zstd when their libraries happen to be installed).
        headers={
            "User-Agent": f"metric-reader/{__version__}",
            "Accept-Encoding": ACCEPT_ENCODING,
            **extra,
        },
        auth=auth if auth.token is not None or auth.password is not None else None,
        tls=functools.partial(build_ssl_context, config),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=True,
        max_redirects=5,
        event_hooks={"request": [keep_headers_home]},
    )


def _tls_problem(exc: BaseException) -> str | None:
    """What went wrong in TLS, if that is why ``exc`` happened, with the setting to fix."""
    seen: BaseException | None = None
    if "ssl" in sys.modules:  # else no TLS error can have happened
        import ssl

        seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate verification failed: {seen.verify_message}; set TLS_CA_FILE "
                "to the CA that signed the endpoint's certificate"
            )
        if isinstance(seen, ssl.SSLError):
            reason = str(seen.reason or seen)
            hint = ""
            if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
                hint = (
                    "; the endpoint may require a client certificate: set TLS_CERT_FILE "
                    "and TLS_KEY_FILE"
                )
            elif "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
                hint = "; the endpoint does not accept the client certificate"
            return f"TLS error: {reason}{hint}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS certificate verification failed: {text}; set TLS_CA_FILE"
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """The setting a request comes from, so its errors can say what to change."""

    setting: str
    """``PROMETHEUS_ENDPOINT`` or ``SCRAPE_URL``."""
    value: str
    what: str
    """What the setting should point at: ``your Prometheus``."""
    defaulted: bool = False
    """Nothing set it: ``value`` is its default. Only then can a connection that fails be
    blamed on the setting; one the user set that cannot be reached is down, or far."""


@dataclass(slots=True)
class Attempt:
    """One request to a source: its URL, and the status of its answer once there is one."""

    url: str
    source: Source
    status: int | None = None
    wrong_kind: bool = False
    """The answer is not what the setting should point at (an HTML page, not JSON)."""
    queued: bool = False
    """Waited for a free request slot to the endpoint (all were busy) before being sent."""

    def explain(self, problem: str, hint: str | None = None) -> str:
        """``problem (GET url); what to change``: one line for a failed request."""
        hint = hint or self._status_hint()
        if hint is None and self.wrong_kind:
            hint = f"does {self.source.setting}={self.source.value} point at {self.source.what}?"
        return f"{problem} (GET {self.url})" + (f"; {hint}" if hint else "")

    def _status_hint(self) -> str | None:
        setting, value = self.source.setting, self.source.value
        if self.status == 404 and setting == "PROMETHEUS_ENDPOINT":
            path = httpx.URL(value).path.rstrip("/")
            if path.endswith("/api/v1") or "/api/v1/" in path:
                return f"{setting} should be the base URL, without /api/v1 ({setting}={value})"
            return (
                f"is {setting}={value} the base URL of a Prometheus-compatible API "
                "(the one /api/v1/query is under)?"
            )
        if self.status == 404:
            return f"is {setting}={value} the full URL of the metrics page (e.g. .../metrics)?"
        if self.status in (401, 403):
            return (
                "the endpoint refused the request: set BEARER_TOKEN_FILE, or "
                "BASIC_AUTH_USERNAME and BASIC_AUTH_PASSWORD_FILE, to credentials it accepts"
            )
        return None

    def change_setting(self) -> str | None:
        """What to set when no connection can be made: only for a setting left at its
        default, the likely cause then (the user's own value names what is down)."""
        if not self.source.defaulted:
            return None
        setting = self.source.setting
        return (
            f"{setting} is not set, so its default {self.source.value} is used: set "
            f"{setting} ({setting.lower()} in CONFIG_FILE) to {self.source.what}"
        )


@asynccontextmanager
async def request_slot(
    slots: anyio.CapacityLimiter | None, attempt: Attempt
) -> AsyncIterator[None]:
    """Hold one of ``slots`` (if bounded) for the request. A request that had to wait for
    its slot and then ran out of time is a ``QueueTimeout`` (see ``deadline``): the requests
    before it used up its time."""
    if slots is None:
        yield
        return
    try:  # a free slot is taken without the checkpoint ``async with slots`` makes (a
        slots.acquire_nowait()  # turn of the event loop, a sizeable part of a poll)
    except anyio.WouldBlock:
        attempt.queued = True
        await slots.acquire()
    try:
        yield
    finally:
        slots.release()


@asynccontextmanager
async def deadline(timeout: float, attempt: Attempt | None = None) -> AsyncIterator[None]:
    """Bound a whole request, body included, by ``timeout``; turn every failure into
    ``FetchError`` (httpx's own timeouts are per read, so a trickling body would evade them).
    With ``attempt``, every error names the URL requested and, where one applies, the
    setting to change.
    """

    def fail(
        problem: str, hint: str | None = None, kind: type[FetchError] = FetchError
    ) -> FetchError:
        return kind(problem if attempt is None else attempt.explain(problem, hint))

    try:
        with anyio.fail_after(timeout):
            yield
    except FetchError as exc:
        if attempt is None:
            raise
        again = fail(str(exc), kind=type(exc))
        again.__dict__.update(exc.__dict__)  # what the kind carries (QueryParseError.reason)
        raise again from None
    except (TimeoutError, httpx.TimeoutException):
        if attempt is not None and attempt.queued:
            raise fail(
                f"no complete answer within {timeout:g}s, most of it spent waiting for a free "
                "request slot: all max_concurrent_queries requests to the endpoint were busy",
                kind=QueueTimeout,
            ) from None
        hint = None
        if attempt is not None:
            hint = (
                "the timeout is 80% of POLLING_INTERVAL (at most 30s): raise POLLING_INTERVAL, "
                f"or make {attempt.source.value} answer faster"
            )
        raise fail(f"no complete answer within {timeout:g}s", hint, FetchTimeout) from None
    except httpx.ConnectError as exc:
        tls = _tls_problem(exc)
        if tls is not None:
            raise fail(tls) from None
        problem = _connect_problem(exc)
        hint = None if attempt is None else attempt.change_setting()
        raise fail(problem, hint) from None
    except httpx.HTTPError as exc:
        tls = _tls_problem(exc)
        raise fail(tls or _describe(exc)) from None
    except OSError as exc:  # an ssl.SSLError (a TLS alert) can come through httpx unwrapped
        tls = _tls_problem(exc)
        raise fail(tls or f"{type(exc).__name__}: {exc}") from None


def _connect_problem(exc: httpx.ConnectError) -> str:
    """Why a connection could not be made, in words: the host does not resolve, nothing
    listens on the port, or what the system said."""
    try:
        url = exc.request.url
        host = url.host
        where = f"{host}:{url.port or {'http': 80, 'https': 443}.get(url.scheme)}"
    except RuntimeError:  # no request attached
        host, where = "", ""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror) or "name resolution" in str(seen).lower():
            return f"cannot connect: cannot resolve host {host!r}"
        if isinstance(seen, ConnectionRefusedError) or "connection refused" in str(seen).lower():
            return f"cannot connect: connection refused by {where}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return f"cannot connect: cannot resolve host {host!r}"
    return f"cannot connect: {text or type(exc).__name__}"


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc)
    if text:
        return f"{type(exc).__name__}: {text}"
    described = f"{type(exc).__name__}: the endpoint closed the connection"
    try:
        https = exc.request.url.scheme == "https"
    except RuntimeError:  # no request attached
        https = False
    if https and isinstance(exc, httpx.ReadError | httpx.WriteError):
        # TLS 1.3: a server that wants a client certificate may just close the connection.
        described += " (if it requires a client certificate, set TLS_CERT_FILE and TLS_KEY_FILE)"
    return described
