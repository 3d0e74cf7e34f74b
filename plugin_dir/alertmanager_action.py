"""Bundled plugin ``alertmanager_action``: send each breach to Alertmanager as Prometheus does.

Each breach is an alert POSTed to Alertmanager's API v2 (``POST <url>/api/v2/alerts``), in
the JSON Prometheus sends: a list of ``{"annotations", "endsAt", "startsAt",
"generatorURL", "labels"}`` objects, times in RFC 3339 with milliseconds, UTC.

- ``labels``: the series' labels (for an alerting rule of a rule file, the alert's labels),
  plus ``alertname`` = the rule's name when they have none, plus the ``labels`` setting's
  and then the service's external labels (``EXTERNAL_LABELS``, given in the event's
  ``external_labels``) where the alert has no label of that name, as Prometheus' notifier
  adds its external labels. The escalation level (``HARD_THRESHOLD``) gets
  ``breach_level="hard"`` too, so that its alert is not the base level's. Labels with an
  empty value are left out, as Prometheus does.
- ``annotations``: the rule's rendered annotations, plus the ``annotations`` setting's
  where the rule has none of that name; left out when empty.
- ``startsAt``: when the alert started *firing*, as Prometheus sends it (its ``FiredAt``:
  after ``for``, here ``THRESHOLD_DURATION``): the fire event's ``breach_started`` plus its
  ``duration``; repeats and the resolve carry the same time. An alert first seen on a
  repeat (after a restart) starts at its breach's start.
- ``endsAt``: while firing, the time of sending plus four resend intervals (Prometheus:
  ``4 * max(resend_delay, evaluation interval)``), so Alertmanager resolves the alert by
  itself if metric-reader stops sending; on resolve, the time of the resolve.
- ``generatorURL``: the ``generator_url`` setting, ``{expr}`` in it replaced by the rule's
  metric name or PromQL text, URL-encoded; without it, the event's ``generator_url``
  (``EXTERNAL_URL`` and the table view of the rule's expression, as Prometheus sends it);
  left out when neither is set.

Re-sending. Alertmanager forgets an alert at its ``endsAt``; Prometheus re-sends firing
alerts every ``resend_delay`` (1m). metric-reader calls ``execute`` when a breach fires and
then every ``BACKOFF_DELAY`` only if that is set, so the plugin re-sends by itself: it keeps
the alerts it sent and, from a background task on its event loop, POSTs them all again
every ``resend_interval`` (each with a new ``endsAt``). A resolved alert is re-sent with
its fixed ``endsAt`` for 15 minutes, as Prometheus does, so an Alertmanager that missed
the resolve learns of it. A failed re-send is logged as a warning and tried again at the
next interval; nothing stops the task but the end of its event loop, and the next call
starts a new one if needed. The alerts kept live in the process: after a restart, the
breaches still going fire again (or repeat) and are sent from then on; until then
Alertmanager keeps the earlier alert up to its ``endsAt``.

Several Alertmanagers. Each alert goes to every URL, concurrently. A call succeeds when at
least one Alertmanager accepted it (as in Prometheus, where a batch counts as sent when one
Alertmanager of the set took it); the ones that failed are logged as warnings and get the
alert again at the next re-send. The call fails only when every one failed, with each
one's reason. Batches hold at most 256 alerts (Prometheus' limit).

Settings, from the rule file's ``[plugins.alertmanager_action]`` table or from the
environment (read when the plugin is validated and again at every send); a key given in the
table takes precedence over its environment variable:

- ``urls`` or ``ALERTMANAGER_URLS``: the Alertmanagers' ``http://`` or ``https://`` base
  URLs (``/api/v2/alerts`` is appended to each, after any path prefix); in the table a list
  of strings, in the environment separated by commas (default ``http://localhost:9093``).
  No credentials in the URL: use the settings below.
- ``timeout`` or ``ALERTMANAGER_TIMEOUT``: a Go duration for each POST, connecting included
  (default ``10s``, as Prometheus). The service's ``PLUGIN_TIMEOUT`` still applies on top.
- ``resend_interval`` or ``ALERTMANAGER_RESEND_INTERVAL``: a Go duration (default ``1m``).
- ``generator_url`` or ``ALERTMANAGER_GENERATOR_URL``: see above (default: none).
- ``labels`` or ``ALERTMANAGER_LABELS``, ``annotations`` or ``ALERTMANAGER_ANNOTATIONS``:
  added to every alert as described above; in the table a table of strings, in the
  environment a JSON object of strings. Names are Prometheus label names
  (``[a-zA-Z_][a-zA-Z0-9_]*``).
- ``tls_ca_file`` / ``ALERTMANAGER_TLS_CA_FILE``: the only CAs trusted for the
  Alertmanagers' certificates (PEM); default the system's (``SSL_CERT_FILE`` honoured).
- ``tls_cert_file`` and ``tls_key_file`` / ``ALERTMANAGER_TLS_CERT_FILE`` and
  ``ALERTMANAGER_TLS_KEY_FILE``: a client certificate and its unencrypted key, for mutual
  TLS; both or neither.
- ``tls_insecure_skip_verify`` / ``ALERTMANAGER_TLS_INSECURE_SKIP_VERIFY``: accept any
  certificate (testing only); ``true`` or ``false``.
- ``bearer_token_file`` / ``ALERTMANAGER_BEARER_TOKEN_FILE``: sent as ``Authorization:
  Bearer``.
- ``basic_auth_username`` and ``basic_auth_password_file`` /
  ``ALERTMANAGER_BASIC_AUTH_USERNAME`` and ``ALERTMANAGER_BASIC_AUTH_PASSWORD_FILE``: basic
  authentication; both or neither, and not with a bearer token.

Credential files are read at every send (a rotated token is picked up), their surrounding
whitespace removed; their contents are never logged nor put in messages, not even when an
Alertmanager (or a proxy before it) says them back in its answer. An unknown key in the
table is refused, with a suggestion.

Any answer other than 2xx is a failure (redirects are not followed); its message carries
the status and the start of the answer's body, and names the Alertmanager by scheme, host
and port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from loguru import logger

import metric_reader
from metric_reader import Event, check_settings, parse_duration, toml_type

NAME = "alertmanager_action"
DEFAULT_URL = "http://localhost:9093"
ALERTS_PATH = "/api/v2/alerts"
USER_AGENT = f"metric-reader/{metric_reader.__version__} (alertmanager_action)"
RESOLVED_RETENTION = 15 * 60.0  # seconds a resolved alert is still re-sent (Prometheus: 15m)
MAX_BATCH = 256  # alerts per POST (Prometheus' maxBatchSize)
_BODY_PREVIEW = 200  # bytes of a failed answer's body put in the error message
_MAX_CREDENTIAL_BYTES = 64 * 1024
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TABLE = f"[plugins.{NAME}]"
_DURATION_FORMAT = "a Go duration above 0 such as 500ms, 5s, 1m30s (units ns, us, ms, s, m, h)"
_URL_FORMAT = "expected http:// or https:// URLs such as http://alertmanager:9093"


@dataclass(frozen=True)
class _Key:
    """One setting: its table key, its environment variable, how either is read (a string
    from the environment reads as the same string in the table would), its default."""

    key: str
    variable: str
    parse: Callable[[object, str], object]
    default: object


class AlertmanagerError(Exception):
    """No Alertmanager accepted the alerts."""


class AlertmanagerAction:
    name = NAME

    def __init__(self) -> None:
        self._table: dict[str, object] = {}  # from the rule file, checked; beats the env
        self._lock = threading.Lock()
        self._alerts: dict[frozenset[tuple[str, str]], _Alert] = {}
        self._resending_on: asyncio.AbstractEventLoop | None = None  # where rounds run
        self.resolved_retention = RESOLVED_RETENTION

    def configure(self, settings: dict[str, Any]) -> None:
        """Take the ``[plugins.alertmanager_action]`` table (see the module doc)."""
        check_settings(settings, _KEYS, _VARIABLES)
        table = {}
        for key, value in settings.items():
            spec = _KEYS[key]
            table[key] = spec.parse(value, key)
        self._table = table

    def validate_config(self) -> None:
        """Refuse malformed settings, unreadable TLS files or credentials (module doc)."""
        settings = self._settings()
        # The default trust (certifi) cannot fail to load: it is loaded at the first call, so
        # a service that never alerts does not hold the CA bundle (1.7 MB resident).
        tls = settings.tls_ca_file or settings.tls_cert_file or settings.tls_insecure_skip_verify
        if tls or os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
            settings.ssl_context()
        settings.auth_header()

    def _settings(self) -> _Settings:
        values: dict[str, object] = {}
        for key, spec in _KEYS.items():
            if key in self._table:
                values[key] = self._table[key]
                continue
            raw = os.environ.get(spec.variable, "").strip()
            values[key] = spec.parse(raw, spec.variable) if raw else spec.default
        settings = _Settings(**values)  # type: ignore[arg-type]
        settings.check_combinations()
        return settings

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        settings = self._settings()
        alert = self._remember(_alert_from(metric_name, duration, event, settings), None)
        self._ensure_resender()
        await _send_everywhere([alert.body(time.time(), settings)], settings, "fire")

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        settings = self._settings()
        resolved_at = time.time()
        alert = self._remember(_alert_from(metric_name, duration, event, settings), resolved_at)
        self._ensure_resender()
        await _send_everywhere([alert.body(resolved_at, settings)], settings, "resolve")

    def _remember(self, alert: _Alert, resolved_at: float | None) -> _Alert:
        alert.resolved_at = resolved_at
        with self._lock:
            known = self._alerts.get(alert.identity)
            if known is not None and known.resolved_at is None:
                alert.starts_at = known.starts_at  # a repeat or the resolve: the fire's time
            self._alerts[alert.identity] = alert
        return alert

    def _ensure_resender(self) -> None:
        """Re-sending scheduled on the running loop, unless it already is. The rounds are
        timers, not one long task: when the service replaces the plugin's event loop (it
        was blocked) or drops the plugin, a pending timer simply goes with the old loop,
        and the next call schedules the rounds on its own loop."""
        loop = asyncio.get_running_loop()
        if self._resending_on is not loop:
            self._resending_on = loop
            self._schedule_round(loop)

    def _schedule_round(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            interval = self._settings().resend_interval
        except ValueError as exc:  # the environment changed since: keep the default pace
            logger.bind(plugin=NAME).warning("{}: cannot re-send as configured: {}", NAME, exc)
            interval = _DEFAULTS["resend_interval"]
        loop.call_later(interval, self._start_round, loop)

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._resending_on is loop:  # else rounds have moved to another loop
            loop.create_task(self._round(loop), name=f"{NAME} re-send")

    async def _round(self, loop: asyncio.AbstractEventLoop) -> None:
        """One round, then the next one scheduled; none when nothing is left, or when the
        round is cancelled (its loop is going away)."""
        try:
            more = await self._resend_once()
        except asyncio.CancelledError:
            if self._resending_on is loop:
                self._resending_on = None
            raise
        except Exception as exc:  # a bug of ours must not end the re-sending: go on
            logger.bind(plugin=NAME).opt(exception=exc).warning("{}: re-send round failed", NAME)
            more = True
        if self._resending_on is loop:
            if more:
                self._schedule_round(loop)
            else:
                self._resending_on = None

    async def _resend_once(self) -> bool:
        """One round of re-sending; False when there is nothing left to re-send."""
        now = time.time()
        with self._lock:
            for identity, alert in list(self._alerts.items()):
                if alert.resolved_at is not None and now - alert.resolved_at > (
                    self.resolved_retention
                ):
                    del self._alerts[identity]
            alerts = list(self._alerts.values())
        if not alerts:
            logger.bind(plugin=NAME).debug("{}: nothing left to re-send", NAME)
            return False
        try:
            settings = self._settings()
            bodies = [alert.body(now, settings) for alert in alerts]
            await _send_everywhere(bodies, settings, "resend")
        except Exception as exc:  # logged; the next round tries again
            logger.bind(plugin=NAME).warning(
                "{}: re-sending {} alert(s) failed: {}", NAME, len(alerts), _reason(exc)
            )
        return True


class _Alert:
    """One alert as sent; ``endsAt`` is worked out at each send."""

    def __init__(
        self,
        labels: dict[str, str],
        annotations: dict[str, str],
        starts_at: datetime,
        generator_url: str,
    ) -> None:
        self.labels = labels
        self.annotations = annotations
        self.starts_at = starts_at
        self.generator_url = generator_url
        self.identity = frozenset(labels.items())
        self.resolved_at: float | None = None

    def body(self, now: float, settings: _Settings) -> dict[str, object]:
        """The alert in Prometheus' JSON (``models.PostableAlert``)."""
        if self.resolved_at is not None:
            ends_at = self.resolved_at
        else:
            ends_at = now + 4 * settings.resend_interval
        body: dict[str, object] = {}
        if self.annotations:
            body["annotations"] = self.annotations
        body["endsAt"] = _rfc3339(datetime.fromtimestamp(ends_at, UTC))
        body["startsAt"] = _rfc3339(self.starts_at)
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        body["labels"] = self.labels
        return body


