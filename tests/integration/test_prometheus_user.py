"""Issue 23's done-when: what an SRE coming from Prometheus and am-executor does on day one.

A node-exporter rule file in the style of the public collections (written here, not copied)
runs against a real Prometheus scraping a real ``prometheus-node-exporter``. Its alert
fires; editing its annotation and its route's matchers and reloading neither resolves nor
fires it again; moving the route to another plugin leaves the resolve with the plugin that
fired; stopping node_exporter ends the breach (the resolve carries the last value and the
annotations rendered with it); node_exporter back, the alert fires again at the plugin the
route names now. A backtest of the whole window then shows the same state changes as the
live service, the gap included.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    RecordingPlugins,
    ServiceFactory,
    _binary,
    _start_logged,
    _stop_process,
    _wait_ready,
    base_env,
    free_port,
)
from .test_rule_files import prometheus

NODE_ALERTS = """\
groups:
  - name: node-exporter
    interval: 1s
    rules:
      - alert: HostMemoryIsUnderutilized
        # awesome-prometheus-alerts' rule, turned round so that it holds on any machine
        expr: 100 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100) < 101
        for: 2s
        labels:
          severity: info
        annotations:
          summary: Host Memory is underutilized (instance {{ $labels.instance }})
          description: "Node memory is < 101% for 2s\\n  VALUE = {{ $value }}\\n\
            \\  LABELS = {{ $labels }}"
      - alert: HostOomKillDetected
        expr: >-
          (increase(node_vmstat_oom_kill[1m]) > 0)
          * on(instance) group_left (nodename) node_uname_info{nodename=~".+"}
        for: 0m
        labels:
          severity: warning
        annotations:
          summary: Host OOM kill detected (instance {{ $labels.instance }})
"""

CONFIG = """\
prometheus_endpoint = "{prometheus}"
rule_files = ["node.yml"]

[[routes]]
matchers = [{matchers}]
action_plugin = "{plugin}"
"""

ALERT = "HostMemoryIsUnderutilized"
CHANGE_OF = {
    "breach started": ("ok", "pending"),
    "breach ended": ("pending", "ok"),
    "firing": ("pending", "firing"),
    "resolved": ("firing", "ok"),
}


class NodeExporter:
    """A real node_exporter on one loopback port, stopped and started again on it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.base / "node_exporter.log"
        self.proc = _start_logged(
            [
                _binary(
                    "NODE_EXPORTER_BIN", "prometheus-node-exporter", "prometheus-node-exporter"
                ),
                f"--web.listen-address={self.target}",
                "--collector.disable-defaults",
                "--collector.meminfo",
                "--collector.uname",
            ],
            log,
            self.base,
        )
        _wait_ready("node_exporter", f"http://{self.target}", self.proc, log)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
            self.proc = None


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[NodeExporter]:
    exporter = NodeExporter(tmp_path)
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


def _changes(log: str) -> list[tuple[str, str, float]]:
    """The alert's state changes in the service's JSON log: (from, to, when)."""
    out = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("rule") != f"node-exporter:{ALERT}" and record.get("rule") != ALERT:
            continue
        for start_of, change in CHANGE_OF.items():
            if record["message"].startswith(start_of):
                out.append((*change, datetime.fromisoformat(record["time"]).timestamp()))
    return out


def _evaluations(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("metric_reader_evaluations_total{")
    )


