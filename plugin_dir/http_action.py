"""Bundled plugin ``http_action``: POST each breach, and its end, as JSON to an endpoint.

Settings, from the rule file's ``[plugins.http_action]`` table or from the environment (read
when the plugin is validated and again at every call); a key given in the table takes
precedence over its environment variable:

- ``endpoint`` or ``HTTP_PLUGIN_ENDPOINT``: the ``http://`` or ``https://`` URL to POST to
  (default ``http://localhost:8080``).
- ``headers`` or ``HTTP_PLUGIN_HEADERS``: extra request headers (default: none). In the
  table, a table of strings: ``headers = { Authorization = "Bearer abc", X-Team = "ops" }``.
  In the environment, a JSON object of strings, e.g.
  ``{"Authorization": "Bearer abc", "X-Team": "ops"}``: one line, so it fits a Kubernetes
  ``env`` value; with ``$(TOKEN)`` Kubernetes can splice in a secret held in another
  variable (a secret is better kept there than in the rule file). Names must be HTTP
  tokens, values printable ASCII; ``Content-Length`` and ``Transfer-Encoding`` cannot be
  set. These headers replace the defaults of the same name (``Content-Type:
  application/json``, ``User-Agent: metric-reader/<version> (http_action)``).
- ``timeout`` or ``HTTP_PLUGIN_TIMEOUT``: a Go duration such as ``500ms``, ``5s`` or ``1m``
  for the whole request, connecting included (default ``10s``; must be more than 0; in the
  table a string, ``"5s"``). The service's ``PLUGIN_TIMEOUT`` still applies on top.

An unknown key in the table is refused, with a suggestion.

The body is ``Event.as_dict()``: ``rule``, ``metric_name``, ``labels``, ``value``,
``threshold``, ``level``, ``kind`` (``fire``, ``repeat``; ``resolve`` from ``resolve``),
``breach_started`` (ISO 8601), ``duration_seconds``, ``fire_count``, ``plugin``,
``annotations`` (an alerting rule's rendered annotations, else empty),
``idempotency_key`` (the same for every try of a call: a receiver can drop the repeats of
one it has done), ``external_labels`` and ``generator_url`` (``EXTERNAL_LABELS`` and the
``EXTERNAL_URL`` link, empty when not set). JSON has
no NaN or infinity, so such numbers are sent as the strings Prometheus uses for them:
``"NaN"``, ``"+Inf"`` and ``"-Inf"``; every other number stays a JSON number.

Any answer other than 2xx is a failure, redirects included (they are not followed, so the
headers never reach another host); its message carries the status and the start of the
answer's body. So do a refused connection and a timeout. Header values are never logged
nor put in messages (they are often credentials), not even when the endpoint says them
back in its answer (values of 6 characters or more are masked there, as are the
credentials of the endpoint's URL), and messages name the endpoint by its scheme, host and
port only: webhook URLs often carry a secret in their path or query.
Proxy settings (``HTTPS_PROXY``, ``NO_PROXY``...) and ``SSL_CERT_FILE`` are honoured.

Each call uses a client of its own: the service may run calls in different event loops
(``metric-reader fire`` starts a fresh one), and a client must not outlive its loop.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import anyio
import httpx
from loguru import logger

import metric_reader
from metric_reader import Event, check_settings, parse_duration, toml_type

DEFAULT_ENDPOINT = "http://localhost:8080"
DEFAULT_TIMEOUT = "10s"
USER_AGENT = f"metric-reader/{metric_reader.__version__} (http_action)"
_BODY_PREVIEW = 200  # bytes of a failed answer's body put in the error message
_SHORTEST_SECRET = 6  # header values at least this long are masked in messages (``_hide``)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 header name
_FORBIDDEN_HEADERS = {"content-length", "transfer-encoding"}  # framing is httpx's job
_HEADERS_FORMAT = 'a JSON object of strings, e.g. {"Authorization": "Bearer abc"}'
_TABLE_HEADERS_FORMAT = 'a table of strings, e.g. headers = { Authorization = "Bearer abc" }'
_ENDPOINT_FORMAT = "expected an http:// or https:// URL such as http://alerts.example:8080/hook"
_TABLE = "[plugins.http_action]"
_KEYS = ("endpoint", "headers", "timeout")
_VARIABLES = {  # for the suggestion
    "HTTP_PLUGIN_ENDPOINT": "endpoint",
    "HTTP_PLUGIN_HEADERS": "headers",
    "HTTP_PLUGIN_TIMEOUT": "timeout",
}

_DURATION_FORMAT = "a Go duration above 0 such as 500ms, 5s, 1m30s (units ns, us, ms, s, m, h)"


class HTTPActionError(Exception):
    """The POST did not succeed; ``status_code`` is set when the server answered."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HTTPAction:
    name = "http_action"

    def __init__(self) -> None:
        # from the rule file's table, checked; each beats its environment variable
        self._endpoint: httpx.URL | None = None
        self._headers: dict[str, str] | None = None
        self._timeout: float | None = None

    def configure(self, settings: dict[str, Any]) -> None:
        """Take the ``[plugins.http_action]`` table: ``endpoint``, ``headers``, ``timeout``."""
        check_settings(settings, _KEYS, _VARIABLES)
        endpoint = _table_endpoint(settings["endpoint"]) if "endpoint" in settings else None
        headers = _table_headers(settings["headers"]) if "headers" in settings else None
        timeout = _table_timeout(settings["timeout"]) if "timeout" in settings else None
        self._endpoint, self._headers, self._timeout = endpoint, headers, timeout

    def validate_config(self) -> None:
        """Refuse a malformed endpoint, header list or timeout (see the module doc)."""
        self._settings()

    def _settings(self) -> _Settings:
        """The effective settings: the table's where given, else the environment's."""
        if self._timeout is not None:
            timeout, timeout_source = self._timeout, f"{_TABLE} timeout"
        else:
            timeout, timeout_source = _timeout(), "HTTP_PLUGIN_TIMEOUT"
        return _Settings(
            self._endpoint if self._endpoint is not None else _endpoint(),
            self._headers if self._headers is not None else _headers(),
            timeout,
            timeout_source,
        )

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        body = _body("fire", metric_name, value, threshold, duration, event)
        await _post(self.name, body, self._settings())

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        body = _body("resolve", metric_name, value, threshold, duration, event)
        body["kind"] = "resolve"
        await _post(self.name, body, self._settings())


