"""Fixtures shared by the unit tests."""

from __future__ import annotations

import gc
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metric_reader._core import forget_secrets

# Every test HTTP server (http.server, socketserver) listens with a backlog of 5 by default:
# a burst of more connections than that, as a service's group reads make, has its SYNs
# dropped and the client retries a second later, which reads as a slow endpoint.
socketserver.TCPServer.request_queue_size = 128


def pytest_collection_finish(session: pytest.Session) -> None:
    """Many tests time intervals of 100 ms inside this process, which also holds everything
    collection made (every test module, item and hypothesis strategy): a full garbage
    collection walked all of it, pauses of 60 to 160 ms measured here (up to 300 ms on a
    loaded machine, which failed cadence checks). Frozen, later collections skip it."""
    gc.collect()
    gc.freeze()


class _Page(BaseHTTPRequestHandler):
    times: list[float]

    def do_GET(self) -> None:
        type(self).times.append(time.monotonic())
        body = b'slow_queue{q="a"} 100\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page_server() -> Iterator[tuple[str, list[float]]]:
    handler = type("Handler", (_Page,), {"times": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/metrics", handler.times
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts knowing no secret: one test's password must not be masked in
    another's output (the service itself never forgets one)."""
    yield
    forget_secrets()


@pytest.fixture
def anyio_backend() -> str:
    """The backend of ``@pytest.mark.anyio`` tests: the service runs on asyncio."""
    return "asyncio"