def test_a_node_exporter_alert_through_edits_a_route_change_an_outage_and_a_backtest(
    tmp_path: Path,
    service: ServiceFactory,
    recording_plugin_dir: RecordingPlugins,
    node_exporter: NodeExporter,
) -> None:
    with prometheus(tmp_path / "prometheus", "groups: []\n", {"node": node_exporter.target}) as url:
        (tmp_path / "node.yml").write_text(NODE_ALERTS)
        config = tmp_path / "rules.toml"
        config.write_text(
            CONFIG.format(prometheus=url, matchers="'severity=\"info\"'", plugin="recorder")
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        began = time.time()
        svc = service(
            {
                "CONFIG_FILE": str(config),
                "LISTEN_ADDRESS": f"127.0.0.1:{port}",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "info",
                **recording_plugin_dir.env,
            }
        )

        def calls() -> list[tuple[str, str]]:
            return [(r["method"], r["plugin"]) for r in recording_plugin_dir.records()]

        svc.wait_until(lambda: calls() == [("execute", "recorder")], EVENT_TIMEOUT, "the fire")

        def reload_and_wait_quietly(text: str, want: str) -> None:
            reloads = svc.stderr().count("configuration reloaded")
            config.write_text(text)
            svc.proc.send_signal(signal.SIGHUP)
            svc.wait_until(
                lambda: svc.stderr().count("configuration reloaded") > reloads,
                EVENT_TIMEOUT,
                "the reload",
            )
            assert want in svc.stderr().rsplit("configuration reloaded", 1)[1].splitlines()[0]
            seen = _evaluations(base)
            svc.wait_until(
                lambda: _evaluations(base) >= seen + 3, EVENT_TIMEOUT, "three more evaluations"
            )

        # An annotation and the route's matchers change: the alert is kept, nothing is called.
        (tmp_path / "node.yml").write_text(
            NODE_ALERTS.replace("is < 101% for 2s", "is mostly free")
        )
        reload_and_wait_quietly(
            CONFIG.format(
                prometheus=url, matchers="'severity=~\"info|warning\"'", plugin="recorder"
            ),
            "kept with new settings",
        )
        assert calls() == [("execute", "recorder")]
        # The route now names another plugin: still nothing is called.
        reload_and_wait_quietly(
            CONFIG.format(
                prometheus=url, matchers="'severity=~\"info|warning\"'", plugin="recorder_hard"
            ),
            "kept with new settings",
        )
        assert calls() == [("execute", "recorder")]

        # node_exporter stops: the series goes stale and the breach ends; the resolve goes to
        # the plugin that fired, with the last value and the annotations rendered with it.
        node_exporter.stop()
        svc.wait_until(lambda: len(calls()) == 2, EVENT_TIMEOUT, "the resolve")
        assert calls()[1] == ("resolve", "recorder")
        _, resolved = recording_plugin_dir.records()
        assert math.isfinite(resolved["value"]) and 0 < resolved["value"] < 101, resolved
        description = resolved["annotations"]["description"]
        assert description.startswith("Node memory is mostly free\n  VALUE = "), description
        assert "NaN" not in description and str(resolved["value"])[:6] in description, description

        # node_exporter back: a new breach, fired at the plugin the route names now.
        node_exporter.start()
        svc.wait_until(lambda: len(calls()) == 3, EVENT_TIMEOUT, "the second fire")
        assert calls()[2] == ("execute", "recorder_hard")
        svc.stop()
        lived = _changes(svc.stderr())
        assert [c[:2] for c in lived] == [
            ("ok", "pending"),
            ("pending", "firing"),
            ("firing", "ok"),
            ("ok", "pending"),
            ("pending", "firing"),
        ], lived

        # The window reaches two steps past the last change the service saw.
        time.sleep(max(0.0, lived[-1][2] + 2.5 - time.time()))
        window = [
            "--from",
            datetime.fromtimestamp(began - 1, UTC).isoformat(),
            "--to",
            datetime.fromtimestamp(time.time(), UTC).isoformat(),
        ]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "metric_reader",
                "backtest",
                *window,
                "--rule",
                ALERT,
                "--format",
                "json",
            ],
            env=base_env({"CONFIG_FILE": str(config)}),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        [rule] = json.loads(result.stdout)["rules"]
        [series] = rule["series"]
        told = [(c["from"], c["to"], c["time"]) for c in series["changes"]]
        assert [c[:2] for c in told] == [c[:2] for c in lived], f"{told}\n{lived}"
        for backtested, then in zip(told, lived, strict=True):
            assert abs(backtested[2] - then[2]) < 1.6, (backtested, then)