class _Settings:
    def __init__(
        self,
        endpoint: httpx.URL,
        headers: dict[str, str],
        timeout: float,
        timeout_source: str = "HTTP_PLUGIN_TIMEOUT",
    ) -> None:
        self.endpoint = endpoint
        self.headers = headers
        self.timeout = timeout
        self.timeout_source = timeout_source  # how messages name where the timeout came from


def _table_endpoint(value: object) -> httpx.URL:
    if not isinstance(value, str):
        raise ValueError(f"endpoint is {toml_type(value)}, not a string; {_ENDPOINT_FORMAT}")
    return _parse_endpoint(value.strip(), "endpoint")


def _table_headers(value: object) -> dict[str, str]:
    """The ``headers`` table checked as ``HTTP_PLUGIN_HEADERS`` is; values never quoted."""

    def refuse(reason: str) -> ValueError:
        return ValueError(f"headers {reason}; expected {_TABLE_HEADERS_FORMAT}")

    if not isinstance(value, dict):
        raise refuse(f"is {toml_type(value)}, not a table")
    return _checked_headers(value.items(), refuse, toml_type)


def _table_timeout(value: object) -> float:
    seconds = _parse_go_duration(value.strip()) if isinstance(value, str) else None
    if seconds is None or not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f'timeout={value!r} is not {_DURATION_FORMAT}, as a string ("5s")')
    return seconds


def _endpoint() -> httpx.URL:
    raw = os.environ.get("HTTP_PLUGIN_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
    return _parse_endpoint(raw, "HTTP_PLUGIN_ENDPOINT")


def _parse_endpoint(raw: str, source: str) -> httpx.URL:
    """``raw`` as an http(s) URL; ``source`` names the setting in messages."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ValueError(
            f"{source}={_redact_userinfo(raw)!r} is not a URL ({exc}); {_ENDPOINT_FORMAT}"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{source}={_redact_userinfo(raw)!r}: {_ENDPOINT_FORMAT}")
    return url


def _redact_userinfo(text: str) -> str:
    """``https://user:secret@host`` -> ``https://***@host``: a password is never shown. The
    userinfo ends at the *last* ``@`` of the authority, as RFC 3986 reads it."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", text)


def _secrets_sent(settings: _Settings) -> list[str]:
    """What a request carries that an answer must not say back: the header values, and
    the credentials of the endpoint's URL (httpx sends them as basic auth)."""
    secrets = list(settings.headers.values())
    url = settings.endpoint
    if url.userinfo:
        pair = f"{url.username}:{url.password}".encode()
        secrets += [url.password, base64.b64encode(pair).decode("ascii")]
    return secrets


