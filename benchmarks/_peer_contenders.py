"""The three contenders of the peer benchmark, each started on the same rules against the
same Prometheus and handed back as a ``Running``: whose CPU to sample, its cumulative
counters, and which breaching series it fired and how long after the breach began.

- metric-reader: ``python -m metric_reader`` with a CONFIG_FILE, a recording plugin (one JSON
  line per fire: rule, labels, ``event.breach_started``, wall time of the call) and its
  /metrics on a loopback port.
- vmalert (Debian's ``victoria-metrics``; installed with apt-get when missing and possible):
  the rules as alerting rules in one group with ``concurrency: 8``, notifying the alert sink.
- Prometheus' rule manager: the same rule file in ``rule_files``, loaded with SIGHUP and
  removed again with SIGHUP afterwards; it notifies the same alert sink.

For the peers a series "fired" when the sink first received it; how long after the breach
began is that time minus the alert's ``activeAt`` (the evaluation that first saw it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ._page_server import free_port
from ._peer_stack import (
    BIG_PREFIX,
    THRESHOLD,
    Prometheus,
    breaching,
    metric_sum,
    parse_time,
)
from ._proc import stop, wait_until

ROOT = Path(__file__).parent.parent
FOR_SECONDS = 5.0
VMALERT_CONCURRENCY = 8
PROMETHEUS_QUERIES = "Prometheus /api/v1/query"
SUCCESSFUL_POLLS = "metric_reader_polls_total - poll_errors_total"

SeriesKey = tuple[str, str]
"""(rule name, shard label; empty for a query that aggregates the shards away)."""


@dataclass(frozen=True)
class Scenario:
    key: str
    rules: int
    interval: float
    kind: str  # "selector": the metric itself; "query": a distinct PromQL expression per rule
    prefix: str
    window: float
    contenders: tuple[str, ...]

    @property
    def title(self) -> str:
        noun = "selector rule" if self.kind == "selector" else "distinct QUERY rule"
        plural = "" if self.rules == 1 else "s"
        return f"({self.key}) {self.rules:,} {noun}{plural} at {self.interval:g} s"

    def promql(self, i: int) -> str:
        """What the rule reads; the peers' alert expression is this ``> 50``."""
        metric = f"{self.prefix}_{i}"
        return metric if self.kind == "selector" else f"max without (shard) ({metric})"

    def breaching_series(self) -> set[SeriesKey]:
        shards = ("a", "b") if self.kind == "selector" else ("",)
        return {(f"r{i}", s) for i in range(self.rules) if breaching(i) for s in shards}

    def alert_rule_file(self, path: Path, concurrency: int | None = None) -> Path:
        head = f"groups:\n  - name: bench\n    interval: {self.interval:g}s\n"
        if concurrency is not None:
            head += f"    concurrency: {concurrency}\n"
        rules = "".join(
            f"      - alert: r{i}\n        expr: '{self.promql(i)} > {THRESHOLD:g}'\n"
            f"        for: {FOR_SECONDS:g}s\n"
            for i in range(self.rules)
        )
        path.write_text(f"{head}    rules:\n{rules}")
        return path


@dataclass
class Running:
    """A started contender. ``counters`` are cumulative; ``evaluations`` names the counters
    that count its evaluations, the first one present is the figure, the others cross-check."""

    name: str
    pid: int
    counters: Callable[[], dict[str, float | None]]
    evaluations: tuple[str, ...]
    fires: Callable[[], dict[SeriesKey, float]]
    is_prometheus: bool = False


def _get_text(url: str) -> str:
    return httpx.get(url, timeout=10).text


# ------------------------------------------------------------------------------------------
# metric-reader

_RECORDER = """\
import json
import time

class Recorder:
    name = "bench_recorder"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        line = {{"rule": event.rule, "kind": str(event.kind), "labels": dict(event.labels),
                 "started": event.breach_started.timestamp(), "t": time.time()}}
        with open({records!r}, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\\n")

Plugin = Recorder()
"""


def _metric_reader_config(scenario: Scenario, prom: Prometheus, tmp: Path, port: int) -> Path:
    plugins = tmp / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "bench_recorder.py").write_text(_RECORDER.format(records=str(tmp / "fires.jsonl")))
    lines = [
        f'prometheus_endpoint = "{prom.url}"',
        f'polling_interval = "{scenario.interval:g}s"',
        f'threshold_duration = "{FOR_SECONDS:g}s"',
        f'threshold = ">{THRESHOLD:g}"',
        'action_plugin = "bench_recorder"',
        f'plugin_dir = "{plugins}"',
        f'listen_address = "127.0.0.1:{port}"',
        'log_level = "warning"',
    ]
    key = "metric_name" if scenario.kind == "selector" else "query"
    for i in range(scenario.rules):
        lines.append(f"[[rules]]\nname = \"r{i}\"\n{key} = '{scenario.promql(i)}'")
    path = tmp / "rules.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _recorded_fires(records: Path) -> dict[SeriesKey, float]:
    fires: dict[SeriesKey, float] = {}
    try:
        text = records.read_text(encoding="utf-8")
    except FileNotFoundError:
        return fires
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        record = json.loads(line)
        if record["kind"].endswith("fire"):
            key = (record["rule"], record["labels"].get("shard", ""))
            fires.setdefault(key, record["t"] - record["started"])
    return fires


