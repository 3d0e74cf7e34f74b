"""CPU per poll of the whole scrape source: fetch over HTTP, read the watched series, evaluate.

The 100,000-series page of ``benchmarks.scrape`` is served by a separate process
(``python -m http.server`` on a loopback port) so only the reading side is measured here,
with ``time.process_time`` over repeated polls of one keep-alive client. The full
``prometheus_client`` parse of the same page is the yardstick.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from metric_reader._config import load_settings
from metric_reader._http import make_client
from metric_reader._rules import Rule
from metric_reader._service import build_targets

from .scrape import WATCHED, _best, _full_parse, make_page

POLLS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_served(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the page server at {url} did not come up within {timeout:g}s")


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
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "metrics").write_bytes(page)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            _wait_served(url)
            poll = anyio.run(_cpu_per_poll, url, polls)
        finally:
            server.terminate()
            server.wait(timeout=10)
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
