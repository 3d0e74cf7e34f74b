"""CPU per poll of the whole scrape source: fetch over HTTP, read the watched series, evaluate.

The 100,000-series page of ``benchmarks.scrape`` is served by a separate process
(``python -m http.server`` on a loopback port) so only the reading side is measured here,
with ``time.process_time`` over repeated polls of one keep-alive client. The full
``prometheus_client`` parse of the same page is the yardstick.
"""

from __future__ import annotations

import time

import anyio

from metric_reader._config import load_settings
from metric_reader._http import make_client
from metric_reader._rules import Rule
from metric_reader._service import build_targets

from ._page_server import serve_page
from .scrape import WATCHED, _best, _full_parse, make_page

POLLS = 30


async def _cpu_per_poll(url: str, polls: int) -> float:
    settings = load_settings({"SCRAPE_URL": url, "METRIC_NAME": WATCHED[0], "THRESHOLD": ">1e12"})
    [target] = build_targets([Rule(settings.rules[0])])
    [rule] = target.rules
    async with make_client() as client:
        for _ in range(3):
            await target.read(client, 10.0)
        start = time.process_time()
        for _ in range(polls):
            results = await target.read(client, 10.0)
            rule.evaluate(anyio.current_time(), results.samples[rule.name])
        return (time.process_time() - start) / polls


def run(polls: int = POLLS) -> list[dict[str, object]]:
    page = make_page()
    with serve_page(page) as url:
        poll = anyio.run(_cpu_per_poll, url, polls)
    full = _best(lambda: _full_parse(page), 2)
    return [
        {
            "name": "scrape.poll_cpu (fetch + read + evaluate)",
            "value": poll * 1e3,
            "unit": "ms",
            "note": f"{polls} polls of the {len(page) / 1e6:.1f} MB page over loopback HTTP",
        },
        {
            "name": "scrape.poll_vs_full_parse",
            "value": poll / full,
            "unit": "ratio",
            "note": "whole poll against one prometheus_client parse",
        },
    ]
