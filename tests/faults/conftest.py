"""Fixtures for the fault-injection tests: a misbehaving HTTP server, log capture, a
recording plugin, and the service factory of the integration tests (for the subprocess
checks).

``FaultServer`` listens on 127.0.0.1 and has one behaviour per URL path: ``/<fault>/metrics``
is a scrape target, ``/<fault>` a Prometheus endpoint (``/<fault>/api/v1/query``). A path
answers well (``fault_value`` = ``server.value``) until its fault is armed with
``arm(fault)``, and misbehaves until ``disarm(fault)``. ``refused`` is the one fault that a
path cannot express: its target is a listener of its own (``refused_base``) that stops
listening while the fault is armed.

Handlers that would hang (a body that never ends, a 10 s latency) wait on an event set at
teardown, so nothing outlives the test.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# The subprocess checks use the integration tests' ``service`` factory and its report hook
# (which tells the factory whether the test failed). tests/ is on sys.path (rootdir-relative
# imports: tests/faults is a package, tests/ is not).
from integration.conftest import (  # noqa: F401  (fixtures and hooks are found by name)
    pytest_runtest_makereport,
    service,
)
from loguru import logger

_HERE = Path(__file__).parent


_MEASURE_MEMORY_NOT_TIME = {"test_compressed_bodies.py", "test_hostile_memory.py"}
"""Fault tests whose bounds are bytes, not seconds: a busy neighbour cannot fail them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault tests run real budgets of 80 ms to a few seconds against real processes:
    make test runs them on their own, after the parallel part, so no neighbour on a
    2-core machine eats their budget (see the Makefile)."""
    for item in items:
        if _HERE in item.path.parents and item.path.name not in _MEASURE_MEMORY_NOT_TIME:
            item.add_marker(pytest.mark.serial)


METRIC = "fault_value"
ONE_GIB = 1024**3
GOOD_QUERY_TS = 1_700_000_000.0
FORGED = "\n2026-01-01T00:00:00.000+00:00 ERROR   forged"
"""What the ``forge`` fault puts in text that reaches log lines."""

# Every kind of malformed line of the watched metric; each fails the whole read.
MALFORMED_LINES: dict[str, bytes] = {
    "no value": b"fault_value",
    "no value after labels": b'fault_value{kind="a"}',
    "word as value": b"fault_value abc",
    "hex value": b"fault_value 0x10",
    "underscore in value": b"fault_value 1_000",
    "comma as decimal point": b"fault_value 1,5",
    "bad timestamp": b"fault_value 100 yesterday",
    "third token": b"fault_value 100 1700000000000 extra",
    "label set not closed": b'fault_value{kind="a" 100',
    "unquoted label value": b"fault_value{kind=a} 100",
    "unterminated label value": b'fault_value{kind="a} 100',
    "escaped closing quote": b'fault_value{kind="a\\"} 100',
    "single-quoted label value": b"fault_value{kind='a'} 100",
    "label without =": b'fault_value{kind "a"} 100',
    "empty label name": b'fault_value{="a"} 100',
    "label name starting with a digit": b'fault_value{1kind="a"} 100',
    "duplicate label": b'fault_value{kind="a",kind="b"} 100',
    "__name__ label": b'fault_value{__name__="other"} 100',
    "leading comma": b'fault_value{,kind="a"} 100',
    "double comma": b'fault_value{kind="a",,team="b"} 100',
    "two label sets": b'fault_value{kind="a"}{team="b"} 100',
    "junk after the name": b"fault_value! 100",
    "quoted name not closed": b'{"fault_value",kind="a" 100',
    "exemplar without value": b'fault_value 100 # {trace_id="x"}',
    "exemplar that is not one": b"fault_value 100 # not an exemplar",
    "exemplar with a bad value": b'fault_value 100 # {trace_id="x"} many',
    "invalid UTF-8": b'fault_value{kind="caf\xe9"} 100',
    "NUL byte": b'fault_value{kind="a"} 1\x0000',
}

_QUERY_WRONG_SHAPES: tuple[bytes, ...] = (
    b'[{"status": "success"}]',
    b'{"status": "success", "data": []}',
    b'{"status": "success", "data": {"resultType": "vector", "result": '
    b'[{"metric": {"__name__": "fault_value"}, "value": [1700000000, 100]}]}}',
    b'{"status": "success", "data": {"resultType": "vector", "result": '
    b'[{"metric": {"kind": 7}, "value": [1700000000, "100"]}]}}',
    b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
    b'{"status": "success", "data": {"resultType": "histogram", "result": []}}',
)

_HTML = (
    "<!doctype html>\n<html><head><title>Sign in</title></head><body>\n"
    "<h1>Sign in to continue</h1>\n<pre>\n"
    # A login page that happens to show the metric: read as a page, it would resolve the
    # breach (1 is not > 50). It is not a metrics page, so it must not be read at all.
    f"{METRIC} 1\n"
    "</pre></body></html>\n"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a listener that stops really refuses the
    # next poll (no keep-alive connection survives it).
    protocol_version = "HTTP/1.0"
    owner: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        fault, _, rest = path.strip("/").partition("/")
        kind = {"metrics": "scrape", "api/v1/query": "query"}.get(rest)
        if kind is None:
            self._send(404, b"not found\n", "text/plain")
            return
        self.owner.note(fault)
        try:
            # ``refused`` has no method: a request its listener took just before it stopped
            # is answered (it was on its way), not dropped with an AttributeError.
            misbehave = getattr(self, "_" + fault.split("-")[0], None)
            if self.owner.is_armed(fault) and misbehave is not None:
                misbehave(kind, fault)
            else:
                self._good(kind)
        except OSError:
            pass  # the client gave up: that is the point of several faults

    # -- helpers -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _start_endless(self, content_type: str, length: int | None = None) -> None:
        """Headers of a body without a length (with HTTP/1.0 it ends when the socket does),
        or with the ``length`` it claims."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def _good(self, kind: str) -> None:
        value = self.owner.value
        if kind == "scrape":
            page = f'# TYPE {METRIC} gauge\n{METRIC}{{kind="test"}} {value!r}\nother_metric 1\n'
            self._send(200, page.encode(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(200, _query_answer(value), "application/json")

    # -- faults: one method per path prefix ----------------------------------------------------

    def _reset(self, kind: str, fault: str) -> None:
        """Headers promising 100,000 bytes, a part of them, then a TCP RST."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if kind == "scrape" else "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"# a body cut short\n" * 50)
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _trickle(self, kind: str, fault: str) -> None:
        """A body that never ends: one byte every 20 ms, until the client hangs up."""
        self._start_endless("text/plain" if kind == "scrape" else "application/json")
        if kind == "query":
            self.wfile.write(b'{"status": "success", "data": {"resultType": "vector", "result": [')
        while not self.owner.stopping.wait(0.02):
            self.wfile.write(b" ")
            self.wfile.flush()

    def _slow(self, kind: str, fault: str) -> None:
        """A good answer, 10 s late."""
        if not self.owner.stopping.wait(10.0):
            self._good(kind)

    def _http(self, kind: str, fault: str) -> None:
        """``http-500``, ``http-502``, ``http-503``: an error page from a proxy."""
        status = int(fault.split("-")[1])
        self._send(status, b"<html><body>upstream unavailable</body></html>\n", "text/html")

    def _loop(self, kind: str, fault: str) -> None:
        """A 301 to itself."""
        self._send(301, b"", "text/plain", Location=self.path)

    def _html(self, kind: str, fault: str) -> None:
        """A login page instead of the metrics: wrong content type."""
        self._send(200, _HTML.encode(), "text/html; charset=utf-8")

    def _badjson(self, kind: str, fault: str) -> None:
        self._send(200, b'{"status": "success", "data": {"resultType": "vec', "application/json")

    def _shape(self, kind: str, fault: str) -> None:
        """Valid JSON of the wrong shape; each request gets the next one of several."""
        n = self.owner.count(fault)
        self._send(200, _QUERY_WRONG_SHAPES[n % len(_QUERY_WRONG_SHAPES)], "application/json")

    def _error(self, kind: str, fault: str) -> None:
        body = {
            "status": "error",
            "errorType": "execution",
            "error": "query processing would load too many samples into memory",
        }
        self._send(422, json.dumps(body).encode(), "application/json")

    def _huge(self, kind: str, fault: str) -> None:
        """1 GiB, generated as it is sent, never held in memory; records what was sent.
        ``huge-declared`` says its length up front (Content-Length), ``huge`` does not."""
        self._start_endless(
            "text/plain" if kind == "scrape" else "application/json",
            ONE_GIB if fault == "huge-declared" else None,
        )
        block = b"# padding " + b"x" * 65_524 + b"\n"  # 64 KiB of comment lines
        sent = 0
        try:
            if kind == "query":
                self.wfile.write(b'{"status": "success", "warnings": ["')
                block = b"x" * 65_536
            while sent < ONE_GIB and not self.owner.stopping.is_set():
                self.wfile.write(block)
                sent += len(block)
        finally:
            self.owner.record_sent(sent)

    def _forge(self, kind: str, fault: str) -> None:
        """Text that tries to start a log line of its own: a Prometheus error,
        and a scraped label value (``\\n`` in the exposition format is a newline)."""
        if kind == "query":
            body = {
                "status": "error",
                "errorType": "bad_data",
                "error": f"parse error{FORGED}\r{FORGED}\x1b[2K\u2028{FORGED}",
            }
            self._send(400, json.dumps(body).encode(), "application/json")
        else:
            label = FORGED.replace("\n", "\\n")
            page = f'{METRIC}{{kind="a{label}"}} 1\n'
            self._send(200, page.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _utf8(self, kind: str, fault: str) -> None:
        """Invalid UTF-8 (a Latin-1 byte) in the series' labels."""
        if kind == "scrape":
            body = f'{METRIC}{{kind="caf'.encode() + b'\xe9"} 100\n'
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(
                200, _query_answer(100.0).replace(b'"test"', b'"caf\xe9"'), "application/json"
            )

    def _malformed(self, kind: str, fault: str) -> None:
        """``malformed``: every kind of malformed line at once (the first fails the read);
        ``malformed-<n>``: the n-th kind alone, between good lines of other metrics."""
        _, _, index = fault.partition("-")
        lines = list(MALFORMED_LINES.values())
        bad = b"\n".join(lines) if not index else lines[int(index)]
        page = b"# TYPE other_metric gauge\nother_metric 1\n" + bad + b"\nlast_metric 2\n"
        self._send(200, page, "text/plain; version=0.0.4; charset=utf-8")


def _query_answer(value: float) -> bytes:
    return json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {
                        "metric": {"__name__": METRIC, "kind": "test"},
                        "value": [GOOD_QUERY_TS, repr(value)],
                    }
                ],
            },
        }
    ).encode()


