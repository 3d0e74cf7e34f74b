"""Example plugin ``http_plugin``: POST each breach to an HTTP endpoint.

The Python version of the HTTP plugin in the original Go plugin guide. Each call POSTs
one JSON object describing the breach to ``HTTP_PLUGIN_ENDPOINT``. A connection error, a
timeout or an answer that is not 2xx raises, so metric-reader counts the call as failed
and tries again later (with backoff) while the breach lasts. ``resolve`` POSTs the same
object with ``"kind": "resolve"`` when the breach is over.
Messages name the endpoint by its scheme, host and port only: a webhook URL often carries a
secret in its path.

Settings (environment variables, read at every call):

- ``HTTP_PLUGIN_ENDPOINT``: the URL to POST to (default ``http://localhost:8080``)

Body: ``metric_name``, ``value``, ``threshold``, ``duration_seconds``, and from the event
``rule``, ``labels``, ``level``, ``kind``, ``breach_started``, ``fire_count``. JSON has no
NaN or infinity, so such values are sent as the strings ``"NaN"``, ``"+Inf"``, ``"-Inf"``.

The bundled ``http_action`` does the same job with more settings; this file is named
``http_plugin`` so that both can be in use at once (they share ``HTTP_PLUGIN_ENDPOINT``).
"""

from __future__ import annotations

import math
import os
from datetime import timedelta

import httpx
from loguru import logger

from metric_reader import Event

DEFAULT_ENDPOINT = "http://localhost:8080"
REQUEST_TIMEOUT = 10.0  # seconds; PLUGIN_TIMEOUT (default 30s) cancels the call anyway


class HTTPPlugin:
    name = "http_plugin"

    def validate_config(self) -> None:
        """Refuse to start with an endpoint that is not an http(s) URL."""
        _endpoint()

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        await self._post(metric_name, value, threshold, duration, event, kind="fire")

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        await self._post(metric_name, value, threshold, duration, event, kind="resolve")

    async def _post(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None,
        *,
        kind: str,
    ) -> None:
        endpoint = _endpoint()
        body: dict[str, object] = {"kind": kind}
        if event is not None:
            body.update(event.as_dict())
        body.update(
            metric_name=metric_name,
            value=_json_number(value),
            threshold=threshold,
            duration_seconds=duration.total_seconds(),
        )
        where = _origin(endpoint)  # a webhook URL's path may hold a secret: never log it
        try:
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
                response = await client.post(endpoint, json=body)
        except httpx.HTTPError as exc:  # refused, timed out, DNS...: the action did not happen
            raise RuntimeError(f"POST {where} failed: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise RuntimeError(
                f"POST {where} answered {response.status_code} {response.reason_phrase}: "
                f"{response.text[:200]!r}"
            )
        logger.bind(plugin=self.name, endpoint=where, status=response.status_code).info(
            "http_plugin: posted {} of {} to {}", body["kind"], metric_name, where
        )


def _endpoint() -> str:
    endpoint = os.environ.get("HTTP_PLUGIN_ENDPOINT") or DEFAULT_ENDPOINT
    try:
        url = httpx.URL(endpoint)
    except httpx.InvalidURL as exc:
        raise ValueError(f"HTTP_PLUGIN_ENDPOINT={endpoint!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"HTTP_PLUGIN_ENDPOINT={endpoint!r} is not an http:// or https:// URL with a host"
        )
    return endpoint


def _origin(endpoint: str) -> str:
    """``scheme://host:port`` of the endpoint, for messages."""
    url = httpx.URL(endpoint)
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


Plugin = HTTPPlugin()
