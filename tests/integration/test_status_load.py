"""The status documents at 50,000 series do not slow polling down.

A real ``python -m metric_reader`` reads a page of 50,000 series (one rule) every 3 seconds,
while four clients ask for ``/`` and ``/api/status`` as fast as they can. Polling keeps its
pace: the page is read ``POLLS`` times within ``POLLS`` intervals and a half. Building either
document for every series took about a second of the event loop each, which halved the
polling rate and worse.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from .conftest import ScrapeServer, ServiceFactory, free_port

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

SERIES = 50_000
INTERVAL = 3.0
POLLS = 4
CLIENTS = 4


def _page() -> str:
    lines = ["# TYPE load_queue gauge"]
    lines += [f'load_queue{{i="{i}"}} {100 if i % 1000 == 0 else 1}' for i in range(SERIES)]
    return "\n".join(lines) + "\n"


def _hammer(base: str, stop: threading.Event, answers: Counter[tuple[str, int]]) -> None:
    paths = ("/", "/api/status")
    turn = 0
    while not stop.is_set():
        path = paths[turn % 2]
        turn += 1
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                response.read()
                answers[path, response.status] += 1
        except OSError as exc:
            answers[path, getattr(exc, "code", 0)] += 1


def test_polling_keeps_its_pace_while_clients_hammer_the_status_documents(
    tmp_path: Path, service: ServiceFactory, scrape_server: ScrapeServer
) -> None:
    scrape_server.set_page(_page())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service(
        {
            "METRIC_NAME": "load_queue",
            "SCRAPE_URL": scrape_server.url,
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": f"{INTERVAL}s",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "warning",
            "SERIES_LIMIT": "60000",
        }
    )

    def status() -> dict | None:
        try:
            with urllib.request.urlopen(base + "/api/status", timeout=30) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def all_read() -> bool:
        document = status()
        return document is not None and document["rules"][0]["series_count"] == SERIES

    svc.wait_until(all_read, 60, "the first poll of the 50,000 series")

    stop = threading.Event()
    answers: Counter[tuple[str, int]] = Counter()
    clients = [
        threading.Thread(target=_hammer, args=(base, stop, answers), daemon=True)
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(INTERVAL)  # the clients are all at it
        scrape_server.wait_requests(
            POLLS, timeout=POLLS * INTERVAL * 1.5, diagnostics=lambda: f"answers: {answers}"
        )
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert answers["/", 200] >= POLLS and answers["/api/status", 200] >= POLLS, answers
    assert set(answers) == {("/", 200), ("/api/status", 200)}, answers

    document = status()
    assert document is not None
    (rule,) = document["rules"]
    assert rule["states"] == {"ok": SERIES - SERIES // 1000, "pending": 0, "firing": 50}
    assert len(rule["series"]) == 1000 and document["truncated"] is True
    assert rule["page"]["next"] == "api/status?rule=load_queue&offset=1000&limit=1000"
