"""A metrics page served by a separate process, so a benchmark measures only the reader.

``python -m benchmarks._page_server PORT FILE [--gzip]`` serves FILE at ``/metrics`` over
keep-alive HTTP/1.1 (gzip-encoded with ``--gzip``, compressed once at start) and at
``/count`` how many times ``/metrics`` was served and the wall time of the first one.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    url: str
    count_url: str

    def count(self) -> tuple[int, float | None]:
        """Pages served so far, and the wall time (``time.time``) of the first."""
        doc = httpx.get(self.count_url, timeout=5).json()
        return int(doc["count"]), doc["first"]


@contextmanager
def serve(page: bytes, *, gzipped: bool = False) -> Iterator[Served]:
    """``page`` at ``http://127.0.0.1:PORT/metrics`` from a separate process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "metrics")
        path.write_bytes(page)
        port = free_port()
        args = [sys.executable, "-m", "benchmarks._page_server", str(port), str(path)]
        server = subprocess.Popen(
            [*args, "--gzip"] if gzipped else args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parent.parent,
        )
        try:
            served = Served(f"http://127.0.0.1:{port}/metrics", f"http://127.0.0.1:{port}/count")
            _wait_served(served.count_url)
            yield served
        finally:
            server.terminate()
            server.wait(timeout=10)


@contextmanager
def serve_page(page: bytes) -> Iterator[str]:
    with serve(page) as served:
        yield served.url


def _wait_served(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the page server at {url} did not come up within {timeout:g}s")


def _main(port: int, path: str, gzipped: bool) -> None:
    body = Path(path).read_bytes()
    if gzipped:
        body = gzip.compress(body, compresslevel=6)
    lock = threading.Lock()
    state: dict[str, float | int | None] = {"count": 0, "first": None}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/count":
                with lock:
                    payload = json.dumps(state).encode()
                self._send(payload, "application/json", gz=False)
                return
            if self.path != "/metrics":
                self.send_error(404)
                return
            with lock:
                if state["first"] is None:
                    state["first"] = time.time()
                state["count"] = int(state["count"] or 0) + 1
            self._send(body, "text/plain; version=0.0.4", gz=gzipped)

        def _send(self, payload: bytes, kind: str, *, gz: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    _main(int(sys.argv[1]), sys.argv[2], "--gzip" in sys.argv[3:])
