"""``/metrics`` with 40,000 firing series does not slow polling down.

A real ``python -m metric_reader`` reads a page of 40,000 series every 2 seconds, every one
of them firing, so its ``/metrics`` lists 80,000 ``ALERTS`` and ``ALERTS_FOR_STATE``
samples (about 8 MB). Two clients scrape it as fast as they can. Polling keeps its pace:
the page is read ``POLLS`` times within ``POLLS`` intervals and a half. Building
``/metrics`` took over a second of the event loop per scrape, which cut the polls to half.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter

import pytest

from .conftest import ScrapeServer, ServiceFactory, free_port

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

SERIES = 40_000
INTERVAL = 2.0
POLLS = 4
SCRAPERS = 2


def _page() -> str:
    lines = ["# TYPE storm_queue gauge"]
    lines += [f'storm_queue{{i="{i}",instance="host-{i % 50}:9100"}} 100' for i in range(SERIES)]
    return "\n".join(lines) + "\n"


def _scrape(base: str) -> tuple[int, int]:
    """The status of one scrape and the number of firing alerts it lists."""
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
            body = response.read()
            return response.status, body.count(b'alertstate="firing"')
    except OSError as exc:
        return getattr(exc, "code", 0), 0


def test_polling_keeps_its_pace_while_two_clients_scrape_80000_alert_samples(
    service: ServiceFactory, scrape_server: ScrapeServer
) -> None:
    scrape_server.set_page(_page())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service(
        {
            "METRIC_NAME": "storm_queue",
            "SCRAPE_URL": scrape_server.url,
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": f"{INTERVAL}s",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "error",  # 40,000 "firing" lines are not what is measured
            "SERIES_LIMIT": "50000",
        }
    )
    svc.wait_until(lambda: _scrape(base) == (200, SERIES), 60, "every series to fire")

    stop = threading.Event()
    answers: Counter[tuple[int, int]] = Counter()

    def scrape_forever() -> None:
        while not stop.is_set():
            answers[_scrape(base)] += 1

    clients = [threading.Thread(target=scrape_forever, daemon=True) for _ in range(SCRAPERS)]
    for client in clients:
        client.start()
    try:
        scrape_server.wait_requests(1, timeout=3 * INTERVAL)  # the clients are at it
        started = time.monotonic()
        scrape_server.wait_requests(
            POLLS,
            timeout=POLLS * INTERVAL * 1.5,
            diagnostics=lambda: f"scrapes: {answers}",
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert set(answers) == {(200, SERIES)}, answers
    assert sum(answers.values()) >= SCRAPERS, f"{POLLS} polls in {took:.1f}s: {answers}"
