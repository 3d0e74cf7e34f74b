"""The service's own surface: what it listens on and what a request can do to it.

- The endpoints bind exactly where ``LISTEN_ADDRESS`` says: ``127.0.0.1:PORT`` is not
  reachable through another address of this host, ``:PORT`` is reachable on all of them.
- Nothing served changes state: every other method is ``405`` on every path, an unknown
  path is ``404``, and ``/api/status`` read twice (with writes tried in between) differs
  only in times and values.

Covered elsewhere, not repeated here: the status page escapes label values
(``tests/test_web.py::test_status_json_and_page_show_the_rule_with_label_values_escaped``),
and plugins in directories others can write are refused (``tests/test_plugin_trust.py``).
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from _fake_view import FakeView

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._service import Service
from metric_reader._surface._web import serve_http

DEADLINE = 15.0
ROUTES = ("/", "/api/status", "/metrics", "/healthz", "/readyz")
UNKNOWN = ("/nope", "/api", "/api/status/", "/metrics/x", "/admin", "/api/v1/rules", "/reload")
WRITES = ("POST", "PUT", "DELETE", "PATCH")
VOLATILE = {
    "time",
    "started_at",
    "last_success",
    "last_seen",
    "since",
    "fired_at",
    "at",
    "last_evaluation",
    "evaluation_duration",
}
"""Keys of ``/api/status`` that are times or durations: they may differ between two reads."""
LOAD = {"evaluations_missed_last_minute", "evaluations_missed_total"}
"""Keys that count ticks a busy machine skipped: they too may differ between two reads."""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'surface_queue{q="a"} 5\nsurface_queue{q="b"} 7\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def _service(page_url: str) -> Service:
    settings = load_settings(
        {
            "METRIC_NAME": "surface_queue",
            "SCRAPE_URL": page_url,
            "THRESHOLD": ">100",  # never crossed: nothing fires between two reads
            "POLLING_INTERVAL": "100ms",
        }
    )
    return Service(settings, discover_plugins(None))


@asynccontextmanager
async def serving(service: Service | FakeView, address: str) -> AsyncIterator[int]:
    """The endpoints on ``address``, with ``service`` polling (a ``FakeView`` does not)."""
    async with anyio.create_task_group() as group:
        if isinstance(service, Service):
            group.start_soon(service.run)
        port = await group.start(functools.partial(serve_http, address, service))
        yield int(port)
        group.cancel_scope.cancel()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _other_local_address() -> str | None:
    """A non-loopback IPv4 address of this host, or None when it has only loopback. A UDP
    "connect" picks the outgoing interface without sending anything."""
    candidates = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("192.0.2.1", 9))  # TEST-NET-1: routed by the default route, if any
            candidates.append(udp.getsockname()[0])
        except OSError:
            pass
    with suppress(OSError):
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    for address in candidates:
        if not address.startswith("127.") and address != "0.0.0.0":
            with socket.socket() as probe:
                try:
                    probe.bind((address, 0))  # really one of ours
                except OSError:
                    continue
            return str(address)
    return None


def _connects(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(5)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def run(test: Any) -> None:
    async def bounded() -> None:
        with anyio.fail_after(60):
            await test()

    anyio.run(bounded)


# --- where it listens -----------------------------------------------------------------------


def test_a_loopback_listen_address_is_not_reachable_through_another_address() -> None:
    other = _other_local_address()
    service = FakeView()

    async def test() -> None:
        async with serving(service, "127.0.0.1:0") as port:
            assert _connects("127.0.0.1", port)
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"http://127.0.0.1:{port}/healthz")
                assert response.status_code == 200
            if other is not None:
                assert not _connects(other, port), f"{other}:{port} answered"

    run(test)
    if other is None:
        pytest.skip("this host has only loopback: the other-address half was not checked")


def test_a_port_alone_listens_on_every_address() -> None:
    other = _other_local_address()
    port = _free_port()
    service = FakeView()

    async def test() -> None:
        async with serving(service, f":{port}") as bound:
            assert bound == port
            assert _connects("127.0.0.1", port)
            if other is not None:
                assert _connects(other, port)
            if socket.has_ipv6 and _can_bind_ipv6_loopback():
                assert _connects("::1", port)

    run(test)


def _can_bind_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- nothing a request does changes anything ------------------------------------------------


def _stable(document: Any) -> Any:
    """``/api/status`` without its times and values."""
    if isinstance(document, dict):
        return {
            key: _stable(value)
            for key, value in document.items()
            if key not in VOLATILE and key not in LOAD and key != "value"
        }
    if isinstance(document, list):
        return [_stable(item) for item in document]
    return document


def test_every_write_method_is_405_unknown_paths_404_and_status_does_not_change(
    page_url: str,
) -> None:
    service = _service(page_url)

    async def test() -> None:
        async with (
            serving(service, "127.0.0.1:0") as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):
            with anyio.fail_after(DEADLINE):  # a first poll, so there are series to compare
                while not (await client.get("/api/status")).json()["rules"][0]["series"]:
                    await anyio.sleep(0.05)
            before = (await client.get("/api/status")).json()

            for path in (*ROUTES, *UNKNOWN):
                for method in WRITES:
                    response = await client.request(method, path, content=b'{"ready": false}')
                    assert response.status_code == 405, (method, path)
                    assert response.headers["allow"] == "GET, HEAD"
            for path in UNKNOWN:
                assert (await client.get(path)).status_code == 404, path
            for path in ROUTES:
                assert (await client.get(path)).status_code in (200, 503), path

            after = (await client.get("/api/status")).json()
            assert _stable(after) == _stable(before)
            assert len(after["rules"][0]["series"]) == 2

    run(test)


def test_the_rule_file_and_state_are_untouched_by_requests(page_url: str, tmp_path: Path) -> None:
    """No request writes anything: not the rule file, not the directory it is in."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'polling_interval = "100ms"\n[[rules]]\nname = "s"\nmetric_name = "surface_queue"\n'
        f'scrape_url = "{page_url}"\n'
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    settings = load_settings({"CONFIG_FILE": str(rules)})
    service = Service(settings, discover_plugins(None))

    async def test() -> None:
        async with (
            serving(service, "127.0.0.1:0") as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):
            for path in ROUTES:
                for method in (*WRITES, "GET", "HEAD"):
                    await client.request(method, path, content=b"x = 1\n")

    run(test)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
