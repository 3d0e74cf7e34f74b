"""The expressions of the rule files are checked within ``MAX_CONCURRENT_QUERIES``: at
start, at a reload and in ``check``, never more requests in flight to one Prometheus than
the setting allows (the polls' bound, which the checks of a reload share).

A slow fake Prometheus on loopback counts the requests it holds at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import EVENT_TIMEOUT, REPO_ROOT, ServiceFactory, base_env

ALERTS = 24
LIMIT = 4
ANSWER_SECONDS = 0.1
EMPTY_VECTOR = json.dumps(
    {"status": "success", "data": {"resultType": "vector", "result": []}}
).encode()


class SlowPrometheus(ThreadingHTTPServer):
    """Answers every query with an empty vector after ``ANSWER_SECONDS``; ``most`` is the
    largest number of queries it held at once since the last ``reset``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.lock = threading.Lock()
        self.in_flight = self.most = self.queries = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the end of a test): nothing to report

    def reset(self) -> None:
        with self.lock:
            self.most = 0


class _SlowHandler(BaseHTTPRequestHandler):
    server: SlowPrometheus

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.queries += 1
            self.server.in_flight += 1
            self.server.most = max(self.server.most, self.server.in_flight)
        try:
            time.sleep(ANSWER_SECONDS)
        finally:
            # Counted out before the answer leaves: a client that has its answer may send
            # its next query at once, before this thread would get to count it out after.
            with self.server.lock:
                self.server.in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(EMPTY_VECTOR)))
        self.end_headers()
        self.wfile.write(EMPTY_VECTOR)

    do_POST = do_GET


@pytest.fixture
def prometheus() -> Iterator[SlowPrometheus]:
    server = SlowPrometheus()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _config(tmp_path: Path, endpoint: str) -> Path:
    rules = "".join(
        f'      - alert: Down{i}\n        expr: up{{n="{i}"}} == 0\n' for i in range(ALERTS)
    )
    (tmp_path / "alerts.yml").write_text(
        f"groups:\n  - name: many\n    interval: 1m\n    rules:\n{rules}"
    )
    config = tmp_path / "rules.toml"
    # One query per alert and poll, as this test counts them: no batching of expressions.
    config.write_text(
        f'prometheus_endpoint = "{endpoint}"\nrule_files = ["alerts.yml"]\n'
        "batch_expressions = false\n"
    )
    return config


def test_expression_checks_keep_to_max_concurrent_queries_at_start_reload_and_check(
    tmp_path: Path, service: ServiceFactory, prometheus: SlowPrometheus
) -> None:
    env = {
        "CONFIG_FILE": str(_config(tmp_path, prometheus.url)),
        "MAX_CONCURRENT_QUERIES": str(LIMIT),
        "LOG_LEVEL": "info",
    }
    svc = service(env)
    # The checks at start (one per alert), then the first poll of every alert.
    svc.wait_until(lambda: prometheus.queries >= 2 * ALERTS, EVENT_TIMEOUT, "the start")
    assert prometheus.most <= LIMIT, f"{prometheus.most} queries at once at start"
    assert "could not be checked" not in svc.stderr()

    prometheus.reset()
    asked = prometheus.queries
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_until(lambda: "configuration reloaded" in svc.stderr(), EVENT_TIMEOUT, "the reload")
    assert prometheus.queries >= asked + ALERTS  # every expression checked again
    assert prometheus.most <= LIMIT, f"{prometheus.most} queries at once at a reload"

    # The service polls the same Prometheus (once a minute, at its group's offset): stopped,
    # so that only check's queries are counted.
    assert svc.stop() == 0
    prometheus.reset()
    asked = prometheus.queries
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        cwd=REPO_ROOT,
        env=base_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done
    assert prometheus.queries >= asked + 2 * ALERTS  # the checks, then the first reads
    assert prometheus.most <= LIMIT, f"{prometheus.most} queries at once in check"
    assert "could not be checked" not in done.stdout + done.stderr