def _alert_from(
    metric_name: str, duration: timedelta, event: Event | None, settings: _Settings
) -> _Alert:
    external: dict[str, str] = {}
    generator = ""
    if event is None:  # called directly, not by the service
        rule, labels, annotations, level = metric_name, {}, {}, "base"
        started = datetime.now(UTC) - duration
    else:
        rule, labels, annotations = event.rule, dict(event.labels), dict(event.annotations)
        started, level = event.breach_started, event.level
        if event.kind == "fire":  # Prometheus' startsAt is when the alert began to fire
            started += event.duration
        external, generator = dict(event.external_labels), event.generator_url
    labels.setdefault("alertname", rule)
    if level == "hard":
        labels.setdefault("breach_level", "hard")
    for name, value in [*settings.labels.items(), *external.items()]:
        if not labels.get(name):  # the alert's own label wins, as in Prometheus' notifier
            labels[name] = value
    for name, value in settings.annotations.items():
        annotations.setdefault(name, value)
    labels = {name: value for name, value in sorted(labels.items()) if value != ""}
    if settings.generator_url:
        quoted = urllib.parse.quote_plus(metric_name)
        generator = settings.generator_url.replace("{expr}", quoted)
    return _Alert(labels, dict(sorted(annotations.items())), started, generator)


