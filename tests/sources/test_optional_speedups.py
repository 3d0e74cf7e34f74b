"""What makes a poll cheaper changes speed, never behaviour: orjson decodes as the standard
library does; uvloop (the service's event loop when installed) and the wire transport
(what ``make_client`` sends requests through; aiohttp where the bench extra installed it)
fail a request with the same words as asyncio and httpcore. An older uvloop was reported to
let a refused connection surface as an ``AttributeError`` inside anyio/httpcore: the
refused connection is tried on every pair."""

from __future__ import annotations

import json
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from metric_reader import _cli
from metric_reader._core._exceptions import FetchError
from metric_reader._http import _client as _http
from metric_reader._http import make_client
from metric_reader._sources import _prometheus
from metric_reader._sources._prometheus import decode_query_response, instant_query

ANSWERS = [
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},'
    b'"value":[1.5,"42"]},{"metric":{},"value":[1.5,"NaN"]}]}}',
    b'{"status":"success","data":{"resultType":"scalar","result":[1,"1e400"]}}',
    b'{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[]}}',
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\\ud800"},'
    b'"value":[1,"1"]}]}}',  # a lone surrogate: orjson refuses, json accepts
    json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}).encode(
        "utf-16"
    ),  # json detects UTF-16; orjson is UTF-8 only
]
BAD = [b"not json", b"[" * 100_000, b'{"status":"error","errorType":"bad_data","error":"x"}']


def _outcome(body: bytes) -> object:
    try:
        result = decode_query_response(200, body)
    except FetchError as exc:
        return ("error", str(exc))
    return [(s.labels, repr(s.value)) for s in result.samples], result.warnings


@pytest.mark.parametrize("body", ANSWERS + BAD)
def test_the_fast_decoder_and_the_stdlib_agree(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(body)
    monkeypatch.setattr(_prometheus, "_fast_loads", None)
    assert _outcome(body) == fast


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["wire", "aiohttp", "httpx"])
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_refused_connection_reads_the_same_on_every_loop_and_transport(
    loop: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "TRANSPORT", transport)
    monkeypatch.setattr(_cli, "EVENT_LOOP", loop)
    endpoint = f"http://127.0.0.1:{_closed_port()}"

    async def main() -> str:
        assert type(anyio.lowlevel.current_token().native_token).__module__.startswith(loop)
        async with make_client() as client:
            with pytest.raises(FetchError) as raised:
                await instant_query(client, endpoint, "up", 5.0)
        return str(raised.value)

    assert anyio.run(main, backend_options=_cli.loop_options()) == (
        f"cannot connect: connection refused by {endpoint.removeprefix('http://')} "
        f"(GET {endpoint}/api/v1/query)"
    )


def test_the_service_runs_on_asyncio_and_the_wire_transport() -> None:
    async def main() -> tuple[str, str]:
        async with make_client() as client:
            loop = type(anyio.lowlevel.current_token().native_token).__module__
            return loop, type(client._transport).__module__

    loop, transport = anyio.run(main, backend_options=_cli.loop_options())
    assert loop.startswith("asyncio") and transport == "metric_reader._http._wire"


def test_uvloop_chosen_and_installed_runs_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.setattr(_cli, "EVENT_LOOP", "uvloop")
    assert _cli.loop_options() == {"use_uvloop": True}


def test_aiohttp_chosen_but_not_installed_leaves_requests_to_httpcore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_http, "TRANSPORT", "aiohttp")
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.setitem(sys.modules, "metric_reader._http._aiohttp", None)

    async def main() -> str:
        async with make_client() as client:
            return type(client._transport).__name__

    assert anyio.run(main) == "AsyncHTTPTransport"


def test_uvloop_chosen_but_not_installed_runs_the_service_on_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_cli, "EVENT_LOOP", "uvloop")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an install without it imports

    async def main() -> str:
        return type(anyio.lowlevel.current_token().native_token).__module__

    assert anyio.run(main, backend_options=_cli.loop_options()).startswith("asyncio")


@pytest.fixture
def forward_proxy() -> Iterator[tuple[str, str, list[str]]]:
    """An HTTP forward proxy on loopback that relays each absolute-URI GET and notes its
    URL, and an endpoint behind it that answers every query with ``ANSWERS[0]``."""
    seen: list[str] = []

    class Relay(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with direct.open(self.path, timeout=5) as upstream:
                body = upstream.read()
                status = upstream.status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Answer(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = ANSWERS[0]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (Relay, Answer)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy, endpoint = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    try:
        yield proxy, endpoint, seen
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_proxy_from_the_environment_is_used_whatever_the_transport(
    forward_proxy: tuple[str, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, endpoint, seen = forward_proxy
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def main() -> list[float]:
        async with make_client() as client:
            result = await instant_query(client, endpoint, "up", 5.0)
        return [sample.value for sample in result.samples]

    assert anyio.run(main, backend_options=_cli.loop_options())[0] == 42.0
    assert len(seen) == 1
    assert seen[0].startswith(f"{endpoint}/api/v1/query?query=up")
