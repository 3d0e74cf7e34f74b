"""A metrics page served by a separate process, so a benchmark measures only the reader."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_page(page: bytes) -> Iterator[str]:
    """``page`` at ``http://127.0.0.1:PORT/metrics`` from ``python -m http.server``."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "metrics").write_bytes(page)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            _wait_served(url)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_served(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the page server at {url} did not come up within {timeout:g}s")
