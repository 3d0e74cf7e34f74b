"""What an SRE moving from prometheus-am-executor needs of ``exec_action`` (issue 23, point
11), end to end: a rule file's alerts, evaluated on a real Prometheus, routed to two
plugins made of ``exec_action`` (``[plugins.NAME]`` with ``plugin = "exec_action"``), each
running its own command with arguments rendered from the alert; a real script records its
arguments and environment: the alert's annotations and am-executor's ``AMX_*`` variables,
whose fingerprint is the one a real Alertmanager gives the same labels.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
from _events import make_event

from metric_reader._actions import LoadedPlugin, bundled_plugin_dir, load_plugin_file

from .conftest import EVENT_TIMEOUT, PrometheusStack, ServiceFactory
from .test_alertmanager_plugin import Alertmanager, alertmanager  # noqa: F401 (fixture)

CAPTURE = """\
#!{python}
import json, os, sys
seen = {{k: v for k, v in os.environ.items() if k.startswith(("AMX_", "METRIC_READER_"))}}
with open(os.environ["CAPTURE_FILE"], "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "env": seen}}) + "\\n")
"""

ALERTS = """\
groups:
  - name: hosts
    rules:
      - alert: HighLoad
        expr: label_replace(vector(7.5), "instance", "db-1:9100", "", "")
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.instance }} load is {{ $value }}'
      - alert: DiskFull
        expr: label_replace(vector(0.97), "mountpoint", "/var/lib/data", "", "")
        labels: {severity: warning}
        annotations:
          summary: '{{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full'
"""

CONFIG = """\
prometheus_endpoint = "PROMETHEUS"
polling_interval = "1s"
rule_files = ["alerts.yml"]

[plugins.reboot]
plugin = "exec_action"
command = ["CAPTURE", "reboot"]
args = ["--host", "{{ $labels.instance }}", "--reason", "{{ $annotations.summary }}"]

[plugins.cleanup]
plugin = "exec_action"
command = ["CAPTURE", "cleanup"]
args = ["{{ $labels.mountpoint }}"]

[[routes]]
matchers = ['alertname="HighLoad"']
action_plugin = "reboot"

[[routes]]
matchers = ['severity="warning"']
action_plugin = "cleanup"
"""


def capture_script(tmp_path: Path) -> Path:
    script = tmp_path / "capture.py"
    script.write_text(CAPTURE.format(python=sys.executable))
    script.chmod(0o755)
    return script


def captured(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_route_runs_its_own_command_with_the_alerts_annotations(
    tmp_path: Path, service: ServiceFactory, prometheus_stack: PrometheusStack
) -> None:
    out = tmp_path / "calls.jsonl"
    (tmp_path / "alerts.yml").write_text(ALERTS)
    config = tmp_path / "rules.toml"
    config.write_text(
        CONFIG.replace("PROMETHEUS", prometheus_stack.prometheus_url).replace(
            "CAPTURE", str(capture_script(tmp_path))
        )
    )

    svc = service({"CONFIG_FILE": str(config), "CAPTURE_FILE": str(out)})
    calls = svc.wait_until(
        lambda: (found := captured(out)) and len({c["argv"][0] for c in found}) == 2 and found,
        EVENT_TIMEOUT,
        lambda: f"both commands to run; ran: {captured(out)}",
    )

    by_command = {call["argv"][0]: call for call in calls}
    reboot, cleanup = by_command["reboot"], by_command["cleanup"]
    assert reboot["argv"] == ["reboot", "--host", "db-1:9100", "--reason", "db-1:9100 load is 7.5"]
    assert cleanup["argv"] == ["cleanup", "/var/lib/data"]
    env = reboot["env"]
    assert {k: v for k, v in env.items() if "ANNOTATION" in k} == {
        "METRIC_READER_ANNOTATIONS": '{"summary": "db-1:9100 load is 7.5"}',
        "METRIC_READER_ANNOTATION_SUMMARY": "db-1:9100 load is 7.5",
        "AMX_ANNOTATION_summary": "db-1:9100 load is 7.5",
        "AMX_ALERT_1_ANNOTATION_summary": "db-1:9100 load is 7.5",
    }
    assert (env["AMX_RECEIVER"], env["AMX_STATUS"], env["AMX_ALERT_LEN"]) == (
        "reboot",
        "firing",
        "1",
    )
    assert (env["AMX_LABEL_alertname"], env["AMX_ALERT_1_LABEL_instance"]) == (
        "HighLoad",
        "db-1:9100",
    )
    assert env["METRIC_READER_THRESHOLD"].startswith("label_replace(vector(7.5)")
    assert cleanup["env"]["AMX_RECEIVER"] == "cleanup"
    assert cleanup["env"]["AMX_ANNOTATION_summary"] == "/var/lib/data is 97% full"


LABEL_SETS = [
    {"alertname": "Watchdog"},
    {"alertname": "HighLoad", "instance": "db-1:9100", "severity": "page"},
    {"alertname": "DiskFull", "mountpoint": "/var/lib/d\u00e9j\u00e0 vu", "z": "\u00ff=\n"},
]


def test_the_fingerprint_is_alertmanagers(
    tmp_path: Path,
    alertmanager: Alertmanager,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AMX_ALERT_1_FINGERPRINT is what Alertmanager (whose notifications am-executor reads)
    gives an alert of the same labels in ``/api/v2/alerts``."""
    request = urllib.request.Request(
        f"{alertmanager.url}/api/v2/alerts",
        data=json.dumps([{"labels": labels} for labels in LABEL_SETS]).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()
    by_labels = {
        json.dumps(alert["labels"], sort_keys=True): alert["fingerprint"]
        for alert in alertmanager.alerts()
    }
    out = tmp_path / "calls.jsonl"
    monkeypatch.setenv("CAPTURE_FILE", str(out))
    plugin = load_plugin_file(
        bundled_plugin_dir() / "exec_action.py",
        bundled=True,
        settings={"exec_action": {"command": [str(capture_script(tmp_path))]}},
    )
    assert isinstance(plugin, LoadedPlugin), plugin

    for labels in LABEL_SETS:
        anyio.run(plugin.call, "execute", make_event(labels=labels), 10.0)

    fingerprints = [call["env"]["AMX_ALERT_1_FINGERPRINT"] for call in captured(out)]
    assert fingerprints == [by_labels[json.dumps(labels, sort_keys=True)] for labels in LABEL_SETS]
