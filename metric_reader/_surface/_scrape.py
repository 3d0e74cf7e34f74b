"""``/metrics`` written off the event loop, shared by the scrapes that ask at once, and
reused when it is costly, so that scraping it never holds up polling or the probes.

The page lists every pending and firing alert (``ALERTS``, ``ALERTS_FOR_STATE``): at 40,000
firing series it is about 8 MB and a second of CPU to write, and written on the event loop
it stopped polling and the probes for that second, once per scrape. So:

- the service's state is read on the event loop, in one go (``ServiceState.read``: a
  consistent moment, tens of milliseconds at 40,000 alerts), and the page is written and
  compressed from that copy on a worker thread, while the loop goes on;
- one page is built at a time, and the scrapes that ask while it is built wait for it and
  all get it;
- a page that cost at least ``REUSE_FROM`` seconds of CPU is served again, to scrapes
  asking for the same format, for ``REUSE_FACTOR`` times what it cost: however many clients
  scrape, building pages takes at most a fifth of the time. A cheaper page (the usual one)
  is built for each scrape, so it shows every change at once.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .._core import logger, valid_text
from ._collectors import ServiceCollector, ServiceState

REUSE_FROM = 0.05
"""CPU seconds from which a page is worth reusing (about 2,000 alerts)."""
REUSE_FACTOR = 4.0
"""A costly page is served again for this many times the CPU it took to build."""

Encoder = Callable[[Any], bytes]
PageKey = tuple[str, bool]
"""The content type (text or OpenMetrics) and whether the page is gzipped."""


@dataclass(frozen=True, slots=True)
class MetricsPage:
    body: bytes
    content_type: str
    gzipped: bool
    cost: float
    """CPU seconds it took to build: reading the state on the loop, writing it on a thread."""
    built_at: float
    """Event-loop time it was done."""

    def reusable(self, now: float) -> bool:
        return self.cost >= REUSE_FROM and now - self.built_at < REUSE_FACTOR * self.cost


@dataclass(slots=True)
class _Build:
    """A page being built, and the scrapes waiting for it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    page: MetricsPage | None = None


class MetricsPages:
    """The ``/metrics`` pages of one server. Builds run in ``tasks`` (the server's), not in
    the scrape that started them: a scrape that goes away leaves the page to the others."""

    def __init__(self, registry: Collector, collector: ServiceCollector, tasks: TaskGroup) -> None:
        self.registry = _SafeRegistry(registry)
        self.collector = collector
        self.tasks = tasks
        self.kept: dict[PageKey, MetricsPage] = {}
        self.building: dict[PageKey, _Build] = {}
        self.forgotten = 0
        """How many times ``forget`` was called: a build started before does not keep its page."""
        self._one_at_a_time = anyio.Lock()
        self._thread = anyio.CapacityLimiter(1)
        """Its own worker thread: never waiting behind other work of the default threads."""

    async def page(self, accept: str, accept_encoding: str) -> MetricsPage | None:
        """The page a scrape with these headers gets; None when building it failed (the
        error is logged)."""
        encoder, content_type = choose_encoder(accept)
        key = (content_type, accepts_gzip(accept_encoding))
        now = anyio.current_time()
        self.kept = {known: page for known, page in self.kept.items() if page.reusable(now)}
        if key in self.kept:
            return self.kept[key]
        build = self.building.get(key)
        if build is None:
            build = self.building[key] = _Build()
            self.tasks.start_soon(self._build, key, encoder, build)
        await build.done.wait()
        return build.page

    def forget(self) -> None:
        """From now on, build every page afresh: what they show changed in a way a reused
        page would hide for a while (a reload)."""
        self.kept.clear()
        self.building.clear()
        self.forgotten += 1

    async def _build(self, key: PageKey, encoder: Encoder, build: _Build) -> None:
        forgotten = self.forgotten
        content_type, gzipped = key
        try:
            async with self._one_at_a_time:
                started = time.thread_time()
                state = ServiceState.read(self.collector.service)
                reading = time.thread_time() - started
                body, writing = await anyio.to_thread.run_sync(
                    self._write,
                    encoder,
                    state,
                    gzipped,
                    limiter=self._thread,
                    abandon_on_cancel=True,  # at shutdown: the thread's page is not waited for
                )
            page = MetricsPage(body, content_type, gzipped, reading + writing, anyio.current_time())
            build.page = page
            if forgotten == self.forgotten:
                self.kept[key] = page
        except Exception:
            logger.exception("http: failed to build /metrics")
        finally:
            build.done.set()
            if self.building.get(key) is build:
                del self.building[key]

    def _write(self, encoder: Encoder, state: ServiceState, gzipped: bool) -> tuple[bytes, float]:
        """On the worker thread: the page of ``state`` and the CPU seconds it took."""
        started = time.thread_time()
        with self.collector.showing(state):
            body = encoder(self.registry)
        if gzipped:
            body = gzip.compress(body, compresslevel=6)
        return body, time.thread_time() - started


class _SafeRegistry:
    """The service's registry as ``/metrics`` writes it: lone surrogates in label values
    or help text become U+FFFD, so one odd string cannot make the page fail."""

    def __init__(self, registry: Collector) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        for family in self.registry.collect():
            family.documentation = valid_text(family.documentation)
            family.samples = [
                sample._replace(labels={k: valid_text(v) for k, v in sample.labels.items()})
                for sample in family.samples
            ]
            yield family


def accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip().replace(" ", "")
            return q not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