def _hide(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (header values) as ``***``, as written and as JSON
    escapes it: an endpoint may echo the headers it got in its error page. Values shorter
    than ``_SHORTEST_SECRET`` stay: masking every ``ops`` would garble the text and hide
    nothing worth hiding."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _SHORTEST_SECRET:
            text = text.replace(json.dumps(secret)[1:-1], "***").replace(secret, "***")
    return text


def _origin(url: httpx.URL) -> str:
    """``scheme://host:port``: how messages name the endpoint (no path, query or password)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def _headers() -> dict[str, str]:
    """``HTTP_PLUGIN_HEADERS`` checked; messages never quote a header value."""
    raw = os.environ.get("HTTP_PLUGIN_HEADERS", "").strip()
    if not raw:
        return {}

    def refuse(reason: str) -> ValueError:
        return ValueError(f"HTTP_PLUGIN_HEADERS {reason}; expected {_HEADERS_FORMAT}")

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key.lower() in (k.lower() for k in seen):
                raise refuse(f"names header {key!r} twice")
            seen[key] = value
        return seen

    try:
        parsed: object = json.loads(raw, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as exc:  # its message gives a position, never the text
        raise refuse(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(parsed, dict):
        raise refuse(f"is a JSON {_json_type(parsed)}, not an object")
    return _checked_headers(parsed.items(), refuse, lambda value: f"a JSON {_json_type(value)}")


def _checked_headers(
    pairs: Iterable[tuple[Any, object]],
    refuse: Callable[[str], ValueError],
    type_name: Callable[[object], str],
) -> dict[str, str]:
    """Header names and values checked; a message never quotes a value."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise refuse(f"has an invalid header name {name!r}")
        if name.lower() in _FORBIDDEN_HEADERS:
            raise refuse(f"sets {name!r}, which the HTTP client sets itself")
        if any(name.lower() == seen.lower() for seen in headers):
            raise refuse(f"names header {name!r} twice")
        if not isinstance(value, str):
            raise refuse(f"gives header {name!r} {type_name(value)}, not a string")
        if not all(c == "\t" or " " <= c <= "~" for c in value):
            raise refuse(
                f"gives header {name!r} a value with a line break, control or non-ASCII "
                "character (value not shown)"
            )
        headers[name] = value.strip()
    return headers


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _timeout() -> float:
    raw = os.environ.get("HTTP_PLUGIN_TIMEOUT", "").strip() or DEFAULT_TIMEOUT
    seconds = _parse_go_duration(raw)
    if seconds is None or not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"HTTP_PLUGIN_TIMEOUT={raw!r} is not {_DURATION_FORMAT}")
    return seconds


def _parse_go_duration(text: str) -> float | None:
    """Go's ``time.ParseDuration`` for non-negative values (``1m30s``); None if malformed."""
    try:
        return parse_duration(text)
    except ValueError:
        return None


def _body(
    kind: str,
    metric_name: str,
    value: float,
    threshold: str,
    duration: timedelta,
    event: Event | None,
) -> dict[str, object]:
    body: dict[str, object] = event.as_dict() if event is not None else {"kind": kind, "labels": {}}
    body.update(
        metric_name=metric_name,
        value=value,
        threshold=threshold,
        duration_seconds=duration.total_seconds(),
    )
    return body


def _json_safe(value: object) -> object:
    """NaN and infinities become Prometheus' spellings; JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def _post(plugin: str, body: dict[str, object], settings: _Settings) -> None:
    where = _origin(settings.endpoint)
    content = json.dumps(_json_safe(body), allow_nan=False, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    for name, value in settings.headers.items():  # a custom header replaces a default one
        for default in [d for d in headers if d.lower() == name.lower()]:
            del headers[default]
        headers[name] = value
    timeout = settings.timeout
    log = logger.bind(plugin=plugin, endpoint=where, kind=body.get("kind"))
    try:
        with anyio.fail_after(timeout):  # the whole request; httpx's limits are per step
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream(
                    "POST", settings.endpoint, content=content, headers=headers
                ) as response,
            ):
                status = response.status_code
                if not 200 <= status < 300:
                    secrets = _secrets_sent(settings)
                    preview = await _preview(response, secrets)
                    raise HTTPActionError(
                        f"POST {where} answered {status} "
                        + _hide(response.reason_phrase, secrets)
                        + (f": {preview}" if preview else " (empty body)"),
                        status_code=status,
                    )
    except HTTPActionError:
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise HTTPActionError(
            f"POST {where} got no answer within {_format_seconds(timeout)} "
            f"({settings.timeout_source})"
        ) from None
    except httpx.ConnectError as exc:
        raise HTTPActionError(f"POST {where} could not connect: {_connect_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise HTTPActionError(
            f"POST {where} failed: {type(exc).__name__}: {_reason(exc)}"
        ) from None
    log.bind(status=status).info("http_action: POST {} answered {}", where, status)


async def _preview(response: httpx.Response, secrets: list[str]) -> str:
    """The first ~200 bytes of the body, on one line, ``secrets`` masked; a huge body is not
    downloaded. Enough more is read to mask a secret that begins before the cut whole."""
    reach = _BODY_PREVIEW + max((len(json.dumps(secret)) for secret in secrets), default=0)
    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= reach:
                break
    except httpx.HTTPError:
        pass  # what arrived is enough to explain the failure
    text = _hide(data[:reach].decode("utf-8", "replace"), secrets)[:_BODY_PREVIEW]
    text = " ".join(text.split())
    return text + ("..." if len(data) > _BODY_PREVIEW else "")


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _connect_reason(exc: BaseException) -> str:
    """The innermost OS error (``Connection refused``), not httpx's summary of it."""
    reason = _reason(exc)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            errno = cause.errno if isinstance(cause.errno, int) else 0
            reason = os.strerror(errno) if errno > 0 else cause.strerror
        cause = cause.__cause__ or cause.__context__
    return reason


def _format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Plugin = HTTPAction()
