"""``/metrics`` with 40,000 alerts never holds up the probes, and scrapes share its cost.

``ALERTS`` and ``ALERTS_FOR_STATE`` list every pending and firing series level: at 40,000
firing series the page is about 8 MB, and building it took a second or more of the event
loop per scrape, so two scrapers in a loop left ``/healthz`` waiting seconds and polling
fell behind. ``serve_http`` here serves a ``FakeView`` holding 40,000 alerts (nothing polls:
what is timed is the HTTP side alone); the real service under the same load is in
``tests/integration/test_metrics_load.py``.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import pytest
from _fake_view import FakeView

from metric_reader._engine import ActiveAlert, State
from metric_reader._surface._web import serve_http

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

ALERTS = 40_000
HEALTHZ_BOUND = 0.2
"""Longest a ``/healthz`` may wait while the page is scraped (it took over a second)."""
SCRAPES = 6
DEADLINE = 60.0


@dataclass
class CountingView(FakeView):
    """Counts how often the alerts are read: once per build of the page."""

    reads: int = 0

    def alerts(self) -> list[ActiveAlert]:
        self.reads += 1
        return self.active_alerts


def firing(count: int) -> list[ActiveAlert]:
    return [
        ActiveAlert(
            {"alertname": "queue", "queue": f"q{i}", "instance": f"host-{i % 50}:9100"},
            State.FIRING,
            0.0,
        )
        for i in range(count)
    ]


@contextmanager
def served(view: FakeView) -> Iterator[str]:
    """``serve_http`` over ``view`` on an event loop of its own thread; its base URL."""
    ports: list[int] = []
    stop = threading.Event()
    started = threading.Event()

    async def serve() -> None:
        async with anyio.create_task_group() as group:
            ports.append(await group.start(serve_http, "127.0.0.1:0", view))
            started.set()
            while not stop.is_set():
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    thread = threading.Thread(target=anyio.run, args=(serve,), daemon=True)
    thread.start()
    assert started.wait(DEADLINE), "the server did not start"
    try:
        yield f"http://127.0.0.1:{ports[0]}"
    finally:
        stop.set()
        thread.join(DEADLINE)


def scrape(base: str) -> tuple[int, int]:
    """The status of one scrape and the number of firing ``ALERTS`` it lists."""
    with urllib.request.urlopen(base + "/metrics", timeout=DEADLINE) as response:
        body = response.read()
    return response.status, body.count(b'alertstate="firing"')


def test_two_scrapers_in_a_loop_never_hold_up_healthz() -> None:
    base_view = CountingView(active_alerts=firing(ALERTS))
    with served(base_view) as base:
        stop = threading.Event()
        answers: Counter[tuple[int, int]] = Counter()

        def scrape_forever() -> None:
            while not stop.is_set():
                answers[scrape(base)] += 1

        scrapers = [threading.Thread(target=scrape_forever, daemon=True) for _ in range(2)]
        for scraper in scrapers:
            scraper.start()
        waits: list[float] = []
        deadline = time.monotonic() + DEADLINE
        try:
            # Until the page was built twice (reused in between) and scraped a few times.
            while (
                base_view.reads < 2 or sum(answers.values()) < SCRAPES
            ) and time.monotonic() < deadline:
                asked = time.monotonic()
                with urllib.request.urlopen(base + "/healthz", timeout=DEADLINE) as response:
                    assert response.read() == b"ok\n"
                waits.append(time.monotonic() - asked)
                time.sleep(0.02)
        finally:
            stop.set()
            for scraper in scrapers:
                scraper.join(DEADLINE)
    assert sum(answers.values()) >= SCRAPES, f"only {answers} in {DEADLINE}s"
    assert set(answers) == {(200, ALERTS)}, answers
    slow = sorted(wait for wait in waits if wait > HEALTHZ_BOUND)
    assert not slow, f"{len(slow)} of {len(waits)} /healthz waited over {HEALTHZ_BOUND}s: {slow}"


def test_concurrent_scrapes_share_one_build() -> None:
    view = CountingView(active_alerts=firing(ALERTS))
    with served(view) as base:
        gate = threading.Barrier(SCRAPES)
        results: list[tuple[int, int]] = []

        def one() -> None:
            gate.wait(DEADLINE)
            results.append(scrape(base))

        clients = [threading.Thread(target=one, daemon=True) for _ in range(SCRAPES)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(DEADLINE)
    assert results == [(200, ALERTS)] * SCRAPES
    assert view.reads == 1, f"{SCRAPES} scrapes at once built the page {view.reads} times"


def test_a_cheap_page_shows_every_change_at_once() -> None:
    """Reusing a page is for pages that cost: a small one is built for every scrape, so a
    counter read right after it moved (a reload's result, a poll) is never stale."""
    view = FakeView()
    polls = view.metrics.polls.labels("t")
    with served(view) as base:
        for expected in range(1, 6):
            polls.inc()
            with urllib.request.urlopen(base + "/metrics", timeout=DEADLINE) as response:
                text = response.read().decode()
            assert f'metric_reader_polls_total{{group="t"}} {float(expected)}\n' in text