def _rfc3339(moment: datetime) -> str:
    """Go's ``strfmt.DateTime`` spelling: ``2024-01-02T03:04:05.000Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    urls: tuple[httpx.URL, ...]
    timeout: float
    resend_interval: float
    generator_url: str
    labels: dict[str, str]
    annotations: dict[str, str]
    tls_ca_file: str | None
    tls_cert_file: str | None
    tls_key_file: str | None
    tls_insecure_skip_verify: bool
    bearer_token_file: str | None
    basic_auth_username: str | None
    basic_auth_password_file: str | None

    def check_combinations(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "tls_cert_file and tls_key_file go together: give both (mutual TLS) or neither"
            )
        if (self.basic_auth_username is None) != (self.basic_auth_password_file is None):
            raise ValueError(
                "basic_auth_username and basic_auth_password_file go together: give both or neither"
            )
        if self.bearer_token_file is not None and self.basic_auth_username is not None:
            raise ValueError(
                "bearer_token_file and basic_auth_* are both set: give one kind of credentials"
            )

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context; ``ValueError`` naming the file at fault (never its contents)."""
        if self.tls_insecure_skip_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.tls_ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=self.tls_ca_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"tls_ca_file {self.tls_ca_file!r}: not a PEM file of CA certificates "
                    f"({_ssl_reason(exc)})"
                ) from None
        else:
            context = httpx.create_ssl_context()
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            try:
                context.load_cert_chain(self.tls_cert_file, self.tls_key_file, password=_no_pass)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ValueError(
                    f"tls_cert_file {self.tls_cert_file!r} / tls_key_file {self.tls_key_file!r}: "
                    f"cannot use the client certificate and key ({_ssl_reason(exc)})"
                ) from None
        return context

    def auth_header(self) -> str | None:
        """The ``Authorization`` value, from the credential files read now."""
        if self.bearer_token_file is not None:
            token = _read_credential(self.bearer_token_file, "bearer_token_file")
            if not all(33 <= ord(ch) <= 126 for ch in token):
                raise ValueError(
                    f"bearer_token_file {self.bearer_token_file!r}: a token must be printable "
                    "ASCII without spaces"
                )
            return f"Bearer {token}"
        if self.basic_auth_username is not None and self.basic_auth_password_file is not None:
            password = _read_credential(self.basic_auth_password_file, "basic_auth_password_file")
            pair = f"{self.basic_auth_username}:{password}".encode()
            return f"Basic {base64.b64encode(pair).decode('ascii')}"
        return None


