"""The Prometheus source, measured as the whole service in a subprocess against a real
local Prometheus (Debian's ``prometheus``, started on a loopback port, scraping itself).

- CPU per poll: ``python -m metric_reader`` (through ``benchmarks._service_child``, which
  picks the event loop, HTTP transport and JSON decoder) with one rule polling every
  ``INTERVAL``; its utime + stime from ``/proc/PID/stat`` between two samples taken after
  a warm-up, divided by the polls Prometheus counted in between
  (``prometheus_http_requests_total{handler="/api/v1/query"}``). The yardstick is
  ``benchmarks._bare_loop`` (plain asyncio, httpx and ``json.loads``), measured the same way.
- The default combination (what the service picks by itself: its own HTTP/1.1 transport,
  ``wire``, and uvloop, a dependency) runs as ``python -m metric_reader`` for ``RSS_AFTER``
  seconds; its resident memory then is the one-rule memory figure of the default install.
- The floor: ``benchmarks._floor``, the least program on the libraries the design fixes
  (anyio, httpx, loguru) that reads one query every ``INTERVAL``, for ``RSS_AFTER`` seconds:
  how much of the one-rule figure the interpreter and those libraries take by themselves.
- Start-up: spawn to the first ``polled`` debug line (``LOG_LEVEL=debug``).
- Scale: one cycle of 1,000 distinct queries through the service's targets (the default
  ``max_concurrent_queries``), against a 5 s polling interval.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx

from ._proc import cpu_seconds, rss_kb, stop, wait_until

QUERY = 'up{job="prometheus"}'
INTERVAL = 0.02
POLLS = 500
RSS_AFTER = 60.0
WARM_UP = 2.0
SLOW_INTERVAL = 1.0
SLOW_POLLS = 60
"""At 1 s (the peer benchmark's interval) each poll also pays for waking up, and the
connection is reused after a second of idleness."""
SCALE_RULES = 1_000
SCALE_INTERVAL = 5.0
ROOT = Path(__file__).parent.parent
_QUERIES = re.compile(
    r'^prometheus_http_requests_total\{[^}]*handler="/api/v1/query"[^}]*\} (\S+)$', re.M
)


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


def _queries_served(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return int(sum(float(m) for m in _QUERIES.findall(text)))


def _service_env(url: str, interval: str, level: str = "warning") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k == "PATH" or k.startswith("LC_")}
    env.update(
        PROMETHEUS_ENDPOINT=url,
        QUERY=QUERY,
        THRESHOLD="<0",  # up is 1: never breached, every poll is the common case
        POLLING_INTERVAL=interval,
        LOG_LEVEL=level,
        PYTHONPATH=str(ROOT),
    )
    return env


def _measure(
    argv: list[str],
    env: dict[str, str],
    url: str,
    polls: int,
    rss_at: float | None = None,
    interval: float = INTERVAL,
) -> dict[str, float]:
    """CPU per poll of the process ``argv`` after a warm-up, over at least ``polls`` polls;
    with ``rss_at``, its resident memory that many seconds after the spawn."""
    spawned = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        first = _queries_served(url)
        wait_until(lambda: _queries_served(url) > first + 2, 30, "the first polls")
        time.sleep(WARM_UP)
        cpu0, n0 = cpu_seconds(proc.pid), _queries_served(url)
        time.sleep(polls * interval * 1.05)
        if rss_at is not None:
            time.sleep(max(rss_at - (time.monotonic() - spawned), 0))
        cpu1, n1 = cpu_seconds(proc.pid), _queries_served(url)
        rss = rss_kb(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited: {proc.stderr.read() if proc.stderr else ''}")
    finally:
        stop(proc)
    return {"cpu": (cpu1 - cpu0) / max(n1 - n0, 1), "polls": n1 - n0, "rss_kb": rss}


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def combinations() -> list[tuple[str, str, str]]:
    loops = ["asyncio"] + (["uvloop"] if _have("uvloop") else [])
    transports = ["wire", "httpx"] + (["aiohttp"] if _have("aiohttp") else [])
    decoders = ["json"] + (["orjson"] if _have("orjson") else [])
    return list(itertools.product(loops, transports, decoders))


def default_combination() -> tuple[str, str, str]:
    """What the service picks by itself: asyncio (``_cli.EVENT_LOOP``), orjson when it is
    importable (``_prometheus``), and its own transport (``_http.TRANSPORT``)."""
    return (
        "asyncio",
        "wire",
        "orjson" if _have("orjson") else "json",
    )


def _service_argv(combo: tuple[str, str, str]) -> list[str]:
    if combo == default_combination():  # as installed: nothing hidden, nothing imported more
        return [sys.executable, "-m", "metric_reader"]
    loop, transport, decoder = combo
    return [
        sys.executable,
        "-m",
        "benchmarks._service_child",
        f"--loop={loop}",
        f"--transport={transport}",
        f"--json={decoder}",
    ]


def _startup(url: str, repeat: int = 5) -> float:
    """Median seconds from spawn to the first ``polled`` debug line."""
    times = []
    env = _service_env(url, "1s", level="debug")
    for _ in range(repeat):
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "metric_reader"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "polled" in line:
                    times.append(time.monotonic() - started)
                    break
            else:
                raise RuntimeError("the service exited before its first poll")
        finally:
            stop(proc)
    return statistics.median(times)


async def _one_cycle(url: str) -> tuple[float, float, int]:
    """Wall seconds of two consecutive cycles of ``SCALE_RULES`` distinct queries."""
    from metric_reader._config import load_settings
    from metric_reader._engine import make_rule
    from metric_reader._http import make_client
    from metric_reader._sources._fetches import fetch_timeout
    from metric_reader._sources._groups import build_fetches

    with tempfile.TemporaryDirectory() as tmp:
        rules_file = Path(tmp, "rules.toml")
        rules_file.write_text(
            f'polling_interval = "{SCALE_INTERVAL:g}s"\nprometheus_endpoint = "{url}"\n'
            + "".join(
                f'[[rules]]\nname = "r{i}"\nquery = \'{QUERY} + {i}\'\nthreshold = "<0"\n'
                for i in range(SCALE_RULES)
            )
        )
        settings = load_settings({"CONFIG_FILE": str(rules_file)})
    rules = {config.name: make_rule(config) for config in settings.rules}
    targets = build_fetches(settings.rules, settings.max_concurrent_queries)
    timeout = fetch_timeout(SCALE_INTERVAL)
    failures = 0

    async def poll(client: httpx.AsyncClient, target: object) -> None:
        nonlocal failures
        try:
            reading = await target.perform(client, timeout)  # type: ignore[attr-defined]
        except Exception:
            failures += 1
            return
        now = anyio.current_time()
        for config in target.rules:  # type: ignore[attr-defined]
            rules[config.name].evaluate(now, reading.samples[config.name])

    cycles = []
    async with make_client() as client:
        for _ in range(2):
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for target in targets:
                    group.start_soon(poll, client, target)
            cycles.append(time.perf_counter() - started)
    return cycles[0], cycles[1], failures


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    default = default_combination()
    with prometheus() as url:
        startup = _startup(url)
        first_cycle, cycle, failures = anyio.run(_one_cycle, url)
        bare = _measure(
            [sys.executable, "-m", "benchmarks._bare_loop", url, QUERY, str(INTERVAL)],
            _service_env(url, "20ms"),
            url,
            POLLS,
        )
        floor = _measure(
            [sys.executable, "-m", "benchmarks._floor", url, QUERY, str(INTERVAL)],
            _service_env(url, "20ms"),
            url,
            POLLS,
            rss_at=RSS_AFTER,
        )
        results: dict[tuple[str, str, str], dict[str, float]] = {}
        for combo in [default, *(c for c in combinations() if c != default)]:
            print(f"  service with {'+'.join(combo)} ...", file=sys.stderr, flush=True)
            results[combo] = _measure(
                _service_argv(combo),
                _service_env(url, "20ms"),
                url,
                POLLS,
                rss_at=RSS_AFTER if combo == default else None,
            )
        slow: dict[tuple[str, str, str], dict[str, float]] = {}
        for combo in dict.fromkeys([default, ("asyncio", "httpx", default[2])]):
            print(f"  service with {'+'.join(combo)} at 1 s ...", file=sys.stderr, flush=True)
            slow[combo] = _measure(
                _service_argv(combo),
                _service_env(url, f"{SLOW_INTERVAL:g}s"),
                url,
                SLOW_POLLS,
                interval=SLOW_INTERVAL,
            )
    ours = results[default]
    rows.append(
        {
            "name": f"prometheus: service CPU per poll ({'+'.join(default)}, the default)",
            "value": ours["cpu"] * 1e6,
            "unit": "us",
            "note": f"{ours['polls']:.0f} polls at 20ms, /proc utime+stime",
        }
    )
    rows.append(
        {
            "name": "prometheus: bare httpx GET + json.loads loop, CPU per poll",
            "value": bare["cpu"] * 1e6,
            "unit": "us",
            "note": f"{bare['polls']:.0f} polls, asyncio, own process",
        }
    )
    rows.append(
        {
            "name": "prometheus: service / bare loop",
            "value": ours["cpu"] / bare["cpu"],
            "unit": "x",
            "target": 1.2,
        }
    )
    for combo, result in results.items():
        if combo == default:
            continue
        rows.append(
            {
                "name": f"prometheus: service CPU per poll, {'+'.join(combo)}",
                "value": result["cpu"] * 1e6,
                "unit": "us",
                "note": f"{result['polls']:.0f} polls; {result['cpu'] / bare['cpu']:.2f}x bare",
            }
        )
    for combo, result in slow.items():
        rows.append(
            {
                "name": f"prometheus: service CPU per poll at {SLOW_INTERVAL:g} s, "
                f"{'+'.join(combo)}" + (" (the default)" if combo == default else ""),
                "value": result["cpu"] * 1e6,
                "unit": "us",
                "note": f"{result['polls']:.0f} polls",
            }
        )
    rows.append(
        {
            "name": f"memory: RSS after {RSS_AFTER:g} s, one rule, default install",
            "value": ours["rss_kb"] / 1024,
            "unit": "MB",
            "target": 30.0,
            "note": f"{'+'.join(default)}: python -m metric_reader as installed, polling "
            f"every 20ms; the stack's floor below: {floor['rss_kb'] / 1024:.1f} MB",
        }
    )
    rows.append(
        {
            "name": f"memory: RSS after {RSS_AFTER:g} s, the floor of the fixed stack "
            "(python -m benchmarks._floor: anyio, httpx, loguru, one query every 20ms, "
            "no code of ours)",
            "value": floor["rss_kb"] / 1024,
            "unit": "MB",
        }
    )
    rows.append(
        {
            "name": "start-up: spawn to first completed poll",
            "value": startup,
            "unit": "s",
            "target": 0.5,
            "note": "median of 5, LOG_LEVEL=debug 'polled' line",
        }
    )
    rows.append(
        {
            "name": f"scale: one cycle of {SCALE_RULES:,} Prometheus rules",
            "value": cycle,
            "unit": "s",
            "target": SCALE_INTERVAL,
            "note": f"default max_concurrent_queries; first cycle {first_cycle:.2f}s; "
            f"{failures} failed",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
