"""A tiny exporter for the demo: a queue whose depth rises past 80 and falls back.

    python examples/demo_exporter.py --port 9101

serves http://127.0.0.1:9101/metrics in the Prometheus text format. The depth of the
``orders`` queue follows a 45-second cycle: about 50 for 8 s, about 90 for 22 s, about 40
for 15 s. The ``emails`` queue stays low. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import math
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CYCLE = 45.0
START = time.monotonic()


def orders_depth(elapsed: float) -> float:
    t = elapsed % CYCLE
    wobble = 2 * math.sin(elapsed)
    if t < 8:
        return 50 + wobble
    if t < 30:
        return 90 + wobble
    return 40 + wobble


def page() -> bytes:
    elapsed = time.monotonic() - START
    lines = [
        "# HELP demo_queue_depth Messages waiting in the queue.",
        "# TYPE demo_queue_depth gauge",
        f'demo_queue_depth{{queue="orders"}} {orders_depth(elapsed):.2f}',
        f'demo_queue_depth{{queue="emails"}} {5 + 2 * math.sin(elapsed / 3):.2f}',
        "# HELP demo_queue_depth_max Capacity of the queue.",
        "# TYPE demo_queue_depth_max gauge",
        'demo_queue_depth_max{queue="orders"} 1000',
        'demo_queue_depth_max{queue="emails"} 1000',
    ]
    return ("\n".join(lines) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = page()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9101)
    server = serve(parser.parse_args().port)
    print(f"serving http://127.0.0.1:{server.server_port}/metrics")
    server.serve_forever()
