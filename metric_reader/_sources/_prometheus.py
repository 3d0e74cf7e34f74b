"""The Prometheus source: instant queries against a Prometheus-compatible HTTP API."""

from __future__ import annotations

import functools
import json
import math
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx

from .._config import MAX_RESPONSE_BYTES
from .._core import (
    FetchError,
    Sample,
    labels_of,
    may_hold_surrogates,
    redact,
    redacted_excerpt,
    valid_strings,
)
from .._http import Attempt, Source, deadline, read_body, request_slot

_fast_loads: Callable[[bytes], Any] | None
try:  # a dependency: about 3x faster than json on a Prometheus answer
    from orjson import JSONDecodeError as _FastDecodeError
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on what is installed
    _fast_loads = None


def _loads(body: bytes) -> Any:
    """``json.loads``, through orjson when it is installed. orjson is stricter (UTF-8 only,
    1,024 levels deep at most, no lone surrogates); what it refuses goes to ``json``, so
    what is accepted, and every error message, stay those of the standard library.

    A ``\\ud800`` escape without its pair becomes U+FFFD, as Go's decoder makes it: a lone
    surrogate in a label value could not be written out anywhere (see ``_text``)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(body)
        except _FastDecodeError:
            pass
    document = json.loads(body)
    return valid_strings(document) if may_hold_surrogates(body) else document


_Decoded = TypeVar("_Decoded")


class QueryFailed(FetchError):
    """Prometheus answered the query with an error of its own (``errorType``)."""

    def __init__(self, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        """``bad_data``, ``execution``, ``timeout``, ``unavailable``, ..."""


class QueryParseError(QueryFailed):
    """Prometheus could not parse the query (``bad_data``: ``parse error``)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message, "bad_data")
        self.reason = redact(reason.removeprefix('invalid parameter "query": '))
        """Prometheus' own words: ``1:11: parse error: unexpected end of input ...``."""


