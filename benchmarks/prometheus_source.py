"""CPU per poll of the Prometheus source next to a bare httpx GET + JSON decode.

A real Prometheus (Debian's ``prometheus``) is started on a loopback port, scraping itself.
Both loops run the same instant query the same number of times over one keep-alive client,
in this process, measured with ``time.process_time``:

- bare: ``client.get(...)`` and ``json.loads`` of the body;
- metric-reader: ``instant_query`` (deadline, decoding, validation) plus the rule's
  evaluation (state machine, per series) that every poll does.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx

from metric_reader._config import load_settings
from metric_reader._http import make_client
from metric_reader._prometheus import instant_query
from metric_reader._rules import Rule

POLLS = 500
QUERY = 'up{job="prometheus"}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prometheus() -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "prometheus.yml")
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - {{job_name: prometheus, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_series(url)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_for_series(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/api/v1/query", params={"query": QUERY}, timeout=1)
            if r.status_code == 200 and r.json()["data"]["result"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Prometheus at {url} did not answer {QUERY} within {timeout:g}s")


async def _cpu_per_call(call: Callable[[], Awaitable[object]], polls: int) -> float:
    for _ in range(20):  # warm up the connection and caches
        await call()
    start = time.process_time()
    for _ in range(polls):
        await call()
    return (time.process_time() - start) / polls


async def _measure(url: str, polls: int) -> tuple[float, float]:
    settings = load_settings(
        {"PROMETHEUS_ENDPOINT": url, "QUERY": QUERY, "THRESHOLD": "<1", "POLLING_INTERVAL": "1s"}
    )
    rule = Rule(settings.rules[0])
    async with make_client() as client:

        async def bare() -> object:
            response = await client.get(f"{url}/api/v1/query", params={"query": QUERY})
            return json.loads(response.content)

        async def ours() -> object:
            result = await instant_query(client, url, QUERY, 0.8)
            return rule.evaluate(anyio.current_time(), result.samples)

        bare_cpu = await _cpu_per_call(bare, polls)
        ours_cpu = await _cpu_per_call(ours, polls)
    return bare_cpu, ours_cpu


def run(polls: int = POLLS) -> list[dict[str, object]]:
    with prometheus() as url:
        bare, ours = anyio.run(_measure, url, polls)
    return [
        {
            "name": "prometheus.poll_cpu (query + decode + evaluate)",
            "value": ours * 1e6,
            "unit": "us",
            "note": f"{polls} polls, local Prometheus",
        },
        {
            "name": "prometheus.bare_get_json (httpx GET + json.loads)",
            "value": bare * 1e6,
            "unit": "us",
            "note": f"{polls} polls, same client",
        },
        {
            "name": "prometheus.poll_vs_bare_get",
            "value": ours / bare,
            "unit": "ratio",
            "note": "1.0 = no overhead over the bare request",
        },
    ]