class FaultServer:
    """The misbehaving server (see the module doc). ``value`` is what good answers say."""

    def __init__(self) -> None:
        self.value = 100.0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._armed: set[str] = set()
        self._times: dict[str, list[float]] = {}
        self._sent: list[int] = []
        handler = type("Handler", (_Handler,), {"owner": self})
        self._handler = handler
        self._main = self._listen(0)
        self.base = f"http://127.0.0.1:{self._main.server_address[1]}"
        self._refused: _Server | None = self._listen(0)
        self._refused_port = int(self._refused.server_address[1])
        self.refused_base = f"http://127.0.0.1:{self._refused_port}"

    def _listen(self, port: int) -> _Server:
        server = _Server(("127.0.0.1", port), self._handler)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return server

    def base_for(self, fault: str) -> str:
        return self.refused_base if fault == "refused" else self.base

    def scrape_url(self, fault: str) -> str:
        return f"{self.base_for(fault)}/{fault}/metrics"

    def endpoint(self, fault: str) -> str:
        return f"{self.base_for(fault)}/{fault}"

    def arm(self, fault: str) -> None:
        with self._lock:
            self._armed.add(fault)
        if fault == "refused" and self._refused is not None:
            self._refused.shutdown()
            self._refused.server_close()
            self._refused = None

    def disarm(self, fault: str) -> None:
        with self._lock:
            self._armed.discard(fault)
        if fault == "refused" and self._refused is None:
            self._refused = self._listen(self._refused_port)

    def is_armed(self, fault: str) -> bool:
        with self._lock:
            return fault in self._armed

    def note(self, fault: str) -> None:
        with self._lock:
            self._times.setdefault(fault, []).append(time.monotonic())

    def count(self, fault: str) -> int:
        with self._lock:
            return len(self._times.get(fault, ()))

    def times(self, path: str) -> list[float]:
        """When each request for ``/<path>/...`` came (``healthy`` is never armed)."""
        with self._lock:
            return list(self._times.get(path, ()))

    def record_sent(self, sent: int) -> None:
        with self._lock:
            self._sent.append(sent)

    @property
    def huge_bodies_sent(self) -> list[int]:
        """Bytes of each huge body written before the client hung up (or all of it)."""
        with self._lock:
            return list(self._sent)

    def close(self) -> None:
        self.stopping.set()
        for server in (self._main, self._refused):
            if server is not None:
                server.shutdown()
                server.server_close()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    try:
        yield server
    finally:
        server.close()


# --- log capture ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    message: str
    extra: dict[str, Any]


@dataclass
class Logs:
    """Every loguru record of the test, in order (the service logs through loguru)."""

    lines: list[LogLine] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sink(self, message: Any) -> None:
        record = message.record
        line = LogLine(time.monotonic(), record["level"].name, record["message"], record["extra"])
        with self._lock:
            self.lines.append(line)

    def find(self, text: str, *, level: str | None = None, **extra: Any) -> list[LogLine]:
        """Records whose message contains ``text`` (at ``level``) with these bound fields."""
        with self._lock:
            lines = list(self.lines)
        return [
            line
            for line in lines
            if text in line.message
            and (level is None or line.level == level)
            and all(line.extra.get(k) == v for k, v in extra.items())
        ]

    def dump(self, last: int = 60) -> str:
        with self._lock:
            lines = self.lines[-last:]
        return "\n".join(f"{x.level:<7} {x.message}  {x.extra}" for x in lines)


@pytest.fixture
def logs() -> Iterator[Logs]:
    captured = Logs()
    sink = logger.add(captured.sink, level="DEBUG", format="{message}", enqueue=False)
    try:
        yield captured
    finally:
        logger.remove(sink)
