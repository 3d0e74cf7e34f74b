"""A group that cannot keep up: reported once a minute, counted, shown; never a line a poll.

A real service reads 20 distinct ``QUERY`` rules every 200 ms from a Prometheus API that
takes 50 ms an answer, one request at a time (``max_concurrent_queries = 1``): about three
reads fit in a tick; the others are not started, and the next tick starts with them. Those
evaluations are missed: one warning for the group says how many and what to change, the
counter and the status page show them, and no rule or target logs an error for it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServiceFactory, free_port

pytestmark = pytest.mark.serial  # timing: run alone after the parallel part of make test

ANSWER = json.dumps(
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"job": "app"}, "value": [0, "1"]}]},
    }
).encode()


class _SlowPrometheus(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(0.05)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


@pytest.fixture
def slow_prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_a_group_that_cannot_keep_up_says_so_once_and_counts_what_it_missed(
    tmp_path: Path, service: ServiceFactory, slow_prometheus: str
) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{slow_prometheus}"\npolling_interval = "200ms"\n'
        "max_concurrent_queries = 1\n"
        "batch_expressions = false\n"  # 20 reads a tick, one at a time: more than fit
        + "".join(f'[[rules]]\nname = "q{i}"\nquery = "up + {i}"\n' for i in range(20))
    )
    port = free_port()
    svc = service(
        {"CONFIG_FILE": str(config), "LOG_LEVEL": "info", "LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    )
    base = f"http://127.0.0.1:{port}"
    group = f"prometheus {slow_prometheus} every 200ms"

    def missed() -> float:
        try:
            text = _get(f"{base}/metrics")
        except OSError:  # not listening yet
            return 0.0
        for line in text.splitlines():
            if line.startswith(f'metric_reader_evaluations_missed_total{{group="{group}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    svc.wait_until(lambda: missed() >= 200, 30, "200 missed evaluations")  # ~2 s of ticks
    warnings = [line for line in svc.stderr().splitlines() if "evaluations missed" in line]
    assert len(warnings) == 1, warnings
    assert "in the last minute: " in warnings[0]
    assert "of 20 reads could not start within 0.16s, 1 at a time" in warnings[0]
    assert "max_concurrent_queries (now 1)" in warnings[0]
    assert "poll failed" not in svc.stderr() and "ERROR" not in svc.stderr()

    [shown] = json.loads(_get(f"{base}/api/status"))["groups"]
    assert shown["group"] == group and shown["rules"] == 20 and shown["reads"] == 20
    assert shown["evaluations_missed_last_minute"] > 0
    assert shown["evaluations_missed_total"] >= shown["evaluations_missed_last_minute"]
    page = _get(f"{base}/")
    assert "1 group cannot keep up" in page and "evaluations missed in the last minute" in page