def _no_pass() -> bytes:
    raise ValueError("the key is encrypted; give an unencrypted PEM key")


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _read_credential(path: str, key: str) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{key} {path!r}: cannot read: {exc.strerror or exc}") from None
    if len(data) > _MAX_CREDENTIAL_BYTES:
        raise ValueError(f"{key} {path!r}: larger than {_MAX_CREDENTIAL_BYTES} bytes")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{key} {path!r}: not UTF-8 text") from None
    if not text:
        raise ValueError(f"{key} {path!r}: the file is empty")
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError(f"{key} {path!r}: more than one line")
    return text


def _urls(value: object, source: str) -> tuple[httpx.URL, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"{source} is {toml_type(value)}; {_URL_FORMAT}, as a list of strings")
    if not items:
        raise ValueError(f"{source} is empty; {_URL_FORMAT}")
    urls: list[httpx.URL] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{source} holds {toml_type(item)}; {_URL_FORMAT}")
        url = _url(item.strip(), source)
        if any(_origin(url) == _origin(seen) and url.path == seen.path for seen in urls):
            raise ValueError(f"{source} names {_origin(url)}{url.path} twice")
        urls.append(url)
    return tuple(urls)


def _url(raw: str, source: str) -> httpx.URL:
    # The userinfo ends at the *last* ``@`` of the authority, as RFC 3986 reads it.
    shown = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", raw)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ValueError(f"{source}: {shown!r} is not a URL ({exc}); {_URL_FORMAT}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{source}: {shown!r}: {_URL_FORMAT}")
    if url.userinfo:
        raise ValueError(
            f"{source}: {shown!r}: credentials in the URL are not accepted; use "
            "basic_auth_username with basic_auth_password_file, or bearer_token_file"
        )
    if url.query or url.fragment:
        raise ValueError(f"{source}: {shown!r}: a base URL has no query or fragment")
    return url


