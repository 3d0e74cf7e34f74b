"""Many query rules on one endpoint: shared requests and a bound on requests in flight.

The endpoint is a local HTTP server that answers ``/api/v1/query`` like Prometheus (a
vector of one sample) after 200 ms, and records how many requests it is serving at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import anyio
import pytest

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._service import Service


class SlowPrometheus(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.queries: Counter[str] = Counter()


class _Handler(BaseHTTPRequestHandler):
    server: SlowPrometheus

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)["query"][0]
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
            self.server.queries[query] += 1
        time.sleep(0.2)
        body = json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"__name__": "up"}, "value": [time.time(), "1"]}],
                },
            }
        ).encode()
        with self.server.lock:
            self.server.in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_prometheus() -> Iterator[SlowPrometheus]:
    server = SlowPrometheus()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run_for(seconds: float, service: Service) -> None:
    async def main() -> None:
        with anyio.move_on_after(seconds):
            await service.run()

    anyio.run(main)


def test_requests_to_one_endpoint_are_bounded_and_the_same_query_is_asked_once(
    tmp_path: Path, slow_prometheus: SlowPrometheus
) -> None:
    port = slow_prometheus.server_address[1]
    lines = [
        f'prometheus_endpoint = "http://127.0.0.1:{port}"',
        "max_concurrent_queries = 2",
        "batch_expressions = false",  # one query per distinct expression: what is bounded here
        'polling_interval = "2s"',
    ]
    for i in range(6):
        lines += ["[[rules]]", f'name = "r{i}"', f'query = "up{{i=\\"{i}\\"}}"']
    for twin in ("a", "b"):  # two rules asking the very same query
        lines += ["[[rules]]", f'name = "twin-{twin}"', 'query = "up{i=\\"shared\\"}"']
    config = tmp_path / "rules.toml"
    config.write_text("\n".join(lines) + "\n")
    settings = load_settings({"CONFIG_FILE": str(config)})
    service = Service(settings, discover_plugins(None))

    run_for(2.5, service)

    assert slow_prometheus.most_in_flight == 2  # never more, and it did run two at once
    # Seven distinct queries (six plus the shared one), each asked once per poll.
    assert set(slow_prometheus.queries) == {f'up{{i="{i}"}}' for i in (*range(6), "shared")}
    assert max(slow_prometheus.queries.values()) <= 2