@contextmanager
def metric_reader(scenario: Scenario, prom: Prometheus, tmp: Path) -> Iterator[Running]:
    port = free_port()
    config = _metric_reader_config(scenario, prom, tmp, port)
    env = {k: v for k, v in os.environ.items() if k == "PATH" or k.startswith("LC_")}
    env.update(CONFIG_FILE=str(config), PYTHONPATH=str(ROOT))
    with (tmp / "metric-reader.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "metric_reader"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
    own = f"http://127.0.0.1:{port}/metrics"

    def counters() -> dict[str, float | None]:
        if proc.poll() is not None:
            raise RuntimeError(f"metric-reader exited: {(tmp / 'metric-reader.log').read_text()}")
        text = _get_text(own)
        polls = metric_sum(text, "metric_reader_polls_total")
        return {
            "metric_reader_evaluations_total": metric_sum(text, "metric_reader_evaluations_total"),
            PROMETHEUS_QUERIES: prom.queries_served(),
            SUCCESSFUL_POLLS: None
            if polls is None
            else polls - (metric_sum(text, "metric_reader_poll_errors_total") or 0),
            "missed": metric_sum(text, "metric_reader_evaluations_missed_total"),
        }

    try:
        wait_until(lambda: _answers(own), 60, "metric-reader's /metrics")
        yield Running(
            "metric-reader",
            proc.pid,
            counters,
            ("metric_reader_evaluations_total", PROMETHEUS_QUERIES, SUCCESSFUL_POLLS),
            lambda: _recorded_fires(tmp / "fires.jsonl"),
        )
    finally:
        stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------------------------------
# The peers: vmalert and Prometheus' rule manager, both notifying the alert sink


def _alert_fires(alerts_url: str, sink_seen: dict[SeriesKey, float]) -> dict[SeriesKey, float]:
    """Sink arrival minus ``activeAt`` for each firing alert the peer lists."""
    alerts = httpx.get(alerts_url, timeout=10).json()["data"]["alerts"]
    fires: dict[SeriesKey, float] = {}
    for alert in alerts:
        labels = alert.get("labels", {})
        key = (labels.get("alertname") or alert.get("name", ""), labels.get("shard", ""))
        if key in sink_seen and alert.get("activeAt"):
            fires[key] = sink_seen[key] - parse_time(alert["activeAt"])
    return fires


def vmalert_binary() -> str:
    """/usr/bin/vmalert, installing Debian's victoria-metrics first when it is missing."""
    found = shutil.which("vmalert")
    if found or Path("/usr/bin/vmalert").exists():
        return found or "/usr/bin/vmalert"
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "victoria-metrics"], check=True)
    return "/usr/bin/vmalert"


@contextmanager
def vmalert(scenario: Scenario, prom: Prometheus, tmp: Path) -> Iterator[Running]:
    port = free_port()
    rules = scenario.alert_rule_file(tmp / "vmalert.yml", VMALERT_CONCURRENCY)
    with (tmp / "vmalert.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                vmalert_binary(),
                f"-rule={rules}",
                f"-datasource.url={prom.url}",
                f"-notifier.url={prom.sink.url}",
                f"-evaluationInterval={scenario.interval:g}s",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-loggerLevel=WARN",
            ],
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"

    def counters() -> dict[str, float | None]:
        if proc.poll() is not None:
            raise RuntimeError(f"vmalert exited: {(tmp / 'vmalert.log').read_text()}")
        text = _get_text(f"{base}/metrics")
        iterations = metric_sum(text, "vmalert_iteration_total")
        return {
            PROMETHEUS_QUERIES: prom.queries_served(),
            "vmalert_execution_total": metric_sum(text, "vmalert_execution_total"),
            "vmalert_iteration_total x rules": None
            if iterations is None
            else iterations * scenario.rules,
            "missed": metric_sum(text, "vmalert_iteration_missed_total"),
        }

    try:
        wait_until(lambda: _answers(f"{base}/metrics"), 60, "vmalert's /metrics")
        yield Running(
            "vmalert",
            proc.pid,
            counters,
            (PROMETHEUS_QUERIES, "vmalert_execution_total", "vmalert_iteration_total x rules"),
            lambda: _alert_fires(f"{base}/api/v1/alerts", prom.sink.seen()),
        )
    finally:
        stop(proc)


@contextmanager
def rule_manager(scenario: Scenario, prom: Prometheus, tmp: Path) -> Iterator[Running]:
    rules = scenario.alert_rule_file(tmp / "prometheus-rules.yml")
    big = scenario.prefix == BIG_PREFIX

    def counters() -> dict[str, float | None]:
        text = prom.metrics()
        iterations = metric_sum(text, "prometheus_rule_group_iterations_total")
        return {
            "prometheus_rule_evaluations_total": metric_sum(
                text, "prometheus_rule_evaluations_total"
            ),
            "prometheus_rule_group_iterations_total x rules": None
            if iterations is None
            else iterations * scenario.rules,
            "missed": metric_sum(text, "prometheus_rule_group_iterations_missed_total"),
        }

    prom.reload(big=big, rule_file=rules)
    try:
        yield Running(
            "Prometheus rule manager",
            prom.pid,
            counters,
            (
                "prometheus_rule_evaluations_total",
                "prometheus_rule_group_iterations_total x rules",
            ),
            lambda: _alert_fires(f"{prom.url}/api/v1/alerts", prom.sink.seen()),
            is_prometheus=True,
        )
    finally:
        prom.reload(big=big)


CONTENDERS = {"metric-reader": metric_reader, "vmalert": vmalert, "rule manager": rule_manager}
