"""``query_range`` over a window longer than one request: the requests are joined into one
history per series, every point of every request kept.

A fake Prometheus on loopback holds a few points of three series around the boundary of
two requests (11,000 steps and 2): one series present on both sides of it, one only
before, one only after. What a backtest reads must be exactly what it holds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from metric_reader._sources import evaluation_times, query_range, samples_at
from metric_reader._sources._range import MAX_POINTS

START = 1_700_000_000.0
LAST = MAX_POINTS + 1  # the steps are START + 0 .. START + LAST: two requests
BOUNDARY = MAX_POINTS - 1
"""The first request's last step; the second starts at the next."""


def _ms(step: int) -> int:
    return round((START + step) * 1000)


HELD: dict[tuple[tuple[str, str], ...], dict[int, float]] = {
    (("__name__", "queue_depth"), ("queue", "both")): {
        _ms(0): 1.0,
        _ms(BOUNDARY): 2.0,
        _ms(BOUNDARY + 1): 3.0,
        _ms(LAST): 4.0,
    },
    (("__name__", "queue_depth"), ("queue", "before")): {_ms(7): 5.0, _ms(BOUNDARY): 6.0},
    (("__name__", "queue_depth"), ("queue", "after")): {_ms(BOUNDARY + 1): 7.0},
}


class _Prometheus(BaseHTTPRequestHandler):
    """Answers ``query_range`` with the points ``HELD`` at the steps asked for (as
    Prometheus, a series without a value at a step has no point there)."""

    requests: list[tuple[float, float, float]]

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        start, end, step = (float(form[key][0]) for key in ("start", "end", "step"))
        type(self).requests.append((start, end, step))
        steps = {round((start + k * step) * 1000) for k in range(int((end - start) / step) + 1)}
        result = [
            {
                "metric": dict(labels),
                "values": [[ms / 1000, repr(value)] for ms, value in points.items() if ms in steps],
            }
            for labels, points in HELD.items()
        ]
        result = [series for series in result if series["values"]]
        data = {"resultType": "matrix", "result": result}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[tuple[str, list[tuple[float, float, float]]]]:
    handler = type("Handler", (_Prometheus,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", handler.requests
    server.shutdown()
    server.server_close()


def test_a_series_read_by_two_requests_keeps_the_points_of_both(
    prometheus: tuple[str, list[tuple[float, float, float]]],
) -> None:
    endpoint, requests = prometheus
    times = evaluation_times(START, START + LAST, 1.0)
    assert len(times) == MAX_POINTS + 2

    async def read() -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        async with httpx.AsyncClient() as client:
            found = await query_range(client, endpoint, "queue_depth", times, 1.0, 5.0)
        return {tuple(sorted(series.labels.items())): series.points for series in found}

    assert anyio.run(read) == HELD
    assert requests == [
        (START, START + BOUNDARY, 1.0),
        (START + BOUNDARY + 1, START + LAST, 1.0),
    ]  # every step once, in two requests


def test_the_steps_on_either_side_of_the_boundary_read_every_series_present(
    prometheus: tuple[str, list[tuple[float, float, float]]],
) -> None:
    endpoint, _ = prometheus
    times = evaluation_times(START, START + LAST, 1.0)

    async def read() -> list[list[tuple[str, float]]]:
        async with httpx.AsyncClient() as client:
            found = await query_range(client, endpoint, "queue_depth", times, 1.0, 5.0)
        steps = samples_at(found, [times[BOUNDARY], times[BOUNDARY + 1]])
        return [sorted((dict(s.labels)["queue"], s.value) for s in step) for step in steps]

    assert anyio.run(read) == [[("before", 6.0), ("both", 2.0)], [("after", 7.0), ("both", 3.0)]]
