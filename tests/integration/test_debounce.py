"""Debounce end to end against a real Prometheus (issue 26, point 4): with
``BREACH_COUNT=3 BREACH_WINDOW=5`` a series breaching 2 of every 5 evaluations never fires,
one breaching 3 of 5 does, once.

Which value each evaluation sees must not depend on timing, so the test steps the service:
its queries go through a gate that lets one through to Prometheus per step and answers
the others 503 (a failed read is no evaluation: the rule's state stays as it was). Each
step the test pushes the values, waits until Prometheus answers them, and lets exactly
one query through.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import EVENT_TIMEOUT, PrometheusStack, RecordingPlugins, ServiceFactory

METRIC = "debounce_flap_errors"
# One column per evaluation: disk "a" breaches 2 of every 5, disk "b" 3 of 5.
STEPS = [(95, 95), (10, 10), (95, 95), (10, 10), (10, 95), (95, 95), (10, 95)]
REFUSED = b'{"status":"error","errorType":"unavailable","error":"held back by the test"}'


class _Gate(ThreadingHTTPServer):
    daemon_threads = True
    target = ""
    lock = threading.Lock()
    tokens = 0
    served = 0


class _GateHandler(BaseHTTPRequestHandler):
    server: _Gate

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        query = self.path.startswith("/api/v1/query")
        if query:
            with self.server.lock:
                allowed = self.server.tokens > 0
                self.server.tokens -= allowed
            if not allowed:
                self._answer(503, REFUSED, "application/json")
                return
        headers = {"Content-Type": self.headers.get("Content-Type", "text/plain")}
        request = urllib.request.Request(
            self.server.target + self.path, data=body, method=self.command, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, data = int(response.status), response.read()
                kind = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            status, data = int(exc.code), exc.read()
            kind = exc.headers.get("Content-Type", "application/json")
        self._answer(status, data, kind)
        if query:
            with self.server.lock:
                self.server.served += 1

    def _answer(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _forward
    do_POST = _forward


@pytest.fixture
def gate(prometheus_stack: PrometheusStack) -> Iterator[_Gate]:
    server = _Gate(("127.0.0.1", 0), _GateHandler)
    server.target = prometheus_stack.prometheus_url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_series_flapping_2_of_5_never_fires_while_3_of_5_fires_once(
    prometheus_stack: PrometheusStack,
    gate: _Gate,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    def push(a: float, b: float) -> None:
        prometheus_stack.push_many(METRIC, [(METRIC, {"disk": "a"}, a), (METRIC, {"disk": "b"}, b)])
        total = a + 2 * b  # differs from one step to the next
        prometheus_stack.wait_visible(
            f"sum({METRIC}{{disk='a'}}) + 2 * sum({METRIC}{{disk='b'}})", total
        )

    push(*STEPS[0])
    host, port = gate.server_address[:2]
    svc = service(
        {
            "PROMETHEUS_ENDPOINT": f"http://{host!s}:{port}",
            "METRIC_NAME": METRIC,
            "THRESHOLD": ">90",
            "BREACH_COUNT": "3",
            "BREACH_WINDOW": "5",
            "POLLING_INTERVAL": "300ms",
            "ACTION_PLUGIN": "recorder",
            **recording_plugin_dir.env,
        }
    )
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    for index, values in enumerate(STEPS):
        if index:
            push(*values)
        with gate.lock:
            gate.tokens = 1
        svc.wait_until(lambda i=index: gate.served > i, EVENT_TIMEOUT, f"evaluation {index + 1}")
        calls = recording_plugin_dir.records()
        if index < 4:  # no 5 evaluations yet: nothing can have fired
            assert calls == []
    # The last read is answered, so the evaluations before it have handed out their calls:
    # only disk b fired, at its third breach (the fifth evaluation); without debounce both
    # would have fired at the first and again at every breach after a dip.
    calls = svc.wait_until(recording_plugin_dir.records, EVENT_TIMEOUT, "the fire of disk b")
    assert [(c["kind"], c["labels"]["disk"], c["value"]) for c in calls] == [("fire", "b", 95)]