def _duration(value: object, source: str) -> float:
    seconds: float | None = None
    if isinstance(value, str):
        try:
            seconds = parse_duration(value.strip())
        except ValueError:
            seconds = None
    if seconds is None or not seconds > 0 or not math.isfinite(seconds):
        in_table = source == source.lower()  # a table key, not an environment variable
        hint = ', as a string ("5s")' if in_table else ""
        raise ValueError(f"{source}={value!r} is not {_DURATION_FORMAT}{hint}")
    return seconds


def _generator_url(value: object, source: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{source} is {toml_type(value)}, not a string")
    text = value.strip()
    if text:
        _url(text.replace("{expr}", "x").split("?")[0], source)
    return text


def _label_set(value: object, source: str) -> dict[str, str]:
    """A table (or, from the environment, a JSON object) of strings, by label name."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{source} is not valid JSON ({exc.msg} at character {exc.pos}); expected "
                'an object of strings, e.g. {"team": "ops"}'
            ) from None
    if not isinstance(value, dict):
        raise ValueError(f'{source} is not a table of strings, e.g. {{ team = "ops" }}')
    checked: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            raise ValueError(f"{source}: {name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(text, str):
            raise ValueError(f"{source}: {name} is {toml_type(text)}, not a string")
        checked[name] = text
    return checked


def _path(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source} is {toml_type(value)}; expected a file path")
    return value.strip()


def _boolean(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"{source}={value!r} is not true or false")


def _username(value: object, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{source} is {toml_type(value)}; expected a user name")
    if ":" in value or not value.isprintable():
        raise ValueError(
            f"{source}: a basic auth user name cannot contain ':' or control characters"
        )
    return value


def _spec(key: str, parse: Callable[[object, str], object], default: object) -> _Key:
    return _Key(key, f"ALERTMANAGER_{key.upper()}", parse, default)


_DEFAULTS: dict[str, Any] = {
    "urls": (httpx.URL(DEFAULT_URL),),
    "timeout": 10.0,
    "resend_interval": 60.0,
}
_KEYS: dict[str, _Key] = {
    spec.key: spec
    for spec in (
        _spec("urls", _urls, _DEFAULTS["urls"]),
        _spec("timeout", _duration, _DEFAULTS["timeout"]),
        _spec("resend_interval", _duration, _DEFAULTS["resend_interval"]),
        _spec("generator_url", _generator_url, ""),
        _spec("labels", _label_set, {}),
        _spec("annotations", _label_set, {}),
        _spec("tls_ca_file", _path, None),
        _spec("tls_cert_file", _path, None),
        _spec("tls_key_file", _path, None),
        _spec("tls_insecure_skip_verify", _boolean, False),
        _spec("bearer_token_file", _path, None),
        _spec("basic_auth_username", _username, None),
        _spec("basic_auth_password_file", _path, None),
    )
}
_VARIABLES = {spec.variable: key for key, spec in _KEYS.items()}  # for the suggestion


# --- sending --------------------------------------------------------------------------------


async def _send_everywhere(alerts: list[dict[str, object]], settings: _Settings, why: str) -> None:
    """POST ``alerts`` to every Alertmanager at once; fail only if none took them."""
    context = settings.ssl_context()
    authorization = settings.auth_header()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if authorization is not None:
        headers["Authorization"] = authorization
    batches = [alerts[i : i + MAX_BATCH] for i in range(0, len(alerts), MAX_BATCH)]
    async with httpx.AsyncClient(
        verify=context, timeout=settings.timeout, follow_redirects=False, headers=headers
    ) as client:
        for batch in batches:
            content = json.dumps(batch, ensure_ascii=False).encode()
            results = await asyncio.gather(
                *(_post(client, url, content, settings.timeout) for url in settings.urls),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure  # cancellation
            log = logger.bind(plugin=NAME, alerts=len(batch), kind=why)
            if len(failures) == len(results):
                raise AlertmanagerError("; ".join(_reason(f) for f in failures))
            for failure in failures:
                log.warning("{}: {} (sent to another Alertmanager)", NAME, _reason(failure))
            level = "DEBUG" if why == "resend" else "INFO"
            log.log(level, "{}: {} alert(s) sent ({})", NAME, len(batch), why)


async def _post(client: httpx.AsyncClient, base: httpx.URL, content: bytes, timeout: float) -> None:
    url = base.copy_with(path=base.path.rstrip("/") + ALERTS_PATH)
    where = _origin(base)
    # The credential sent (the token, or the encoded basic auth pair): an Alertmanager
    # behind a proxy that echoes the Authorization header must not put it in a message.
    secrets = client.headers.get("Authorization", "").split()[1:]
    try:
        async with asyncio.timeout(timeout), client.stream("POST", url, content=content) as answer:
            if not 200 <= answer.status_code < 300:
                preview = await _preview(answer, secrets)
                raise AlertmanagerError(
                    f"POST {where} answered {answer.status_code} "
                    + _hide(answer.reason_phrase, secrets)
                    + (f": {preview}" if preview else " (empty body)")
                )
    except AlertmanagerError:
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise AlertmanagerError(f"POST {where} got no answer within {timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise AlertmanagerError(f"POST {where} could not connect: {_connect_reason(exc)}") from None
    except OSError as exc:  # an ssl.SSLError that httpx did not wrap
        reason = _tls_reason(exc) or f"{type(exc).__name__}: {_reason(exc)}"
        raise AlertmanagerError(f"POST {where} failed: {reason}") from None
    except httpx.HTTPError as exc:
        detail = str(exc) or "the connection broke before an answer came"
        reason = _tls_reason(exc) or f"{type(exc).__name__}: {detail}"
        raise AlertmanagerError(f"POST {where} failed: {reason}") from None


async def _preview(answer: httpx.Response, secrets: list[str]) -> str:
    """The start of the body on one line, ``secrets`` masked; enough more is read to mask a
    secret that begins before the cut whole."""
    reach = _BODY_PREVIEW + max((len(json.dumps(secret)) for secret in secrets), default=0)
    data = b""
    try:
        async for chunk in answer.aiter_bytes():
            data += chunk
            if len(data) >= reach:
                break
    except httpx.HTTPError:
        pass  # what arrived is enough to explain the failure
    text = _hide(data[:reach].decode("utf-8", "replace"), secrets)[:_BODY_PREVIEW]
    return " ".join(text.split()) + ("..." if len(data) > _BODY_PREVIEW else "")


def _hide(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` as ``***``, as written and as JSON escapes it (an
    error in JSON quotes it so)."""
    for secret in secrets:
        text = text.replace(json.dumps(secret)[1:-1], "***").replace(secret, "***")
    return text


def _origin(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _tls_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason when a TLS error is behind ``exc`` (the server refused the client
    certificate: ``TLSV13_ALERT_CERTIFICATE_REQUIRED``), else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {cause.reason or _reason(cause)}"
        cause = cause.__cause__ or cause.__context__
    return None


def _connect_reason(exc: BaseException) -> str:
    """The innermost OS error (``Connection refused``), not httpx's summary of it; for TLS,
    OpenSSL's reason (an ``SSLError`` is an ``OSError`` whose errno is not the system's)."""
    reason = _reason(exc)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError):
            return _tls_reason(cause) or reason
        if isinstance(cause, OSError) and cause.strerror:
            errno = cause.errno if isinstance(cause.errno, int) else 0
            reason = os.strerror(errno) if errno > 0 else cause.strerror
        cause = cause.__cause__ or cause.__context__
    return reason


Plugin = AlertmanagerAction()
