"""What the peer benchmark runs its contenders against: the gauge pages, one real Prometheus
that can be reconfigured with SIGHUP, an alert sink standing in for Alertmanager, and a
reader of the Prometheus text format for the counters.

Pages: ``PREFIX_i{shard="a"}`` and ``{shard="b"}`` for every metric ``i``; the metrics with
``i % 100 == 0`` (1 %) are at 75 on both series, every other series stays between 10 and 49,
so ``> 50`` breaches exactly those.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from ._page_server import free_port
from ._proc import wait_until

SMALL_PREFIX = "bench_gauge"
BIG_PREFIX = "bench_big"
THRESHOLD = 50.0
BREACHING_EVERY = 100
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", re.M)


def breaching(i: int) -> bool:
    return i % BREACHING_EVERY == 0


def page(prefix: str, metrics: int) -> bytes:
    lines = []
    for i in range(metrics):
        lines.append(f"# TYPE {prefix}_{i} gauge")
        for n, shard in enumerate("ab"):
            value = 75 if breaching(i) else 10 + (i + 7 * n) % 40
            lines.append(f'{prefix}_{i}{{shard="{shard}"}} {value}')
    return ("\n".join(lines) + "\n").encode()


def metric_sum(text: str, name: str, label: str = "") -> float | None:
    """Sum of the samples of ``name`` in a text-format page whose labels contain ``label``
    (e.g. ``handler="/api/v1/query"``); None when there is no such sample."""
    values = [
        float(value)
        for found, labels, value in _SAMPLE.findall(text)
        if found == name and label in labels
    ]
    return sum(values) if values else None


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (Go's format) to a POSIX timestamp."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


@dataclass
class AlertSink:
    """An Alertmanager stand-in (``POST /api/v2/alerts``): the wall time each alert,
    keyed by (alertname, shard), was first received."""

    url: str
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.first_seen.clear()

    def seen(self) -> dict[tuple[str, str], float]:
        with self.lock:
            return dict(self.first_seen)


@contextmanager
def alert_sink() -> Iterator[AlertSink]:
    port = free_port()
    sink = AlertSink(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.time()
            try:
                alerts = json.loads(body)
            except ValueError:
                alerts = []
            with sink.lock:
                for alert in alerts if isinstance(alerts, list) else []:
                    if _resolved(alert, now):
                        continue
                    labels = alert.get("labels", {})
                    key = (labels.get("alertname", ""), labels.get("shard", ""))
                    sink.first_seen.setdefault(key, now)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def _resolved(alert: dict[str, object], now: float) -> bool:
    """An alert sent with an end in the past is a resolution, not a firing."""
    ends = alert.get("endsAt")
    if not isinstance(ends, str) or ends.startswith("0001-"):
        return False
    return parse_time(ends) <= now


@dataclass
class Prometheus:
    """A real Prometheus on a loopback port scraping the small page every second; ``reload``
    rewrites its configuration and sends SIGHUP."""

    url: str
    config: Path
    small_page: str
    big_page: str
    sink: AlertSink
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "Prometheus is not running"
        return self.proc.pid

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def queries_served(self) -> float:
        """Prometheus' count of ``/api/v1/query`` requests, GET and POST, every code."""
        return metric_sum(self.metrics(), "prometheus_http_requests_total", _QUERY_HANDLER) or 0

    def write_config(self, *, big: bool = False, rule_file: Path | None = None) -> None:
        jobs = [_job("bench", self.small_page, "1s")]
        if big:
            jobs.append(_job("bench_big", self.big_page, "10s"))
        text = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "alerting:\n  alertmanagers:\n"
            f"    - static_configs: [{{targets: ['{self.sink.url.removeprefix('http://')}']}}]\n"
            "scrape_configs:\n" + "".join(jobs)
        )
        if rule_file is not None:
            text += f"rule_files: ['{rule_file}']\n"
        self.config.write_text(text)

    def reload(self, *, big: bool = False, rule_file: Path | None = None) -> None:
        """Apply a new configuration and wait until Prometheus has loaded its rules."""
        self.write_config(big=big, rule_file=rule_file)
        assert self.proc is not None, "Prometheus is not running"
        self.proc.send_signal(signal.SIGHUP)
        want = _rule_count(rule_file)
        wait_until(lambda: self._loaded_rules() == want, 60, f"Prometheus loading {want} rules")

    def _loaded_rules(self) -> int:
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return sum(len(group["rules"]) for group in groups)

    def series(self, prefix: str) -> int:
        query = f'count({{__name__=~"{prefix}_.*"}})'
        result = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=10)
        found = result.json()["data"]["result"]
        return int(float(found[0]["value"][1])) if found else 0


_QUERY_HANDLER = 'handler="/api/v1/query"'


def _job(name: str, url: str, interval: str) -> str:
    address = url.removeprefix("http://").split("/", 1)[0]
    return (
        f"  - job_name: {name}\n    scrape_interval: {interval}\n"
        f"    static_configs: [{{targets: ['{address}']}}]\n"
    )


def _rule_count(rule_file: Path | None) -> int:
    if rule_file is None:
        return 0
    return rule_file.read_text().count("- alert:")


@contextmanager
def prometheus(tmp: Path, small_page: str, big_page: str, sink: AlertSink) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    port = free_port()
    config = tmp / "prometheus.yml"
    prom = Prometheus(f"http://127.0.0.1:{port}", config, small_page, big_page, sink)
    prom.write_config()
    prom.proc = proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp}/data",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(prom) and prom.series(SMALL_PREFIX) > 0, 60, "Prometheus")
        yield prom
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _answers(prom: Prometheus) -> bool:
    try:
        return httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
