"""The three contenders of the peer benchmark, each started on the same rules against the
same Prometheus and handed back as a ``Running``: whose CPU to sample, its cumulative
counters, and which breaching series it fired and how long after the breach began.

- metric-reader: ``python -m metric_reader`` with a CONFIG_FILE, a recording plugin (one JSON
  line per fire: rule, labels, ``event.breach_started``, wall time of the call) and its
  /metrics on a loopback port. Its log (``metric-reader.log``, warnings and errors) stays in
  the scenario's directory.
- vmalert (Debian's ``victoria-metrics``; installed with apt-get when missing and possible):
  the rules as alerting rules in one group with ``concurrency: 8``, notifying the alert sink.
- Prometheus' rule manager: the same rule file in ``rule_files``, loaded with SIGHUP and
  removed again with SIGHUP afterwards; it notifies the same alert sink.

For the peers a series "fired" when the sink first received it; how long after the breach
began is that time minus the alert's ``activeAt`` (the evaluation that first saw it).

Intervals are written the way Go prints a duration (``50ms``, ``1s``, ``10s``): vmalert's
flags and the rule files of vmalert and Prometheus take nothing else (``0.05s`` is refused).

Each ``Running`` also says when its counters show no cycle in progress (``settled``): every
evaluation of every cycle it has started is counted, as done or as missed. The benchmark
takes its window's two readings at such moments, so the window holds whole cycles:

- metric-reader: its evaluations plus its missed evaluations are a multiple of the rules
  (a tick adds one or the other for every rule; a skipped tick adds every rule as missed).
- vmalert: the ``/api/v1/query`` requests Prometheus served since vmalert started equal
  ``vmalert_iteration_total`` x rules (the iteration counter moves when an iteration starts,
  Prometheus' counter when a query has been answered).
- the rule manager: its group's ``prometheus_rule_evaluations_total`` equals
  (``prometheus_rule_group_iterations_total`` less the missed ones) x rules.
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

CYCLES = "cycles"
"""The counters' key for the cycles (ticks, iterations) a contender counts as started."""

SeriesKey = tuple[str, str]
"""(rule name, shard label; empty for a query that aggregates the shards away)."""


def go_duration(seconds: float) -> str:
    """``50ms``, ``1s``, ``10s``: a duration as Go writes it (vmalert and Prometheus read
    no other form; ``0.05s`` is refused)."""
    if seconds >= 1 and seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms"


@dataclass(frozen=True)
class Scenario:
    key: str
    rules: int
    interval: float
    kind: str  # "selector": the metric itself; "query": a distinct PromQL expression per rule
    prefix: str
    window: float
    contenders: tuple[str, ...]
    whole_cycles: bool = True
    """The window is read at cycle boundaries and holds whole cycles (see ``peers``)."""

    @property
    def title(self) -> str:
        noun = "selector rule" if self.kind == "selector" else "distinct QUERY rule"
        plural = "" if self.rules == 1 else "s"
        every = f"{self.interval:g} s" if self.interval >= 1 else f"{self.interval * 1000:g} ms"
        return f"({self.key}) {self.rules:,} {noun}{plural} at {every}"

    def promql(self, i: int) -> str:
        """What the rule reads; the peers' alert expression is this ``> 50``."""
        metric = f"{self.prefix}_{i}"
        return metric if self.kind == "selector" else f"max without (shard) ({metric})"

    def breaching_series(self) -> set[SeriesKey]:
        shards = ("a", "b") if self.kind == "selector" else ("",)
        return {(f"r{i}", s) for i in range(self.rules) if breaching(i) for s in shards}

    def alert_rule_file(self, path: Path, concurrency: int | None = None) -> Path:
        head = f"groups:\n  - name: bench\n    interval: {go_duration(self.interval)}\n"
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
    settled: Callable[[dict[str, float | None]], bool]
    """Whether counters read from ``counters`` show no cycle in progress."""
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
        f'polling_interval = "{go_duration(scenario.interval)}"',
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
        evaluations = metric_sum(text, "metric_reader_evaluations_total")
        missed = metric_sum(text, "metric_reader_evaluations_missed_total")
        return {
            "metric_reader_evaluations_total": evaluations,
            PROMETHEUS_QUERIES: prom.queries_served(),
            SUCCESSFUL_POLLS: None
            if polls is None
            else polls - (metric_sum(text, "metric_reader_poll_errors_total") or 0),
            "missed": missed,
            CYCLES: ((evaluations or 0) + (missed or 0)) / scenario.rules,
        }

    def settled(now: dict[str, float | None]) -> bool:
        cycles = now[CYCLES] or 0.0
        return cycles == int(cycles)

    try:
        wait_until(lambda: _answers(own), 60, "metric-reader's /metrics")
        yield Running(
            "metric-reader",
            proc.pid,
            counters,
            ("metric_reader_evaluations_total", PROMETHEUS_QUERIES, SUCCESSFUL_POLLS),
            lambda: _recorded_fires(tmp / "fires.jsonl"),
            settled,
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
    served_before = prom.queries_served()
    with (tmp / "vmalert.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                vmalert_binary(),
                f"-rule={rules}",
                f"-datasource.url={prom.url}",
                f"-notifier.url={prom.sink.url}",
                f"-evaluationInterval={go_duration(scenario.interval)}",
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
            CYCLES: iterations,
        }

    def settled(now: dict[str, float | None]) -> bool:
        started = now["vmalert_iteration_total x rules"]
        return started is not None and (now[PROMETHEUS_QUERIES] or 0) - served_before == started

    try:
        wait_until(lambda: _answers(f"{base}/metrics"), 60, "vmalert's /metrics")
        yield Running(
            "vmalert",
            proc.pid,
            counters,
            (PROMETHEUS_QUERIES, "vmalert_execution_total", "vmalert_iteration_total x rules"),
            lambda: _alert_fires(f"{base}/api/v1/alerts", prom.sink.seen()),
            settled,
        )
    finally:
        stop(proc)


@contextmanager
def rule_manager(scenario: Scenario, prom: Prometheus, tmp: Path) -> Iterator[Running]:
    rules = scenario.alert_rule_file(tmp / "prometheus-rules.yml")
    big = scenario.prefix == BIG_PREFIX
    group = f'rule_group="{rules};bench"'  # this group's, not those of earlier scenarios

    def counters() -> dict[str, float | None]:
        text = prom.metrics()
        iterations = metric_sum(text, "prometheus_rule_group_iterations_total", group)
        missed = metric_sum(text, "prometheus_rule_group_iterations_missed_total", group)
        return {
            "prometheus_rule_evaluations_total": metric_sum(
                text, "prometheus_rule_evaluations_total", group
            ),
            "prometheus_rule_group_iterations_total x rules": None
            if iterations is None
            else iterations * scenario.rules,
            "missed": None if missed is None else missed * scenario.rules,
            CYCLES: iterations,
        }

    def settled(now: dict[str, float | None]) -> bool:
        started = (now[CYCLES] or 0) - (now["missed"] or 0) / scenario.rules
        return (now["prometheus_rule_evaluations_total"] or 0) == started * scenario.rules

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
            settled,
            is_prometheus=True,
        )
    finally:
        prom.reload(big=big)


CONTENDERS = {"metric-reader": metric_reader, "vmalert": vmalert, "rule manager": rule_manager}