class NotJson(FetchError):
    """The answer is not JSON: not from a Prometheus API, most likely."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    samples: list[Sample]
    warnings: tuple[str, ...] = ()


LONG_QUERY = 512
"""Characters: a longer query (a batch of selectors) is sent as a POST form, not in the URL:
proxies and load balancers refuse URLs of more than a few KiB, and a long URL costs more to
build than a form encoded once. Prometheus takes both."""
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@functools.lru_cache(maxsize=1024)
def _form(promql: str, seconds: str) -> bytes:
    """The POST body of a query: the same at every poll, so encoded once."""
    return urllib.parse.urlencode({"query": promql, "timeout": seconds}).encode()


async def instant_query(
    client: httpx.AsyncClient,
    endpoint: str,
    promql: str,
    timeout: float,
    limit: int = MAX_RESPONSE_BYTES,
    slots: anyio.CapacityLimiter | None = None,
    *,
    endpoint_defaulted: bool = False,
) -> QueryResult:
    """Run ``promql`` at ``endpoint``; raise ``FetchError`` on any failure, or when the
    answer is larger than ``limit`` bytes (read as a stream, so it is cut off there).

    Prometheus is also told the timeout, so it gives up on an expensive query when we do.
    ``slots`` bounds the requests in flight to the endpoint; the wait for one counts in the
    timeout, so a poll never runs late. ``endpoint_defaulted``: nothing set
    ``PROMETHEUS_ENDPOINT`` (an error that no connection can be made says to).
    """
    return await _query(
        client, endpoint, promql, timeout, limit, slots, decode_query_response, endpoint_defaulted
    )


async def instant_vector(
    client: httpx.AsyncClient,
    endpoint: str,
    promql: str,
    timeout: float,
    limit: int = MAX_RESPONSE_BYTES,
    slots: anyio.CapacityLimiter | None = None,
    *,
    endpoint_defaulted: bool = False,
) -> tuple[list[tuple[Mapping[str, str], float]], tuple[str, ...]]:
    """Like ``instant_query`` for a query that returns an instant vector, with each series'
    full label set (``__name__`` included), for matchers applied here; and the warnings."""
    return await _query(
        client, endpoint, promql, timeout, limit, slots, _decode_vector, endpoint_defaulted
    )


def _decode_vector(
    status_code: int, body: bytes
) -> tuple[list[tuple[Mapping[str, str], float]], tuple[str, ...]]:
    result_type, result, warnings = _decode(status_code, body)
    if result_type != "vector" or not isinstance(result, list):
        raise FetchError(f"unexpected answer: resultType {result_type!r} for a selector")
    return [(_metric(item), _value(item.get("value"))) for item in result], warnings


async def _query(
    client: httpx.AsyncClient,
    endpoint: str,
    promql: str,
    timeout: float,
    limit: int,
    slots: anyio.CapacityLimiter | None,
    decode: Callable[[int, bytes], _Decoded],
    endpoint_defaulted: bool,
) -> _Decoded:
    url = f"{endpoint}/api/v1/query"
    attempt = Attempt(url, prometheus_source(endpoint, endpoint_defaulted))
    seconds = f"{timeout:.3f}"
    long = len(promql) > LONG_QUERY
    async with (
        deadline(timeout, attempt),
        request_slot(slots, attempt),
        client.stream(
            "POST" if long else "GET",
            url if long else _query_url(url, promql, seconds),
            content=_form(promql, seconds) if long else None,
            headers=_FORM if long else None,
            timeout=timeout,
        ) as response,
    ):
        attempt.status = response.status_code
        body = await read_body(response, limit, "the answer")
        try:
            return decode(response.status_code, body)
        except NotJson:
            attempt.wrong_kind = True
            raise


def prometheus_source(endpoint: str, defaulted: bool = False) -> Source:
    """``PROMETHEUS_ENDPOINT`` as the setting a request to ``endpoint`` comes from."""
    return Source("PROMETHEUS_ENDPOINT", endpoint, "your Prometheus", defaulted)


@functools.lru_cache(maxsize=4096)
def _query_url(url: str, promql: str, timeout: str) -> httpx.URL:
    """The URL of a query, parsed and quoted once: httpx takes about 80 us of CPU to do it
    from a string and parameters, a sizeable part of a poll. ``timeout`` in seconds."""
    return httpx.URL(url, params={"query": promql, "timeout": timeout})


def decode_query_response(status_code: int, body: bytes) -> QueryResult:
    """Turn an ``/api/v1/query`` answer into samples, or raise ``FetchError`` saying why."""
    result_type, result, warnings = _decode(status_code, body)
    if result_type == "vector" and isinstance(result, list):
        return QueryResult([_vector_sample(item) for item in result], warnings)
    if result_type == "scalar":
        return QueryResult([Sample((), _value(result))], warnings)
    if result_type in ("matrix", "string"):
        raise FetchError(
            f"the query returns a {result_type}; it must return an instant vector or a scalar"
        )
    raise FetchError(f"unexpected answer: resultType {result_type!r}")


def _decode(status_code: int, body: bytes) -> tuple[Any, Any, tuple[str, ...]]:
    """The result type, result and warnings of an answer; ``FetchError`` for an answer that
    is not JSON, a failed query, or one without a data object."""
    try:
        document = _loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = redacted_excerpt(body, 120).strip()
        raise NotJson(f"HTTP {status_code}, not JSON: {snippet!r}") from None
    except RecursionError:
        raise FetchError(f"HTTP {status_code}, unexpected answer: JSON nested too deeply") from None
    if not isinstance(document, Mapping):
        raise FetchError(f"HTTP {status_code}, unexpected answer: not a JSON object")
    if document.get("status") != "success" or not 200 <= status_code < 300:
        error_type = document.get("errorType", "")
        error = document.get("error", "")
        detail = f"{error_type}: {error}" if error_type else str(error or "no error message")
        if error_type == "bad_data" and "parse error" in str(error):
            raise QueryParseError(f"HTTP {status_code}, query failed: {detail}", str(error))
        raise QueryFailed(f"HTTP {status_code}, query failed: {detail}", str(error_type))
    listed = document.get("warnings")
    warnings = tuple(redact(str(w)) for w in listed if w) if isinstance(listed, list) else ()
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise FetchError("unexpected answer: no data object")
    return data.get("resultType"), data.get("result"), warnings


def _vector_sample(item: Any) -> Sample:
    return Sample(labels_of(_metric(item)), _value(item.get("value")))


_STRINGS = frozenset({str})


def _metric(item: Any) -> dict[str, str]:
    if not isinstance(item, Mapping) or not isinstance(item.get("metric"), Mapping):
        raise FetchError("unexpected answer: a vector element without metric labels")
    metric: dict[str, str] = item["metric"]
    # JSON object keys are strings; the values are checked in C (map and a set), per series.
    if not _STRINGS.issuperset(map(type, metric.values())):
        raise FetchError("unexpected answer: label names and values must be strings")
    return metric


def _value(pair: Any) -> float:
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise FetchError('unexpected answer: a value is not [timestamp, "number"]')
    try:
        value = float(pair[1])
    except ValueError:
        raise FetchError(f"unexpected answer: {pair[1]!r} is not a number") from None
    return math.nan if math.isnan(value) else value
